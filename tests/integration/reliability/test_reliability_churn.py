"""Churn: 500 ModelDeployments created, changed and deleted continuously for five minutes against one
operator process. Afterwards the namespace converges with no leaked child, the operator settles (no
error loop: a resync after convergence costs one reconcile per object and no error), and its memory
after warm-up stays flat. The RSS curve is printed for docs/reliability.md."""

from __future__ import annotations

import json
import os
import random
import time

import pytest

from kit import wait_until
from reliability_kit import FaultCluster, OperatorProcess, apply_all, md_manifest, wait_converged

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OBJECTS = int(os.environ.get("MODELSERVE_CHURN_OBJECTS", "500"))
CHURN_SECONDS = float(os.environ.get("MODELSERVE_CHURN_SECONDS", "300"))
RESYNC_SECONDS = 60


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def spec_for(rng: random.Random) -> dict[str, object]:
    spec: dict[str, object] = {"replicas": rng.choice([1, 1, 2])}
    if rng.random() < 0.2:
        spec = {"autoscaling": {"minReplicas": 1, "maxReplicas": 2}}
    if rng.random() < 0.2:
        spec["networkPolicy"] = {"allowedClients": [{"podLabels": {"app": "web"}}]}
    if rng.random() < 0.3:
        spec["serving"] = {"env": [{"name": "CHURN", "value": str(rng.randrange(10**6))}]}
    return spec


def settle(op: OperatorProcess) -> tuple[float, float, float, str]:
    """Errors, reconciles and writes over two resyncs after convergence, and the metrics at the end."""
    before = op.metrics()
    lists = metric(before, "modelserve_api_requests_total", verb="list", resource="modeldeployments")
    wait_until(
        lambda: (
            metric(op.metrics(), "modelserve_api_requests_total", verb="list", resource="modeldeployments")
            >= lists + 2
        ),
        timeout=RESYNC_SECONDS * 3,
        what="two resyncs after convergence",
    )
    after = op.metrics()
    errors = metric(after, "modelserve_reconciles_total", result="error") - metric(
        before, "modelserve_reconciles_total", result="error"
    )
    reconciles = metric(after, "modelserve_reconciles_total") - metric(before, "modelserve_reconciles_total")
    writes = sum(
        metric(after, "modelserve_api_requests_total", verb=v)
        - metric(before, "modelserve_api_requests_total", verb=v)
        for v in ("apply", "patch", "delete")
    )
    return errors, reconciles, writes, after


def test_five_minutes_of_churn_over_five_hundred(
    fault_cluster: FaultCluster, fault_namespace: str, operator_process: OperatorProcess
) -> None:
    cluster, ns, op = fault_cluster.cluster, fault_namespace, operator_process
    rng = random.Random(int(os.environ.get("MODELSERVE_RELIABILITY_SEED", "7")))
    op.env["MODELSERVE_RESYNC_SECONDS"] = str(RESYNC_SECONDS)
    op.start().wait_serving()
    started = time.monotonic()
    samples: list[tuple[float, float]] = [(0.0, op.rss_mib())]

    alive: list[str] = []
    next_id = 0
    for start in range(0, OBJECTS, 100):
        batch = [md_manifest(f"c-{i:04d}", spec_for(rng)) for i in range(start, min(start + 100, OBJECTS))]
        apply_all(cluster, ns, batch)
        alive += [m["metadata"]["name"] for m in batch]
        next_id = start + len(batch)
        samples.append((time.monotonic() - started, op.rss_mib()))

    operations = {"created": OBJECTS, "updated": 0, "deleted": 0}
    churn_start = time.monotonic()
    while time.monotonic() - churn_start < CHURN_SECONDS:
        changed = rng.sample(alive, k=20)
        doomed = rng.sample(sorted(set(alive) - set(changed)), k=10)
        fresh = [f"c-{i:04d}" for i in range(next_id, next_id + 10)]
        next_id += 10
        apply_all(cluster, ns, [md_manifest(n, spec_for(rng)) for n in changed + fresh])
        cluster.kubectl("delete", "mdep", "-n", ns, "--wait=false", *doomed)
        alive = sorted((set(alive) - set(doomed)) | set(fresh))
        operations["updated"] += len(changed)
        operations["created"] += len(fresh)
        operations["deleted"] += len(doomed)
        assert op.running(), op.log_tail()
        samples.append((time.monotonic() - started, op.rss_mib()))

    converged = wait_converged(cluster, ns, timeout=900, what="convergence after the churn")
    samples.append((time.monotonic() - started, op.rss_mib()))

    errors, reconciles, writes, after = settle(op)
    samples.append((time.monotonic() - started, op.rss_mib()))
    assert errors == 0, f"{errors} failed reconciles after convergence"
    assert reconciles <= 3 * len(alive), f"{reconciles} reconciles in two resyncs of {len(alive)} objects"
    assert writes == 0, f"{writes} writes after convergence"
    assert not op.tracebacks(), op.tracebacks()[0]

    # Memory: after the warm-up (the first third of the churn) the peak may not keep climbing.
    churn = [(t, r) for t, r in samples if t >= churn_start - started]
    third = max(len(churn) // 3, 1)
    middle = max(r for _, r in churn[third : 2 * third] or churn)
    last = max(r for _, r in churn[2 * third :] or churn)
    curve = [(round(t), round(r, 1)) for t, r in samples[:: max(len(samples) // 30, 1)]] + [
        (round(samples[-1][0]), round(samples[-1][1], 1))
    ]
    error_total = metric(after, "modelserve_reconciles_total", result="error")
    result = {
        "objects_alive": len(alive),
        "operations": operations,
        "converged_after_churn_s": round(converged, 1),
        "reconcile_errors_during_churn": error_total,
        "rss_mib_middle_third_peak": round(middle, 1),
        "rss_mib_last_third_peak": round(last, 1),
        "rss_curve_s_mib": curve,
    }
    print(f"churn: {json.dumps(result)}")
    assert last <= middle * 1.10 + 5, f"memory still growing after warm-up: {result}"
