"""Rollouts on scarce GPUs, the first replica count under autoscaling, suspend with an HPA, and a
ModelDeployment whose namespace is being deleted: each against the real controller-manager and
scheduler of the local cluster."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kit import Cluster, condition, get_or_none, model_deployment, wait_condition, wait_until
from modelserve import naming

pytestmark = pytest.mark.integration

MODEL = {"storageUri": "gs://models/half_plus_two"}


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def suspend(cluster: Cluster, namespace: str, name: str, value: bool) -> None:
    patch = json.dumps({"spec": {"suspend": value}})
    cluster.kubectl("patch", "mdep", name, "-n", namespace, "--type=merge", "-p", patch)


def live_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"modelserve.dev/deployment={name}")
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]


@pytest.fixture
def three_gpu_node(cluster: Cluster) -> Iterator[str]:
    """A node of its own product with exactly three GPUs, so the test owns every GPU of it."""
    product = f"TEST-GPU-{uuid.uuid4().hex[:6]}"
    name = f"gpu-{product.lower()}"
    gpus = "3"
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "type": "kwok",
                "nvidia.com/gpu.product": product,
            },
        },
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": gpus},
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": gpus},
        },
    }
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=modelserve-tests", "-f", "-", input=json.dumps(node)
    )
    cluster.kubectl("wait", "--for=condition=Ready", f"node/{name}", "--timeout=60s")
    yield product
    cluster.kubectl("delete", "node", name, "--wait=false", check=False)


@pytest.mark.usefixtures("operator")
def test_gpu_rollout_on_a_full_node_completes(cluster: Cluster, namespace: str, three_gpu_node: str) -> None:
    """Three 1-GPU replicas fill the node; a surge pod could never schedule and the rollout would
    hang until the progress deadline. The GPU strategy replaces pods one at a time instead."""
    spec = {"model": MODEL, "replicas": 3, "gpu": {"count": 1, "product": three_gpu_node}}
    apply(cluster, namespace, model_deployment("full", spec))
    wait_condition(cluster, namespace, "full", "Ready", "True", timeout=90)

    spec["serving"] = {"env": [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"}]}
    apply(cluster, namespace, model_deployment("full", spec))
    md = wait_condition(cluster, namespace, "full", "Ready", "True", timeout=120)
    assert md["status"]["updatedReplicas"] == 3 and md["status"]["readyReplicas"] == 3
    live = live_pods(cluster, namespace, "full")
    assert len(live) == 3
    for pod in live:
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env") or []}
        assert env.get("TF_CPP_MIN_LOG_LEVEL") == "2", "a pod of the old template is still running"


@pytest.mark.usefixtures("operator")
def test_a_gpu_rollout_that_cannot_proceed_is_reported_in_seconds(
    cluster: Cluster, namespace: str, three_gpu_node: str
) -> None:
    """Two GPUs per pod on a node of three, two of them held by the old replicas: the replacement
    pod can never be placed. That is InsufficientGPU at once, not RollingOut until the one-hour
    progress deadline, while the remaining old replica keeps serving."""
    spec: dict[str, Any] = {"model": MODEL, "replicas": 2, "gpu": {"count": 1, "product": three_gpu_node}}
    apply(cluster, namespace, model_deployment("stuck", spec))
    wait_condition(cluster, namespace, "stuck", "Ready", "True", timeout=90)
    spec["gpu"] = {**spec["gpu"], "count": 2}
    apply(cluster, namespace, model_deployment("stuck", spec))
    md = wait_condition(cluster, namespace, "stuck", "Ready", "False", reason="InsufficientGPU", timeout=60)
    assert "nvidia.com/gpu" in (condition(md, "Ready") or {})["message"]
    assert (condition(md, "Available") or {}).get("status") == "True"


def _watch(
    kube_api: Any, namespace: str, kind: str, name: str, stop: threading.Event
) -> list[dict[str, Any]]:
    """Every version of one ModelDeployment or Deployment, as the watch delivers them (in a thread)."""
    from kubernetes import client, watch

    from modelserve import api

    seen: list[dict[str, Any]] = []
    if kind == "Deployment":
        apps = client.AppsV1Api(kube_api)
        lister, args = apps.list_namespaced_deployment, (namespace,)
    else:
        lister = client.CustomObjectsApi(kube_api).list_namespaced_custom_object
        args = (api.GROUP, api.VERSION, namespace, api.PLURAL)

    def run() -> None:
        while not stop.is_set():
            w = watch.Watch()
            for event in w.stream(lister, *args, field_selector=f"metadata.name={name}", timeout_seconds=5):
                obj = event["object"]
                seen.append(obj if isinstance(obj, dict) else kube_api.sanitize_for_serialization(obj))
                if stop.is_set():
                    w.stop()

    threading.Thread(target=run, daemon=True).start()
    return seen


@pytest.mark.usefixtures("operator")
def test_autoscaled_deployment_starts_at_min_replicas_and_is_ready_only_there(
    cluster: Cluster, namespace: str, kube_api: Any
) -> None:
    stop = threading.Event()
    versions = _watch(kube_api, namespace, "ModelDeployment", "floor", stop)
    deployments = _watch(kube_api, namespace, "Deployment", "floor", stop)
    spec = {"model": MODEL, "autoscaling": {"minReplicas": 3, "maxReplicas": 5}}
    apply(cluster, namespace, model_deployment("floor", spec))
    wait_until(
        lambda: (
            (md := get_or_none(cluster, namespace, "mdep", "floor")) is not None
            and (md.get("status") or {}).get("readyReplicas") == 3
            and (condition(md, "Ready") or {}).get("status") == "True"
        ),
        timeout=90,
        what="floor: Ready with 3 replicas",
    )
    wait_until(
        lambda: any((v.get("status") or {}).get("readyReplicas") == 3 for v in versions),
        timeout=30,
        what="the watch",
    )
    statuses = [dict(v.get("status") or {}) for v in versions]

    ready = [(condition({"status": s}, "Ready") or {}).get("status") for s in statuses]
    low = [s.get("readyReplicas") for s, r in zip(statuses, ready, strict=True) if r == "True"]
    assert all(n is not None and n >= 3 for n in low), f"Ready=True with {low} ready replicas"
    # True once, never False again afterwards (no True -> RollingOut -> True).
    first_true = ready.index("True")
    assert all(r == "True" for r in ready[first_true:]), ready

    # The first ReplicaSet was scaled straight to the minimum, not to 1 and then up by the HPA.
    events = cluster.kubectl_json(
        "get", "events", "-n", namespace, "--field-selector", "involvedObject.kind=Deployment"
    )
    scaled = [e["message"] for e in events["items"] if e["reason"] == "ScalingReplicaSet"]
    assert any("from 0 to 3" in m for m in scaled), scaled
    assert not any(m.endswith(" to 1") for m in scaled), scaled

    # A later apply (a spec change rolls the pods) leaves the count alone: the operator's own field
    # manager gives spec.replicas up, and it never drops to 1 on the way.
    spec["serving"] = {"env": [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"}]}
    apply(cluster, namespace, model_deployment("floor", spec))
    md = wait_condition(cluster, namespace, "floor", "Ready", "True", timeout=90)
    assert md["status"]["readyReplicas"] == 3 and md["status"]["updatedReplicas"] == 3
    dep = cluster.kubectl_json("get", "deployment", "floor", "-n", namespace, "--show-managed-fields")
    assert dep["spec"]["replicas"] == 3
    owners = [
        entry["manager"]
        for entry in dep["metadata"]["managedFields"]
        if "f:replicas" in entry.get("fieldsV1", {}).get("f:spec", {})
    ]
    assert owners and naming.FIELD_MANAGER not in owners, owners
    stop.set()
    counts = [d["spec"].get("replicas") for d in deployments]
    assert counts and min(counts) == 3, f"the Deployment's count went {counts}"


@pytest.mark.usefixtures("operator")
def test_suspend_keeps_the_hpa_and_the_controller_stops_scaling(cluster: Cluster, namespace: str) -> None:
    spec: dict[str, Any] = {"model": MODEL, "autoscaling": {"minReplicas": 2, "maxReplicas": 4}}
    apply(cluster, namespace, model_deployment("nap", spec))
    wait_condition(cluster, namespace, "nap", "Ready", "True", timeout=90)
    hpa = get_or_none(cluster, namespace, "hpa", "nap")
    assert hpa is not None
    uid = hpa["metadata"]["uid"]

    cluster.kubectl(
        "patch", "mdep", "nap", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    md = wait_condition(cluster, namespace, "nap", "Suspended", "True", timeout=60)
    assert (condition(md, "AutoscalerReady") or {}).get("reason") == "Suspended"

    def scaling_disabled() -> bool:
        live = get_or_none(cluster, namespace, "hpa", "nap")
        assert live is not None, "the HPA was deleted while suspended"
        assert live["metadata"]["uid"] == uid
        active = condition(live, "ScalingActive") or {}
        return active.get("status") == "False" and active.get("reason") == "ScalingDisabled"

    # The HPA controller has synced against the Deployment at zero and left it there.
    wait_until(scaling_disabled, timeout=60, what="the HPA controller to disable scaling at zero replicas")
    assert cluster.kubectl_json("get", "deployment", "nap", "-n", namespace)["spec"]["replicas"] == 0
    wait_until(
        lambda: (
            not [
                p
                for p in cluster.kubectl_json(
                    "get", "pods", "-n", namespace, "-l", "modelserve.dev/deployment=nap"
                )["items"]
                if not p["metadata"].get("deletionTimestamp")
            ]
        ),
        timeout=30,
        what="the pods to go",
    )

    cluster.kubectl(
        "patch", "mdep", "nap", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    md = wait_condition(cluster, namespace, "nap", "Ready", "True", timeout=90)
    assert md["status"]["readyReplicas"] == 2
    resumed = get_or_none(cluster, namespace, "hpa", "nap")
    assert resumed is not None and resumed["metadata"]["uid"] == uid


def _counter(name: str, **labels: str) -> float:
    from modelserve import metrics

    return sum(
        sample.value
        for family in metrics.REGISTRY.collect()
        if family.name == name
        for sample in family.samples
        if sample.name == f"{name}_total" and all(sample.labels.get(k) == v for k, v in labels.items())
    )


@pytest.mark.usefixtures("operator")
def test_a_namespace_being_deleted_is_left_alone(
    cluster: Cluster, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The namespace controller deletes the children while a finalizer (Argo CD's, say) holds the
    ModelDeployment; re-creating them is refused ("forbidden ... because it is being terminated"),
    and retrying that was a warning every few seconds until the namespace was gone."""
    hold = "example.com/hold"
    apply(cluster, namespace, model_deployment("held", {"model": MODEL, "replicas": 1}))
    apply(cluster, namespace, model_deployment("free", {"model": MODEL, "replicas": 1}))
    for name in ("held", "free"):
        wait_condition(cluster, namespace, name, "Ready", "True", timeout=90)
    cluster.kubectl(
        "patch",
        "mdep",
        "held",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"metadata": {"finalizers": [hold]}}),
    )
    errors = _counter("modelserve_reconciles", result="error")
    applies = _counter("modelserve_api_requests", verb="apply")
    caplog.clear()

    cluster.kubectl("delete", "namespace", namespace, "--wait=false")
    wait_until(
        lambda: (
            get_or_none(cluster, namespace, "deployment", "held") is None
            and get_or_none(cluster, namespace, "mdep", "free") is None
        ),
        timeout=60,
        what="the namespace controller to delete the children",
    )
    # Events on the held ModelDeployment (updates are still allowed) wake the operator again.
    for i in range(3):
        cluster.kubectl("annotate", "mdep", "held", "-n", namespace, f"example.com/poke={i}", "--overwrite")
    cluster.kubectl(
        "patch", "mdep", "held", "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    wait_until(
        lambda: cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0,
        timeout=120,
        what=f"namespace {namespace} to be gone",
    )
    terminated = [r.getMessage() for r in caplog.records if "being terminated" in r.getMessage()]
    assert _counter("modelserve_reconciles", result="error") == errors, terminated[:3]
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")], terminated[:3]
    assert _counter("modelserve_api_requests", verb="apply") - applies <= 2


@pytest.mark.usefixtures("operator")
def test_an_autoscaler_the_api_server_refuses_leaves_no_unmanaged_workload(
    cluster: Cluster, namespace: str
) -> None:
    """autoscaling.metrics is passed through; the HPA's apply refuses an unknown metric type. Then no
    Deployment may run without its autoscaler: a new ModelDeployment gets none, a running one keeps
    its last accepted spec (Deployment and HPA untouched)."""
    bad = {
        "model": MODEL,
        "autoscaling": {"minReplicas": 2, "maxReplicas": 4, "metrics": [{"type": "Bogus"}]},
    }
    apply(cluster, namespace, model_deployment("fresh", bad))
    md = wait_condition(cluster, namespace, "fresh", "Ready", "False", reason="InvalidSpec", timeout=60)
    assert "HorizontalPodAutoscaler fresh was refused" in (condition(md, "Ready") or {})["message"]
    assert get_or_none(cluster, namespace, "deployment", "fresh") is None
    assert get_or_none(cluster, namespace, "hpa", "fresh") is None
    assert not live_pods(cluster, namespace, "fresh")

    good: dict[str, Any] = {"model": MODEL, "autoscaling": {"minReplicas": 2, "maxReplicas": 4}}
    apply(cluster, namespace, model_deployment("running", good))
    wait_condition(cluster, namespace, "running", "Ready", "True", timeout=90)
    before = {kind: get_or_none(cluster, namespace, kind, "running") for kind in ("deployment", "hpa")}
    apply(cluster, namespace, model_deployment("running", {**good, "autoscaling": bad["autoscaling"]}))
    wait_condition(cluster, namespace, "running", "Ready", "False", reason="InvalidSpec", timeout=60)
    for kind, old in before.items():
        now = get_or_none(cluster, namespace, kind, "running")
        assert old is not None and now is not None
        assert now["metadata"]["uid"] == old["metadata"]["uid"]
        assert now["metadata"].get("generation") == old["metadata"].get("generation"), f"the {kind} changed"
    assert len(live_pods(cluster, namespace, "running")) == 2
