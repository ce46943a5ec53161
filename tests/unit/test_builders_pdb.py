"""builders/pdb.py and builders/disruption.py: the budget, spreading and graceful stop of pods."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from modelserve import api, contract, naming
from modelserve.builders.deployment import build_deployment
from modelserve.builders.pdb import build_pdb
from modelserve.settings import Settings

pytestmark = pytest.mark.unit


def make(**spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet"})
    return api.parse({"metadata": {"name": "resnet", "namespace": "ml", "uid": "u"}, "spec": spec})


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"replicas": 1},
        {"replicas": 0},
        {"replicas": 3, "suspend": True},
        {"autoscaling": {"maxReplicas": 5}},
    ],
    ids=["default-one", "one", "zero", "suspended", "autoscaling-floor-one"],
)
def test_no_budget_below_two_replicas_or_while_suspended(spec: dict[str, Any]) -> None:
    assert build_pdb(make(**spec), Settings()) is None


def test_two_replicas_get_a_budget_of_one_unavailable_by_default() -> None:
    pdb = build_pdb(make(replicas=2), Settings())
    assert pdb is not None
    assert (pdb["apiVersion"], pdb["kind"], pdb["metadata"]["name"]) == (
        "policy/v1",
        "PodDisruptionBudget",
        "resnet",
    )
    assert pdb["metadata"]["ownerReferences"][0]["uid"] == "u"
    assert pdb["metadata"]["labels"][naming.MANAGED_BY_LABEL] == naming.MANAGED_BY
    assert pdb["spec"] == {
        "selector": {"matchLabels": {naming.SELECTOR_LABEL: "resnet"}},
        "maxUnavailable": 1,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


def test_the_autoscaling_floor_decides_and_the_spec_sets_the_budget() -> None:
    pdb = build_pdb(
        make(autoscaling={"minReplicas": 2, "maxReplicas": 5}, disruption={"maxUnavailable": "50%"}),
        Settings(),
    )
    assert pdb is not None and pdb["spec"]["maxUnavailable"] == "50%"
    pdb = build_pdb(make(replicas=3, disruption={"minAvailable": 2}), Settings())
    assert pdb is not None and pdb["spec"]["minAvailable"] == 2 and "maxUnavailable" not in pdb["spec"]


@pytest.mark.parametrize(
    "disruption",
    [{"maxUnavailable": 0}, {"maxUnavailable": "101%"}, {"minAvailable": "two"}, {"drainSeconds": -1}],
)
def test_invalid_budgets_are_refused(disruption: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        make(replicas=2, disruption=disruption)


def _pod(md: api.ModelDeployment) -> dict[str, Any]:
    return dict(build_deployment(md, Settings())["spec"]["template"]["spec"])


def test_pods_spread_softly_over_nodes_and_zones_unless_the_user_says_otherwise() -> None:
    spread = _pod(make(replicas=3))["topologySpreadConstraints"]
    assert [c["topologyKey"] for c in spread] == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    for c in spread:
        assert c["whenUnsatisfiable"] == "ScheduleAnyway" and c["maxSkew"] == 1
        assert c["labelSelector"] == {"matchLabels": {naming.SELECTOR_LABEL: "resnet"}}
        assert c["matchLabelKeys"] == ["pod-template-hash"]
    own = [{"maxSkew": 2, "topologyKey": "rack", "whenUnsatisfiable": "DoNotSchedule"}]
    assert (
        _pod(make(replicas=3, scheduling={"topologySpreadConstraints": own}))["topologySpreadConstraints"]
        == own
    )


def test_a_stopping_pod_drains_before_tf_serving_is_signalled() -> None:
    pod = _pod(make(replicas=2, disruption={"drainSeconds": 25}))
    serving = pod["containers"][0]
    assert serving["lifecycle"] == {
        "preStop": {"exec": {"command": [contract.EXECUTABLE, contract.CMD_DRAIN, "--seconds=25"]}}
    }
    assert pod["terminationGracePeriodSeconds"] == 25 + 15
    assert _pod(make())["terminationGracePeriodSeconds"] == api.Disruption().drain_seconds + 15


def test_the_pod_template_does_not_depend_on_the_replica_count() -> None:
    # Scaling (kubectl scale, the HPA) must never roll pods.
    assert _pod(make(replicas=1)) == _pod(make(replicas=5))
