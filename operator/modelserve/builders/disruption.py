"""What makes serving pods survive voluntary disruption (pure): spreading, graceful stop, budget size.

- Spreading: unless the user gave topologySpreadConstraints, replicas are spread softly
  (ScheduleAnyway) across nodes and zones, so a drain or a lost node takes as few as possible. Per
  rollout revision (matchLabelKeys: pod-template-hash), so a rollout does not skew the old pods.
- Stopping: a terminating pod is removed from the Service's endpoints at once, but proxies and load
  balancers notice later. The preStop hook keeps the pod serving for spec.disruption.drainSeconds,
  then kubelet sends SIGTERM, which the image forwards to TF Serving. The grace period covers both.
- None of this depends on the replica count, so scaling never rolls pods.
"""

from __future__ import annotations

import math
from typing import Any, Final

from modelserve import api, contract, naming

# After the drain, time for TF Serving to exit once signalled (and for kubelet's own bookkeeping).
STOP_SECONDS: Final = 15
SPREAD_KEYS: Final = ("kubernetes.io/hostname", "topology.kubernetes.io/zone")


def topology_spread_constraints(md: api.ModelDeployment) -> list[dict[str, Any]]:
    user = md.spec.scheduling.topology_spread_constraints if md.spec.scheduling else None
    if user:
        return [dict(c) for c in user]
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": naming.selector_labels(md)},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in SPREAD_KEYS
    ]


def lifecycle(md: api.ModelDeployment) -> dict[str, Any]:
    """The serving container's preStop hook (an exec of the image's own binary: it has no shell)."""
    seconds = md.spec.disruption.drain_seconds
    command = [contract.EXECUTABLE, contract.CMD_DRAIN, f"--seconds={seconds}"]
    return {"preStop": {"exec": {"command": command}}}


def termination_grace_seconds(md: api.ModelDeployment) -> int:
    return md.spec.disruption.drain_seconds + STOP_SECONDS


def budget_replicas(md: api.ModelDeployment) -> int:
    """The replica count the budget is for: the fixed count, or the autoscaler's floor (0 suspended)."""
    if md.spec.suspend:
        return 0
    if md.spec.autoscaling is not None:
        return md.spec.autoscaling.min_replicas
    return md.spec.replicas if md.spec.replicas is not None else 1


def _scaled(value: int | str, total: int) -> int:
    """An int-or-percent of `total`, rounded up as the disruption controller does."""
    if isinstance(value, str):
        return math.ceil(total * int(value.rstrip("%")) / 100)
    return value


def tolerated_unavailable(md: api.ModelDeployment, desired: int) -> int:
    """Replicas the budget lets voluntary disruptions take out of `desired` (0 without a budget)."""
    if budget_replicas(md) < 2 or desired < 2:
        return 0
    disruption = md.spec.disruption
    if disruption.min_available is not None:
        return max(0, desired - _scaled(disruption.min_available, desired))
    return min(desired - 1, _scaled(disruption.max_unavailable or 1, desired))
