"""Canary rollouts on the local cluster, gated by a real Prometheus (docs/rollouts.md).

The serving pods are kwok pods and serve nothing, so the canary's metrics come from a stand-in for
TF Serving's metrics endpoint (tests/tfserving_exporter.py) labelled like a scraped canary pod
(`namespace`, `pod=<name>-canary-...`); the test sets its request rate, error ratio and latency.
Everything else is real: the API server refuses bad rollouts, the scheduler places the pods on the
fake GPU nodes, the Deployment controller rolls them, Prometheus answers the analysis.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kit import Cluster, condition, get_or_none, model_deployment, wait_condition, wait_event, wait_until
from prometheus_kit import Exporter, Prometheus, free_port

pytestmark = pytest.mark.integration

A100 = "NVIDIA-A100-SXM4-80GB"  # the fake fleet has one A100 node with 4 GPUs


@pytest.fixture
def rollout_operator(
    operator_env: Cluster, namespace: str, prometheus: Prometheus, monkeypatch: pytest.MonkeyPatch
) -> Iterator[object]:
    from kopf.testing import KopfRunner

    monkeypatch.setenv("MODELSERVE_PROMETHEUS_URL", prometheus.url)
    args = ["run", "--standalone", "--namespace", namespace, "-m", "modelserve.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output


def spec(versions: list[int], *, replicas: int = 4, **rollout: Any) -> dict[str, Any]:
    analysis = {"minRequestCount": 20, "maxErrorRatio": 0.05, "maxP99LatencyMs": 500}
    analysis.update(rollout.pop("analysis", {}))
    return {
        "model": {"storageUri": "gs://models/resnet", "versionPolicy": {"specific": {"versions": versions}}},
        "replicas": replicas,
        "gpu": {"count": 1, "product": A100},
        "rollout": {"steps": [25, 50, 100], "stepDuration": "4s", "analysis": analysis, **rollout},
    }


def apply(cluster: Cluster, namespace: str, name: str, body: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(model_deployment(name, body)))


def rollout_status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    md = get_or_none(cluster, namespace, "modeldeployment", name) or {}
    return dict((md.get("status") or {}).get("rollout") or {})


def wait_phase(
    cluster: Cluster, namespace: str, name: str, phase: str, *, timeout: float = 120, **fields: Any
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        st = rollout_status(cluster, namespace, name)
        ok = st.get("phase") == phase and all(st.get(k) == v for k, v in fields.items())
        return st if ok else None

    return wait_until(
        probe,
        timeout=timeout,
        what=f"{name}: rollout {phase} {fields}",
        describe=lambda: json.dumps(rollout_status(cluster, namespace, name), indent=1),
    )


class PodWatch:
    """Polls the namespace in a thread: how many pods hold a GPU at once, any that waited for one,
    and the (stable, canary) replica counts the Deployments went through."""

    def __init__(self, cluster: Cluster, namespace: str, name: str) -> None:
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self.max_live = 0
        self.pending_for_gpu: list[str] = []
        self.splits: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            proc = self.cluster.kubectl("get", "pods", "-n", self.namespace, "-o", "json", check=False)
            if proc.returncode == 0:
                pods = json.loads(proc.stdout)["items"]
                live = [p for p in pods if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
                self.max_live = max(self.max_live, len(live))
                for pod in pods:
                    for cond in pod.get("status", {}).get("conditions") or []:
                        if cond.get("type") == "PodScheduled" and "nvidia.com/gpu" in (
                            cond.get("message") or ""
                        ):
                            self.pending_for_gpu.append(f"{pod['metadata']['name']}: {cond.get('message')}")
            proc = self.cluster.kubectl("get", "deployments", "-n", self.namespace, "-o", "json", check=False)
            if proc.returncode == 0:
                replicas = {
                    d["metadata"]["name"]: d["spec"].get("replicas", 0)
                    for d in json.loads(proc.stdout)["items"]
                }
                split = (replicas.get(self.name, 0), replicas.get(f"{self.name}-canary", 0))
                if not self.splits or self.splits[-1] != split:
                    self.splits.append(split)
            self._stop.wait(0.2)

    def __enter__(self) -> PodWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def canary_exporter(
    exporters: Callable[..., Exporter], namespace: str, name: str, **traffic: float
) -> Exporter:
    # One stand-in for the canary's pods: the analysis selects pod=~"<name>-canary-.+".
    return exporters(model=name, namespace=namespace, pod=f"{name}-canary-standin", **traffic)


def deployment(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    return get_or_none(cluster, namespace, "deployment", name)


def config_versions(cluster: Cluster, namespace: str, name: str) -> str:
    cm = get_or_none(cluster, namespace, "configmap", name) or {}
    return "\n".join((cm.get("data") or {}).values())


@pytest.mark.usefixtures("rollout_operator")
def test_a_good_canary_is_promoted_through_every_step_without_a_spare_gpu(
    cluster: Cluster, namespace: str, exporters: Callable[..., Exporter]
) -> None:
    apply(cluster, namespace, "resnet", spec([1]))
    wait_condition(cluster, namespace, "resnet", "Ready", "True", timeout=120)
    first = wait_phase(cluster, namespace, "resnet", "Stable")
    canary_exporter(exporters, namespace, "resnet", rps=30, error_ratio=0.0, latency_ms=20)

    with PodWatch(cluster, namespace, "resnet") as watch:
        apply(cluster, namespace, "resnet", spec([2]))
        done = wait_until(
            lambda: (
                (st := rollout_status(cluster, namespace, "resnet")).get("phase") == "Stable"
                and st.get("stableRevision") != first["stableRevision"]
                and st
            ),
            timeout=180,
            what="the canary promoted",
            describe=lambda: json.dumps(rollout_status(cluster, namespace, "resnet"), indent=1),
        )
        wait_until(
            lambda: deployment(cluster, namespace, "resnet-canary") is None,
            timeout=60,
            what="the canary Deployment to go",
        )
        md = wait_condition(cluster, namespace, "resnet", "Ready", "True", timeout=120)

    assert done["stableRevision"] != first["stableRevision"]
    # 25/50/100 of 4 replicas, the stable shrinking first: (3, 1), (2, 2), (0, 4), then handed back.
    steps = [s for s in watch.splits if s in ((3, 1), (2, 2), (0, 4))]
    assert steps[:1] == [(3, 1)] and (2, 2) in steps and steps.index((2, 2)) < steps.index((0, 4)), (
        watch.splits
    )
    assert watch.splits[-1] == (4, 0), watch.splits
    assert watch.pending_for_gpu == [], "a pod waited for a GPU"
    assert watch.max_live <= 4, f"{watch.max_live} pods at once on 4 GPUs"
    assert md["status"]["readyReplicas"] == 4
    assert condition(md, "RolloutProgressing")["status"] == "False"  # type: ignore[index]
    assert "versions: 2" in config_versions(cluster, namespace, "resnet-tfserving")
    assert done["analysis"]["verdict"] == "Pass"
    for reason in ("RolloutStarted", "RolloutStep", "RolloutStepPassed", "Promoting", "Promoted"):
        wait_event(cluster, namespace, "resnet", reason)


@pytest.mark.usefixtures("rollout_operator")
def test_a_canary_failing_at_step_two_is_rolled_back_within_one_window(
    cluster: Cluster, namespace: str, exporters: Callable[..., Exporter]
) -> None:
    body = spec([1], stepDuration="30s")
    apply(cluster, namespace, "resnet", body)
    wait_phase(cluster, namespace, "resnet", "Stable", timeout=120)
    pod = canary_exporter(exporters, namespace, "resnet", rps=30, error_ratio=0.0, latency_ms=20)
    apply(cluster, namespace, "resnet", spec([2], stepDuration="30s"))
    wait_until(
        lambda: (
            rollout_status(cluster, namespace, "resnet").get("step") == 2
            and rollout_status(cluster, namespace, "resnet").get("stepReadyAt")
        ),
        timeout=150,
        what="step 2's window to open",
    )
    pod.set(error_ratio=0.2)
    bad_since = time.monotonic()
    rolled = wait_phase(cluster, namespace, "resnet", "RolledBack", timeout=60)
    took = time.monotonic() - bad_since
    assert took < 30, f"rolled back {took:.0f}s after the errors began; the window is 30s"
    assert rolled["reason"] == "AnalysisFailed" and "errorRatio" in rolled["message"]
    md = wait_condition(cluster, namespace, "resnet", "RolledBack", "True", reason="AnalysisFailed")
    assert "errorRatio" in condition(md, "RolledBack")["message"]  # type: ignore[index]
    wait_until(
        lambda: deployment(cluster, namespace, "resnet-canary") is None, timeout=60, what="canary gone"
    )
    wait_until(
        lambda: (
            (d := deployment(cluster, namespace, "resnet")) is not None
            and d["spec"]["replicas"] == 4
            and d.get("status", {}).get("readyReplicas") == 4
        ),
        timeout=90,
        what="the stable back at 4 ready replicas",
    )
    # The spec is never touched: it still asks for version 2; the stable still serves version 1.
    live = get_or_none(cluster, namespace, "modeldeployment", "resnet") or {}
    assert live["spec"]["model"]["versionPolicy"] == {"specific": {"versions": [2]}}
    assert rolled["stableSpec"]["model"]["versionPolicy"] == {"specific": {"versions": [1]}}
    wait_event(cluster, namespace, "resnet", "RolledBack", type_="Warning")


@pytest.mark.usefixtures("rollout_operator")
def test_a_silent_canary_is_not_promoted_and_rolls_back_at_the_deadline(
    cluster: Cluster, namespace: str, exporters: Callable[..., Exporter]
) -> None:
    apply(cluster, namespace, "quiet", spec([1], progressDeadlineSeconds=20))
    wait_phase(cluster, namespace, "quiet", "Stable", timeout=120)
    canary_exporter(exporters, namespace, "quiet", rps=0)  # scraped, but nobody calls the canary
    apply(cluster, namespace, "quiet", spec([2], progressDeadlineSeconds=20))
    seen: set[str] = set()

    def rolled_back() -> dict[str, Any] | None:
        st = rollout_status(cluster, namespace, "quiet")
        seen.add(str(st.get("phase")))
        return st if st.get("phase") == "RolledBack" else None

    rolled = wait_until(rolled_back, timeout=120, what="the deadline rollback")
    assert "Promoting" not in seen
    assert rolled["reason"] == "ProgressDeadlineExceeded"
    assert "never promoted" in rolled["message"] or "requests" in rolled["message"]


@pytest.mark.usefixtures("rollout_operator")
def test_prometheus_unreachable_holds_the_step_says_why_then_rolls_back(
    cluster: Cluster, namespace: str
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    body = spec([1], progressDeadlineSeconds=20, analysis={"prometheusURL": nowhere})
    apply(cluster, namespace, "blind", body)
    wait_phase(cluster, namespace, "blind", "Stable", timeout=120)
    apply(
        cluster,
        namespace,
        "blind",
        spec([2], progressDeadlineSeconds=20, analysis={"prometheusURL": nowhere}),
    )
    held = wait_until(
        lambda: (
            (st := rollout_status(cluster, namespace, "blind")).get("analysis", {}).get("verdict") == "Error"
            and st
        ),
        timeout=120,
        what="an analysis Error",
    )
    assert held["phase"] == "Progressing" and held["step"] == 1
    assert "unreachable" in held["analysis"]["message"]
    md = get_or_none(cluster, namespace, "modeldeployment", "blind")
    assert "unreachable" in condition(md, "RolloutProgressing")["message"]  # type: ignore[index]
    rolled = wait_phase(cluster, namespace, "blind", "RolledBack", timeout=60)
    assert rolled["reason"] == "ProgressDeadlineExceeded"


@pytest.mark.usefixtures("rollout_operator")
def test_label_moves_stay_in_place_and_no_canary_without_rollout(cluster: Cluster, namespace: str) -> None:
    body = spec([1, 2])
    apply(cluster, namespace, "labels", body)
    wait_phase(cluster, namespace, "labels", "Stable", timeout=120)
    body["model"]["versionLabels"] = {"stable": 2}
    apply(cluster, namespace, "labels", body)
    wait_until(
        lambda: "stable" in config_versions(cluster, namespace, "labels-tfserving"),
        timeout=60,
        what="the label in the stable's config",
    )
    assert rollout_status(cluster, namespace, "labels")["phase"] == "Stable"
    assert deployment(cluster, namespace, "labels-canary") is None

    plain = {"model": {"storageUri": "gs://models/resnet"}, "replicas": 1}
    apply(cluster, namespace, "plain", plain)
    md = wait_condition(cluster, namespace, "plain", "Ready", "True", timeout=120)
    assert "rollout" not in md["status"]
    assert condition(md, "RolloutProgressing") is None
    assert deployment(cluster, namespace, "plain-canary") is None


def _gateway_crds(cluster: Cluster) -> None:

    from kit import cache_root, pinned_versions

    cache = cache_root()
    folder = f"{cache}/crds/gateway-api-{pinned_versions()['GATEWAY_API_VERSION']}"
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", folder)
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/httproutes.gateway.networking.k8s.io"
    )


def test_gateway_api_weights_follow_the_steps(
    cluster: Cluster, namespace: str, exporters: Callable[..., Exporter], rollout_operator: object
) -> None:
    _gateway_crds(cluster)
    # Longer windows than the other tests: each step's weight must be seen by a kubectl poll.
    gateway = {"gatewayAPI": {"parentRefs": [{"name": "public"}]}, "stepDuration": "8s"}
    apply(cluster, namespace, "routed", spec([1], **gateway))
    wait_phase(cluster, namespace, "routed", "Stable", timeout=120)
    canary_exporter(exporters, namespace, "routed", rps=30, error_ratio=0.0, latency_ms=20)
    weights: list[tuple[int, int]] = []

    def route_weights() -> tuple[int, int] | None:
        route = get_or_none(cluster, namespace, "httproute", "routed")
        if route is None:
            return None
        refs = route["spec"]["rules"][0]["backendRefs"]
        return (refs[0]["weight"], refs[1]["weight"])

    def promoted() -> bool:
        # Status first, then the route: the operator applies the route before it writes the status,
        # so a route read after a Stable status is the route of that reconcile or a later one. (Read
        # the other way round, a route read an instant before the last reconcile looks stale.)
        st = rollout_status(cluster, namespace, "routed")
        w = route_weights()
        if w is not None and (not weights or weights[-1] != w):
            weights.append(w)
        return st.get("phase") == "Stable" and st["stableSpec"]["model"]["versionPolicy"] == {
            "specific": {"versions": [2]}
        }

    apply(cluster, namespace, "routed", spec([2], **gateway))
    wait_until(promoted, timeout=180, interval=0.1, what="promotion through the HTTPRoute")
    route_weights_seen = [w for w in weights if w in ((75, 25), (50, 50), (0, 100))]
    assert (75, 25) in route_weights_seen and (50, 50) in route_weights_seen, weights
    assert weights[-1] == (100, 0), weights
    for svc, track in (("routed-stable", "stable"), ("routed-canary", "canary")):
        service = get_or_none(cluster, namespace, "service", svc)
        assert service is not None and service["spec"]["selector"]["modelserve.dev/track"] == track
