"""The operator SIGKILLed at random points while ModelDeployments are created, changed and deleted.

Each round changes the namespace (new objects, spec changes that add and remove children, deletions),
starts the operator and kills it after a random delay: during start-up, mid-apply, mid-status-write.
After the last round one operator runs to the end, and the namespace must converge: every
ModelDeployment Ready at its generation with exactly the children its current spec produces (by
applied-manifest hash), nothing duplicated, no child left without its owner.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import pytest

from reliability_kit import (
    FaultCluster,
    OperatorProcess,
    apply_all,
    convergence_problems,
    md_manifest,
    wait_converged,
)

pytestmark = pytest.mark.integration

# The operator lives this long (seconds from its start) before SIGKILL: start-up takes about one
# second, so early kills land in discovery and the first LIST, later ones in applies and status writes.
KILL_WINDOW = (0.3, 5.0)


def spec_variant(rng: random.Random) -> dict[str, Any]:
    """A spec touching every kind of child, so kills can land between any two applies."""
    spec: dict[str, Any] = {}
    if rng.random() < 0.3:
        spec["autoscaling"] = {"minReplicas": 1, "maxReplicas": 3}
    else:
        spec["replicas"] = rng.choice([0, 1, 2])
    if rng.random() < 0.4:
        spec["networkPolicy"] = {"allowedClients": [{"podLabels": {"app": rng.choice(["web", "batch"])}}]}
    if rng.random() < 0.3:
        spec["serving"] = {"env": [{"name": "ROUND_VALUE", "value": str(rng.randrange(1000))}]}
    if rng.random() < 0.3:
        spec["model"] = {
            "storageUri": "gs://models/shared",
            "versionPolicy": {"specific": {"versions": [1, 2]}},
            "versionLabels": {"stable": 1, "canary": rng.choice([1, 2])},
        }
    return spec


def churn_round(
    fc: FaultCluster, namespace: str, rng: random.Random, alive: set[str], next_id: list[int], *, target: int
) -> None:
    """Creates up to `target` objects in total, changes about a third of the rest, deletes a few."""
    changes = []
    creating = min(max(target // 4, 1), target - next_id[0])
    for _ in range(creating):
        name = f"md-{next_id[0]:03d}"
        next_id[0] += 1
        alive.add(name)
        changes.append(md_manifest(name, spec_variant(rng)))
    existing = sorted(alive - {m["metadata"]["name"] for m in changes})
    for name in rng.sample(existing, k=len(existing) // 3):
        changes.append(md_manifest(name, spec_variant(rng)))
    apply_all(fc.cluster, namespace, changes)
    doomed = rng.sample(existing, k=min(len(existing) // 10, 1))
    if doomed:
        fc.cluster.kubectl("delete", "mdep", "-n", namespace, "--wait=false", *doomed)
        alive.difference_update(doomed)


def run_kill_rounds(
    fc: FaultCluster, namespace: str, op: OperatorProcess, *, objects: int, rounds: int
) -> dict[str, Any]:
    total = objects + rounds  # one deletion a round: `objects` remain at the end
    seed = int(os.environ.get("MODELSERVE_RELIABILITY_SEED", str(random.SystemRandom().randrange(1 << 30))))
    print(f"kill rounds: seed {seed} (MODELSERVE_RELIABILITY_SEED reproduces the schedule)")
    rng = random.Random(seed)
    alive: set[str] = set()
    next_id = [0]
    kills = []
    for _ in range(rounds):
        # Creation is spread over the rounds so every round has objects being created.
        churn_round(fc, namespace, rng, alive, next_id, target=total)
        op.start()
        delay = rng.uniform(*KILL_WINDOW)
        time.sleep(delay)  # the random kill point is the fault being injected, not a wait
        assert op.running(), f"the operator exited by itself before the kill:\n{op.log_tail()}"
        op.kill()
        kills.append(round(delay, 2))
    # Whatever was never created in the rounds arrives now; then one operator runs to the end.
    while next_id[0] < total:
        churn_round(fc, namespace, rng, alive, next_id, target=total)
    started = time.monotonic()
    op.start()
    seconds = wait_converged(fc.cluster, namespace, timeout=240, what="convergence after the last kill")
    names = {m["metadata"]["name"] for m in fc.cluster.kubectl_json("get", "mdep", "-n", namespace)["items"]}
    assert names == alive
    assert not convergence_problems(fc.cluster, namespace)
    assert not op.tracebacks(), op.tracebacks()[0]
    return {
        "seed": seed,
        "kills_after_s": kills,
        "created": next_id[0],
        "alive": len(alive),
        "converged_s": round(time.monotonic() - started, 1),
        "checked_s": round(seconds, 1),
    }


def test_operator_killed_twice_during_creation_converges(
    fault_cluster: FaultCluster, fault_namespace: str, operator_process: OperatorProcess
) -> None:
    result = run_kill_rounds(fault_cluster, fault_namespace, operator_process, objects=10, rounds=2)
    print(f"kill rounds (fast): {result}")


@pytest.mark.slow
def test_operator_killed_ten_times_while_fifty_are_created_converges(
    fault_cluster: FaultCluster, fault_namespace: str, operator_process: OperatorProcess
) -> None:
    result = run_kill_rounds(fault_cluster, fault_namespace, operator_process, objects=50, rounds=12)
    print(f"kill rounds (slow): {result}")
