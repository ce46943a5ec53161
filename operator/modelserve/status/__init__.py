"""Observed children + generation -> status (pure).

Every condition carries a reason from `Reason` (one per failure mode, documented in docs/status.md)
and the generation it was computed from. `lastTransitionTime` moves only when a condition's status
flips, so an unchanged world yields an identical status and the reconciler writes nothing.

The package: base (types, reasons, Observed, the merge), pods (why pods are not ready), deployment
(DeploymentReady), scaling (AutoscalerReady, scale to zero); the conditions are put together here.
"""

from __future__ import annotations

from typing import Any

from modelserve import api, cache_status, contract, naming, sync_health
from modelserve.builders.gpu import gpu_summary
from modelserve.builders.tfserving_config import served_versions_summary
from modelserve.status.base import (
    AUTOSCALER_READY,
    AVAILABLE,
    CONDITION_ORDER,
    DEPLOYMENT_READY,
    MONITORING_READY,
    PROGRESSING,
    READY,
    SERVICE_READY,
    SUSPENDED,
    TRANSIENT_REASONS,
    Cond,
    Observed,
    Reason,
    merge_conditions,
)
from modelserve.status.deployment import deployment_condition
from modelserve.status.scaling import autoscaler_condition, keda_condition, scale_to_zero_ready

__all__ = [
    "AUTOSCALER_READY",
    "AVAILABLE",
    "CONDITION_ORDER",
    "DEPLOYMENT_READY",
    "MONITORING_READY",
    "PROGRESSING",
    "READY",
    "SERVICE_READY",
    "SUSPENDED",
    "TRANSIENT_REASONS",
    "Cond",
    "Observed",
    "Reason",
    "compute_status",
    "endpoints",
    "failure_status",
    "keda_condition",
    "merge_conditions",
    "ready_condition",
]


def _service_condition(obs: Observed) -> Cond:
    if obs.service is None:
        return Cond(SERVICE_READY, False, Reason.CREATING, "the Service does not exist yet")
    return Cond(SERVICE_READY, True, Reason.CREATED, "")


def _monitoring_condition(md: api.ModelDeployment, obs: Observed) -> Cond:
    if not md.spec.monitoring.enabled:
        return Cond(MONITORING_READY, True, Reason.DISABLED, "monitoring is off")
    if not obs.monitoring_crd_installed:
        return Cond(
            MONITORING_READY,
            False,
            Reason.CRD_NOT_INSTALLED,
            "the ServiceMonitor CRD (monitoring.coreos.com/v1) is not installed; "
            "the ServiceMonitor is created once it is",
        )
    if obs.service_monitor is None:
        return Cond(MONITORING_READY, False, Reason.CREATING, "the ServiceMonitor does not exist yet")
    return Cond(
        MONITORING_READY, True, Reason.CREATED, f"scraped at :{contract.REST_PORT}{contract.METRICS_PATH}"
    )


def _sync_health_conditions(obs: Observed, previous: dict[str, Any]) -> list[Cond]:
    """ModelSyncDegraded of a model without a cache, from Prometheus (sync_health.py); Ready stays
    as it is, since the pods keep serving what is on disk."""
    reading = obs.sync_health
    if reading is None:
        return []  # no Prometheus: the ModelServeSyncDegraded alert is the only signal
    if not reading.known:
        # Not asked yet since this replica leads: the stored condition stands as it is.
        old = next(
            (
                c
                for c in previous.get("conditions") or []
                if c.get("type") == cache_status.MODEL_SYNC_DEGRADED and c.get("status") in ("True", "False")
            ),
            None,
        )
        if old is None:
            return []
        return [
            Cond(
                cache_status.MODEL_SYNC_DEGRADED,
                old["status"] == "True",
                str(old.get("reason") or ""),
                str(old.get("message") or ""),
            )
        ]
    if reading.observation is None:
        return []
    return [Cond(*sync_health.condition(reading.observation))]


def _conditions(
    md: api.ModelDeployment, obs: Observed, settled: bool = False, previous: dict[str, Any] | None = None
) -> list[Cond]:
    suspended = Cond(
        SUSPENDED,
        md.spec.suspend,
        Reason.SUSPENDED if md.spec.suspend else Reason.NOT_SUSPENDED,
        "scaled to zero; every object is kept" if md.spec.suspend else "",
    )
    if obs.failure is not None:
        reason, message = obs.failure
        unknown = [
            Cond(t, None, reason, message)
            for t in (
                AVAILABLE,
                PROGRESSING,
                DEPLOYMENT_READY,
                SERVICE_READY,
                AUTOSCALER_READY,
                MONITORING_READY,
            )
        ]
        return [Cond(READY, False, reason, message), *unknown, suspended]

    deployment = deployment_condition(md, obs, settled)
    service = _service_condition(obs)
    autoscaler = autoscaler_condition(md, obs)
    monitoring = _monitoring_condition(md, obs)
    ready_replicas = int(((obs.deployment or {}).get("status") or {}).get("readyReplicas") or 0)
    available = Cond(
        AVAILABLE,
        ready_replicas > 0,
        Reason.READY if ready_replicas > 0 else (Reason.SUSPENDED if md.spec.suspend else deployment.reason),
        f"{ready_replicas} replicas serving" if ready_replicas else "no replica is serving",
    )
    rolling = deployment.reason in TRANSIENT_REASONS
    progressing = Cond(
        PROGRESSING,
        rolling,
        deployment.reason,
        deployment.message if rolling or not deployment.status else "",
    )

    cache = cache_status.view(md, obs.cache_claim, obs.model_sync, obs.sync_pods)
    cache_conds = [Cond(*c) for c in cache_status.conditions(cache)] if cache else []
    # Only cache_conds[0] (CacheReady) can block Ready; the sidecars' health never does.
    sync_conds = [] if cache else _sync_health_conditions(obs, previous or {})
    at_zero = scale_to_zero_ready(md, obs, deployment, autoscaler, service)
    if md.spec.suspend:
        ready = Cond(READY, False, Reason.SUSPENDED, "suspended: scaled to zero, every object kept")
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
            ready = Cond(READY, True, Reason.READY, "every replica serves the model")
        else:
            ready = Cond(READY, False, blocking.reason, f"{blocking.type}: {blocking.message}")
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
        *sync_conds,
    ]


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
            _conditions(md, obs, _settled(md, previous), previous),
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
    conditions = [Cond(READY, False, reason, message)]
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(conditions, previous, generation, now),
    }
