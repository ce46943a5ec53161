"""Prometheus metrics of the operator itself, served on /metrics."""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY: Final = CollectorRegistry(auto_describe=True)

RECONCILES: Final = Counter(
    "modelserve_reconciles_total",
    "Reconciles of ModelDeployments by result (ready, progressing, invalid, error) and condition reason.",
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
API_REQUESTS: Final = Counter(
    "modelserve_api_requests_total",
    "Requests the operator sent to the Kubernetes API server, by verb and resource.",
    ["verb", "resource"],
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


def count_request(verb: str, resource: str) -> None:
    API_REQUESTS.labels(verb=verb, resource=resource).inc()


def serve(port: int) -> None:
    """Starts the /metrics HTTP server in a daemon thread (port 0: off)."""
    if port:
        start_http_server(port, registry=REGISTRY)
