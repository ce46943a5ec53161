"""GPU placement, scheduling failures, the optional ServiceMonitor CRD, scale and suspend."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kit import (
    Cluster,
    cache_root,
    get_or_none,
    model_deployment,
    pinned_versions,
    wait_condition,
    wait_until,
)

pytestmark = pytest.mark.integration

MODEL = {"storageUri": "gs://models/half_plus_two"}
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


@pytest.mark.usefixtures("operator")
def test_gpu_pods_land_only_on_nodes_of_the_requested_product(cluster: Cluster, namespace: str) -> None:
    product = "NVIDIA-H100-80GB-HBM3"
    spec = {"model": MODEL, "replicas": 2, "gpu": {"count": 1, "product": product}}
    apply(cluster, namespace, model_deployment("h100", spec))
    md = wait_condition(cluster, namespace, "h100", "Ready", "True", timeout=90)
    assert md["status"]["gpu"] == f"1x {product}"

    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "modelserve.dev/deployment=h100")[
        "items"
    ]
    running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 2
    for pod in running:
        node = cluster.kubectl_json("get", "node", pod["spec"]["nodeName"])
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == product
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1"


@pytest.mark.usefixtures("operator")
def test_more_gpus_than_any_node_has_reports_insufficient_gpu(cluster: Cluster, namespace: str) -> None:
    spec = {"model": MODEL, "gpu": {"count": 8, "product": "NVIDIA-A100-SXM4-80GB"}}
    apply(cluster, namespace, model_deployment("greedy", spec))
    md = wait_condition(cluster, namespace, "greedy", "Ready", "False", reason="InsufficientGPU", timeout=90)
    ready = next(c for c in md["status"]["conditions"] if c["type"] == "Ready")
    assert "nvidia.com/gpu" in ready["message"]
    events = cluster.kubectl_json(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=greedy"
    )
    assert any(e["type"] == "Warning" and e["reason"] == "InsufficientGPU" for e in events["items"])


@pytest.mark.usefixtures("operator")
def test_nodes_without_the_label_are_unschedulable(cluster: Cluster, namespace: str) -> None:
    spec = {"model": MODEL, "scheduling": {"nodeSelector": {"topology.kubernetes.io/zone": "nowhere"}}}
    apply(cluster, namespace, model_deployment("lost", spec))
    wait_condition(cluster, namespace, "lost", "Ready", "False", reason="Unschedulable", timeout=90)


def _service_monitor_crd_file() -> str:
    cache = cache_root()
    version = pinned_versions()["PROMETHEUS_OPERATOR_VERSION"]
    return f"{cache}/crds/prometheus-operator-{version}/monitoring.coreos.com_servicemonitors.yaml"


def test_service_monitor_waits_for_its_crd_then_appears(
    cluster: Cluster, namespace: str, operator_env: Cluster
) -> None:
    from kopf.testing import KopfRunner

    cluster.kubectl(
        "delete", "crd", SERVICE_MONITOR_CRD, "--ignore-not-found", "--wait=true", "--timeout=60s"
    )
    args = ["run", "--standalone", "--namespace", namespace, "-m", "modelserve.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        spec = {
            "model": MODEL,
            "monitoring": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}},
        }
        apply(cluster, namespace, model_deployment("watched", spec))
        md = wait_condition(
            cluster, namespace, "watched", "MonitoringReady", "False", reason="CRDNotInstalled", timeout=90
        )
        wait_condition(cluster, namespace, "watched", "Ready", "True", timeout=60)
        assert md["status"]

        # The real CRD published by the Prometheus Operator project; no operator restart.
        cluster.kubectl("apply", "--server-side", "-f", _service_monitor_crd_file())
        wait_condition(cluster, namespace, "watched", "MonitoringReady", "True", timeout=90)
        monitor = wait_until(
            lambda: get_or_none(cluster, namespace, "servicemonitors.monitoring.coreos.com", "watched"),
            timeout=30,
            what="the ServiceMonitor",
        )
    assert runner.exception is None, runner.output
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == "http" and endpoint["path"] == "/monitoring/prometheus/metrics"
    assert endpoint["interval"] == "15s"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"] == {"matchLabels": {"modelserve.dev/deployment": "watched"}}


@pytest.mark.usefixtures("operator")
def test_scale_subresource_and_suspend_round_trip(cluster: Cluster, namespace: str) -> None:
    apply(cluster, namespace, model_deployment("elastic", {"model": MODEL, "replicas": 1}))
    wait_condition(cluster, namespace, "elastic", "Ready", "True", timeout=90)

    cluster.kubectl("scale", "mdep", "elastic", "-n", namespace, "--replicas=3")
    md = wait_condition(cluster, namespace, "elastic", "Ready", "True", timeout=60)
    assert md["spec"]["replicas"] == 3
    assert cluster.kubectl_json("get", "deployment", "elastic", "-n", namespace)["spec"]["replicas"] == 3
    scale = json.loads(
        cluster.kubectl(
            "get",
            "--raw",
            f"/apis/modelserve.dev/v1alpha1/namespaces/{namespace}/modeldeployments/elastic/scale",
        ).stdout
    )
    assert scale["spec"]["replicas"] == 3 and scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == "modelserve.dev/deployment=elastic"

    uids = {
        kind: cluster.kubectl_json("get", kind, name, "-n", namespace)["metadata"]["uid"]
        for kind, name in (
            ("deployment", "elastic"),
            ("service", "elastic"),
            ("configmap", "elastic-tfserving"),
        )
    }
    cluster.kubectl(
        "patch", "mdep", "elastic", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    md = wait_condition(cluster, namespace, "elastic", "Suspended", "True", timeout=60)
    assert next(c for c in md["status"]["conditions"] if c["type"] == "Ready")["reason"] == "Suspended"
    wait_until(
        lambda: (
            cluster.kubectl_json("get", "deployment", "elastic", "-n", namespace)["spec"]["replicas"] == 0
        ),
        timeout=30,
        what="the Deployment to scale to zero",
    )
    for kind, name in (("deployment", "elastic"), ("service", "elastic"), ("configmap", "elastic-tfserving")):
        assert cluster.kubectl_json("get", kind, name, "-n", namespace)["metadata"]["uid"] == uids[kind]

    cluster.kubectl(
        "patch", "mdep", "elastic", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    md = wait_condition(cluster, namespace, "elastic", "Ready", "True", timeout=60)
    assert md["status"]["readyReplicas"] == 3
