"""AutoscalerReady (HPA or KEDA) and Ready of a scale-to-zero model without a ready pod (pure)."""

from __future__ import annotations

from modelserve import api
from modelserve.status.base import AUTOSCALER_READY, READY, Cond, Observed, Reason


def autoscaler_condition(md: api.ModelDeployment, obs: Observed) -> Cond:
    if md.spec.autoscaling is None:
        return Cond(AUTOSCALER_READY, True, Reason.NOT_REQUESTED, "autoscaling is off")
    if md.spec.suspend:
        # The HPA is kept; the HPA controller does not scale a Deployment at zero replicas.
        return Cond(
            AUTOSCALER_READY, True, Reason.SUSPENDED, "the autoscaler is kept and idle while scaled to zero"
        )
    if md.spec.autoscaling.uses_keda:
        return keda_condition(md, obs)
    if obs.hpa is None:
        return Cond(
            AUTOSCALER_READY, False, Reason.CREATING, "the HorizontalPodAutoscaler does not exist yet"
        )
    conditions = {c.get("type"): c for c in (obs.hpa.get("status") or {}).get("conditions") or []}
    able = conditions.get("AbleToScale")
    if able and able.get("status") == "False":
        return Cond(AUTOSCALER_READY, False, Reason.AUTOSCALER_FAILED, able.get("message", ""))
    active = conditions.get("ScalingActive")
    message = ""
    if active and active.get("status") == "False":
        # Typically no metrics yet (metrics-server missing or warming up): the HPA exists and keeps
        # minReplicas, so serving is fine; say so instead of failing the roll-up.
        message = f"not scaling yet: {active.get('message', '')}".strip()
    return Cond(AUTOSCALER_READY, True, Reason.CREATED, message)


def keda_condition(md: api.ModelDeployment, obs: Observed) -> Cond:
    """AutoscalerReady of a ScaledObject: what KEDA says about it, or why there is none."""
    assert md.spec.autoscaling is not None
    floor = max(md.spec.autoscaling.min_replicas, 1)
    if not obs.keda_installed:
        return Cond(
            AUTOSCALER_READY,
            False,
            Reason.KEDA_NOT_INSTALLED,
            "KEDA's ScaledObject CRD (keda.sh/v1alpha1) is not installed: load targets and scale to "
            f"zero need KEDA; the model is served at {floor} replica(s) meanwhile",
        )
    if md.spec.autoscaling.load_targets and not obs.prometheus_configured:
        return Cond(
            AUTOSCALER_READY,
            False,
            Reason.PROMETHEUS_NOT_CONFIGURED,
            "load targets need Prometheus: start the operator with --prometheus-url (chart value "
            f"autoscaling.prometheusUrl); the model is served at {floor} replica(s) meanwhile",
        )
    if obs.scaled_object is None:
        return Cond(AUTOSCALER_READY, False, Reason.CREATING, "the ScaledObject does not exist yet")
    conditions = {c.get("type"): c for c in (obs.scaled_object.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready") or {}
    if ready.get("status") == "False":
        return Cond(AUTOSCALER_READY, False, Reason.AUTOSCALER_FAILED, f"KEDA: {ready.get('message', '')}")
    if ready.get("status") != "True":
        return Cond(AUTOSCALER_READY, False, Reason.CREATING, "waiting for KEDA to take the ScaledObject")
    hpa_conditions = {
        c.get("type"): c for c in ((obs.keda_hpa or {}).get("status") or {}).get("conditions") or []
    }
    scaling = hpa_conditions.get("ScalingActive") or {}
    if scaling.get("status") == "False" and scaling.get("reason") != "ScalingDisabled":
        # KEDA's metrics API or Prometheus is down: the HPA keeps the current replicas.
        return Cond(
            AUTOSCALER_READY,
            False,
            Reason.METRICS_UNAVAILABLE,
            f"replicas are kept while the autoscaler cannot read its metrics: {scaling.get('message', '')}",
        )
    fallback = conditions.get("Fallback") or {}
    if fallback.get("status") == "True":
        return Cond(AUTOSCALER_READY, True, Reason.CREATED, f"KEDA fallback: {fallback.get('message', '')}")
    active = conditions.get("Active") or {}
    return Cond(AUTOSCALER_READY, True, Reason.CREATED, f"KEDA: {active.get('message', '')}".strip())


def scale_to_zero_ready(
    md: api.ModelDeployment, obs: Observed, deployment: Cond, autoscaler: Cond, service: Cond
) -> Cond | None:
    """Ready of a scale-to-zero model without a ready pod: True when the next request will be
    served (the activator holds it while a replica starts), else why not. None when not at zero."""
    autoscaling = md.spec.autoscaling
    ready_replicas = int(((obs.deployment or {}).get("status") or {}).get("readyReplicas") or 0)
    if autoscaling is None or autoscaling.min_replicas != 0 or md.spec.suspend or ready_replicas > 0:
        return None
    blocking = next((c for c in (autoscaler, service) if not c.status), None)
    if (
        blocking is None
        and not deployment.status
        and deployment.reason not in (Reason.CREATING, Reason.ROLLING_OUT)
    ):
        blocking = deployment  # pods cannot start: InsufficientGPU, ImagePullFailed, ...
    if blocking is not None:
        return Cond(READY, False, blocking.reason, f"{blocking.type}: {blocking.message}")
    if not obs.activator_endpoints:
        return Cond(
            READY,
            False,
            Reason.ACTIVATOR_UNAVAILABLE,
            "the model has no ready pod and the activator has no ready endpoint to hold requests",
        )
    if deployment.reason == Reason.SCALED_TO_ZERO:
        return Cond(
            READY,
            True,
            Reason.SCALED_TO_ZERO,
            "scaled to zero: the next request is held by the activator while a replica starts",
        )
    return Cond(READY, True, Reason.WAKING, "a replica is starting; the activator holds requests meanwhile")
