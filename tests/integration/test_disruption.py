"""Voluntary disruption: `kubectl drain` (the real eviction API, the real disruption controller) of a
node holding replicas of a 3-replica ModelDeployment never takes more than its budget allows, and
the model stays Ready throughout (sampled every 0.3 s); the pods come back on the other nodes."""

from __future__ import annotations

import json
import sys
import time

from disruption_kit import Sampler, node_pool, nodes_of, pool_scheduling
from kit import Cluster, get_or_none, model_deployment, wait_condition, wait_until


def test_a_drain_never_takes_more_than_the_budget_and_ready_stays_true(
    cluster: Cluster, namespace: str, operator: object
) -> None:
    with node_pool(cluster, namespace, 3) as nodes:
        spec = {
            "model": {"storageUri": "gs://models/resnet"},
            "replicas": 3,
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            "scheduling": pool_scheduling(namespace),
        }
        cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", input=json.dumps(model_deployment("spread", spec))
        )
        wait_condition(cluster, namespace, "spread", "Ready", "True", timeout=120)
        # The default soft spread put one replica on each node of the pool.
        placed = wait_until(
            lambda: (p := nodes_of(cluster, namespace, "spread")) and sum(p.values()) == 3 and p,
            timeout=60,
            what="three ready replicas",
        )
        assert sorted(placed.values()) == [1, 1, 1], placed
        pdb = wait_until(
            lambda: (
                (p := get_or_none(cluster, namespace, "poddisruptionbudget", "spread"))
                and (p.get("status") or {}).get("disruptionsAllowed") == 1
                and p
            ),
            timeout=60,
            what="the PodDisruptionBudget allowing one disruption",
        )
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"

        # Drain two nodes, one after the other: the second drain must wait for the first's
        # replacement to be Ready (the budget), and evicts nothing below it meanwhile.
        with Sampler(cluster, namespace, "spread") as sampler:
            started = time.monotonic()
            for node in nodes[:2]:
                cluster.kubectl(
                    "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=180s",
                    "--pod-selector=modelserve.dev/deployment=spread",
                )  # fmt: skip
            wait_until(
                lambda: nodes_of(cluster, namespace, "spread") == {nodes[2]: 3},
                timeout=120,
                what="all three replicas Ready on the node left",
            )
            drained = time.monotonic() - started
        history = []
        for s in sampler.samples:
            if not history or history[-1][1:] != (s.ready_pods, s.model_ready, s.message):
                history.append((round(s.at - started, 1), s.ready_pods, s.model_ready, s.message))
        print("\n".join(map(str, history)), file=sys.__stdout__)
        assert sampler.min_ready() >= 2, [s.ready_pods for s in sampler.samples]
        assert not sampler.not_ready(), json.dumps(sampler.not_ready()[0].status, indent=1)
        print(
            f"\ntwo drains in {drained:.1f}s: {len(sampler.samples)} samples, fewest ready "
            f"{sampler.min_ready()}/3, model Ready in every sample",
            file=sys.__stdout__,  # KopfRunner (click) holds sys.stdout while the operator runs
        )
        wait_condition(cluster, namespace, "spread", "Ready", "True", timeout=30)
