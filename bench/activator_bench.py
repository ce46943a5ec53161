"""Benchmark: the activator's own overhead on a wake, and what it adds while forwarding.

    .venv/bin/python bench/activator_bench.py [--trials 20] [--requests 2000]

Runs against the local cluster (MODELSERVE_CLUSTER_NAME, hack/cluster) with the real activator
process. What stands in for what: no operator or KEDA runs here, so the bench plays KEDA's part by
creating the model's pod itself once the first requests are held; kwok runs the pod on a node of
the bench's own whose pod CIDR is loopback (127.78.0.0/24, apart from the tests' 127.77.0.0/24), and
a TF Serving stand-in (bench/tfserving_standin.py) answers on the pod's IP.

Four processes, so that no two of them share an interpreter and its GIL: the activator, the
TF Serving stand-in, the callers (bench/http_clients.py: one asyncio loop, one connection per first
request) and this bench (its own pod watch and the orchestration). All times are time.monotonic(),
CLOCK_MONOTONIC, the same clock in every process of the host.

Per request of a wake, from the pod's readiness as the bench's own watch saw it (a second watcher
of the same API server, so the API server's watch fan-out is not counted):
- dispatch: until the request reached the stand-in on the pod IP (the activator noticing the pod,
  releasing its queue, connecting and sending);
- overhead: until the caller had the whole answer, minus the stand-in's own service time (mean of
  the trial's requests, microseconds): the activator's share of a cold start.
Reported p50/p99 for 1 and for 50 concurrent first requests. Forwarding: latency p50/p99 and
throughput of requests sent through the activator to a ready pod versus sent to the pod directly,
sequential and by 16 callers, each caller on a kept-alive connection.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from activator_kit import LOOPBACK_TAINT, loopback_node, start_activator  # noqa: E402
from kit import CRD_DIR, Cluster, start_local_cluster, wait_until  # noqa: E402

NODE = "kwok-loopback-bench"
CIDR = "127.78.0.0/24"
STANDIN_IPS = [f"127.78.0.{i}" for i in range(1, 25)]  # kwok hands out the lowest free address
SCHEDULING = {
    "nodeSelector": {"kubernetes.io/hostname": NODE},
    "tolerations": [{"key": LOOPBACK_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(values, 50) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": max(values) * 1000,
        "mean_ms": statistics.fmean(values) * 1000,
        "requests": len(values),
    }


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
        "spec": {**SCHEDULING, "containers": [{"name": "tfserving", "image": "stand-in"}]},
    }


class ReadyWatch:
    """The bench's own view of when a pod turned Ready: a watch like the activator's, each event
    parsed once as JSON (no client models), in a process with nothing else busy."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        from kubernetes import client, config

        self.api = client.CoreV1Api(config.new_client_from_config(config_file=cluster.kubeconfig))
        self.ready: dict[str, tuple[float, str]] = {}
        self._stopped = False
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, args=(namespace,), daemon=True)
        self._thread.start()

    def _run(self, namespace: str) -> None:
        import urllib3
        from kubernetes.watch.watch import iter_resp_lines

        self._response = self.api.list_namespaced_pod(
            namespace, watch=True, timeout_seconds=3600, _preload_content=False
        )
        try:
            for line in iter_resp_lines(self._response):
                seen = time.monotonic()
                pod = json.loads(line)["object"]
                conds = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}
                ip = (pod.get("status") or {}).get("podIP")
                if conds.get("Ready") == "True" and ip and pod["metadata"]["name"] not in self.ready:
                    self.ready[pod["metadata"]["name"]] = (seen, ip)
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            if not self._stopped:
                raise  # the stream broke during the bench: its figures would be wrong
            # else: the bench closed the stream at the end

    def stop(self) -> None:
        import socket

        self._stopped = True
        # Shut the socket down rather than close the response: a close waits for the SSL lock that
        # the blocked read holds (the kubernetes client's Watch.stop does the same).
        sock = getattr(getattr(self._response, "connection", None), "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)


class Process:
    """A helper process started with the venv's Python, that prints one line when it is ready."""

    def __init__(self, script: str, *args: str, ready: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / script), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.first_line = self.proc.stdout.readline().strip()
        if not self.first_line.startswith(ready):
            self.stop()
            raise AssertionError(f"{script} did not start: {self.first_line!r}")

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"helper process exited with {self.proc.wait()}")
        return json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class StandIn(Process):
    def __init__(self) -> None:
        super().__init__("tfserving_standin.py", f"--ips={','.join(STANDIN_IPS)}", ready="standin listening")
        self.control = self.first_line.split("control=", 1)[1]

    def served_since(self, since: float) -> list[tuple[float, float, str]]:
        url = f"http://{self.control}/_standin/served?since={since}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return [tuple(r) for r in json.loads(resp.read())]


@dataclass
class Rig:
    """What every measurement runs against."""

    cluster: Cluster
    activator: Any
    ready: ReadyWatch
    standin: StandIn
    clients: Process
    namespace: str
    name: str


def wake_trial(rig: Rig, concurrency: int) -> tuple[list[float], list[float]]:
    """One wake: `concurrency` first requests at zero; the pod is created once they are held.
    Returns (overhead, dispatch) per request, both from the pod's readiness."""
    cluster, activator, ready, standin, clients = (
        rig.cluster,
        rig.activator,
        rig.ready,
        rig.standin,
        rig.clients,
    )
    namespace, name = rig.namespace, rig.name
    trial_started = time.monotonic()
    pod = f"{name}-{uuid.uuid4().hex[:6]}"
    host = f"{name}.{namespace}.svc:8501"
    clients.send(
        {
            "op": "burst",
            "addr": activator.rest,
            "host": host,
            "path": f"/v1/models/{name}:predict",
            "n": concurrency,
        }
    )
    wait_until(
        lambda: activator.metric("modelserve_activator_requests_held", namespace=namespace) >= concurrency,
        timeout=30,
        interval=0.01,
        what="held requests",
    )
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_manifest(namespace, name, pod)))
    wait_until(lambda: (pod in ready.ready) or None, timeout=60, interval=0.005, what="pod Ready")
    ready_at, _ = ready.ready[pod]
    answers = clients.receive()
    statuses = [int(a[2]) for a in answers]
    assert statuses == [200] * concurrency, f"a first request was dropped: {statuses}"
    served = standin.served_since(trial_started)
    assert len(served) == concurrency, f"{len(served)} of {concurrency} reached the stand-in"
    service = statistics.fmean(answered - arrived for arrived, answered, _ in served)
    cluster.kubectl(
        "delete", "pod", "-n", namespace, pod, "--grace-period=0", "--force", "--wait=true", check=False
    )
    wait_until(
        lambda: activator.metric("modelserve_activator_requests_held", namespace=namespace) == 0,
        timeout=10,
        what="queue drained",
    )
    overhead = [max(0.0, a[1] - ready_at - service) for a in answers]
    dispatch = [max(0.0, arrived - ready_at) for arrived, _, _ in served]
    return overhead, dispatch


def forwarding(
    activator: Any, clients: Process, ip: str, namespace: str, name: str, *, n: int, concurrency: int
) -> dict[str, float]:
    path = f"/v1/models/{name}:predict"
    out: dict[str, float] = {}
    for label, addr, host in (
        ("direct", f"{ip}:8501", f"{ip}:8501"),
        ("activator", activator.rest, f"{name}.{namespace}.svc:8501"),
    ):
        clients.send(
            {"op": "load", "addr": addr, "host": host, "path": path, "n": n, "concurrency": concurrency}
        )
        answer = clients.receive()
        assert answer["statuses"] == {"200": n}, answer["statuses"]
        out[f"{label}_p50_ms"] = percentile(answer["latencies"], 50) * 1000
        out[f"{label}_p99_ms"] = percentile(answer["latencies"], 99) * 1000
        out[f"{label}_rps"] = n / answer["elapsed"]
    return out


def wakes(rig: Rig, concurrency: int, args: argparse.Namespace) -> dict[str, Any]:
    """`args.trials` wakes of `concurrency` first requests: the figures, per request and per trial."""
    out: dict[str, Any] = {}
    overheads: list[float] = []
    dispatches: list[float] = []
    per_trial: list[list[float]] = []  # first and last dispatch, last overhead (ms)
    profile = None
    if args.profile and concurrency == 50:
        from pyspy import Profile

        profile = Profile(
            rig.activator.process.pid, REPO / "bench" / "results" / "activator-profile.txt", rate=1000
        )
    for _ in range(args.trials):
        overhead, dispatch = wake_trial(rig, concurrency)
        overheads += overhead
        dispatches += dispatch
        per_trial.append([min(dispatch) * 1000, max(dispatch) * 1000, max(overhead) * 1000])
    if profile is not None:
        out["profile_c50"] = profile.stop()
    for label, values in (("overhead", overheads), ("dispatch", dispatches)):
        out[f"wake_{label}_c{concurrency}"] = summary(values)
        print(concurrency, label, out[f"wake_{label}_c{concurrency}"], flush=True)
    out[f"wake_trials_c{concurrency}"] = per_trial
    return out


def setup(cluster: Cluster) -> tuple[str, str]:
    """The CRDs, the bench's loopback node and a scale-to-zero ModelDeployment in a new namespace."""
    for path in sorted(CRD_DIR.glob("*.yaml")):
        cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=modelserve-bench", "-f", str(path)
        )
    loopback_node(cluster, NODE, CIDR)
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
    return namespace, name


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20, help="wakes per concurrency level")
    parser.add_argument("--requests", type=int, default=2000, help="forwarded requests per measurement")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "activator.json"))
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the activator during the 50-concurrent wakes (bench/results/activator-profile.txt)",
    )
    args = parser.parse_args()
    kubeconfig = os.environ.get("MODELSERVE_TEST_KUBECONFIG")
    cluster = (
        Cluster(kubeconfig, os.environ.get("MODELSERVE_TEST_BIN_DIR"), False)
        if kubeconfig
        else start_local_cluster()
    )
    namespace, name = setup(cluster)
    workdir = REPO / "bench" / "results" / "activator-run"
    activator = start_activator(cluster, workdir, namespace=namespace, hold_timeout=60, queue_size=1000)
    # The stand-in listens on every address kwok may give the pods before any pod exists, so a wake
    # measures the activator, not a stand-in starting late.
    standin = StandIn()
    clients = Process("http_clients.py", ready="clients ready")
    ready = ReadyWatch(cluster, namespace)
    # The bench's own heap (the Kubernetes client) out of full collections, so that its watch never
    # pauses for one and sees a pod's readiness late, which would flatter the activator.
    gc.collect()
    gc.freeze()
    rig = Rig(cluster, activator, ready, standin, clients, namespace, name)
    results: dict[str, Any] = {
        "trials": args.trials,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_at_start": os.getloadavg(),
        "cpus": os.cpu_count(),
        "processes": "activator, TF Serving stand-in, callers (asyncio) and bench each in its own process",
    }
    try:
        for concurrency in (1, 50):
            results.update(wakes(rig, concurrency, args))
        # Forwarding to a ready pod.
        pod = f"{name}-steady"
        cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_manifest(namespace, name, pod)))
        wait_until(lambda: (pod in ready.ready) or None, timeout=60, what="steady pod Ready")
        ip = ready.ready[pod][1]
        for concurrency in (1, 16):
            results[f"forward_c{concurrency}"] = forwarding(
                activator, clients, ip, namespace, name, n=args.requests, concurrency=concurrency
            )
            print(concurrency, results[f"forward_c{concurrency}"], flush=True)
        results["dropped"] = 0  # every request above asserted a 200
        results["load_average_at_end"] = os.getloadavg()
    finally:
        ready.stop()
        activator.stop()
        clients.stop()
        standin.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
