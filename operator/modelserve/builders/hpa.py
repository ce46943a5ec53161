"""The HorizontalPodAutoscaler (autoscaling/v2) owning the Deployment's replica count (pure)."""

from __future__ import annotations

import copy
from typing import Any, Final

from modelserve import api, naming
from modelserve.settings import Settings

DEFAULT_CPU_UTILIZATION: Final = 80


def _utilization(resource: str, percent: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": percent}},
    }


def hpa_metrics(autoscaling: api.Autoscaling) -> list[dict[str, Any]]:
    """CPU and memory targets first, then the user's MetricSpecs unchanged; CPU 80% when none given."""
    metrics = []
    cpu = autoscaling.target_cpu_utilization
    if cpu is None and autoscaling.target_memory_utilization is None and not autoscaling.metrics:
        cpu = DEFAULT_CPU_UTILIZATION
    if cpu is not None:
        metrics.append(_utilization("cpu", cpu))
    if autoscaling.target_memory_utilization is not None:
        metrics.append(_utilization("memory", autoscaling.target_memory_utilization))
    metrics += copy.deepcopy(autoscaling.metrics or [])
    return metrics


def build_hpa(md: api.ModelDeployment, settings: Settings) -> dict[str, Any] | None:
    """None (absent) without autoscaling, and when KEDA owns the scaling (load targets, scale to
    zero: keda.py). Kept while suspended: the HPA controller leaves a target at zero replicas alone
    ("scaling is disabled"), so suspend keeps its uid and history."""
    del settings  # same signature as every builder
    autoscaling = md.spec.autoscaling
    if autoscaling is None or autoscaling.uses_keda:
        return None
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": naming.deployment_name(md)},
        "minReplicas": autoscaling.min_replicas,
        "maxReplicas": autoscaling.max_replicas,
        "metrics": hpa_metrics(autoscaling),
    }
    if autoscaling.behavior:
        spec["behavior"] = copy.deepcopy(autoscaling.behavior)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": naming.child_metadata(md, naming.hpa_name(md)),
        "spec": spec,
    }
