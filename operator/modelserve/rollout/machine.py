"""The rollout state machine (pure): what the stable and canary should run, and what status says.

Input: the spec's rollout settings and revision, status.rollout as last written, what the two
Deployments and their pods look like now, the action annotation, the clock, and (when a step's
window is open) the analysis verdict. Output: a `Plan`. Nothing here remembers anything between
calls, so a restarted operator continues from status.rollout and the children alone.

Replicas stay within the GPU budget B = total + maxExtraReplicas at every instant: a track may
only grow into what the other track's live pods (terminating ones included: they still hold their
GPUs) leave free, so the stable shrinks first and the canary grows after, and on the way back the
canary goes first.

Phases: Stable (nothing to roll) -> Progressing (step i of N; Paused while spec.rollout.paused)
-> Promoting (the stable takes the canary's spec and its pods back) -> Stable; or at any point
-> RolledBack (canary gone, stable full), which holds until the spec changes again.
"""

from __future__ import annotations

from typing import Any

from modelserve.rollout.analysis import FAIL, PASS, Verdict
from modelserve.rollout.world import (
    ABORTED,
    ACTIVE_PHASES,
    ANALYSIS_FAILED,
    DEADLINE_EXCEEDED,
    PAUSED,
    PROGRESSING,
    PROMOTING,
    ROLLED_BACK,
    STABLE,
    Event,
    Plan,
    Track,
    World,
    analysis_window,
    base_status,
    canary_target,
    parse_time,
    ready_weight,
    stable_plan,
    step_targets,
    timestamp,
    within_budget,
    without_canary,
)

__all__ = [
    "ABORTED",
    "ACTIVE_PHASES",
    "ANALYSIS_FAILED",
    "DEADLINE_EXCEEDED",
    "PAUSED",
    "PROGRESSING",
    "PROMOTING",
    "ROLLED_BACK",
    "STABLE",
    "Event",
    "Plan",
    "Track",
    "World",
    "analysis_window",
    "canary_target",
    "plan",
    "step_targets",
    "within_budget",
]


def _action(world: World) -> str | None:
    """The action to carry out now: a value of the annotation not acted on before."""
    value = (world.action or "").strip()
    if not value or value == world.previous.get("lastHandledAction"):
        return None
    return value


def plan(world: World, verdict: Verdict | None = None) -> Plan:
    prev = world.previous
    phase = prev.get("phase")
    if not prev.get("stableSpec") or not prev.get("stableRevision"):
        # First sight (or rollout just enabled): what runs now is the stable; nothing to roll.
        return stable_plan(world, world.revision, world.rolled_spec, events=[], handled=world.action)
    stable_revision = str(prev["stableRevision"])
    stable_spec = dict(prev["stableSpec"])
    action = _action(world)

    if phase == PROMOTING:
        return _promoting(world, action)
    if world.revision == stable_revision:
        events: list[Event] = []
        if phase in ACTIVE_PHASES:
            events.append(
                ("Normal", "RolloutCanceled", "the spec is back at the stable revision; canary removed")
            )
        # Refresh the stored spec: equal in every rolled field, and current in its encoding.
        return stable_plan(
            world, stable_revision, world.rolled_spec, events=events, handled=world.action or None
        )
    if phase == ROLLED_BACK and prev.get("canaryRevision") == world.revision:
        return _rolled_back_hold(world, stable_revision, stable_spec, handled=world.action or None)
    if phase in ACTIVE_PHASES and prev.get("canaryRevision") == world.revision:
        return _progress(world, stable_revision, stable_spec, action, verdict)
    return _start(world, stable_revision, stable_spec, restarted=phase in ACTIVE_PHASES)


def _start(world: World, stable_revision: str, stable_spec: dict[str, Any], *, restarted: bool) -> Plan:
    stamp = timestamp(world.now)
    weight = world.rollout.steps[0]
    status = base_status(
        world,
        PROGRESSING,
        stableRevision=stable_revision,
        stableSpec=stable_spec,
        canaryRevision=world.revision,
        step=1,
        stepWeight=weight,
        stepStartedAt=stamp,
        message=f"step 1 of {len(world.rollout.steps)}: bringing the canary to {weight}%",
    )
    for key in ("stepReadyAt", "analysis", "reason"):
        status.pop(key, None)
    if world.action:
        status["lastHandledAction"] = world.action  # an action older than this rollout is not for it
    # A new rollout starts from the full stable: the previous canary's pods are replaced in place.
    steps = ", ".join(f"{s}%" for s in world.rollout.steps)
    reason = "RolloutRestarted" if restarted else "RolloutStarted"
    text = f"rolling out revision {world.revision} as a canary through {steps}"
    return _hold_step(world, status, stable_spec, 1, events=[("Normal", reason, text)])


def _hold_step(
    world: World, status: dict[str, Any], stable_spec: dict[str, Any], step: int, *, events: list[Event]
) -> Plan:
    weight = world.rollout.steps[step - 1]
    stable_t, canary_t = step_targets(world, weight)
    stable, canary = within_budget(world, stable_t, canary_t)
    return Plan(
        status=status,
        stable_spec=stable_spec,
        stable_replicas=stable,
        canary_replicas=canary,
        # A weighted route moves to the step's share only once its canary pods are Ready.
        canary_weight=weight
        if status.get("stepReadyAt")
        else (world.rollout.steps[step - 2] if step > 1 else 0),
        events=events,
        requeue_after=2.0,
    )


def _progress(
    world: World,
    stable_revision: str,
    stable_spec: dict[str, Any],
    action: str | None,
    verdict: Verdict | None,
) -> Plan:
    prev = world.previous
    steps = world.rollout.steps
    step = min(int(prev.get("step") or 1), len(steps))
    weight = steps[step - 1]
    kind = (action or "").split("@", 1)[0]
    if action and kind == "abort":
        return _roll_back(
            world,
            stable_revision,
            stable_spec,
            ABORTED,
            "aborted by the rollout-action annotation",
            handled=action,
        )
    if action and kind == "promote":
        return _start_promotion(world, "promoted by the rollout-action annotation", handled=action)
    events: list[Event] = []
    extra: dict[str, Any] = {}
    if action:
        events.append(
            (
                "Warning",
                "UnknownRolloutAction",
                f"rollout-action {action!r} is neither promote nor abort (optionally @<token>); ignored",
            )
        )
        extra["lastHandledAction"] = action

    if world.rollout.paused:
        status = base_status(
            world, PAUSED, message=f"paused at step {step} ({weight}%): spec.rollout.paused is true", **extra
        )
        if prev.get("phase") != PAUSED:
            events.append(("Normal", "RolloutPaused", f"paused at step {step} ({weight}%)"))
        plan_ = _hold_step(world, status, stable_spec, step, events=events)
        plan_.requeue_after = None
        return plan_
    if prev.get("phase") == PAUSED:
        # Resumed: the step starts over (its window and its deadline), as if just entered.
        events.append(("Normal", "RolloutResumed", f"resumed at step {step} ({weight}%)"))
        status = base_status(
            world, PROGRESSING, stepStartedAt=timestamp(world.now), message=f"resumed at step {step}", **extra
        )
        status.pop("stepReadyAt", None)
        return _hold_step(world, status, stable_spec, step, events=events)

    _, canary_t = step_targets(world, weight)
    status = base_status(world, PROGRESSING, **extra)
    started = parse_time(prev.get("stepStartedAt")) or world.now
    ready_now = world.canary.ready >= canary_t and world.canary.replicas >= canary_t
    if prev.get("stepReadyAt") is None:
        if ready_now:
            status["stepReadyAt"] = timestamp(world.now)
            status["message"] = f"step {step} of {len(steps)}: canary at {weight}%, analysing"
            events.append(
                (
                    "Normal",
                    "RolloutStep",
                    f"step {step} of {len(steps)}: {world.canary.ready} canary and {world.stable.ready} "
                    f"stable pods ready ({ready_weight(world)}% of endpoints); analysis window opens",
                )
            )
        else:
            status["message"] = (
                f"step {step} of {len(steps)}: waiting for canary pods "
                f"({world.canary.ready}/{canary_t} ready)"
            )
    elif verdict is not None:
        status["analysis"] = verdict.as_status(timestamp(world.now))
        status["message"] = f"step {step} of {len(steps)} ({weight}%): {verdict.verdict}: {verdict.message}"
        if verdict.verdict == FAIL:
            return _roll_back(
                world,
                stable_revision,
                stable_spec,
                ANALYSIS_FAILED,
                f"analysis failed at step {step} ({weight}%): {verdict.message}",
                analysis=status["analysis"],
            )
        if verdict.verdict == PASS:
            if step == len(steps):
                plan_ = _start_promotion(world, f"every step passed; last: {verdict.message}", handled=None)
                plan_.status["analysis"] = status["analysis"]
                return plan_
            nxt = step + 1
            events.append(
                (
                    "Normal",
                    "RolloutStepPassed",
                    f"step {step} ({weight}%) passed: {verdict.message}; next {steps[nxt - 1]}%",
                )
            )
            status.update(
                step=nxt,
                stepWeight=steps[nxt - 1],
                stepStartedAt=timestamp(world.now),
                message=f"step {nxt} of {len(steps)}: bringing the canary to {steps[nxt - 1]}%",
            )
            status.pop("stepReadyAt", None)
            return _hold_step(world, status, stable_spec, nxt, events=events)

    deadline = world.rollout.progress_deadline_seconds
    if (world.now - started).total_seconds() > deadline:
        last = (status.get("analysis") or {}).get("message") or status.get("message") or ""
        return _roll_back(
            world,
            stable_revision,
            stable_spec,
            DEADLINE_EXCEEDED,
            f"step {step} ({weight}%) neither passed nor failed within {deadline}s: {last}",
            analysis=status.get("analysis"),
        )
    return _hold_step(world, status, stable_spec, step, events=events)


def _roll_back(
    world: World,
    stable_revision: str,
    stable_spec: dict[str, Any],
    reason: str,
    message: str,
    *,
    handled: str | None = None,
    analysis: dict[str, Any] | None = None,
) -> Plan:
    status = base_status(
        world,
        ROLLED_BACK,
        reason=reason,
        message=f"rolled back: {message}",
        stableRevision=stable_revision,
        stableSpec=stable_spec,
        canaryRevision=world.revision,
    )
    for key in ("step", "stepWeight", "stepStartedAt", "stepReadyAt"):
        status.pop(key, None)
    if analysis is not None:
        status["analysis"] = analysis
    if handled:
        status["lastHandledAction"] = handled
    plan_ = _rolled_back_hold(world, stable_revision, stable_spec, handled=None, status=status)
    plan_.events.append(
        ("Warning", "RolledBack", f"revision {world.revision} rolled back ({reason}): {message}")
    )
    return plan_


def _rolled_back_hold(
    world: World,
    stable_revision: str,
    stable_spec: dict[str, Any],
    *,
    handled: str | None,
    status: dict[str, Any] | None = None,
) -> Plan:
    if status is None:
        status = base_status(world, ROLLED_BACK)
        if handled:
            status["lastHandledAction"] = handled
    return without_canary(world, status, stable_spec)


def _start_promotion(world: World, message: str, *, handled: str | None) -> Plan:
    status = base_status(
        world,
        PROMOTING,
        stableRevision=world.revision,
        stableSpec=world.rolled_spec,
        canaryRevision=world.revision,
        message=f"promoting: {message}",
    )
    for key in ("step", "stepWeight", "stepStartedAt", "stepReadyAt"):
        status.pop(key, None)
    if handled:
        status["lastHandledAction"] = handled
    world_ = World(**{**world.__dict__, "previous": status})
    plan_ = _promoting(world_, None)
    plan_.events.insert(0, ("Normal", "Promoting", f"revision {world.revision}: {message}"))
    return plan_


def _promoting(world: World, action: str | None) -> Plan:
    """The stable runs the promoted spec and takes the pods back as the canary hands them over.

    With no extra replicas allowed, one canary pod goes before each stable pod comes (like a rolling
    update with maxSurge 0): serving capacity dips by one pod at most, and no pod waits for a GPU."""
    prev = world.previous
    spec = dict(prev.get("stableSpec") or world.rolled_spec)
    if world.revision != prev.get("stableRevision"):
        # The spec moved on during the hand-over: what was promoted is the stable; roll the new one.
        world_ = World(**{**world.__dict__, "previous": {**prev, "phase": STABLE}})
        return _start(world_, str(prev.get("stableRevision")), spec, restarted=True)
    slack = 0 if world.rollout.max_extra_replicas > 0 else 1
    canary_t = max(0, world.total - world.stable.ready - slack)
    if world.canary.ready == 0 and world.canary.pods == 0:
        canary_t = 0
    stable, canary = within_budget(world, world.total, canary_t)
    handled = action or prev.get("lastHandledAction")
    if canary == 0 and world.canary.pods == 0 and world.stable.ready >= world.total:
        done = stable_plan(world, str(prev["stableRevision"]), spec, events=[], handled=handled)
        done.events.append(
            ("Normal", "Promoted", f"revision {prev['stableRevision']} is the stable; canary removed")
        )
        if prev.get("analysis"):
            done.status["analysis"] = prev["analysis"]
        return done
    status = base_status(world, PROMOTING, message=prev.get("message") or "promoting")
    if handled:
        status["lastHandledAction"] = handled
    return Plan(
        status=status,
        stable_spec=spec,
        stable_replicas=stable,
        canary_replicas=canary if canary > 0 or world.canary.pods > 0 else None,
        canary_weight=100 if world.stable.ready == 0 else 0,
        requeue_after=2.0,
    )
