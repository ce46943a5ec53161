"""Restart without writes, specs that only fail at child apply, the examples, metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kit import REPO, Cluster, get_or_none, model_deployment, wait_condition, wait_event, wait_until

pytestmark = pytest.mark.integration

MODEL = {"storageUri": "gs://models/half_plus_two"}
CHILDREN = (("configmap", "{}-tfserving"), ("service", "{}"), ("deployment", "{}"), ("hpa", "{}"))


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def reconciles_of(result: str) -> float:
    from modelserve import metrics

    return sum(
        sample.value
        for family in metrics.REGISTRY.collect()
        if family.name == "modelserve_reconciles"
        for sample in family.samples
        if sample.name == "modelserve_reconciles_total" and sample.labels["result"] == result
    )


def api_requests(verb: str, resource: str) -> float:
    """modelserve_api_requests_total of the in-process operator, summed over response codes."""
    from modelserve import metrics

    return sum(
        sample.value
        for family in metrics.REGISTRY.collect()
        if family.name == "modelserve_api_requests"
        for sample in family.samples
        if sample.name == "modelserve_api_requests_total"
        and (sample.labels["verb"], sample.labels["resource"]) == (verb, resource)
    )


def writes() -> float:
    """Every request of the in-process operator that can change an object (its Lease aside)."""
    from modelserve import metrics

    return sum(
        sample.value
        for family in metrics.REGISTRY.collect()
        if family.name == "modelserve_api_requests"
        for sample in family.samples
        if sample.name == "modelserve_api_requests_total"
        and sample.labels["verb"] not in ("get", "list", "watch")
        and sample.labels["resource"] != "leases"
    )


def get_or_none_with_managed_fields(
    cluster: Cluster, namespace: str, kind: str, name: str
) -> dict[str, Any] | None:
    proc = cluster.kubectl(
        "get", kind, name, "-n", namespace, "-o", "json", "--show-managed-fields", check=False
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def test_restart_with_existing_model_deployments_modifies_no_child(
    cluster: Cluster, namespace: str, operator_env: Cluster
) -> None:
    from kopf.testing import KopfRunner

    args = ["run", "--standalone", "--namespace", namespace, "-m", "modelserve.handlers"]
    names = ["alpha", "beta"]
    with KopfRunner(args, timeout=60):
        apply(cluster, namespace, model_deployment("alpha", {"model": MODEL, "replicas": 2}))
        autoscaling = {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 80}
        spec = {"model": MODEL, "autoscaling": autoscaling, "gpu": {"count": 1}}
        apply(cluster, namespace, model_deployment("beta", spec))
        for name in names:
            wait_condition(cluster, namespace, name, "Ready", "True", timeout=90)

    def versions() -> dict[str, object]:
        # A child's resourceVersion also moves when its own controller writes its status (the HPA
        # controller does so whenever metrics-server reports new usage), so children are compared
        # by generation and by what our field managers wrote; only we write the ModelDeployment.
        found: dict[str, object] = {}
        for name in names:
            for kind, pattern in CHILDREN:
                obj = get_or_none_with_managed_fields(cluster, namespace, kind, pattern.format(name))
                if obj is not None:
                    meta = obj["metadata"]
                    ours = sorted(
                        (str(m.get("manager")), str(m.get("operation")), str(m.get("time")))
                        for m in meta.get("managedFields") or []
                        if str(m.get("manager", "")).startswith("modelserve-operator")
                    )
                    found[f"{kind}/{meta['name']}"] = (meta.get("generation"), ours)
            md = get_or_none(cluster, namespace, "modeldeployment", name)
            assert md is not None
            found[f"mdep/{name}"] = md["metadata"]["resourceVersion"]
        return found

    before = versions()
    assert "hpa/beta" in before and "hpa/alpha" not in before
    ready_before = reconciles_of("ready")
    applies_before = api_requests("apply", "deployments")
    writes_before = writes()
    with KopfRunner(args, timeout=60) as runner:
        # Each existing ModelDeployment is reconciled once more on start-up (kopf lists them).
        wait_until(
            lambda: reconciles_of("ready") >= ready_before + len(names),
            timeout=60,
            what="start-up reconciles",
        )
    assert runner.exception is None
    assert versions() == before, "a restart modified a child or a status"
    assert api_requests("apply", "deployments") == applies_before
    assert writes() == writes_before, "the restarted operator wrote to the API server"


@pytest.mark.usefixtures("operator")
def test_spec_refused_only_at_child_apply_reports_invalid_spec(cluster: Cluster, namespace: str) -> None:
    # Passes the CRD (affinity is passed through) but the API server refuses it in the Deployment.
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
    spec = {"model": MODEL, "scheduling": {"affinity": affinity}}
    apply(cluster, namespace, model_deployment("odd", spec))
    md = wait_condition(cluster, namespace, "odd", "Ready", "False", reason="InvalidSpec", timeout=60)
    ready = next(c for c in md["status"]["conditions"] if c["type"] == "Ready")
    assert "Deployment odd was refused" in ready["message"] and "nodeSelectorTerms" in ready["message"]
    event = wait_event(cluster, namespace, "odd", "InvalidSpec", type_="Warning")
    assert "Deployment odd was refused" in event["message"]

    # Fixing the spec recovers without any restart.
    cluster.kubectl(
        "patch",
        "mdep",
        "odd",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/spec/scheduling"}]',
    )
    wait_condition(cluster, namespace, "odd", "Ready", "True", timeout=90)


def _examples() -> list[Path]:
    return sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize("path", _examples(), ids=lambda p: p.stem)
def test_example_becomes_ready(cluster: Cluster, namespace: str, path: Path) -> None:
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "model-store-credentials",
        "-n",
        namespace,
        "--from-literal=AWS_ACCESS_KEY_ID=test",
        "--from-literal=AWS_SECRET_ACCESS_KEY=test",
    )
    manifest = yaml.safe_load(path.read_text())
    cache = manifest["spec"]["model"].get("cache")
    if cache and cache.get("storageClassName"):
        # No provisioner on the local cluster: a static volume of the example's class, per namespace.
        claim = {"namespace": namespace, "name": f"{manifest['metadata']['name']}-model-cache"}
        volume = {
            "capacity": {"storage": "2Gi"},
            "accessModes": ["ReadWriteMany"],
            "storageClassName": cache["storageClassName"],
            "claimRef": claim,
            "hostPath": {"path": f"/tmp/modelserve-example-{namespace}", "type": "DirectoryOrCreate"},
        }
        pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"example-{namespace}"}}
        cluster.kubectl("apply", "-f", "-", input=json.dumps({**pv, "spec": volume}))
    cluster.kubectl("apply", "-n", namespace, "-f", str(path))
    name = manifest["metadata"]["name"]
    wait_condition(cluster, namespace, name, "Ready", "True", timeout=120)
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"modelserve.dev/deployment={name}")[
        "items"
    ]
    assert pods, "no serving pod was admitted under the restricted Pod Security Standard"
    product = (manifest["spec"].get("gpu") or {}).get("product")
    for pod in pods:
        node = cluster.kubectl_json("get", "node", pod["spec"]["nodeName"])
        assert node["metadata"]["labels"].get("nvidia.com/gpu.product") == product


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_and_health_endpoints_move_with_a_reconcile(
    cluster: Cluster, namespace: str, operator_env: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kopf.testing import KopfRunner

    metrics_port, health_port = _free_port(), _free_port()
    monkeypatch.setenv("MODELSERVE_METRICS_PORT", str(metrics_port))
    monkeypatch.setenv("MODELSERVE_HEALTH_PORT", str(health_port))
    args = ["run", "--standalone", "--namespace", namespace, "-m", "modelserve.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_until(lambda: _scrape(url)[0] == 200, timeout=30, what="the metrics endpoint")
        before = _scrape(url)[1]
        apply(cluster, namespace, model_deployment("counted", {"model": MODEL}))
        wait_condition(cluster, namespace, "counted", "Ready", "True", timeout=90)
        after = wait_until(
            lambda: (
                (text := _scrape(url)[1])
                and _sample(text, "modelserve_reconciles_total", reason="Ready", result="ready")
                > _sample(before, "modelserve_reconciles_total", reason="Ready", result="ready")
                and text
            ),
            timeout=30,
            what="a ready reconcile in /metrics",
        )
        health = _scrape(f"http://127.0.0.1:{health_port}/healthz")
        ready = _scrape(f"http://127.0.0.1:{health_port}/readyz")
    assert runner.exception is None
    # The first apply of the Deployment creates it: 201 Created.
    assert (
        _sample(after, "modelserve_api_requests_total", code="201", resource="deployments", verb="apply")
        >= _sample(before, "modelserve_api_requests_total", code="201", resource="deployments", verb="apply")
        + 1
    )
    # The operator's own process metrics (a custom registry has none unless registered).
    assert _sample(after, "process_resident_memory_bytes") > 0
    assert _sample(after, "process_cpu_seconds_total") > 0
    assert _sample(after, "modelserve_reconcile_duration_seconds_count") > _sample(
        before, "modelserve_reconcile_duration_seconds_count"
    )
    assert _sample(after, "modelserve_modeldeployments", ready="True") >= 1
    assert "modelserve_queue_depth" in after
    assert "modelserve_events_dropped_total 0.0" in after.splitlines()
    assert "modelserve_leader 1.0" in after.splitlines()  # alone, it took the Lease at once
    assert _sample(after, "modelserve_tracked_objects", store="records") >= 1
    assert health == (200, '{"ok": true, "problem": null, "role": "leader"}')
    assert ready == (200, '{"ok": true, "problem": null, "role": "leader"}')
