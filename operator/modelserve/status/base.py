"""The status vocabulary: condition types, reasons, what the reconciler observed, and the merge of
computed conditions into the stored ones (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from modelserve import cache_status, failures, sync_health

READY: Final = "Ready"
AVAILABLE: Final = "Available"
PROGRESSING: Final = "Progressing"
DEPLOYMENT_READY: Final = "DeploymentReady"
SERVICE_READY: Final = "ServiceReady"
AUTOSCALER_READY: Final = "AutoscalerReady"
MONITORING_READY: Final = "MonitoringReady"
SUSPENDED: Final = "Suspended"
CONDITION_ORDER: Final = (
    READY,
    AVAILABLE,
    PROGRESSING,
    DEPLOYMENT_READY,
    SERVICE_READY,
    AUTOSCALER_READY,
    MONITORING_READY,
    SUSPENDED,
)


class Reason:
    """Condition reasons. Failure reasons are the ones users act on; keep docs/status.md in step."""

    # Healthy or neutral.
    READY = "Ready"
    ROLLED_OUT = "RolledOut"
    CREATED = "Created"
    DISABLED = "Disabled"
    NOT_REQUESTED = "NotRequested"
    SCALING = "Scaling"
    NOT_SUSPENDED = "NotSuspended"
    SUSPENDED = "Suspended"
    SCALED_TO_ZERO = "ScaledToZero"
    WAKING = "Waking"
    # Waiting.
    CREATING = "Creating"
    ROLLING_OUT = "RollingOut"
    # Failures, one per mode.
    INVALID_SPEC = "InvalidSpec"
    UNSCHEDULABLE = "Unschedulable"
    INSUFFICIENT_GPU = "InsufficientGPU"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    MODEL_FETCH_FAILED = "ModelFetchFailed"
    CRASH_LOOP = "CrashLoopBackOff"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    POD_CREATE_FAILED = "PodCreateFailed"
    CRD_NOT_INSTALLED = "CRDNotInstalled"
    AUTOSCALER_FAILED = "AutoscalerFailed"
    NO_MATCHING_GPU_NODE = "NoMatchingGPUNode"
    # A child the API server refused (failures.apply_reason), and objects the pods refer to that do
    # not exist (failures.missing_reference).
    APPLY_FAILED = failures.APPLY_FAILED
    # The shared model cache (cache_status.py).
    CACHE_READY = cache_status.CACHE_READY_REASON
    CLAIM_PENDING = cache_status.CLAIM_PENDING
    CACHE_FILLING = cache_status.CACHE_FILLING
    CACHE_FETCH_FAILED = cache_status.CACHE_FETCH_FAILED
    STORE_UNREACHABLE = cache_status.STORE_UNREACHABLE
    APPLY_FORBIDDEN = failures.APPLY_FORBIDDEN
    APPLY_CONFLICT = failures.APPLY_CONFLICT
    QUOTA_EXCEEDED = failures.QUOTA_EXCEEDED
    ADMISSION_DENIED = failures.ADMISSION_DENIED
    SECRET_NOT_FOUND = failures.SECRET_NOT_FOUND
    CONFIG_MAP_NOT_FOUND = failures.CONFIG_MAP_NOT_FOUND
    CLAIM_NOT_FOUND = failures.CLAIM_NOT_FOUND

    KEDA_NOT_INSTALLED = "KEDANotInstalled"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    PROMETHEUS_NOT_CONFIGURED = "PrometheusNotConfigured"
    ACTIVATOR_UNAVAILABLE = "ActivatorUnavailable"


# The Ready=False reasons that mean "wait, this resolves by itself"; every other one is a failure a
# person acts on (Argo CD: Degraded). The one list: deploy/argocd/health.lua and docs/status.md
# carry copies that tests/e2e/test_argocd_health.py compares with it.
TRANSIENT_REASONS: Final = (
    Reason.CREATING,
    Reason.ROLLING_OUT,
    # The shared model cache: a claim waiting for its volume, a first fill in progress.
    cache_status.CLAIM_PENDING,
    cache_status.CACHE_FILLING,
)


@dataclass(frozen=True)
class Observed:
    """What the reconciler saw of the children after applying them."""

    config_map: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    deployment: dict[str, Any] | None = None
    hpa: dict[str, Any] | None = None
    service_monitor: dict[str, Any] | None = None
    pods: tuple[dict[str, Any], ...] = ()
    # The kubelet's FailedMount Events of those pods (read only while a pod is stuck before start).
    pod_events: tuple[dict[str, Any], ...] = ()
    # The shared model cache (spec.model.cache): our claim, the sync Deployment, its pod(s).
    cache_claim: dict[str, Any] | None = None
    model_sync: dict[str, Any] | None = None
    sync_pods: tuple[dict[str, Any], ...] = ()
    monitoring_crd_installed: bool = True
    scaled_object: dict[str, Any] | None = None
    keda_hpa: dict[str, Any] | None = None
    keda_installed: bool = True
    prometheus_configured: bool = True
    # The per-pod sync sidecars' health from Prometheus (sync_health.py); None: no Prometheus.
    sync_health: sync_health.Reading | None = None
    # Ready endpoints of the activator while a scale-to-zero model has no ready pod (None: not asked).
    activator_endpoints: int | None = None
    # (reason, message) when the spec could not be turned into children, or a child was refused.
    failure: tuple[str, str] | None = None


@dataclass(frozen=True)
class Cond:
    type: str
    status: bool | None
    reason: str
    message: str = ""


def _status_text(value: bool | None) -> str:
    return {True: "True", False: "False", None: "Unknown"}[value]


def merge_conditions(
    new: list[Cond], previous: list[dict[str, Any]], generation: int, now: str
) -> list[dict[str, Any]]:
    """Standard conditions; lastTransitionTime is kept while a condition's status stays the same."""
    before = {c.get("type"): c for c in previous}
    out = []
    for cond in new:
        status = _status_text(cond.status)
        old = before.get(cond.type)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        out.append(
            {
                "type": cond.type,
                "status": status,
                "reason": cond.reason,
                "message": cond.message[:32768],
                "lastTransitionTime": since or now,
                "observedGeneration": generation,
            }
        )
    return out
