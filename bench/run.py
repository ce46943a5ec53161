"""Benchmark: the operator against the floor (the same children applied directly) on the local cluster.

    .venv/bin/python bench/run.py --mode quick     # N=100, short idle window (make bench)
    .venv/bin/python bench/run.py --mode full      # N in 100, 500, 1000, 2000 (make bench-full)
    .venv/bin/python bench/run.py --profile        # and py-spy profiles of the operator (make bench-profile)

Each phase runs on a fresh audited cluster (hack/cluster, name modelserve-bench) so phases do not
disturb each other. Results go to bench/results/<mode>.json and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchcluster import REPO, BenchCluster, delete_cluster, fresh_cluster
from measure import (
    CHILD_RESOURCES,
    Arrivals,
    ProcessStats,
    audit_position,
    audit_requests,
    mutating,
    now_iso,
    percentile,
)
from pyspy import Profile

sys.path.insert(0, str(REPO / "operator"))
from kubernetes import client, config

from modelserve import api, builders, settings
from modelserve.kube import Kube
from modelserve.memory import ALLOCATOR_ENV

NAMESPACE = "bench"
OPERATOR_AGENTS = ("modelserve-operator", "kopf")
FLOOR_AGENT = "modelserve-bench-floor"


def md_manifest(i: int) -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": f"model-{i:05d}", "namespace": NAMESPACE},
        "spec": {
            "model": {"storageUri": f"gs://bench-models/model-{i}"},
            "replicas": 1,
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            "scheduling": {"nodeSelector": {"modelserve.dev/bench": "true"}},
        },
    }


def api_client(cluster: BenchCluster, agent: str, pool: int) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=cluster.kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = pool
    api_client = client.ApiClient(configuration)
    api_client.user_agent = agent
    return api_client


def _deployment_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return int(status.get("ready_replicas") or status.get("readyReplicas") or 0) >= 1


def _md_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if status.get("observedGeneration") != (obj.get("metadata") or {}).get("generation"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _create_namespace(cluster: BenchCluster) -> None:
    cluster.kubectl("create", "namespace", NAMESPACE)


def _summary(latencies: list[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(latencies, q), 3) for q in (50, 95, 99)}


def _requests(counts: Counter[tuple[str, str]]) -> dict[str, int]:
    return {f"{verb} {res}": n for (verb, res), n in sorted(counts.items(), key=lambda kv: -kv[1])}


def _name_of(kind: str, name: str) -> str:
    return f"{name}-tfserving" if kind == "ConfigMap" else name


class ChildWatches:
    """Watches of ConfigMaps, Services and Deployments: when each object's last child appeared.

    Both phases run the same three watches, so the harness costs both the same; the Deployment
    watch also records when each Deployment first had a ready replica."""

    def __init__(self, cluster: BenchCluster) -> None:
        watch_client = api_client(cluster, "modelserve-bench-watch", 8)
        core, apps = client.CoreV1Api(watch_client), client.AppsV1Api(watch_client)
        self.by_kind = {
            "ConfigMap": Arrivals(core.list_namespaced_config_map, NAMESPACE, lambda _: False),
            "Service": Arrivals(core.list_namespaced_service, NAMESPACE, lambda _: False),
            "Deployment": Arrivals(apps.list_namespaced_deployment, NAMESPACE, _deployment_ready),
        }

    @property
    def deployments(self) -> Arrivals:
        return self.by_kind["Deployment"]

    def seen_at(self, name: str) -> float | None:
        arrivals = [s.first_seen.get(_name_of(kind, name)) for kind, s in self.by_kind.items()]
        return max(a for a in arrivals if a is not None) if all(a is not None for a in arrivals) else None

    def stop(self) -> None:
        for arrivals in self.by_kind.values():
            arrivals.stop()


def floor_phase(n: int, workers: int, timeout: float) -> dict[str, Any]:
    """The same rendered children applied directly with server-side apply, `workers` at a time."""
    cluster = fresh_cluster()
    _create_namespace(cluster)
    kube_client = api_client(cluster, FLOOR_AGENT, workers * 2)
    kube = Kube(kube_client)
    watches = ChildWatches(cluster)
    ready = watches.deployments
    operator_settings = settings.Settings()

    def children(i: int) -> list[dict[str, Any]]:
        body = md_manifest(i)
        body["metadata"]["uid"] = f"00000000-0000-0000-0000-{i:012d}"
        md = api.parse(body)
        out = []
        for child in builders.desired_children(md, operator_settings):
            if child.manifest is not None and child.kind != "ServiceMonitor":
                manifest = json.loads(json.dumps(child.manifest))
                manifest["metadata"].pop("ownerReferences", None)  # no owner exists: GC would delete them
                out.append(manifest)
        return out

    rendered = [children(i) for i in range(n)]
    position = audit_position(cluster.audit_log)
    started: dict[str, float] = {}

    def apply_one(manifests: list[dict[str, Any]]) -> None:
        # The Deployment's name is the ModelDeployment's: the key create-to-children is measured by.
        name = next(m["metadata"]["name"] for m in manifests if m["kind"] == "Deployment")
        started[name] = time.monotonic()
        for manifest in manifests:
            kube.apply(manifest)

    start = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(apply_one, rendered))
    done = ready.wait_done(n, timeout)
    watches.stop()
    if done is None:
        raise RuntimeError(f"floor: only {len(ready.done_at)}/{n} Deployments ready after {timeout}s")
    counts = audit_requests(cluster.audit_log, position, (FLOOR_AGENT,))
    latencies = [
        max(0.0, seen - t0) for name, t0 in started.items() if (seen := watches.seen_at(name)) is not None
    ]
    return {
        "n": n,
        "seconds_to_ready": round(done - start, 2),
        "create_to_children": _summary(latencies),
        "requests": _requests(counts),
        "requests_total": sum(counts.values()),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metric(port: int, name: str) -> float:
    """The sum of a metric's samples on the operator's /metrics (-1 while it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return -1.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
    )


def _reconciles(port: int) -> float:
    return _metric(port, "modelserve_reconciles_total")


class OperatorProcess:
    def __init__(
        self, cluster: BenchCluster, workers: int, resync: float, wrapper: tuple[str, ...] = ()
    ) -> None:
        self.metrics_port = _free_port()
        # The operator of this checkout, whatever the virtualenv's editable install points at, with
        # the allocator settings of the image and the chart (operator/modelserve/memory.py), unless
        # the caller's environment sets them (to compare allocators: PYTHONMALLOC=pymalloc ...).
        env = {**ALLOCATOR_ENV, **os.environ}
        env.update(KUBECONFIG=cluster.kubeconfig, PYTHONPATH=str(REPO / "operator"))
        self.log = open(REPO / "bench" / "results" / "operator.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                *wrapper,  # e.g. a memory profiler that runs the script it is given
                str(REPO / ".venv" / "bin" / "modelserve"),
                "run",
                "--namespace",
                NAMESPACE,
                "--workers",
                str(workers),
                "--resync-seconds",
                str(resync),
                "--metrics-port",
                str(self.metrics_port),
                "--health-port",
                "0",
                # One replica with a stable identity (as a pod's name): a restart takes its own
                # Lease back at once, as after a container restart.
                "--identity",
                "bench-operator",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.stats = ProcessStats(self.proc.pid)
        deadline = time.monotonic() + 60
        while _reconciles(self.metrics_port) < 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the operator did not start; see bench/results/operator.log")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@dataclass(frozen=True)
class Plan:
    n: int
    workers: int
    timeout: float
    idle_seconds: float
    resync: float
    probes: int
    profile: bool = False
    operator_wrapper: tuple[str, ...] = ()


class OperatorRun:
    """One operator phase on a fresh cluster: burst, idle-cluster latency, idle window, restart."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.cluster = fresh_cluster()
        _create_namespace(self.cluster)
        self.operator = OperatorProcess(self.cluster, plan.workers, plan.resync, plan.operator_wrapper)
        self.custom = client.CustomObjectsApi(api_client(self.cluster, "modelserve-bench-watch", 4))
        self.watches = ChildWatches(self.cluster)
        self.ready = Arrivals(self.list_mdeps, NAMESPACE, _md_ready)
        self.creator = client.CustomObjectsApi(
            api_client(self.cluster, "modelserve-bench-client", plan.workers * 2)
        )

    def list_mdeps(self, namespace: str, **kwargs: Any) -> Any:
        return self.custom.list_namespaced_custom_object(
            api.GROUP, api.VERSION, namespace, api.PLURAL, **kwargs
        )

    def burst(self) -> dict[str, Any]:
        n, created = self.plan.n, {}
        position = audit_position(self.cluster.audit_log)

        def create(i: int) -> None:
            body = md_manifest(i)
            self.creator.create_namespaced_custom_object(api.GROUP, api.VERSION, NAMESPACE, api.PLURAL, body)
            created[body["metadata"]["name"]] = time.monotonic()

        profile = self._profile("burst")
        start = time.monotonic()
        with ThreadPoolExecutor(self.plan.workers) as pool:
            list(pool.map(create, range(n)))
        done = self.ready.wait_done(n, self.plan.timeout)
        if done is None:
            raise RuntimeError(
                f"operator: only {len(self.ready.done_at)}/{n} Ready after {self.plan.timeout}s"
            )
        # The burst's requests include its Events, which are posted after the statuses.
        self.wait_events_posted()
        profiled = profile.stop() if profile else None
        counts = audit_requests(
            self.cluster.audit_log, position, OPERATOR_AGENTS, audit_position(self.cluster.audit_log)
        )
        latencies = [
            max(0.0, seen - t0)
            for name, t0 in created.items()
            if (seen := self.watches.seen_at(name)) is not None
        ]
        return {
            "n": n,
            "seconds_to_ready": round(done - start, 2),
            "create_to_children": _summary(latencies),
            "requests": _requests(counts),
            "requests_total": sum(counts.values()),
            "peak_rss_mib": round(self.operator.stats.peak_rss_mib(), 1),
            "cpu_seconds": round(self.operator.stats.cpu_seconds(), 1),
            **({"profile": profiled} if profiled else {}),
        }

    def wait_events_posted(self) -> None:
        deadline = time.monotonic() + self.plan.timeout
        while _metric(self.operator.metrics_port, "modelserve_events_pending") != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("operator: Events still pending after the timeout")
            time.sleep(0.2)

    def _profile(self, phase: str) -> Profile | None:
        if not self.plan.profile:
            return None
        output = REPO / "bench" / "results" / f"profile-{self.plan.n}-{phase}.txt"
        return Profile(self.operator.proc.pid, output)

    def idle_latency(self) -> dict[str, Any]:
        """One ModelDeployment at a time, each after the previous one's children exist: no queueing."""
        samples = []
        for i in range(self.plan.probes):
            body = md_manifest(100_000 + i)
            name = body["metadata"]["name"] = f"probe-{i:03d}"
            self.creator.create_namespaced_custom_object(api.GROUP, api.VERSION, NAMESPACE, api.PLURAL, body)
            t0 = time.monotonic()
            while time.monotonic() < t0 + 30:
                if (seen := self.watches.seen_at(name)) is not None:
                    samples.append(max(0.0, seen - t0))
                    break
                time.sleep(0.005)
        self.watches.stop()
        # The idle window starts only once the probes, too, are Ready and their status written.
        if self.ready.wait_done(self.plan.n + self.plan.probes, self.plan.timeout) is None:
            raise RuntimeError("operator: probe ModelDeployments did not become Ready")
        self.ready.stop()
        self.wait_events_posted()
        return {**_summary(samples), "samples": len(samples)}

    def idle(self) -> dict[str, Any]:
        """Nothing changes for the window; resyncs must not write."""
        start = audit_position(self.cluster.audit_log)
        time.sleep(self.plan.idle_seconds)
        counts = audit_requests(self.cluster.audit_log, start, OPERATOR_AGENTS)
        return {
            "seconds": self.plan.idle_seconds,
            "resync_seconds": self.plan.resync,
            "mutating_requests": mutating(counts),
            "requests": _requests(counts),
            "rss_mib_after": round(self.operator.stats.rss_mib(), 1),
        }

    def restart(self) -> dict[str, Any]:
        """Stop and start with everything existing: time until all reconciled, and the writes it took."""
        self.operator.stop()
        total = len(self.list_mdeps(NAMESPACE)["items"])
        start = audit_position(self.cluster.audit_log)
        started = time.monotonic()
        self.operator = OperatorProcess(self.cluster, self.plan.workers, self.plan.resync)
        profile = self._profile("restart")
        deadline = time.monotonic() + self.plan.timeout
        while _reconciles(self.operator.metrics_port) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        seconds = time.monotonic() - started
        profiled = profile.stop() if profile else None
        current = sum(1 for md in self.list_mdeps(NAMESPACE)["items"] if _md_ready(md))
        counts = audit_requests(self.cluster.audit_log, start, OPERATOR_AGENTS)
        result = {
            "model_deployments": total,
            "seconds_until_all_reconciled": round(seconds, 2),
            "statuses_current": current,
            "child_writes": mutating(counts, CHILD_RESOURCES),
            "status_writes": mutating(counts, {"modeldeployments"}),
            "requests": _requests(counts),
            "peak_rss_mib": round(self.operator.stats.peak_rss_mib(), 1),
            **({"profile": profiled} if profiled else {}),
        }
        self.operator.stop()
        return result


def operator_phase(plan: Plan, *, burst_only: bool = False) -> dict[str, Any]:
    run = OperatorRun(plan)
    try:
        result = run.burst()
        if burst_only:
            return result
        result["idle_create_to_children"] = run.idle_latency()
        result["idle"] = run.idle()
        result["restart"] = run.restart()
    finally:
        run.operator.stop()
    return result


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line
    )
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory_gib": f"{mem_kib / 2**20:.0f}",
        "python": platform.python_version(),
    }


def other_control_planes() -> list[str]:
    """kube-apiservers on this machine other than the benchmark's: they compete for its CPUs."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"kube-apiserver") and b"/clusters/modelserve-bench/" not in argv[0]:
            found.append(argv[0].decode(errors="replace"))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("quick", "full"), default="quick")
    parser.add_argument("--sizes", help="comma-separated N values (overrides the mode's)")
    parser.add_argument("--workers", type=int, default=8, help="operator workers and floor concurrency")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--repeat",
        type=int,
        help="floor/operator pairs per N; the ratio reported is their median (quick: 1, full: 3)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the operator with py-spy during the burst and the restart (bench/results/profile-*)",
    )
    args = parser.parse_args()
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([100] if args.mode == "quick" else [100, 500, 1000, 2000])
    )
    idle_seconds, resync = (60.0, 20.0) if args.mode == "quick" else (300.0, 60.0)
    args.repeat = args.repeat or (1 if args.mode == "quick" else 3)
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    if others := other_control_planes():
        print(
            f"[bench] warning: {len(others)} other control plane(s) running ({', '.join(others)}); "
            "they share the CPUs: stop them (make cluster-down) for numbers worth comparing",
            flush=True,
        )
    command = " ".join(["bench/run.py", *sys.argv[1:]])
    results: dict[str, Any] = {
        "command": command,
        "mode": args.mode,
        "date": now_iso(),
        "machine": machine(),
        "other_control_planes": len(other_control_planes()),
        "workers": args.workers,
        "repeat": args.repeat,
        "runs": [],
    }
    try:
        for n in sizes:
            timeout = 120 + n * 0.5
            # The 5-minute idle window of the full mode is spent once, at the largest N.
            idle = idle_seconds if n == sizes[-1] else min(idle_seconds, 60.0)
            probes = 50 if args.mode == "full" else 30
            plan = Plan(n, args.workers, timeout, idle, resync, probes, args.profile)
            # Floor and operator alternate, so a slow spell of the machine hits both; the last pair
            # also measures the idle cluster, the idle window and the restart.
            pairs = []
            for repeat in range(args.repeat):
                print(f"[bench] N={n}: floor ({repeat + 1}/{args.repeat})", flush=True)
                floor = floor_phase(n, args.workers, timeout)
                print(f"[bench] N={n}: floor ready in {floor['seconds_to_ready']}s; operator", flush=True)
                op = operator_phase(plan, burst_only=repeat < args.repeat - 1)
                print(f"[bench] N={n}: operator ready in {op['seconds_to_ready']}s", flush=True)
                pairs.append({"floor_s": floor["seconds_to_ready"], "operator_s": op["seconds_to_ready"]})
            results["runs"].append({"n": n, "floor": floor, "operator": op, "pairs": pairs})
    finally:
        delete_cluster()
    # Profiled runs are kept apart: py-spy's sampling costs a little CPU on the measured machine.
    out = REPO / "bench" / "results" / f"{args.mode}{'-profile' if args.profile else ''}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"[bench] wrote {out}")
    if not args.no_docs:
        from report import write_report

        write_report(results, " ".join(["make", "bench" if args.mode == "quick" else "bench-full"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
