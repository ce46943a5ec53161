"""The HorizontalPodAutoscaler."""

from __future__ import annotations

from typing import Any

import pytest

from modelserve import api, naming
from modelserve.builders.hpa import build_hpa
from modelserve.settings import Settings

pytestmark = pytest.mark.unit


def make(**spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet"})
    return api.parse({"metadata": {"name": "resnet", "namespace": "ml", "uid": "u"}, "spec": spec})


def cpu(percent: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}},
    }


def test_absent_without_autoscaling_and_kept_while_suspended() -> None:
    assert build_hpa(make(), Settings()) is None
    assert build_hpa(make(replicas=3), Settings()) is None
    # Kept (same uid, same history): the HPA controller does not scale a Deployment at zero.
    autoscaling = {"maxReplicas": 3}
    assert build_hpa(make(autoscaling=autoscaling, suspend=True), Settings()) == build_hpa(
        make(autoscaling=autoscaling), Settings()
    )


def test_targets_the_deployment_with_default_cpu_target() -> None:
    md = make(autoscaling={"minReplicas": 2, "maxReplicas": 10})
    hpa = build_hpa(md, Settings())
    assert hpa is not None
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["kind"] == "HorizontalPodAutoscaler"
    assert hpa["metadata"] == naming.child_metadata(md, "resnet")
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "resnet"},
        "minReplicas": 2,
        "maxReplicas": 10,
        "metrics": [cpu(80)],
    }


def test_cpu_memory_and_custom_metrics_with_behavior() -> None:
    custom = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "requests_per_second"},
            "target": {"type": "AverageValue", "averageValue": "100"},
        },
    }
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 600}}
    hpa = build_hpa(
        make(
            autoscaling={
                "maxReplicas": 4,
                "targetCPUUtilization": 70,
                "targetMemoryUtilization": 60,
                "metrics": [custom],
                "behavior": behavior,
            }
        ),
        Settings(),
    )
    assert hpa is not None
    memory = {
        "type": "Resource",
        "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 60}},
    }
    assert hpa["spec"]["metrics"] == [cpu(70), memory, custom]
    assert hpa["spec"]["behavior"] == behavior


@pytest.mark.parametrize(
    "autoscaling",
    [
        {"maxReplicas": 4, "targetMemoryUtilization": 50},
        {"maxReplicas": 4, "metrics": [{"type": "External", "external": {}}]},
    ],
)
def test_no_default_cpu_target_when_another_target_is_given(autoscaling: dict[str, Any]) -> None:
    hpa = build_hpa(make(autoscaling=autoscaling), Settings())
    assert hpa is not None
    assert cpu(80) not in hpa["spec"]["metrics"]
    assert "behavior" not in hpa["spec"]


def test_passthrough_is_a_copy() -> None:
    md = make(autoscaling={"maxReplicas": 4, "behavior": {"scaleUp": {"policies": []}}})
    hpa = build_hpa(md, Settings())
    assert hpa is not None
    hpa["spec"]["behavior"]["scaleUp"]["policies"].append("x")
    assert md.spec.autoscaling is not None
    assert md.spec.autoscaling.behavior == {"scaleUp": {"policies": []}}
