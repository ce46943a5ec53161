"""The status with disruptions: pods taken by a drain or a lost node, within the budget, keep Ready."""

from __future__ import annotations

from typing import Any

import pytest
from test_status import T0, deployment, make, service, summary

from modelserve.builders.disruption import tolerated_unavailable
from modelserve.status import Observed, Reason, compute_status

pytestmark = pytest.mark.unit


def observed(ready: int, replicas: int = 3, updated: int | None = None, total: int | None = None) -> Observed:
    updated = replicas if updated is None else updated
    dep = deployment(
        replicas=replicas, ready=ready, updated=updated, total=total, generation=4, observed_generation=4
    )
    return Observed(service=service(), deployment=dep)


def settle(spec: dict[str, Any]) -> dict[str, Any]:
    count = spec.get("replicas", 3)
    status = compute_status(make(**spec), observed(ready=count, replicas=count), None, T0)
    assert summary(status)["Ready"] == ("True", Reason.READY)
    return status


def test_a_pod_being_replaced_within_the_budget_keeps_ready() -> None:
    spec = {"replicas": 3}
    before = settle(spec)
    during = compute_status(make(**spec), observed(ready=2), before, T0)
    assert summary(during)["Ready"] == ("True", Reason.READY)
    assert summary(during)["DeploymentReady"] == ("True", Reason.ROLLED_OUT)
    message = next(c["message"] for c in during["conditions"] if c["type"] == "DeploymentReady")
    assert message == "2/3 replicas ready (1 being replaced, within the disruption budget)"
    assert during["readyReplicas"] == 2  # the counts still say what is true
    # An evicted pod not yet replaced: the Deployment counts 2 updated of 3, and no old pod.
    replacing = compute_status(make(**spec), observed(ready=2, updated=2), before, T0)
    assert summary(replacing)["Ready"] == ("True", Reason.READY)
    # A restart of the Deployment at the same generation (kubectl rollout restart) within the budget.
    restarting = compute_status(make(**spec), observed(ready=2, updated=2, total=3), before, T0)
    assert summary(restarting)["Ready"] == ("True", Reason.READY)
    # Beyond the budget (two of three gone) it is not Ready.
    worse = compute_status(make(**spec), observed(ready=1), during, T0)
    assert summary(worse)["Ready"] == ("False", Reason.ROLLING_OUT)


def test_a_new_rollout_or_a_first_start_is_not_excused() -> None:
    spec = {"replicas": 3}
    # Never rolled out at this generation: two of three ready is still rolling out.
    first = compute_status(make(**spec), observed(ready=2), None, T0)
    assert summary(first)["Ready"] == ("False", Reason.ROLLING_OUT)
    # Rolled out at generation 3; the spec changed since (generation 4): strict again.
    before = settle(spec)
    changed = compute_status(make(generation=4, **spec), observed(ready=2), before, T0)
    assert summary(changed)["Ready"] == ("False", Reason.ROLLING_OUT)


def test_one_replica_has_no_budget_to_spend() -> None:
    before = settle({"replicas": 1})
    during = compute_status(make(replicas=1), observed(ready=0, replicas=1), before, T0)
    assert summary(during)["Ready"][0] == "False"


@pytest.mark.parametrize(
    ("spec", "desired", "tolerated"),
    [
        ({"replicas": 3}, 3, 1),
        ({"replicas": 1}, 1, 0),
        ({"replicas": 4, "disruption": {"maxUnavailable": 2}}, 4, 2),
        (
            {"replicas": 4, "disruption": {"maxUnavailable": "30%"}},
            4,
            2,
        ),  # rounded up, as the controller does
        ({"replicas": 4, "disruption": {"minAvailable": 3}}, 4, 1),
        ({"replicas": 4, "disruption": {"minAvailable": "50%"}}, 4, 2),
        ({"replicas": 3, "disruption": {"minAvailable": 3}}, 3, 0),
        ({"replicas": 2, "disruption": {"maxUnavailable": 5}}, 2, 1),  # never all of them
        ({"replicas": 3, "suspend": True}, 3, 0),
        ({"autoscaling": {"minReplicas": 2, "maxReplicas": 6}}, 5, 1),
    ],
)
def test_tolerated_unavailable_follows_the_budget(spec: dict[str, Any], desired: int, tolerated: int) -> None:
    assert tolerated_unavailable(make(**spec), desired) == tolerated


def test_ready_pods_ahead_of_the_deployment_status_count() -> None:
    # Two drains in a row: the Deployment still says 1/3 ready, but its replacement pod already is.
    spec = {"replicas": 3}
    before = settle(spec)
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    pods = (
        *({"metadata": {"name": f"p{i}"}, "status": ready} for i in range(2)),
        {"metadata": {"name": "gone", "deletionTimestamp": T0}, "status": ready},  # evicted: not counted
    )
    obs = Observed(service=service(), deployment=observed(ready=1).deployment, pods=pods)
    during = compute_status(make(**spec), obs, before, T0)
    assert summary(during)["Ready"] == ("True", Reason.READY)
    message = next(c["message"] for c in during["conditions"] if c["type"] == "DeploymentReady")
    assert message == "2/3 replicas ready (1 being replaced, within the disruption budget)"


def test_every_pod_ready_before_the_deployment_counts_them_is_ready() -> None:
    spec = {"replicas": 3}
    before = settle(spec)
    pods = tuple(
        {"metadata": {"name": f"p{i}"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        for i in range(3)
    )
    obs = Observed(service=service(), deployment=observed(ready=2).deployment, pods=pods)
    status = compute_status(make(**spec), obs, before, T0)
    assert summary(status)["Ready"] == ("True", Reason.READY)
    message = next(c["message"] for c in status["conditions"] if c["type"] == "DeploymentReady")
    assert message == "3/3 replicas ready"
