"""Node loss: a kwok node holding one replica of three stops being a node (kwok lets go of it and it
reports NotReady, as a dead kubelet would). The real node-lifecycle controller taints it, the real
taint-eviction controller evicts the pod, the ReplicaSet replaces it on the nodes left; the model
stays Ready (one replica gone is within its budget) and the time to three ready replicas is printed."""

from __future__ import annotations

import json
import time

import pytest

from disruption_kit import Sampler, node_pool, nodes_of, pool_scheduling
from kit import wait_condition, wait_until
from reliability_kit import FaultCluster, OperatorProcess, md_manifest

pytestmark = pytest.mark.integration


def lose(fc: FaultCluster, node: str) -> None:
    """What a node whose kubelet died looks like: nobody renews it, and it says NotReady."""
    fc.cluster.kubectl("annotate", "node", node, "kwok.x-k8s.io/node-")
    conditions = fc.cluster.kubectl_json("get", "node", node)["status"]["conditions"]
    for cond in conditions:
        if cond["type"] == "Ready":
            cond.update(status="False", reason="KubeletNotReady", message="test: the node was lost")
    fc.cluster.kubectl(
        "patch", "node", node, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"conditions": conditions}}),
    )  # fmt: skip


def no_execute_taint(fc: FaultCluster, node: str) -> bool:
    taints = fc.cluster.kubectl_json("get", "node", node)["spec"].get("taints") or []
    return any(t["key"] == "node.kubernetes.io/not-ready" and t["effect"] == "NoExecute" for t in taints)


def test_a_lost_node_s_replica_is_evicted_and_replaced_while_the_model_stays_ready(
    fault_cluster: FaultCluster, fault_namespace: str, operator_process: OperatorProcess
) -> None:
    fc, ns = fault_cluster, fault_namespace
    with node_pool(fc.cluster, ns, 3) as nodes:
        spec = {"replicas": 3, "scheduling": pool_scheduling(ns, not_ready_toleration=2)}
        fc.cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(md_manifest("survivor", spec)))
        operator_process.start().wait_serving()
        wait_condition(fc.cluster, ns, "survivor", "Ready", "True", timeout=120)
        placed = wait_until(
            lambda: (p := nodes_of(fc.cluster, ns, "survivor")) and sum(p.values()) == 3 and p,
            timeout=60,
            what="three ready replicas",
        )
        victim = sorted(placed)[0]
        with Sampler(fc.cluster, ns, "survivor") as sampler:
            lost_at = time.monotonic()
            lose(fc, victim)
            wait_until(lambda: no_execute_taint(fc, victim), timeout=120, what="the NoExecute taint")
            tainted = time.monotonic() - lost_at
            wait_until(
                lambda: (
                    (p := nodes_of(fc.cluster, ns, "survivor")) and sum(p.values()) == 3 and victim not in p
                ),
                timeout=120,
                what="three ready replicas off the lost node",
            )
            recovered = time.monotonic() - lost_at
        assert set(nodes_of(fc.cluster, ns, "survivor")) <= set(nodes) - {victim}
        assert sampler.min_ready() >= 2, [s.ready_pods for s in sampler.samples]
        assert not sampler.not_ready(), json.dumps(sampler.not_ready()[0].status, indent=1)
        print(
            f"\nnode lost: NoExecute taint after {tainted:.1f}s, three replicas Ready again after "
            f"{recovered:.1f}s (toleration 2s); fewest ready {sampler.min_ready()}/3, model Ready in "
            f"all {len(sampler.samples)} samples"
        )
        assert not operator_process.tracebacks(), operator_process.tracebacks()[0]
