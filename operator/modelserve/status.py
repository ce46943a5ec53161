"""Observed children + generation -> status (pure).

Every condition carries a reason from `Reason` (one per failure mode, documented in docs/status.md)
and the generation it was computed from. `lastTransitionTime` moves only when a condition's status
flips, so an unchanged world yields an identical status and the reconciler writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from modelserve import api, cache_status, contract, failures, naming
from modelserve.builders.disruption import tolerated_unavailable
from modelserve.builders.gpu import gpu_resource_name, gpu_summary
from modelserve.builders.replicas import desired_replicas
from modelserve.builders.tfserving_config import served_versions_summary

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
    # Ready endpoints of the activator while a scale-to-zero model has no ready pod (None: not asked).
    activator_endpoints: int | None = None
    # (reason, message) when the spec could not be turned into children, or a child was refused.
    failure: tuple[str, str] | None = None


@dataclass(frozen=True)
class _Cond:
    type: str
    status: bool | None
    reason: str
    message: str = ""


@dataclass
class _PodTrouble:
    reason: str
    message: str
    pods: list[str] = field(default_factory=list)


def _scheduling_trouble(message: str, gpu: api.Gpu | None) -> tuple[str, str]:
    """The scheduler's refusal as a reason; GPU trouble names the resource and the product label."""
    missing = failures.missing_reference(message)
    if missing:
        return missing, message
    # The scheduler says "Insufficient <resource>" for a shortage; a GPU taint also names
    # nvidia.com/gpu ("had untolerated taint {nvidia.com/gpu: ...}") but is not a shortage.
    shortages = {"Insufficient nvidia.com/gpu", f"Insufficient {naming.MIG_RESOURCE_PREFIX}"}
    if gpu is not None:
        shortages.add(f"Insufficient {gpu_resource_name(gpu)}")
    if any(shortage in message for shortage in shortages):
        if gpu is None:
            return Reason.INSUFFICIENT_GPU, message
        product = f" with {naming.GPU_PRODUCT_LABEL}={gpu.product}" if gpu.product else ""
        return (
            Reason.INSUFFICIENT_GPU,
            f"no node{product} has {gpu.count} free {gpu_resource_name(gpu)}: {message}",
        )
    if gpu is not None and gpu.product and "didn't match Pod's node affinity/selector" in message:
        return (
            Reason.NO_MATCHING_GPU_NODE,
            f"no node with room for the pod is labelled {naming.GPU_PRODUCT_LABEL}={gpu.product}: {message}",
        )
    return Reason.UNSCHEDULABLE, message


def _pod_trouble(
    pods: tuple[dict[str, Any], ...], gpu: api.Gpu | None, events: tuple[dict[str, Any], ...] = ()
) -> _PodTrouble | None:
    """The most telling failure among the pods, in order of what a person must fix first."""
    found: dict[str, _PodTrouble] = {}

    def note(reason: str, message: str, pod: str) -> None:
        found.setdefault(reason, _PodTrouble(reason, message)).pods.append(pod)

    # A GPU rollout replaces pods in place (no surge): the new pod is short of GPUs until the old
    # one has terminated and given its GPU back. That is the rollout, not a shortage.
    terminating = [
        p["metadata"].get("name", "?") for p in pods if (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    names = set()
    for pod in pods:
        name = pod.get("metadata", {}).get("name", "?")
        names.add(name)
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                message = cond.get("message") or "the scheduler found no node for the pod"
                reason, text = _scheduling_trouble(message, gpu)
                if reason == Reason.INSUFFICIENT_GPU and terminating:
                    continue
                note(reason, text, name)
        for cs in status.get("initContainerStatuses") or []:
            state = cs.get("state") or {}
            last = cs.get("lastState") or {}
            terminated = state.get("terminated") or last.get("terminated")
            # The sync sidecar restarts after a failed first fetch; once started, an old failure in
            # lastState is history, not the reason the pod is unready.
            fetcher = cs.get("name") == naming.FETCH_CONTAINER or (
                cs.get("name") == naming.SYNC_CONTAINER and not cs.get("started")
            )
            if fetcher and terminated and terminated.get("exitCode", 0) != 0:
                reason_text = (terminated.get("message") or terminated.get("reason") or "").strip()
                note(
                    Reason.MODEL_FETCH_FAILED,
                    reason_text.splitlines()[-1] if reason_text else "model fetch failed",
                    name,
                )
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
                note(Reason.IMAGE_PULL_FAILED, waiting.get("message") or waiting["reason"], name)
            elif waiting.get("reason") == "CrashLoopBackOff" and cs.get("name") not in (
                naming.FETCH_CONTAINER,
                naming.SYNC_CONTAINER,
            ):
                note(Reason.CRASH_LOOP, waiting.get("message") or "container keeps crashing", name)
            elif waiting.get("reason") == "CreateContainerConfigError":
                # An env var from a Secret or ConfigMap (or one of its keys) that does not exist.
                message = waiting.get("message") or ""
                missing = failures.missing_reference(message)
                if missing:
                    note(missing, f"container {cs.get('name')}: {message}", name)
    for event in events:
        # The kubelet cannot mount a Secret or ConfigMap volume: the pod never starts, and only the
        # FailedMount Event says why.
        pod = (event.get("involvedObject") or {}).get("name", "")
        missing = failures.missing_reference(str(event.get("message") or ""))
        if event.get("reason") == "FailedMount" and pod in names and missing:
            note(missing, str(event.get("message")), pod)

    for reason in (
        Reason.CLAIM_NOT_FOUND,
        Reason.SECRET_NOT_FOUND,
        Reason.CONFIG_MAP_NOT_FOUND,
        Reason.INSUFFICIENT_GPU,
        Reason.NO_MATCHING_GPU_NODE,
        Reason.UNSCHEDULABLE,
        Reason.IMAGE_PULL_FAILED,
        Reason.MODEL_FETCH_FAILED,
        Reason.CRASH_LOOP,
    ):
        if reason in found:
            return found[reason]
    return None


def _ready_pods(pods: tuple[dict[str, Any], ...]) -> int:
    return sum(
        1
        for pod in pods
        if not (pod.get("metadata") or {}).get("deletionTimestamp")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )
    )


def _deployment_condition(md: api.ModelDeployment, obs: Observed, settled: bool = False) -> _Cond:
    """`settled`: the Deployment was rolled out at this generation already (the last status said so)."""
    dep = obs.deployment
    if dep is None:
        return _Cond(DEPLOYMENT_READY, False, Reason.CREATING, "the Deployment does not exist yet")
    status = dep.get("status") or {}
    desired = desired_replicas(md, dep)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    observed_current = int(status.get("observedGeneration") or 0) >= int(
        dep["metadata"].get("generation") or 0
    )
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return _Cond(DEPLOYMENT_READY, False, Reason.PROGRESS_DEADLINE_EXCEEDED, cond.get("message", ""))
    done = observed_current and updated >= desired and ready >= desired and total == updated
    if done:
        if desired == 0 and not md.spec.suspend:
            return _Cond(DEPLOYMENT_READY, True, Reason.SCALED_TO_ZERO, "scaled to zero by the autoscaler")
        if desired == 0:
            return _Cond(DEPLOYMENT_READY, True, Reason.SUSPENDED, "scaled to zero")
        return _Cond(DEPLOYMENT_READY, True, Reason.ROLLED_OUT, f"{ready}/{desired} replicas ready")
    # The pods (read when the Deployment is short of ready replicas) may be ahead of its status: a
    # replacement can be Ready before the Deployment controller counts it.
    missing = desired - max(ready, _ready_pods(obs.pods))
    # Only at a generation that was rolled out before (settled): a spec change or a scale-up is
    # never excused. (The Deployment's counts move in several steps while a pod is replaced, with
    # old and new pods counted apart for a moment, so they cannot tell a replacement from a roll.)
    if settled and observed_current and missing <= tolerated_unavailable(md, desired):
        # A drain or a lost node took pods that are being replaced, no more than the disruption
        # budget allows: still serving, as the Deployment's own Available condition would say.
        return _Cond(
            DEPLOYMENT_READY,
            True,
            Reason.ROLLED_OUT,
            f"{desired - max(missing, 0)}/{desired} replicas ready"
            + (f" ({missing} being replaced, within the disruption budget)" if missing > 0 else ""),
        )
    for cond in status.get("conditions") or []:
        # The ReplicaSet cannot create pods at all: admission refused them (a PriorityClass that does
        # not exist, a quota, Pod Security); without this the rollout looked merely slow forever.
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return _Cond(DEPLOYMENT_READY, False, Reason.POD_CREATE_FAILED, cond.get("message", ""))
    trouble = _pod_trouble(obs.pods, md.spec.gpu, obs.pod_events)
    if trouble:
        pods = ", ".join(sorted(trouble.pods)[:3])
        return _Cond(DEPLOYMENT_READY, False, trouble.reason, f"{trouble.message} (pod {pods})")
    return _Cond(
        DEPLOYMENT_READY,
        False,
        Reason.ROLLING_OUT,
        f"{ready}/{desired} replicas ready, {updated}/{desired} updated",
    )


def _service_condition(obs: Observed) -> _Cond:
    if obs.service is None:
        return _Cond(SERVICE_READY, False, Reason.CREATING, "the Service does not exist yet")
    return _Cond(SERVICE_READY, True, Reason.CREATED, "")


def _autoscaler_condition(md: api.ModelDeployment, obs: Observed) -> _Cond:
    if md.spec.autoscaling is None:
        return _Cond(AUTOSCALER_READY, True, Reason.NOT_REQUESTED, "autoscaling is off")
    if md.spec.suspend:
        # The HPA is kept; the HPA controller does not scale a Deployment at zero replicas.
        return _Cond(
            AUTOSCALER_READY, True, Reason.SUSPENDED, "the autoscaler is kept and idle while scaled to zero"
        )
    if md.spec.autoscaling.uses_keda:
        return keda_condition(md, obs)
    if obs.hpa is None:
        return _Cond(
            AUTOSCALER_READY, False, Reason.CREATING, "the HorizontalPodAutoscaler does not exist yet"
        )
    conditions = {c.get("type"): c for c in (obs.hpa.get("status") or {}).get("conditions") or []}
    able = conditions.get("AbleToScale")
    if able and able.get("status") == "False":
        return _Cond(AUTOSCALER_READY, False, Reason.AUTOSCALER_FAILED, able.get("message", ""))
    active = conditions.get("ScalingActive")
    message = ""
    if active and active.get("status") == "False":
        # Typically no metrics yet (metrics-server missing or warming up): the HPA exists and keeps
        # minReplicas, so serving is fine; say so instead of failing the roll-up.
        message = f"not scaling yet: {active.get('message', '')}".strip()
    return _Cond(AUTOSCALER_READY, True, Reason.CREATED, message)


def keda_condition(md: api.ModelDeployment, obs: Observed) -> _Cond:
    """AutoscalerReady of a ScaledObject: what KEDA says about it, or why there is none."""
    assert md.spec.autoscaling is not None
    floor = max(md.spec.autoscaling.min_replicas, 1)
    if not obs.keda_installed:
        return _Cond(
            AUTOSCALER_READY,
            False,
            Reason.KEDA_NOT_INSTALLED,
            "KEDA's ScaledObject CRD (keda.sh/v1alpha1) is not installed: load targets and scale to "
            f"zero need KEDA; the model is served at {floor} replica(s) meanwhile",
        )
    if md.spec.autoscaling.load_targets and not obs.prometheus_configured:
        return _Cond(
            AUTOSCALER_READY,
            False,
            Reason.PROMETHEUS_NOT_CONFIGURED,
            "load targets need Prometheus: start the operator with --prometheus-url (chart value "
            f"autoscaling.prometheusUrl); the model is served at {floor} replica(s) meanwhile",
        )
    if obs.scaled_object is None:
        return _Cond(AUTOSCALER_READY, False, Reason.CREATING, "the ScaledObject does not exist yet")
    conditions = {c.get("type"): c for c in (obs.scaled_object.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready") or {}
    if ready.get("status") == "False":
        return _Cond(AUTOSCALER_READY, False, Reason.AUTOSCALER_FAILED, f"KEDA: {ready.get('message', '')}")
    if ready.get("status") != "True":
        return _Cond(AUTOSCALER_READY, False, Reason.CREATING, "waiting for KEDA to take the ScaledObject")
    hpa_conditions = {
        c.get("type"): c for c in ((obs.keda_hpa or {}).get("status") or {}).get("conditions") or []
    }
    scaling = hpa_conditions.get("ScalingActive") or {}
    if scaling.get("status") == "False" and scaling.get("reason") != "ScalingDisabled":
        # KEDA's metrics API or Prometheus is down: the HPA keeps the current replicas.
        return _Cond(
            AUTOSCALER_READY,
            False,
            Reason.METRICS_UNAVAILABLE,
            f"replicas are kept while the autoscaler cannot read its metrics: {scaling.get('message', '')}",
        )
    fallback = conditions.get("Fallback") or {}
    if fallback.get("status") == "True":
        return _Cond(AUTOSCALER_READY, True, Reason.CREATED, f"KEDA fallback: {fallback.get('message', '')}")
    active = conditions.get("Active") or {}
    return _Cond(AUTOSCALER_READY, True, Reason.CREATED, f"KEDA: {active.get('message', '')}".strip())


def _scale_to_zero_ready(
    md: api.ModelDeployment, obs: Observed, deployment: _Cond, autoscaler: _Cond, service: _Cond
) -> _Cond | None:
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
        return _Cond(READY, False, blocking.reason, f"{blocking.type}: {blocking.message}")
    if not obs.activator_endpoints:
        return _Cond(
            READY,
            False,
            Reason.ACTIVATOR_UNAVAILABLE,
            "the model has no ready pod and the activator has no ready endpoint to hold requests",
        )
    if deployment.reason == Reason.SCALED_TO_ZERO:
        return _Cond(
            READY,
            True,
            Reason.SCALED_TO_ZERO,
            "scaled to zero: the next request is held by the activator while a replica starts",
        )
    return _Cond(READY, True, Reason.WAKING, "a replica is starting; the activator holds requests meanwhile")


def _monitoring_condition(md: api.ModelDeployment, obs: Observed) -> _Cond:
    if not md.spec.monitoring.enabled:
        return _Cond(MONITORING_READY, True, Reason.DISABLED, "monitoring is off")
    if not obs.monitoring_crd_installed:
        return _Cond(
            MONITORING_READY,
            False,
            Reason.CRD_NOT_INSTALLED,
            "the ServiceMonitor CRD (monitoring.coreos.com/v1) is not installed; "
            "the ServiceMonitor is created once it is",
        )
    if obs.service_monitor is None:
        return _Cond(MONITORING_READY, False, Reason.CREATING, "the ServiceMonitor does not exist yet")
    return _Cond(
        MONITORING_READY, True, Reason.CREATED, f"scraped at :{contract.REST_PORT}{contract.METRICS_PATH}"
    )


def _conditions(md: api.ModelDeployment, obs: Observed, settled: bool = False) -> list[_Cond]:
    suspended = _Cond(
        SUSPENDED,
        md.spec.suspend,
        Reason.SUSPENDED if md.spec.suspend else Reason.NOT_SUSPENDED,
        "scaled to zero; every object is kept" if md.spec.suspend else "",
    )
    if obs.failure is not None:
        reason, message = obs.failure
        unknown = [
            _Cond(t, None, reason, message)
            for t in (
                AVAILABLE,
                PROGRESSING,
                DEPLOYMENT_READY,
                SERVICE_READY,
                AUTOSCALER_READY,
                MONITORING_READY,
            )
        ]
        return [_Cond(READY, False, reason, message), *unknown, suspended]

    deployment = _deployment_condition(md, obs, settled)
    service = _service_condition(obs)
    autoscaler = _autoscaler_condition(md, obs)
    monitoring = _monitoring_condition(md, obs)
    ready_replicas = int(((obs.deployment or {}).get("status") or {}).get("readyReplicas") or 0)
    available = _Cond(
        AVAILABLE,
        ready_replicas > 0,
        Reason.READY if ready_replicas > 0 else (Reason.SUSPENDED if md.spec.suspend else deployment.reason),
        f"{ready_replicas} replicas serving" if ready_replicas else "no replica is serving",
    )
    rolling = deployment.reason in TRANSIENT_REASONS
    progressing = _Cond(
        PROGRESSING,
        rolling,
        deployment.reason,
        deployment.message if rolling or not deployment.status else "",
    )

    cache = cache_status.view(md, obs.cache_claim, obs.model_sync, obs.sync_pods)
    cache_conds = [_Cond(*c) for c in cache_status.conditions(cache)] if cache else []
    at_zero = _scale_to_zero_ready(md, obs, deployment, autoscaler, service)
    if md.spec.suspend:
        ready = _Cond(READY, False, Reason.SUSPENDED, "suspended: scaled to zero, every object kept")
    elif at_zero is not None:
        ready = at_zero
    else:
        # Unreadable metrics stop scaling, not serving: the replicas stay (AutoscalerReady says why).
        blocking = next(
            (
                c
                for c in (deployment, service, autoscaler)
                if not c.status and c.reason != Reason.METRICS_UNAVAILABLE
            ),
            None,
        )
        if blocking is deployment and cache_conds and not cache_conds[0].status:
            # Replicas wait for the cache: its reason (ClaimPending, CacheFetchFailed) says why.
            blocking = cache_conds[0]
        if blocking is None:
            ready = _Cond(READY, True, Reason.READY, "every replica serves the model")
        else:
            ready = _Cond(READY, False, blocking.reason, f"{blocking.type}: {blocking.message}")
    return [
        ready,
        available,
        progressing,
        deployment,
        service,
        autoscaler,
        monitoring,
        suspended,
        *cache_conds,
    ]


def _status_text(value: bool | None) -> str:
    return {True: "True", False: "False", None: "Unknown"}[value]


def merge_conditions(
    new: list[_Cond], previous: list[dict[str, Any]], generation: int, now: str
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


def endpoints(md: api.ModelDeployment) -> dict[str, str]:
    host = f"{naming.service_name(md)}.{md.namespace}.svc"
    return {
        "rest": f"http://{host}:{contract.REST_PORT}/v1/models/{md.model_name}",
        "grpc": f"{host}:{contract.GRPC_PORT}",
    }


def compute_status(
    md: api.ModelDeployment, obs: Observed, previous: dict[str, Any] | None, now: str
) -> dict[str, Any]:
    """The whole status subresource for `md` given what was observed."""
    previous = previous or {}
    dep_status = ((obs.deployment or {}).get("status")) or {}
    status: dict[str, Any] = {
        "observedGeneration": md.generation,
        "replicas": int(dep_status.get("replicas") or 0),
        "readyReplicas": int(dep_status.get("readyReplicas") or 0),
        "updatedReplicas": int(dep_status.get("updatedReplicas") or 0),
        "selector": naming.label_selector(md),
        "endpoints": endpoints(md),
        "modelName": md.model_name,
        "modelVersions": served_versions_summary(md),
        "conditions": merge_conditions(
            _conditions(md, obs, _settled(md, previous)),
            list(previous.get("conditions") or []),
            md.generation,
            now,
        ),
    }
    gpu = gpu_summary(md)
    if gpu:
        status["gpu"] = gpu
    cache = cache_status.view(md, obs.cache_claim, obs.model_sync, obs.sync_pods)
    if cache is not None:
        status["cache"] = cache.summary
        status["lastSyncError"] = cache.degraded_message or (
            cache.message if cache.reason == cache_status.CACHE_FETCH_FAILED else ""
        )
    else:
        # The status is written as a merge patch: null removes what a removed cache left behind.
        for key in ("cache", "lastSyncError"):
            if previous.get(key) is not None:
                status[key] = None
    return status


def _settled(md: api.ModelDeployment, previous: dict[str, Any]) -> bool:
    """Whether the last status had the Deployment rolled out at this very generation."""
    return any(
        c.get("type") == DEPLOYMENT_READY
        and c.get("status") == "True"
        and c.get("observedGeneration") == md.generation
        for c in previous.get("conditions") or []
    )


def ready_condition(status: dict[str, Any] | None) -> dict[str, Any] | None:
    return next((c for c in (status or {}).get("conditions") or [] if c.get("type") == READY), None)


def failure_status(body: dict[str, Any], reason: str, message: str, now: str) -> dict[str, Any]:
    """Status for a body that could not even be parsed: only what is certain is reported."""
    metadata = body.get("metadata") or {}
    generation = int(metadata.get("generation") or 0)
    previous = list(((body.get("status") or {}).get("conditions")) or [])
    conditions = [_Cond(READY, False, reason, message)]
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(conditions, previous, generation, now),
    }
