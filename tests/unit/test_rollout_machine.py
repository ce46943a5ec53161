"""The rollout state machine, step by step, against simulated Deployments (pure; no cluster).

The simulation is deliberately simple (a Deployment's pods follow its replicas at once, all ready);
what is checked is the machine's own promises: the GPU budget is never exceeded, a failing step
rolls back at once, silence never promotes, the deadline rolls back, actions act once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelserve import api
from modelserve.rollout import analysis, machine, revision

T0 = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


def md(versions: list[int], *, replicas: int = 4, **rollout: Any) -> api.ModelDeployment:
    return api.parse(
        {
            "metadata": {"name": "resnet", "namespace": "ml", "uid": "u1", "generation": 1},
            "spec": {
                "model": {
                    "storageUri": "gs://models/resnet",
                    "versionPolicy": {"specific": {"versions": versions}},
                },
                "replicas": replicas,
                "gpu": {"count": 1},
                "rollout": {"steps": [25, 50, 100], "stepDuration": "30s", **rollout},
            },
        }
    )


def verdict(kind: str, message: str = "") -> analysis.Verdict:
    return analysis.Verdict(kind, message or kind, (), 30)


class Sim:
    """Two Deployments whose pods appear and vanish at once, and the status the machine writes."""

    def __init__(self, m: api.ModelDeployment) -> None:
        self.md = m
        self.previous: dict[str, Any] = {}
        count = m.spec.replicas or 0
        self.stable = machine.Track(exists=True, replicas=count, ready=count, pods=count)
        self.canary = machine.Track()
        self.now = T0
        self.events: list[machine.Event] = []
        self.max_pods = 0
        self.action: str | None = None

    def world(self) -> machine.World:
        assert self.md.spec.rollout is not None
        return machine.World(
            rollout=self.md.spec.rollout,
            revision=revision.revision(self.md),
            rolled_spec=revision.rolled_spec(self.md),
            previous=self.previous,
            total=self.md.spec.replicas or 0,
            stable=self.stable,
            canary=self.canary,
            now=self.now,
            action=self.action,
        )

    def tick(self, v: analysis.Verdict | None = None, seconds: float = 5) -> machine.Plan:
        world = self.world()
        due = machine.analysis_window(world) is not None
        plan = machine.plan(world, v if due else None)
        self.previous = plan.status
        self.events += plan.events
        # Pods follow replicas at once; the machine only ever grows a track into what the other's
        # pods (as of the previous tick) leave of the budget.
        s, c = plan.stable_replicas, plan.canary_replicas
        self.stable = machine.Track(True, s, s, s)
        self.canary = machine.Track(c is not None, c or 0, c or 0, c or 0)
        self.max_pods = max(self.max_pods, self.stable.pods + self.canary.pods)
        self.now += timedelta(seconds=seconds)
        return plan


def started(versions_from: list[int] = [1], versions_to: list[int] = [2], **kw: Any) -> Sim:  # noqa: B006
    sim = Sim(md(versions_from, **kw))
    sim.tick()
    assert sim.previous["phase"] == machine.STABLE
    sim.md = md(versions_to, **kw)
    return sim


def window_open(sim: Sim, step: int, v: analysis.Verdict | None = None) -> None:
    """Ticks until step `step`'s analysis window is open (its canary pods are all ready)."""
    for _ in range(20):
        if sim.previous.get("step") == step and sim.previous.get("stepReadyAt"):
            return
        sim.tick(v)
    raise AssertionError(f"step {step} never opened its window: {sim.previous}")


def reasons(sim: Sim) -> list[str]:
    return [r for _, r, _ in sim.events]


def test_first_sight_is_stable_and_records_the_stable_spec() -> None:
    sim = Sim(md([1]))
    plan = sim.tick()
    assert plan.canary_replicas is None and plan.stable_replicas == 4
    assert sim.previous["stableRevision"] == revision.revision(sim.md)
    assert sim.previous["stableSpec"]["model"]["versionPolicy"] == {"specific": {"versions": [1]}}


def test_a_good_canary_goes_through_every_step_and_is_promoted_within_the_budget() -> None:
    sim = started()
    weights = []
    for _ in range(60):
        plan = sim.tick(verdict(analysis.PASS))
        weights.append((sim.previous.get("step"), plan.stable_replicas, plan.canary_replicas))
        if sim.previous["phase"] == machine.STABLE:
            break
    assert sim.previous["phase"] == machine.STABLE
    assert sim.previous["stableRevision"] == revision.revision(md([2]))
    assert sim.max_pods <= 4, "maxExtraReplicas 0: never more pods (GPUs) than replicas"
    assert (1, 3, 1) in weights and (2, 2, 2) in weights and (3, 0, 4) in weights
    assert reasons(sim)[:2] == ["RolloutStarted", "RolloutStep"]
    assert "Promoting" in reasons(sim) and reasons(sim)[-1] == "Promoted"
    assert sim.stable.replicas == 4 and not sim.canary.exists


def test_extra_replicas_keep_the_stable_larger() -> None:
    sim = started(max_extra_replicas=2)
    sim.tick()
    plan = sim.tick()
    assert (plan.stable_replicas, plan.canary_replicas) == (4, 1)


def test_a_failing_step_rolls_back_at_once_and_stays_rolled_back() -> None:
    sim = started()
    window_open(sim, 1)
    sim.tick(verdict(analysis.PASS))  # step 1 passes
    window_open(sim, 2)
    plan = sim.tick(verdict(analysis.FAIL, "errorRatio = 0.2, must be <= 0.01"))
    assert sim.previous["phase"] == machine.ROLLED_BACK
    assert "at step 2 (50%)" in sim.previous["message"]
    # The canary goes at once; the stable grows into the GPUs its pods free.
    assert plan.canary_replicas is None and plan.stable_replicas == 2
    plan = sim.tick()
    assert plan.stable_replicas == 4
    assert sim.previous["reason"] == machine.ANALYSIS_FAILED
    assert "errorRatio" in sim.previous["message"]
    assert reasons(sim)[-1] == "RolledBack"
    for _ in range(3):
        plan = sim.tick(verdict(analysis.PASS))
        assert sim.previous["phase"] == machine.ROLLED_BACK and plan.canary_replicas is None
    sim.md = md([3])  # a new spec starts a new rollout
    sim.tick()
    assert sim.previous["phase"] == machine.PROGRESSING and sim.previous["step"] == 1


def test_a_silent_canary_is_never_promoted_and_rolls_back_at_the_deadline() -> None:
    sim = started(progress_deadline_seconds=60)
    for _ in range(30):
        sim.tick(verdict(analysis.INCONCLUSIVE, "the canary served 0 requests"))
        if sim.previous["phase"] != machine.PROGRESSING:
            break
    assert sim.previous["phase"] == machine.ROLLED_BACK
    assert sim.previous["reason"] == machine.DEADLINE_EXCEEDED
    assert "0 requests" in sim.previous["message"]


def test_prometheus_errors_hold_the_step_until_the_deadline() -> None:
    sim = started(progress_deadline_seconds=30)
    window_open(sim, 1)
    sim.tick(verdict(analysis.ERROR, "Prometheus could not answer requestCount: unreachable"))
    assert sim.previous["phase"] == machine.PROGRESSING and sim.previous["step"] == 1
    assert "unreachable" in sim.previous["message"]
    for _ in range(10):
        sim.tick(verdict(analysis.ERROR, "unreachable"))
    assert sim.previous["phase"] == machine.ROLLED_BACK


def test_pause_holds_and_resume_restarts_the_window() -> None:
    sim = started()
    window_open(sim, 1)
    sim.md = md([2], paused=True)
    for _ in range(200):  # far past the deadline: a paused rollout has none
        sim.tick(verdict(analysis.PASS))
    assert sim.previous["phase"] == machine.PAUSED and sim.previous["step"] == 1
    sim.md = md([2])
    sim.tick()
    assert sim.previous["phase"] == machine.PROGRESSING and "stepReadyAt" not in sim.previous
    assert "RolloutResumed" in reasons(sim)


def test_actions_act_once_and_an_old_one_does_not_touch_the_next_rollout() -> None:
    sim = started()
    sim.tick()
    sim.action = "promote"
    sim.tick()
    assert sim.previous["phase"] == machine.PROMOTING
    for _ in range(20):
        sim.tick()
    assert sim.previous["phase"] == machine.STABLE
    sim.md = md([3])  # the annotation still says promote: the next rollout is not promoted by it
    sim.tick()
    sim.tick()
    assert sim.previous["phase"] == machine.PROGRESSING
    sim.action = "abort@2"
    sim.tick()
    assert sim.previous["phase"] == machine.ROLLED_BACK and sim.previous["reason"] == machine.ABORTED


def test_reverting_the_spec_mid_rollout_cancels_it() -> None:
    sim = started()
    sim.tick()
    sim.tick()
    sim.md = md([1])
    plan = sim.tick()
    assert sim.previous["phase"] == machine.STABLE and plan.canary_replicas is None
    assert "RolloutCanceled" in reasons(sim)


def test_version_label_moves_do_not_start_a_rollout() -> None:
    base = md([1, 2])
    spec = base.spec.model_dump(by_alias=True, exclude_none=True)
    spec["model"]["versionLabels"] = {"stable": 2}
    moved = base.model_copy(update={"spec": api.ModelDeploymentSpec.model_validate(spec)})
    assert revision.revision(base) == revision.revision(moved)
    assert revision.revision(base) != revision.revision(md([1, 3]))
    assert revision.revision(base) == revision.revision(md([1, 2], replicas=7))


def test_stable_track_keeps_only_labels_of_its_versions() -> None:
    new = api.parse({**md([2]).model_dump(by_alias=True, exclude_none=True)})
    spec = new.spec.model_dump(by_alias=True, exclude_none=True)
    spec["model"]["versionLabels"] = {"canary": 2}
    new = new.model_copy(update={"spec": api.ModelDeploymentSpec.model_validate(spec)})
    stable = revision.with_rolled_spec(new, revision.rolled_spec(md([1])))
    assert stable.spec.model.version_policy is not None
    assert stable.spec.model.version_labels is None
    assert stable.spec.replicas == 4


@pytest.mark.parametrize(
    ("total", "weight", "expected"), [(4, 25, 1), (4, 50, 2), (4, 100, 4), (3, 10, 1), (0, 50, 0)]
)
def test_canary_share(total: int, weight: int, expected: int) -> None:
    assert machine.canary_target(total, weight) == expected


def test_budget_never_lets_both_tracks_grow_past_it() -> None:
    sim = started()
    world = replace(sim.world(), stable=machine.Track(True, 4, 4, 4), canary=machine.Track(True, 0, 0, 0))
    assert machine.within_budget(world, 3, 1) == (3, 0)  # the canary waits for the stable's pod to go
    world = replace(world, stable=machine.Track(True, 3, 3, 3))
    assert machine.within_budget(world, 3, 1) == (3, 1)


def test_every_status_field_the_machine_writes_is_in_the_crd_schema() -> None:
    # The API server prunes unknown status fields: one missing here would be silently lost.
    written: set[str] = set()
    sim = started()
    for _ in range(60):
        sim.tick(verdict(analysis.PASS))
        written |= set(sim.previous)
    sim.md = md([3])
    for _ in range(10):
        sim.tick(verdict(analysis.FAIL, "errorRatio = 1"))
        written |= set(sim.previous)
    schema = {field.alias or name for name, field in api.RolloutStatus.model_fields.items()}
    assert written <= schema, written - schema


def test_the_route_weight_moves_only_once_the_step_is_ready() -> None:
    sim = started()
    plan = sim.tick()
    assert sim.previous["step"] == 1 and plan.canary_weight == 0  # canary pods not ready yet
    window_open(sim, 1)
    plan = sim.tick()
    assert plan.canary_weight == 25
