"""Benchmark: leader failover and memory after churn (issue 15), on a cluster of its own.

    .venv/bin/python bench/failover.py                 # 10 failover rounds, churn of 1,000
    .venv/bin/python bench/failover.py --rounds 3 --churn 300

Failover: two `modelserve run` processes on one Lease (the default timing: 10 s lease, 7 s renew
deadline, 2 s retry); the leader is SIGKILLed and a spec change made; the time from the kill to the
status the new leader writes for that change is one sample. Churn: one operator, N ModelDeployments
created, reconciled and deleted, twice; RSS before, at each peak and after each, and the per-object
stores (its own modelserve_tracked_objects metric), which must be empty at the end. Results go to
bench/results/failover.json; docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from measure import percentile

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "operator")]

from kit import Cluster, get_or_none, wait_until  # noqa: E402
from modelserve import memory  # noqa: E402
from modelserve.settings import Settings  # noqa: E402
from reliability_kit import (  # noqa: E402
    OperatorProcess,
    apply_all,
    bump,
    delete_fault_cluster,
    list_json,
    md_manifest,
    start_fault_cluster,
    wait_converged,
)

STORES = ("records", "children", "queue")
DEFAULTS = Settings()  # the operators run with the default lease timing: what a user gets


def failover(fc: object, tmp: Path, rounds: int, objects: int) -> list[float]:
    cluster = fc.cluster  # type: ignore[attr-defined]
    namespace = f"bench-ha-{int(time.time())}"
    cluster.kubectl("create", "namespace", namespace)
    ops = [
        OperatorProcess(cluster.kubeconfig, namespace, tmp / f"op-{n}.log", env={"MODELSERVE_IDENTITY": n})
        for n in ("a", "b")
    ]
    names = [f"ha-{i:03d}" for i in range(objects)]
    apply_all(cluster, namespace, [md_manifest(n, {"replicas": 1}) for n in names])
    try:
        ops[0].start().wait_serving()
        wait_until(lambda: ops[0].role() == "leader", timeout=30, what="a to lead")
        ops[1].start().wait_serving()
        wait_converged(cluster, namespace, timeout=300)
        leader, standby = ops
        times = []
        for r in range(rounds):
            bump(cluster, namespace, names, f"r{r}-before")
            leader.kill()
            killed = time.monotonic()
            generation = bump(cluster, namespace, names, f"r{r}")
            wait_until(
                lambda g=generation: (
                    (md := get_or_none(cluster, namespace, "modeldeployment", names[0]))
                    and (md.get("status") or {}).get("observedGeneration", 0) >= g
                ),
                timeout=90,
                interval=0.1,
                what=f"round {r}",
            )
            times.append(round(time.monotonic() - killed, 2))
            print(f"round {r}: {times[-1]} s", flush=True)
            wait_converged(cluster, namespace, timeout=300)
            leader.start().wait_serving()
            leader, standby = standby, leader
        return times
    finally:
        for op in ops:
            op.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _cycle(
    cluster: Cluster, op: OperatorProcess, namespace: str, count: int, prefix: str
) -> tuple[float, dict[str, float], float]:
    """Create `count` ModelDeployments, wait until each is reconciled, delete them all, wait until
    every store is empty and the trim has run: (RSS at the peak, stores at the peak, RSS after)."""
    names = [f"{prefix}-{i:04d}" for i in range(count)]
    for start in range(0, count, 25):
        apply_all(cluster, namespace, [md_manifest(n, {"replicas": 0}) for n in names[start : start + 25]])
    wait_until(
        lambda: (
            sum(
                1
                for i in list_json(cluster, namespace, "modeldeployments")
                if (i.get("status") or {}).get("observedGeneration")
            )
            == count
        ),
        timeout=120 + count,
        interval=2.0,
        what=f"{count} reconciled",
    )
    peak_tracked = {s: op.metric("modelserve_tracked_objects", store=s) for s in STORES}
    peak = op.rss_mib()
    cluster.kubectl(
        "delete", "--raw", f"/apis/modelserve.dev/v1alpha1/namespaces/{namespace}/modeldeployments"
    )
    wait_until(
        lambda: all(op.metric("modelserve_tracked_objects", store=s) == 0 for s in STORES),
        timeout=300 + count,
        interval=1.0,
        what="every store empty",
    )
    # The operator trims once the deletes settled (memory.SETTLE_SECONDS, checked as often).
    time.sleep(2 * memory.SETTLE_SECONDS + 1)
    return peak, peak_tracked, op.rss_mib()


def churn(fc: object, tmp: Path, count: int, rounds: int = 2, warmup: int = 0) -> dict[str, object]:
    """`rounds` churns of `count` by one operator; the second shows whether the memory of the first
    is reused (RSS follows the most objects held at once, not the number ever deleted). With
    `warmup`, a churn of that many first: its RSS afterwards is the warm baseline, what the operator
    holds once every code path (imports, validators, client models, metric series) has run once."""
    cluster = fc.cluster  # type: ignore[attr-defined]
    namespace = f"bench-churn-{int(time.time())}"
    cluster.kubectl("create", "namespace", namespace)
    op = OperatorProcess(cluster.kubeconfig, namespace, tmp / "op-churn.log")
    try:
        op.start().wait_serving()
        wait_until(lambda: op.role() == "leader", timeout=30, what="the operator to lead")
        baseline = op.rss_mib()
        started = time.monotonic()
        result: dict[str, object] = {"objects": count, "rss_mib_baseline": round(baseline, 1)}
        if warmup:
            _, _, warm = _cycle(cluster, op, namespace, warmup, "warmup")
            result.update({"warmup_objects": warmup, "rss_mib_warm_baseline": round(warm, 1)})
            print(f"warm-up of {warmup}: RSS MiB {baseline:.1f} -> {warm:.1f}", flush=True)
        for r in range(rounds):
            peak, peak_tracked, after = _cycle(cluster, op, namespace, count, "churn")
            suffix = "" if r == 0 else f"_{r + 1}"
            result.update(
                {
                    f"rss_mib_peak{suffix}": round(peak, 1),
                    f"rss_mib_after_delete{suffix}": round(after, 1),
                    f"tracked_at_peak{suffix}": peak_tracked,
                    f"tracked_after{suffix}": {
                        s: op.metric("modelserve_tracked_objects", store=s) for s in STORES
                    },
                }
            )
            print(f"churn {r + 1}: RSS MiB {baseline:.1f} / {peak:.1f} / {after:.1f}", flush=True)
        result["cpu_seconds"] = op.metric("process_cpu_seconds_total")
        result["allocator_env"] = dict(memory.ALLOCATOR_ENV)
        result["seconds"] = round(time.monotonic() - started, 1)
        return result
    finally:
        op.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--objects", type=int, default=20, help="ModelDeployments changed in each failover")
    parser.add_argument("--churn", type=int, default=1000)
    parser.add_argument("--churn-rounds", type=int, default=2, help="churns of --churn, one after the other")
    parser.add_argument(
        "--warmup", type=int, default=25, help="a churn of this many first; RSS after it is the warm baseline"
    )
    parser.add_argument("--keep-cluster", action="store_true")
    parser.add_argument(
        "--cluster", help="cluster name (default <MODELSERVE_CLUSTER_NAME>-ha-bench; a healthy one is reused)"
    )
    args = parser.parse_args()
    name = args.cluster or os.environ.get("MODELSERVE_CLUSTER_NAME", "modelserve") + "-ha-bench"
    fc = start_fault_cluster(name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            times = failover(fc, Path(tmp), args.rounds, args.objects) if args.rounds else []
            memory = churn(fc, Path(tmp), args.churn, args.churn_rounds, args.warmup) if args.churn else {}
    finally:
        if not args.keep_cluster:
            delete_fault_cluster(name)
    out = REPO / "bench" / "results" / "failover.json"
    # A run of one part (--rounds 0, or --churn 0) keeps the other part's last results.
    previous = json.loads(out.read_text()) if out.exists() else {}
    if not times:
        times = list(previous.get("failover_s") or [])
    if not memory:
        memory = dict(previous.get("churn") or {})
    result = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        "lease": {
            "duration_s": DEFAULTS.lease_duration_seconds,
            "renew_deadline_s": DEFAULTS.renew_deadline_seconds,
            "retry_period_s": DEFAULTS.retry_period_seconds,
        },
        "failover_s": times,
        "failover_p50_s": percentile(times, 50) if times else None,
        "failover_p95_s": percentile(times, 95) if times else None,
        "churn": memory,
    }
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
