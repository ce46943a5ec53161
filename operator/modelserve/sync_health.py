"""Per-pod model sync health from Prometheus (pure): the query, its answer per model, the condition.

Without spec.model.cache every serving pod runs `modelserve-serving sync` as a sidecar. A store
outage after the first fetch cannot show in the pod's Ready without taking the pod out of the
Service while it still serves what is on disk, so the sidecar exports it as metrics
(serving-image/modelserve_serving/syncmetrics.py) and the model's ServiceMonitor scrapes them. The
operator reads them back with ONE cluster-wide instant query per interval (sync_health_poller.py)
and turns the answer into the ModelSyncDegraded condition of the models without a cache.

The series carry `namespace` and `service` from the scrape (prometheus-operator sets them from the
ServiceMonitor's target; the model's Service is named after the ModelDeployment), so the pair is
the ModelDeployment's key. The message holds only what stays the same while an outage lasts (pod
counts, the time of the last successful poll, the versions on disk), not the failed-poll count: a
message that changed at every poll would rewrite every degraded model's status each interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from modelserve import cache_status

Key = tuple[str, str]  # (namespace, ModelDeployment name)

STAT_LABEL: Final = "modelserve_stat"

_DEGRADED_PODS: Final = "modelserve_sync_degraded == 1"
# One query, four statistics per model told apart by a label of their own; the last two only for
# models with a degraded pod, so a healthy fleet of 2,000 models answers with 4,000 samples.
QUERY: Final = " or ".join(
    f'label_replace({expr}, "{STAT_LABEL}", "{stat}", "", "")'
    for stat, expr in (
        ("pods", "count by (namespace, service) (modelserve_sync_degraded)"),
        ("degraded", "sum by (namespace, service) (modelserve_sync_degraded)"),
        (
            "lastSuccess",
            "min by (namespace, service) "
            f"(modelserve_sync_last_success_timestamp_seconds and {_DEGRADED_PODS})",
        ),
        (
            "version",
            "count by (namespace, service, version) "
            f"(modelserve_sync_version_present and ignoring(version) {_DEGRADED_PODS})",
        ),
    )
)


@dataclass(frozen=True)
class SyncObservation:
    """What Prometheus last said about one model's sync sidecars."""

    pods: int
    degraded: int
    # Unix time of the oldest last successful poll among the degraded pods (None: never, or healthy).
    last_success: float | None = None
    # Versions on the disks of the degraded pods (what they keep serving).
    versions: tuple[int, ...] = ()


@dataclass(frozen=True)
class Reading:
    """What the status build is told for one model when a Prometheus is configured: `known` once a
    query succeeded since this replica leads (until then the stored condition stands, so an
    operator restart or failover does not flap it); `observation` None when Prometheus has no
    series of the model's sidecars (then there is no condition)."""

    known: bool
    observation: SyncObservation | None = None


PENDING: Final = Reading(known=False)


def parse(samples: Iterable[tuple[Mapping[str, str], float]]) -> dict[Key, SyncObservation]:
    """The answer to QUERY, per model."""
    pods: dict[Key, int] = {}
    degraded: dict[Key, int] = {}
    last: dict[Key, float] = {}
    versions: dict[Key, set[int]] = {}
    for labels, value in samples:
        key = (labels.get("namespace", ""), labels.get("service", ""))
        if not key[0] or not key[1]:
            continue  # not scraped through a Service (no ServiceMonitor of ours)
        stat = labels.get(STAT_LABEL)
        if stat == "pods":
            pods[key] = int(value)
        elif stat == "degraded":
            degraded[key] = int(value)
        elif stat == "lastSuccess" and value > 0:  # 0: no successful poll yet
            last[key] = value
        elif stat == "version" and labels.get("version", "").isdigit():
            versions.setdefault(key, set()).add(int(labels["version"]))
    return {
        key: SyncObservation(
            pods=count,
            degraded=min(count, degraded.get(key, 0)),
            last_success=last.get(key) if degraded.get(key, 0) else None,
            versions=tuple(sorted(versions.get(key, ()))) if degraded.get(key, 0) else (),
        )
        for key, count in pods.items()
        if count > 0
    }


def changed(old: Mapping[Key, SyncObservation], new: Mapping[Key, SyncObservation]) -> set[Key]:
    """Models whose observation differs (appeared, went, or changed)."""
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(obs: SyncObservation) -> tuple[str, bool, str, str]:
    """(type, status, reason, message) of ModelSyncDegraded from one observation."""
    if obs.degraded == 0:
        return (
            cache_status.MODEL_SYNC_DEGRADED,
            False,
            cache_status.SYNC_HEALTHY,
            f"the model sync of {'the pod' if obs.pods == 1 else f'all {obs.pods} pods'} "
            "reached the store at its last poll",
        )
    who = "the only pod" if obs.pods == 1 else f"{obs.degraded} of {obs.pods} pods"
    since = (
        f"no successful poll since {_utc(obs.last_success)}"
        if obs.last_success is not None
        else "no successful poll yet"
    )
    verb = "keeps" if obs.degraded == 1 else "keep"
    kept = f": versions {', '.join(map(str, obs.versions))}" if obs.versions else ""
    return (
        cache_status.MODEL_SYNC_DEGRADED,
        True,
        cache_status.STORE_UNREACHABLE,
        f"{who} cannot reach the model store ({since}); "
        f"{'it' if obs.degraded == 1 else 'they'} {verb} serving what is on disk{kept}",
    )
