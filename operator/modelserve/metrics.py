"""Prometheus metrics of the operator itself, served on /metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)

REGISTRY: Final = CollectorRegistry(auto_describe=True)
# The operator's own process (process_resident_memory_bytes, process_cpu_seconds_total, open fds,
# start time), Python's garbage collector and version: the default registry has these, ours needs
# them registered.
ProcessCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

RECONCILES: Final = Counter(
    "modelserve_reconciles_total",
    "Reconciles of ModelDeployments by result (ready, progressing, invalid, error, skipped) and reason.",
    ["result", "reason"],
    registry=REGISTRY,
)
RECONCILE_SECONDS: Final = Histogram(
    "modelserve_reconcile_duration_seconds",
    "Wall time of one reconcile, from dequeue to status written.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
MODEL_DEPLOYMENTS: Final = Gauge(
    "modelserve_modeldeployments",
    "ModelDeployments known to the operator by the status of their Ready condition.",
    ["ready"],
    registry=REGISTRY,
)
# One series per ModelDeployment (bounded by the objects that exist; removed on delete) so an alert can
# name the one that is not Ready; the reason stays in its status and Events, not in a label that would
# start a new series on every change.
MODEL_DEPLOYMENT_READY: Final = Gauge(
    "modelserve_modeldeployment_ready",
    "1 while a ModelDeployment's Ready condition is True, else 0; one series per ModelDeployment.",
    ["namespace", "modeldeployment"],
    registry=REGISTRY,
)
API_REQUESTS: Final = Counter(
    "modelserve_api_requests_total",
    "Requests the operator sent to the Kubernetes API server, by verb, resource and HTTP response code "
    "(<error> when no answer came).",
    ["verb", "resource", "code"],
    registry=REGISTRY,
)
QUEUE_DEPTH: Final = Gauge(
    "modelserve_queue_depth",
    "ModelDeployments waiting to be reconciled (due now or later).",
    registry=REGISTRY,
)

EVENTS_DROPPED: Final = Counter(
    "modelserve_events_dropped_total",
    "Kubernetes Events not posted because the operator's event queue was full.",
    registry=REGISTRY,
)

EVENTS_PENDING: Final = Gauge(
    "modelserve_events_pending",
    "Kubernetes Events recorded and not yet posted.",
    registry=REGISTRY,
)

TRACKED_OBJECTS: Final = Gauge(
    "modelserve_tracked_objects",
    "Entries the operator holds in memory, by store: records (one per ModelDeployment), children "
    "(the child cache) and queue (keys queued, delayed or in progress). All return to zero once every "
    "ModelDeployment is gone.",
    ["store"],
    registry=REGISTRY,
)

LEADER: Final = Gauge(
    "modelserve_leader",
    "1 while this replica holds the leader lease (and may write), 0 while it is a standby.",
    registry=REGISTRY,
)
LEADER_TRANSITIONS: Final = Counter(
    "modelserve_leader_transitions_total",
    "Times this replica started or stopped leading.",
    ["to"],
    registry=REGISTRY,
)

WRITES_REFUSED: Final = Counter(
    "modelserve_writes_refused_total",
    "Writes the leader-election fence refused before sending them: this replica did not hold the "
    "Lease with margin (a standby, or a leader that could not renew in time).",
    ["verb", "resource"],
    registry=REGISTRY,
)


WRITES_LATE: Final = Counter(
    "modelserve_writes_late_total",
    "Writes that passed the fence but were answered after the lease margin ran out (the process was "
    "paused or the request was slow): they may have landed after another replica took over.",
    ["verb", "resource"],
    registry=REGISTRY,
)

SYNC_HEALTH_QUERIES: Final = Counter(
    "modelserve_sync_health_queries_total",
    "Queries of Prometheus for the per-pod model sync's health (ModelSyncDegraded of models without "
    "a cache), by result (success, failure). While they fail the last answer stands.",
    ["result"],
    registry=REGISTRY,
)


def count_refused(verb: str, resource: str) -> None:
    WRITES_REFUSED.labels(verb=verb, resource=resource).inc()


def count_late(verb: str, resource: str) -> None:
    WRITES_LATE.labels(verb=verb, resource=resource).inc()


def track_store(store: str, size: Callable[[], int]) -> None:
    """Exports `size()` as modelserve_tracked_objects{store=...}, read at scrape time."""
    TRACKED_OBJECTS.labels(store=store).set_function(size)


def set_ready(namespace: str, name: str, ready: str | None) -> None:
    """Ready is "True"/"False"; None (the ModelDeployment is gone) removes its series."""
    if ready is None:
        with contextlib.suppress(KeyError):
            MODEL_DEPLOYMENT_READY.remove(namespace, name)
        return
    MODEL_DEPLOYMENT_READY.labels(namespace=namespace, modeldeployment=name).set(ready == "True")


def count_request(verb: str, resource: str, code: str) -> None:
    API_REQUESTS.labels(verb=verb, resource=resource, code=code).inc()


def serve(port: int, address: str = "0.0.0.0") -> None:
    """Starts the /metrics HTTP server in a daemon thread (port 0: off)."""
    if port:
        start_http_server(port, addr=address, registry=REGISTRY)
