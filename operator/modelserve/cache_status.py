"""The shared model cache's part of the status (pure): CacheReady, ModelSyncDegraded, status.cache.

Everything here is read from objects the operator already watches (the claim, the sync Deployment
and, while it is not ready, its pod): the operator never reads the store or the Secret. The sync
pod says what it knows through its probes and exit codes (serving-image/README.md):
- startup probe passed (container `started`): the first fill is done;
- ready: every served version is on the claim and the last poll reached the store;
- exit code 5 with a termination message: the store was unreachable for a whole poll (the cache
  keeps what it holds); other non-zero codes: a fetch failure with its one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from modelserve import api, contract, naming
from modelserve.builders import model_source

CACHE_READY: Final = "CacheReady"
MODEL_SYNC_DEGRADED: Final = "ModelSyncDegraded"

# Reasons (docs/status.md).
CACHE_READY_REASON: Final = "CacheReady"
CLAIM_PENDING: Final = "ClaimPending"
CACHE_FILLING: Final = "CacheFilling"
CACHE_FETCH_FAILED: Final = "CacheFetchFailed"
STORE_UNREACHABLE: Final = "StoreUnreachable"
SYNC_HEALTHY: Final = "SyncHealthy"


@dataclass(frozen=True)
class CacheView:
    ready: bool
    reason: str
    message: str
    degraded: bool
    degraded_message: str
    summary: dict[str, Any]


def _sync_container(pods: tuple[dict[str, Any], ...]) -> dict[str, Any] | None:
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") == naming.SYNC_CONTAINER:
                return dict(cs)
    return None


def _unscheduled(pods: tuple[dict[str, Any], ...]) -> str | None:
    for pod in pods:
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                return str(cond.get("message") or "the sync pod is not scheduled")
    return None


def _terminated(cs: dict[str, Any]) -> dict[str, Any] | None:
    term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
    if term and int(term.get("exitCode") or 0) != 0:
        return dict(term)
    return None


def _one_line(term: dict[str, Any]) -> str:
    text = str(term.get("message") or term.get("reason") or "").strip()
    return text.splitlines()[-1] if text else f"model sync exited with code {term.get('exitCode')}"


def view(
    md: api.ModelDeployment,
    claim: dict[str, Any] | None,
    sync: dict[str, Any] | None,
    sync_pods: tuple[dict[str, Any], ...],
) -> CacheView | None:
    """None without a cache."""
    cache = md.spec.model.cache
    claim_name = model_source.cache_claim(md)
    if cache is None or claim_name is None:
        return None
    summary: dict[str, Any] = {"claimName": claim_name}
    if claim is not None:
        claim_status = claim.get("status") or {}
        summary["phase"] = claim_status.get("phase", "Pending")
        if capacity := (claim_status.get("capacity") or {}).get("storage"):
            summary["capacity"] = str(capacity)

    def done(ready: bool, reason: str, message: str, degraded: str = "") -> CacheView:
        summary["state"] = reason
        return CacheView(ready, reason, message, bool(degraded), degraded, summary)

    if cache.claim_name is None:
        if claim is None:
            return done(False, CLAIM_PENDING, f"the claim {claim_name} does not exist yet")
        if summary["phase"] != "Bound":
            return done(
                False,
                CLAIM_PENDING,
                f"the claim {claim_name} is {summary['phase']}: no PersistentVolume is bound to it yet "
                "(none matches, or its StorageClass provisions only once a pod uses it)",
            )
    if sync is None:
        return done(
            False, CACHE_FILLING, f"the sync Deployment {naming.model_sync_name(md)} does not exist yet"
        )
    if md.spec.suspend:
        return done(True, CACHE_READY_REASON, "suspended: the sync is stopped, the claim keeps what it holds")
    if int((sync.get("status") or {}).get("readyReplicas") or 0) >= 1:
        return done(True, CACHE_READY_REASON, f"the claim {claim_name} holds every served version")
    cs = _sync_container(sync_pods)
    if cs is None:
        unscheduled = _unscheduled(sync_pods)
        detail = f": {unscheduled}" if unscheduled else ""
        return done(False, CACHE_FILLING, f"waiting for the sync pod{detail}")
    term = _terminated(cs)
    if term is not None and int(term.get("exitCode") or 0) == contract.EXIT_SYNC_DEGRADED:
        line = _one_line(term)
        # Its versions were on the claim when the store went away: replicas keep serving them.
        return done(
            True,
            STORE_UNREACHABLE,
            f"the claim keeps what it holds; the store is unreachable: {line}",
            degraded=line,
        )
    if term is not None:
        return done(False, CACHE_FETCH_FAILED, _one_line(term))
    if not cs.get("started"):
        return done(False, CACHE_FILLING, f"the sync pod is filling the claim {claim_name}")
    return done(False, CACHE_FILLING, "a newly served version is being fetched into the cache")


def conditions(cache: CacheView) -> list[tuple[str, bool, str, str]]:
    """(type, status, reason, message) of CacheReady and ModelSyncDegraded."""
    degraded = (
        (MODEL_SYNC_DEGRADED, True, STORE_UNREACHABLE, cache.degraded_message)
        if cache.degraded
        else (MODEL_SYNC_DEGRADED, False, SYNC_HEALTHY, "")
    )
    return [(CACHE_READY, cache.ready, cache.reason, cache.message), degraded]
