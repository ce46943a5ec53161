"""Scale to zero and the wake path, end to end on the real control plane.

Real: kube-apiserver, controller-manager (Deployment and HPA controllers), scheduler, KEDA's
operator and metrics adapter, Prometheus, the operator and `modelserve activator` (two processes,
as the chart's two replicas). Stand-ins, named: TF Serving in the pods (kwok runs no containers) is
`TFServingStub` listening on the pod's own IP (a kwok node with a loopback pod CIDR); TF Serving's
metrics are `tests/tfserving_exporter.py`; the activator's pod addresses in its EndpointSlice are
placeholders (kwok has no kube-proxy: the test sends requests to the activator processes as a
kube-proxy would).
"""

from __future__ import annotations

import concurrent.futures
import importlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from activator_kit import (
    LOOPBACK_SCHEDULING,
    PREDICT,
    Activator,
    StubFleet,
    loopback_node,
    predict_request,
    start_activator,
)
from autoscaling_kit import (
    ACTIVATOR_ADDRESSES,
    ACTIVATOR_NAMESPACE,
    activator_service,
    keda,  # noqa: F401  (fixture)
    operator_settings,
    replica_writers,
    replicas,
)
from kit import REPO, Cluster, condition, get_or_none, model_deployment, wait_condition, wait_until
from prometheus_kit import Prometheus, start_exporter, start_prometheus

pytestmark = pytest.mark.integration

MODEL = {"storageUri": "gs://models/half_plus_two"}
IDLE = {"minReplicas": 0, "maxReplicas": 2, "idleWindow": "10s", "targetRequestsPerSecond": 5}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    prom = start_prometheus(tmp_path_factory.mktemp("prometheus"))
    yield prom
    prom.stop()


@pytest.fixture(scope="module")
def activators(
    crds_installed: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Activator]]:
    """Two activator replicas; KEDA asks the first (its scaler address), clients may hit either."""
    loopback_node(crds_installed)
    activator_service(crds_installed)
    workdir = tmp_path_factory.mktemp("activator")
    running = [
        start_activator(crds_installed, workdir, namespace=ACTIVATOR_NAMESPACE, hold_timeout=12)
        for _ in range(2)
    ]
    yield running
    for activator in running:
        activator.stop()


@pytest.fixture
def settings(
    operator_env: Cluster,
    monkeypatch: pytest.MonkeyPatch,
    prometheus: Prometheus,
    activators: list[Activator],
) -> None:
    operator_settings(monkeypatch, prometheus_url=prometheus.url, scaler=activators[0].scaler)


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def rest(
    activator: Activator, namespace: str, name: str, timeout: float = 60
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        f"http://{activator.rest}/v1/models/{name}:predict",
        data=b'{"instances": [1.0]}',
        headers={"Host": f"{name}.{namespace}.svc:8501", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def grpc_predict(activator: Activator, name: str, timeout: float = 60) -> grpc.StatusCode:
    with grpc.insecure_channel(activator.grpc) as channel:
        try:
            channel.unary_unary(PREDICT)(predict_request(name), timeout=timeout)
        except grpc.RpcError as err:
            return err.code()  # type: ignore[no-any-return,attr-defined]
    return grpc.StatusCode.OK


class ReplicaRecorder:
    """Every distinct spec.replicas of the Deployment, in order (polled, to count scale-ups)."""

    def __init__(self, cluster: Cluster, namespace: str, name: str) -> None:
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = replicas(self.cluster, self.namespace, self.name)[0]
            if not self.seen or self.seen[-1] != value:
                self.seen.append(value)
            self._stop.wait(0.1)

    def __enter__(self) -> ReplicaRecorder:
        self.seen.append(replicas(self.cluster, self.namespace, self.name)[0])  # before any request
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def argo_health(obj: dict[str, Any]) -> dict[str, Any]:
    lua = importlib.import_module("lupa.lua51").LuaRuntime(unpack_returned_tuples=True)
    check = lua.eval("function(s) return loadstring(s) end")((REPO / "deploy/argocd/health.lua").read_text())

    def table(value: Any) -> Any:
        if isinstance(value, dict):
            return lua.table_from({k: table(v) for k, v in value.items()})
        if isinstance(value, list):
            return lua.table_from([table(v) for v in value])
        return value

    lua.globals().obj = table(obj)
    return dict(check().items())


def wait_at_zero(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    wait_until(
        lambda: replicas(cluster, namespace, name) == (0, 0), timeout=120, what=f"{name} at zero replicas"
    )
    return wait_condition(cluster, namespace, name, "Ready", "True", reason="ScaledToZero", timeout=60)


@pytest.mark.usefixtures("settings", "keda", "operator")
def test_idle_model_reaches_zero_and_fifty_first_requests_wake_it_once(
    cluster: Cluster, namespace: str, activators: list[Activator]
) -> None:
    apply(
        cluster,
        namespace,
        model_deployment("idle", {"model": MODEL, "autoscaling": IDLE, "scheduling": LOOPBACK_SCHEDULING}),
    )
    md = wait_at_zero(cluster, namespace, "idle")

    # Honest status: Ready (the next request will be served), not Available, Argo CD Healthy.
    assert condition(md, "Available")["status"] == "False"  # type: ignore[index]
    assert argo_health(md)["status"] == "Healthy"
    table = cluster.kubectl("get", "mdep", "idle", "-n", namespace, "-o", "wide").stdout
    assert "ScaledToZero" in table and "True" in table, table
    # The Service now routes to the activator: our EndpointSlice with the activator's addresses.
    route = get_or_none(cluster, namespace, "endpointslice", "idle-activator")
    assert route is not None and route["metadata"]["labels"]["kubernetes.io/service-name"] == "idle"
    assert sorted(a for e in route["endpoints"] for a in e["addresses"]) == sorted(ACTIVATOR_ADDRESSES)

    with (
        StubFleet() as stubs,
        ReplicaRecorder(cluster, namespace, "idle") as recorder,
    ):
        with concurrent.futures.ThreadPoolExecutor(max_workers=60) as pool:
            # Fifty REST requests on the replica KEDA does not talk to, five gRPC ones on the other:
            # the second learns of the wake from the wake Lease.
            rest_calls = [pool.submit(rest, activators[1], namespace, "idle") for _ in range(50)]
            grpc_calls = [pool.submit(grpc_predict, activators[0], "idle") for _ in range(5)]
            codes = [f.result()[0] for f in rest_calls]
            grpc_codes = [f.result() for f in grpc_calls]
        assert codes == [200] * 50, codes
        assert grpc_codes == [grpc.StatusCode.OK] * 5, grpc_codes
        assert len(stubs.served()) == 55
    assert recorder.seen[0] == 0 and max(recorder.seen) == 1, recorder.seen
    assert recorder.seen.count(1) == 1, f"more than one scale-up: {recorder.seen}"
    woken = sum(
        a.metric("modelserve_activator_wakes_total", namespace=namespace, model="idle") for a in activators
    )
    assert woken >= 1
    # Every request went through the activators to the pod; those that arrived before a pod was Ready
    # were held (at least the first, which woke the model). How many arrived after the pod was Ready is
    # the clients' timing, not the activator's behaviour, so it is not asserted.
    forwarded = sum(
        a.metric("modelserve_activator_requests_forwarded_total", namespace=namespace) for a in activators
    )
    assert forwarded == 55
    queued = sum(
        a.metric("modelserve_activator_requests_queued_total", namespace=namespace) for a in activators
    )
    assert 1 <= queued <= 55, queued
    # Routing handed back to the pods.
    wait_until(
        lambda: get_or_none(cluster, namespace, "endpointslice", "idle-activator") is None,
        timeout=60,
        what="the activator EndpointSlice removed once a pod is ready",
    )
    wait_condition(cluster, namespace, "idle", "Ready", "True", reason="Ready", timeout=60)


@pytest.mark.usefixtures("settings", "keda", "operator")
def test_a_wake_without_a_free_gpu_is_503_after_the_hold_timeout(
    cluster: Cluster, namespace: str, activators: list[Activator]
) -> None:
    spec = {"model": MODEL, "gpu": {"count": 8}, "autoscaling": IDLE}  # no node has 8 GPUs
    apply(cluster, namespace, model_deployment("nogpu", spec))
    wait_at_zero(cluster, namespace, "nogpu")
    started = time.monotonic()
    status, headers, body = rest(activators[0], namespace, "nogpu")
    held = time.monotonic() - started
    assert status == 503, body
    assert headers.get("Retry-After") == "3"
    assert 11 <= held < 30, held  # the hold timeout (12 s), not a hang
    assert "InsufficientGPU" in json.loads(body)["error"], body
    md = wait_condition(cluster, namespace, "nogpu", "Ready", "False", reason="InsufficientGPU", timeout=60)
    assert "Insufficient nvidia.com/gpu" in condition(md, "Ready")["message"]  # type: ignore[index]
    assert activators[0].metric("modelserve_activator_requests_timed_out_total", namespace=namespace) == 1


@pytest.mark.usefixtures("settings", "keda", "operator")
def test_queue_full_is_503_at_once_and_a_restart_fails_held_requests_fast(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    spec = {"model": MODEL, "gpu": {"count": 8}, "autoscaling": IDLE}
    apply(cluster, namespace, model_deployment("full", spec))
    wait_at_zero(cluster, namespace, "full")
    small = start_activator(cluster, tmp_path, namespace=ACTIVATOR_NAMESPACE, hold_timeout=60, queue_size=3)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            held = [pool.submit(rest, small, namespace, "full") for _ in range(3)]
            wait_until(
                lambda: small.metric("modelserve_activator_requests_held", namespace=namespace) == 3,
                timeout=30,
                what="three held requests",
            )
            started = time.monotonic()
            status, _, body = rest(small, namespace, "full")
            assert status == 503 and "queue full" in json.loads(body)["error"], body
            assert time.monotonic() - started < 2
            # A restart (SIGTERM, as a rollout does): the held requests fail fast with a clear answer.
            started = time.monotonic()
            small.stop()
            answers = [f.result() for f in held]
            assert time.monotonic() - started < 10
        assert [a[0] for a in answers] == [503] * 3
        assert all("shutting down" in json.loads(a[2])["error"] for a in answers)
        assert all(a[1].get("Retry-After") == "1" for a in answers)
    finally:
        small.stop()
    # A new activator process serves later requests (this model cannot start: 503 after the hold,
    # with the cause; a model that can start is woken as in the first test).
    again = start_activator(cluster, tmp_path, namespace=ACTIVATOR_NAMESPACE, hold_timeout=5, queue_size=3)
    try:
        status, _, body = rest(again, namespace, "full")
        assert status == 503 and "InsufficientGPU" in json.loads(body)["error"], body
    finally:
        again.stop()


@pytest.mark.usefixtures("settings", "keda", "operator")
def test_replicas_follow_requests_per_second_up_and_down(
    cluster: Cluster, namespace: str, prometheus: Prometheus
) -> None:
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 0}, "scaleUp": {"stabilizationWindowSeconds": 0}}
    autoscaling = {"minReplicas": 1, "maxReplicas": 4, "targetRequestsPerSecond": 10, "behavior": behavior}
    apply(cluster, namespace, model_deployment("ramp", {"model": MODEL, "autoscaling": autoscaling}))
    wait_condition(cluster, namespace, "ramp", "AutoscalerReady", "True", timeout=120)
    # One stand-in exporter carries the model's whole request rate (the query sums over pods).
    exporter = start_exporter(model="ramp", rps=35)
    try:
        prometheus.add_target(exporter.address, namespace=namespace, service="ramp", pod="ramp-0")
        wait_until(
            lambda: replicas(cluster, namespace, "ramp")[0] == 4,
            timeout=180,
            interval=1,
            what="4 replicas for 35 requests/s at 10 per replica",
        )

        # KEDA's HPA scaled it: spec.replicas is the HPA controller's. A spec change now must leave it
        # alone: the operator writes no count (no claim, no apply of it) while an autoscaler owns it.
        def writers() -> set[str]:
            return replica_writers(
                cluster.kubectl_json("get", "deployment", "ramp", "-n", namespace, "--show-managed-fields")
            )

        def autoscaler_only() -> bool:
            owners = writers()
            return any(w.startswith("kube-controller-manager") for w in owners) and not any(
                w.startswith("modelserve-operator") for w in owners
            )

        assert autoscaler_only(), writers()
        generation = int(
            cluster.kubectl_json("get", "mdep", "ramp", "-n", namespace)["metadata"]["generation"]
        )
        patch = {"spec": {"serving": {"env": [{"name": "A", "value": "1"}]}}}
        cluster.kubectl("patch", "mdep", "ramp", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
        wait_until(
            lambda: (
                (cluster.kubectl_json("get", "mdep", "ramp", "-n", namespace).get("status") or {}).get(
                    "observedGeneration", 0
                )
                > generation
            ),
            timeout=60,
            what="the spec change reconciled",
        )
        assert autoscaler_only(), writers()
        assert replicas(cluster, namespace, "ramp")[0] == 4
        exporter.set(rps=12)
        wait_until(
            lambda: replicas(cluster, namespace, "ramp")[0] == 2,
            timeout=180,
            interval=1,
            what="2 replicas for 12 requests/s",
        )
        exporter.set(rps=1)
        wait_until(
            lambda: replicas(cluster, namespace, "ramp")[0] == 1,
            timeout=180,
            interval=1,
            what="back to 1 replica",
        )
    finally:
        prometheus.remove_target(exporter.address)
        exporter.stop()
