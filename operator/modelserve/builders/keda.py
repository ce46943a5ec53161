"""The KEDA ScaledObject for load targets and scale to zero (pure).

KEDA creates and owns the HorizontalPodAutoscaler behind it (`keda-hpa-<name>`) and scales the
Deployment between 0 and 1 itself; the operator never writes replicas. The activator's external
scaler is one more trigger: while it holds requests for a model at zero, KEDA activates the model
(a scale from 0 to 1 by KEDA, the single writer of replicas).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any, Final

from modelserve import api, naming
from modelserve.settings import Settings

API_VERSION: Final = "keda.sh/v1alpha1"
# KEDA scales the target to this count and stops autoscaling while the annotation is there.
PAUSED_REPLICAS: Final = "autoscaling.keda.sh/paused-replicas"
REQUEST_COUNT: Final = ":tensorflow:serving:request_count"
REQUEST_LATENCY_BUCKET: Final = ":tensorflow:serving:request_latency_bucket"
ACTIVATOR_TRIGGER: Final = "activator"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def hpa_name(md: api.ModelDeployment) -> str:
    """The HPA KEDA creates for the ScaledObject (its naming)."""
    return f"keda-hpa-{naming.scaled_object_name(md)}"


def duration_seconds(text: str) -> int:
    """Seconds in a duration such as 90s, 5m or 1h30m (the API's DURATION pattern), rounded up."""
    total = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return max(1, int(-(-total // 1)))


def _selector(md: api.ModelDeployment) -> str:
    # The labels a ServiceMonitor's scrape gives every series of the model's pods: its namespace,
    # its Service and TF Serving's own model_name.
    return f'namespace="{md.namespace}",service="{naming.service_name(md)}",model_name="{md.model_name}"'


def requests_per_second_query(md: api.ModelDeployment, window: str) -> str:
    return f"sum(rate({REQUEST_COUNT}{{{_selector(md)}}}[{window}]))"


def latency_query(md: api.ModelDeployment, percentile: int, window: str) -> str:
    """Milliseconds (TF Serving's histogram is in microseconds)."""
    rate = f"sum by (le) (rate({REQUEST_LATENCY_BUCKET}{{{_selector(md)}}}[{window}]))"
    return f"histogram_quantile({percentile / 100:g}, {rate}) / 1000"


def _number(value: float) -> str:
    return f"{value:g}"


def _prometheus(name: str, settings: Settings, query: str, target: float, metric_type: str) -> dict[str, Any]:
    return {
        "type": "prometheus",
        "name": name,
        "metricType": metric_type,
        "metadata": {
            "serverAddress": settings.prometheus_url,
            "query": query,
            "threshold": _number(target),
            # Any traffic at all activates a model at zero; no traffic for the idle window idles it.
            "activationThreshold": "0",
            "ignoreNullValues": "true",
        },
    }


def triggers(md: api.ModelDeployment, settings: Settings) -> list[dict[str, Any]]:
    """One trigger per target, in a stable order."""
    autoscaling = md.spec.autoscaling
    assert autoscaling is not None
    out: list[dict[str, Any]] = []
    if autoscaling.target_cpu_utilization is not None:
        out.append(
            {
                "type": "cpu",
                "metricType": "Utilization",
                "metadata": {"value": str(autoscaling.target_cpu_utilization)},
            }
        )
    if autoscaling.target_memory_utilization is not None:
        out.append(
            {
                "type": "memory",
                "metricType": "Utilization",
                "metadata": {"value": str(autoscaling.target_memory_utilization)},
            }
        )
    if autoscaling.target_requests_per_second is not None:
        query = requests_per_second_query(md, settings.rate_window)
        out.append(
            _prometheus(
                "requests-per-second", settings, query, autoscaling.target_requests_per_second, "AverageValue"
            )
        )
    if autoscaling.target_latency is not None:
        target = autoscaling.target_latency
        query = latency_query(md, target.percentile, settings.rate_window)
        out.append(
            _prometheus(f"latency-p{target.percentile}", settings, query, target.milliseconds, "Value")
        )
    for custom in autoscaling.prometheus or []:
        out.append(_prometheus(custom.name, settings, custom.query, custom.target, custom.target_type))
    if autoscaling.min_replicas == 0:
        out.append(
            {
                "type": "external-push",
                "name": ACTIVATOR_TRIGGER,
                "metadata": {"scalerAddress": settings.scaler_address},
            }
        )
    return out


def without_keda(md: api.ModelDeployment, children: list[Any]) -> list[Any]:
    """The children when KEDA cannot scale this model (no CRD, no Prometheus): no ScaledObject, and
    the Deployment pinned at max(minReplicas, 1) so the model is still served and someone owns the
    replica count. `children` are builders.Child values (typed loosely to avoid an import cycle)."""
    autoscaling = md.spec.autoscaling
    out = []
    for child in children:
        replaced = child
        if child.kind == "ScaledObject":
            replaced = dataclasses.replace(child, manifest=None)
        elif (
            child.kind == "Deployment" and child.manifest is not None and autoscaling and not md.spec.suspend
        ):
            manifest = copy.deepcopy(child.manifest)
            manifest["spec"] = {"replicas": max(autoscaling.min_replicas, 1), **manifest["spec"]}
            replaced = dataclasses.replace(child, manifest=manifest)
        out.append(replaced)
    return out


def build_scaled_object(md: api.ModelDeployment, settings: Settings) -> dict[str, Any] | None:
    """None (absent) unless the spec needs KEDA. Suspended, it is kept and paused at zero replicas
    (KEDA's paused-replicas annotation), as the HPA is kept: the same object, triggers and history
    come back on resume, when the annotation goes."""
    autoscaling = md.spec.autoscaling
    if autoscaling is None or not autoscaling.uses_keda:
        return None
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": naming.deployment_name(md)},
        "pollingInterval": settings.keda_polling_seconds,
        "minReplicaCount": autoscaling.min_replicas,
        "maxReplicaCount": autoscaling.max_replicas,
        "triggers": triggers(md, settings),
    }
    if autoscaling.idle_window:
        spec["cooldownPeriod"] = duration_seconds(autoscaling.idle_window)
    if autoscaling.behavior:
        spec["advanced"] = {
            "horizontalPodAutoscalerConfig": {"behavior": copy.deepcopy(autoscaling.behavior)}
        }
    metadata = naming.child_metadata(md, naming.scaled_object_name(md))
    if md.spec.suspend:
        metadata["annotations"] = {PAUSED_REPLICAS: "0"}  # child_metadata sets no annotations
    return {
        "apiVersion": API_VERSION,
        "kind": "ScaledObject",
        "metadata": metadata,
        "spec": spec,
    }
