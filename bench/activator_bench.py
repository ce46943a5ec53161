"""Benchmark: the activator's own overhead on a wake, and what it adds while forwarding.

    .venv/bin/python bench/activator_bench.py [--trials 20] [--kubeconfig PATH]

Runs against the local cluster (MODELSERVE_CLUSTER_NAME, hack/cluster) with the real activator
process. What stands in for what: no operator or KEDA runs here, so the bench plays KEDA's part by
creating the model's pod itself right after the first request arrives; kwok runs the pod on a node
whose pod CIDR is loopback, and a TF Serving stand-in (tests/activator_kit.py) answers on the pod's
IP.

Wake overhead = time the client waited - (the pod's readiness as the bench's own watch saw it -
the request's start): the activator's share of a cold start (its pod watch latency, releasing the
queue and forwarding), not the pod's own start. Reported p50/p99 per request, for 1 and for 50
concurrent first requests. Forwarding: latency p50/p99 and throughput of requests sent through the
activator to a ready pod versus sent to the pod directly, sequential and at concurrency 16.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from activator_kit import LOOPBACK_SCHEDULING, StubFleet, loopback_node, start_activator  # noqa: E402
from kit import CRD_DIR, Cluster, start_local_cluster, wait_until  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def post(url: str, host: str | None = None) -> float:
    request = urllib.request.Request(
        url, data=b'{"instances": [1.0]}', method="POST", headers={"Host": host} if host else {}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as resp:
        resp.read()
        assert resp.status == 200
    return time.perf_counter() - started


def pod_manifest(namespace: str, name: str, pod: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod,
            "namespace": namespace,
            "labels": {
                "modelserve.dev/deployment": name,
                "app.kubernetes.io/managed-by": "modelserve-operator",
            },
        },
        "spec": {
            **{k: v for k, v in LOOPBACK_SCHEDULING.items()},
            "containers": [{"name": "tfserving", "image": "stand-in"}],
        },
    }


class ReadyWatch:
    """The bench's own view of when a pod turned Ready (a watch, like the activator's)."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        from kubernetes import client, config, watch

        self.api = client.CoreV1Api(config.new_client_from_config(config_file=cluster.kubeconfig))
        self.ready: dict[str, tuple[float, str]] = {}
        self._watch = watch.Watch()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, args=(namespace,), daemon=True)
        self._thread.start()

    def _run(self, namespace: str) -> None:
        import urllib3

        try:
            for event in self._watch.stream(self.api.list_namespaced_pod, namespace, timeout_seconds=3600):
                pod = event["raw_object"]
                conds = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}
                ip = (pod.get("status") or {}).get("podIP")
                if conds.get("Ready") == "True" and ip and pod["metadata"]["name"] not in self.ready:
                    self.ready[pod["metadata"]["name"]] = (time.perf_counter(), ip)
        except urllib3.exceptions.ProtocolError:
            if not self._stopped:
                raise  # the stream broke during the bench: its figures would be wrong
            # else: the namespace went away at the end of the bench and took the stream with it

    def stop(self) -> None:
        self._stopped = True
        self._watch.stop()


def wake_trial(
    cluster: Cluster,
    activator: Any,
    *,
    ready: ReadyWatch,
    fleet: StubFleet,
    namespace: str,
    name: str,
    concurrency: int,
) -> tuple[list[float], list[float]]:
    """One wake: `concurrency` first requests at zero; the pod is created once they are held.
    Returns per request (client wait beyond the pod's readiness, time from the pod's readiness to
    the request reaching the stand-in): the second is the activator's own share, without the
    stand-in serving it and the bench's client threads reading the answer."""
    trial_started = time.perf_counter()
    pod = f"{name}-{uuid.uuid4().hex[:6]}"
    url = f"http://{activator.rest}/v1/models/{name}:predict"
    host = f"{name}.{namespace}.svc:8501"
    starts: list[float] = []
    ends: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        t0 = time.perf_counter()
        with lock:
            starts.append(t0)
        post(url, host)
        with lock:
            ends.append(time.perf_counter())

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(one) for _ in range(concurrency)]
        wait_until(
            lambda: (
                activator.metric("modelserve_activator_requests_held", namespace=namespace) >= concurrency
            ),
            timeout=30,
            interval=0.01,
            what="held requests",
        )
        cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_manifest(namespace, name, pod)))
        wait_until(lambda: (pod in ready.ready) or None, timeout=60, interval=0.005, what="pod Ready")
        ready_at, _ = ready.ready[pod]
        for f in futures:
            f.result()
    cluster.kubectl(
        "delete", "pod", "-n", namespace, pod, "--grace-period=0", "--force", "--wait=true", check=False
    )
    wait_until(
        lambda: activator.metric("modelserve_activator_requests_held", namespace=namespace) == 0,
        timeout=10,
        what="queue drained",
    )
    # Overhead per request: what it waited beyond the pod's readiness.
    dispatched = [max(0.0, t - ready_at) for t in fleet.arrivals_since(trial_started)]
    assert len(dispatched) == concurrency, f"{len(dispatched)} of {concurrency} reached the stand-in"
    return [max(0.0, end - ready_at) for end in ends], dispatched


def forwarding(
    activator: Any, ip: str, namespace: str, name: str, *, n: int, concurrency: int
) -> dict[str, float]:
    direct_url = f"http://{ip}:8501/v1/models/{name}:predict"
    via_url = f"http://{activator.rest}/v1/models/{name}:predict"
    host = f"{name}.{namespace}.svc:8501"
    out: dict[str, float] = {}
    for label, url, h in (("direct", direct_url, None), ("activator", via_url, host)):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            latencies = list(pool.map(lambda _, u=url, hh=h: post(u, hh), range(n)))
        elapsed = time.perf_counter() - started
        out[f"{label}_p50_ms"] = percentile(latencies, 50) * 1000
        out[f"{label}_p99_ms"] = percentile(latencies, 99) * 1000
        out[f"{label}_rps"] = n / elapsed
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20, help="wakes per concurrency level")
    parser.add_argument("--requests", type=int, default=2000, help="forwarded requests per measurement")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "activator.json"))
    args = parser.parse_args()
    kubeconfig = os.environ.get("MODELSERVE_TEST_KUBECONFIG")
    cluster = (
        Cluster(kubeconfig, os.environ.get("MODELSERVE_TEST_BIN_DIR"), False)
        if kubeconfig
        else start_local_cluster()
    )
    for path in sorted(CRD_DIR.glob("*.yaml")):
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=modelserve-bench", "-f", str(path)
        )
    loopback_node(cluster)
    namespace = f"bench-activator-{uuid.uuid4().hex[:5]}"
    name = "wake"
    cluster.kubectl("create", "namespace", namespace)
    md = {
        "apiVersion": "modelserve.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {"storageUri": "gs://models/bench"},
            "autoscaling": {
                "minReplicas": 0,
                "maxReplicas": 1,
                "idleWindow": "30s",
                "targetRequestsPerSecond": 1,
            },
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(md))
    workdir = REPO / "bench" / "results" / "activator-run"
    activator = start_activator(cluster, workdir, namespace=namespace, hold_timeout=60, queue_size=1000)
    # TF Serving stand-ins already listening on every address kwok may give the pods (the loopback
    # node's pool), so a wake measures the activator, not a stand-in starting late.
    fleet = StubFleet()
    fleet.__enter__()
    ready = ReadyWatch(cluster, namespace)
    results: dict[str, Any] = {
        "trials": args.trials,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        wait_until(lambda: True, timeout=1)
        for concurrency in (1, 50):
            overheads: list[float] = []
            dispatches: list[float] = []
            for _ in range(args.trials):
                overhead, dispatch = wake_trial(
                    cluster,
                    activator,
                    ready=ready,
                    fleet=fleet,
                    namespace=namespace,
                    name=name,
                    concurrency=concurrency,
                )
                overheads += overhead
                dispatches += dispatch
            for label, values in (("overhead", overheads), ("dispatch", dispatches)):
                results[f"wake_{label}_c{concurrency}"] = {
                    "p50_ms": percentile(values, 50) * 1000,
                    "p99_ms": percentile(values, 99) * 1000,
                    "max_ms": max(values) * 1000,
                    "mean_ms": statistics.fmean(values) * 1000,
                    "requests": len(values),
                }
                print(concurrency, label, results[f"wake_{label}_c{concurrency}"], flush=True)
        # Forwarding to a ready pod.
        pod = f"{name}-steady"
        cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_manifest(namespace, name, pod)))
        wait_until(lambda: (pod in ready.ready) or None, timeout=60, what="steady pod Ready")
        ip = ready.ready[pod][1]
        wait_until(
            lambda: post(f"http://{activator.rest}/v1/models/{name}:predict", f"{name}.{namespace}.svc:8501"),
            timeout=30,
        )
        for concurrency in (1, 16):
            results[f"forward_c{concurrency}"] = forwarding(
                activator, ip, namespace, name, n=args.requests, concurrency=concurrency
            )
            print(concurrency, results[f"forward_c{concurrency}"], flush=True)
        results["dropped"] = 0  # every request above asserted a 200
    finally:
        ready.stop()
        activator.stop()
        fleet.__exit__(None, None, None)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
