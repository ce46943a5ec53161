"""The PodDisruptionBudget (policy/v1) of the serving pods (pure).

Only with two or more replicas (the fixed count, or autoscaling.minReplicas) and not while
suspended: with one replica any budget either allows the eviction anyway or blocks every drain.
"""

from __future__ import annotations

from typing import Any

from modelserve import api, naming
from modelserve.builders.disruption import budget_replicas
from modelserve.settings import Settings


def build_pdb(md: api.ModelDeployment, settings: Settings) -> dict[str, Any] | None:
    if budget_replicas(md) < 2:
        return None
    disruption = md.spec.disruption
    spec: dict[str, Any] = {"selector": {"matchLabels": naming.selector_labels(md)}}
    if disruption.min_available is not None:
        spec["minAvailable"] = disruption.min_available
    else:
        spec["maxUnavailable"] = disruption.max_unavailable if disruption.max_unavailable is not None else 1
    # A pod that is not ready serves nothing: let drains evict it instead of blocking on it (a broken
    # rollout must not hold a node hostage).
    spec["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": naming.child_metadata(md, naming.pdb_name(md)),
        "spec": spec,
    }
