"""Load targets, the KEDA ScaledObject, the activator's EndpointSlice and the status at zero (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from test_status import T0, conditions, deployment, hpa_condition, service, summary, unschedulable

from modelserve import api
from modelserve.builders import activator_route, keda
from modelserve.builders.hpa import build_hpa
from modelserve.settings import Settings
from modelserve.status import Observed, Reason, compute_status

pytestmark = pytest.mark.unit

SETTINGS = Settings(prometheus_url="http://prometheus.monitoring.svc:9090", rate_window="2m")
ZERO = {"minReplicas": 0, "maxReplicas": 4, "idleWindow": "5m", "targetRequestsPerSecond": 20}


def make(**spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet"})
    return api.parse(
        {"metadata": {"name": "resnet", "namespace": "ml", "uid": "u", "generation": 3}, "spec": spec}
    )


def test_requests_per_second_is_a_prometheus_trigger_per_replica() -> None:
    so = keda.build_scaled_object(
        make(autoscaling={"maxReplicas": 5, "targetRequestsPerSecond": 12.5}), SETTINGS
    )
    assert so is not None
    assert so["apiVersion"] == "keda.sh/v1alpha1" and so["metadata"]["name"] == "resnet"
    assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "resnet"}
    assert (so["spec"]["minReplicaCount"], so["spec"]["maxReplicaCount"]) == (1, 5)
    assert "cooldownPeriod" not in so["spec"]
    [trigger] = so["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert trigger["metadata"] == {
        "serverAddress": "http://prometheus.monitoring.svc:9090",
        "query": 'sum(rate(:tensorflow:serving:request_count{namespace="ml",service="resnet",'
        'model_name="resnet"}[2m]))',
        "threshold": "12.5",
        "activationThreshold": "0",
        "ignoreNullValues": "true",
    }


def test_latency_and_custom_queries_are_value_targets_and_cpu_joins_them() -> None:
    autoscaling = {
        "maxReplicas": 5,
        "targetCPUUtilization": 70,
        "targetLatency": {"percentile": 95, "milliseconds": 250},
        "prometheus": [{"name": "queue", "query": "sum(q)", "target": 4, "targetType": "Value"}],
    }
    so = keda.build_scaled_object(make(autoscaling=autoscaling), SETTINGS)
    assert so is not None
    cpu, latency, queue = so["spec"]["triggers"]
    assert cpu == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
    assert latency["name"] == "latency-p95" and latency["metricType"] == "Value"
    assert latency["metadata"]["query"].startswith("histogram_quantile(0.95, sum by (le) (rate(")
    assert latency["metadata"]["query"].endswith("[2m]))) / 1000")
    assert latency["metadata"]["threshold"] == "250"
    assert (queue["name"], queue["metricType"], queue["metadata"]["query"]) == ("queue", "Value", "sum(q)")


def test_scale_to_zero_adds_the_activator_trigger_and_the_idle_window() -> None:
    so = keda.build_scaled_object(
        make(autoscaling=ZERO), SETTINGS.model_copy(update={"activator_namespace": "ops"})
    )
    assert so is not None
    assert so["spec"]["minReplicaCount"] == 0 and so["spec"]["cooldownPeriod"] == 300
    assert so["spec"]["triggers"][-1] == {
        "type": "external-push",
        "name": "activator",
        "metadata": {"scalerAddress": "modelserve-activator.ops.svc:9091"},
    }


@pytest.mark.parametrize(
    ("autoscaling", "engine"),
    [
        ({"maxReplicas": 3}, "hpa"),
        ({"maxReplicas": 3, "targetCPUUtilization": 50, "targetMemoryUtilization": 70}, "hpa"),
        ({"maxReplicas": 3, "targetRequestsPerSecond": 5}, "keda"),
        ({"maxReplicas": 3, "targetLatency": {"milliseconds": 100}}, "keda"),
        (ZERO, "keda"),
    ],
)
def test_one_engine_at_a_time(autoscaling: dict[str, Any], engine: str) -> None:
    md = make(autoscaling=autoscaling)
    assert (build_hpa(md, SETTINGS) is not None) == (engine == "hpa")
    assert (keda.build_scaled_object(md, SETTINGS) is not None) == (engine == "keda")


def test_a_suspended_scaled_object_is_kept_and_paused_at_zero() -> None:
    running = keda.build_scaled_object(make(autoscaling=ZERO), SETTINGS)
    suspended = keda.build_scaled_object(make(autoscaling=ZERO, suspend=True), SETTINGS)
    assert running is not None and suspended is not None
    assert "annotations" not in running["metadata"]  # resuming removes the annotation (our apply owned it)
    assert suspended["metadata"]["annotations"] == {"autoscaling.keda.sh/paused-replicas": "0"}
    assert suspended["spec"] == running["spec"], "the same triggers and bounds come back on resume"


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), ("5m", 300), ("1h30m", 5400), ("1.5s", 2), ("90s", 90)]
)
def test_duration_seconds(text: str, seconds: int) -> None:
    assert keda.duration_seconds(text) == seconds


def test_without_keda_the_deployment_is_pinned_at_its_minimum_or_one() -> None:
    from modelserve.builders import desired_children

    for autoscaling, expected in ((ZERO, 1), ({**ZERO, "minReplicas": 3}, 3)):
        md = make(autoscaling=autoscaling)
        children = {c.kind: c for c in keda.without_keda(md, desired_children(md, SETTINGS))}
        assert children["ScaledObject"].manifest is None
        assert children["Deployment"].manifest is not None
        assert children["Deployment"].manifest["spec"]["replicas"] == expected


def test_the_activator_slice_joins_the_model_service() -> None:
    md = make(autoscaling=ZERO)
    assert activator_route.wants_activator(md, 0) and not activator_route.wants_activator(md, 1)
    assert not activator_route.wants_activator(make(autoscaling={**ZERO, "minReplicas": 1}), 0)
    slice_ = activator_route.build_activator_slice(md, ["10.0.0.9", "10.0.0.8"])
    assert slice_["metadata"]["name"] == "resnet-activator"
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "resnet"
    assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "modelserve-operator"
    assert slice_["metadata"]["ownerReferences"][0]["uid"] == "u"
    assert [p["name"] for p in slice_["ports"]] == ["grpc", "http"]
    assert [e["addresses"] for e in slice_["endpoints"]] == [["10.0.0.8"], ["10.0.0.9"]]
    ready = {
        "endpoints": [
            {"addresses": ["a"], "conditions": {"ready": True}},
            {"addresses": ["b"], "conditions": {"ready": False}},
        ]
    }
    assert activator_route.ready_addresses([ready]) == ["a"]


def scaled_object(ready: str = "True", message: str = "ScaledObject is defined correctly") -> dict[str, Any]:
    return {
        "status": {
            "conditions": [
                {"type": "Ready", "status": ready, "message": message},
                {"type": "Active", "status": "False", "message": "Scaler is not active"},
            ]
        }
    }


def at_zero(**changes: Any) -> Observed:
    values: dict[str, Any] = {
        "service": service(),
        "deployment": deployment(replicas=0, ready=0, updated=0),
        "scaled_object": scaled_object(),
        "activator_endpoints": 2,
    }
    values.update(changes)
    return Observed(**values)


def test_at_zero_ready_means_the_next_request_is_served() -> None:
    status = compute_status(make(autoscaling=ZERO), at_zero(), None, T0)
    s = summary(status)
    assert s["Ready"] == ("True", Reason.SCALED_TO_ZERO)
    assert s["DeploymentReady"] == ("True", Reason.SCALED_TO_ZERO)
    assert s["Available"] == ("False", Reason.SCALED_TO_ZERO)
    assert s["AutoscalerReady"] == ("True", Reason.CREATED)
    assert "activator" in conditions(status)["Ready"]["message"]


def test_at_zero_without_an_activator_endpoint_is_not_ready() -> None:
    status = compute_status(make(autoscaling=ZERO), at_zero(activator_endpoints=0), None, T0)
    assert summary(status)["Ready"] == ("False", Reason.ACTIVATOR_UNAVAILABLE)


def test_a_wake_that_cannot_schedule_names_the_cause() -> None:
    shortage = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
    obs = at_zero(
        deployment=deployment(replicas=1, ready=0, updated=1), pods=(unschedulable("resnet-x", shortage),)
    )
    status = compute_status(make(autoscaling=ZERO, gpu={"count": 8}), obs, None, T0)
    assert summary(status)["Ready"] == ("False", Reason.INSUFFICIENT_GPU)
    waking = compute_status(
        make(autoscaling=ZERO), at_zero(deployment=deployment(replicas=1, ready=0, updated=1)), None, T0
    )
    assert summary(waking)["Ready"] == ("True", Reason.WAKING)


def test_keda_missing_or_prometheus_unset_are_named() -> None:
    md = make(autoscaling={"maxReplicas": 3, "targetRequestsPerSecond": 5})
    status = compute_status(
        md, Observed(service=service(), deployment=deployment(), keda_installed=False), None, T0
    )
    assert summary(status)["AutoscalerReady"] == ("False", Reason.KEDA_NOT_INSTALLED)
    assert summary(status)["Ready"] == ("False", Reason.KEDA_NOT_INSTALLED)
    assert summary(status)["Available"] == ("True", Reason.READY)
    status = compute_status(
        md, Observed(service=service(), deployment=deployment(), prometheus_configured=False), None, T0
    )
    assert summary(status)["AutoscalerReady"] == ("False", Reason.PROMETHEUS_NOT_CONFIGURED)


def test_keda_failing_and_metrics_unavailable() -> None:
    md = make(autoscaling={"maxReplicas": 3, "targetRequestsPerSecond": 5})
    bad = Observed(
        service=service(), deployment=deployment(), scaled_object=scaled_object("False", "bad trigger")
    )
    assert summary(compute_status(md, bad, None, T0))["AutoscalerReady"] == (
        "False",
        Reason.AUTOSCALER_FAILED,
    )
    keda_hpa = {
        "status": {
            "conditions": [hpa_condition("ScalingActive", "False", "FailedGetExternalMetric", "no metrics")]
        }
    }
    down = Observed(
        service=service(), deployment=deployment(), scaled_object=scaled_object(), keda_hpa=keda_hpa
    )
    s = summary(compute_status(md, down, None, T0))
    assert s["AutoscalerReady"] == ("False", Reason.METRICS_UNAVAILABLE)
    assert s["Ready"] == ("True", Reason.READY)  # still serving: the replicas stay
