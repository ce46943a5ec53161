"""The rollout state machine's vocabulary and arithmetic (pure): phases, reasons, what is observed
(`Track`, `World`), what is decided (`Plan`), the GPU-budget arithmetic every phase uses, and the
status every phase starts from (`base_status`; `stable_plan`, where every rollout ends)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from modelserve import api
from modelserve.rollout.analysis import duration_seconds

STABLE, PROGRESSING, PAUSED, PROMOTING, ROLLED_BACK = (
    "Stable",
    "Progressing",
    "Paused",
    "Promoting",
    "RolledBack",
)
ACTIVE_PHASES: Final = (PROGRESSING, PAUSED)

# Reasons of the RolledBack condition and of the Events.
ANALYSIS_FAILED: Final = "AnalysisFailed"
DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
ABORTED: Final = "Aborted"

Event = tuple[str, str, str]  # (type, reason, message)


@dataclass(frozen=True)
class Track:
    """One Deployment as observed: its spec.replicas, ready pods on its current template, and live pods
    (any not yet gone, terminating included)."""

    exists: bool = False
    replicas: int = 0
    ready: int = 0
    pods: int = 0

    @property
    def occupied(self) -> int:
        # A replica just asked for may have no pod object yet: count what was asked for too.
        return max(self.pods, self.replicas)


@dataclass(frozen=True)
class World:
    rollout: api.Rollout
    revision: str
    rolled_spec: dict[str, Any]
    previous: dict[str, Any]  # status.rollout as last written ({} when none)
    total: int  # the replica count to split
    stable: Track
    canary: Track
    now: datetime
    action: str | None = None  # the rollout-action annotation's value


@dataclass
class Plan:
    status: dict[str, Any]  # the new status.rollout
    stable_spec: dict[str, Any]  # the rolled spec the stable Deployment is built from
    stable_replicas: int
    canary_replicas: int | None  # None: no canary children at all
    canary_weight: int = 0  # the planned share for a weighted HTTPRoute
    autoscaler_owns_stable: bool = False  # the HPA (not this plan) sets the stable's replicas
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    analysis_window: int | None = None  # set by `analysis_window()`, not by `plan()`


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def canary_target(total: int, weight: int) -> int:
    if total <= 0:
        return 0
    return total if weight >= 100 else max(1, math.ceil(total * weight / 100))


def step_targets(world: World, weight: int) -> tuple[int, int]:
    """(stable, canary) replicas for a step: the canary's share of total, the stable keeps the rest
    plus whatever maxExtraReplicas allows."""
    canary = canary_target(world.total, weight)
    stable = max(0, min(world.total, world.total - canary + world.rollout.max_extra_replicas))
    return stable, canary


def within_budget(world: World, stable_target: int, canary_target_: int) -> tuple[int, int]:
    """Each track grows only into what the other's live pods leave of the budget."""
    budget = world.total + world.rollout.max_extra_replicas
    stable = min(stable_target, max(0, budget - world.canary.occupied))
    canary = min(canary_target_, max(0, budget - world.stable.occupied))
    return stable, canary


def analysis_window(world: World) -> int | None:
    """Seconds of the current step's window when an analysis is due now, else None."""
    prev = world.previous
    if (
        prev.get("phase") != PROGRESSING
        or world.rollout.paused
        or prev.get("canaryRevision") != world.revision
    ):
        return None
    ready_at = parse_time(prev.get("stepReadyAt"))
    if ready_at is None:
        return None
    elapsed = (world.now - ready_at).total_seconds()
    step = duration_seconds(world.rollout.step_duration)
    return int(max(1, min(max(elapsed, 0), step)))


def base_status(world: World, phase: str, **fields: Any) -> dict[str, Any]:
    prev = world.previous
    out: dict[str, Any] = {
        "phase": phase,
        "stableRevision": prev.get("stableRevision"),
        "canaryRevision": prev.get("canaryRevision"),
        "stableSpec": prev.get("stableSpec"),
        "totalReplicas": world.total,
        "stableReplicas": world.stable.ready,
        "canaryReplicas": world.canary.ready,
        "weight": ready_weight(world),
    }
    for key in (
        "step",
        "stepWeight",
        "stepStartedAt",
        "stepReadyAt",
        "analysis",
        "lastHandledAction",
        "reason",
        "message",
    ):
        if prev.get(key) is not None:
            out[key] = prev[key]
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def ready_weight(world: World) -> int:
    ready = world.stable.ready + world.canary.ready
    return round(100 * world.canary.ready / ready) if ready else 0


def without_canary(
    world: World, status: dict[str, Any], stable_spec: dict[str, Any], events: list[Event] | None = None
) -> Plan:
    """No canary wanted (stable, rolled back): the whole total on the stable, the HPA handed the
    stable back once the canary's last pod and Deployment are gone (polled until then)."""
    stable, _ = within_budget(world, world.total, 0)
    leftover = world.canary.pods > 0 or world.canary.exists
    return Plan(
        status=status,
        stable_spec=stable_spec,
        stable_replicas=stable,
        canary_replicas=None,
        autoscaler_owns_stable=not leftover,
        events=events if events is not None else [],
        requeue_after=2.0 if leftover else None,
    )


def stable_plan(
    world: World, revision: str, spec: dict[str, Any], *, events: list[Event], handled: str | None
) -> Plan:
    status = {
        "phase": STABLE,
        "stableRevision": revision,
        "stableSpec": spec,
        "totalReplicas": world.total,
        "stableReplicas": world.stable.ready,
        "canaryReplicas": world.canary.ready,
        "weight": ready_weight(world),
        "message": "the stable Deployment runs the spec",
    }
    last = handled or world.previous.get("lastHandledAction")
    if last:
        status["lastHandledAction"] = last
    if world.previous.get("analysis") and world.previous.get("phase") in (STABLE, PROMOTING):
        status["analysis"] = world.previous["analysis"]  # the analysis that promoted what runs
    return without_canary(world, status, spec, events)
