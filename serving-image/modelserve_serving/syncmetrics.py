"""`sync`'s own Prometheus metrics: what its last poll did, for alerts and dashboards.

In per-pod mode a store outage after the first fetch cannot show in the pod's conditions without
taking the pod out of the Service (a native sidecar's readiness counts toward the pod's Ready, and
the pod still serves what is on disk). So `sync` says it here, on its own port, and the model's
ServiceMonitor scrapes it; the ModelServeSyncDegraded alert (docs/observability.md) fires on it,
and an operator with --prometheus-url reads it back as the ModelSyncDegraded condition.

Every series carries `model` (the TF Serving model name); Prometheus adds namespace, pod and service
from the target. Versions are labels on their own series, which are removed when the version goes,
so a scrape shows exactly the versions on disk now.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from . import syncstate


class SyncMetrics:
    def __init__(self, model: str, mode: str) -> None:
        self.model = model
        self.registry = CollectorRegistry()
        labels = ["model"]
        self._degraded = Gauge(
            "modelserve_sync_degraded",
            "1 while the last poll of the store failed (what is on disk stays served)",
            labels, registry=self.registry)
        self._complete = Gauge(
            "modelserve_sync_complete",
            "1 when every version the policy serves is on disk",
            labels, registry=self.registry)
        self._failures = Gauge(
            "modelserve_sync_consecutive_failures",
            "failed polls in a row (0 after a successful one)",
            labels, registry=self.registry)
        self._last_success = Gauge(
            "modelserve_sync_last_success_timestamp_seconds",
            "Unix time of the last poll that reached the store (0: none yet)",
            labels, registry=self.registry)
        self._polls = Counter(
            "modelserve_sync_polls",
            "polls of the store by result (success, failure)",
            [*labels, "result"], registry=self.registry)
        self._present = Gauge(
            "modelserve_sync_version_present",
            "1 for each version folder published on disk (TF Serving may load it)",
            [*labels, "version"], registry=self.registry)
        self._served = Gauge(
            "modelserve_sync_version_served",
            "1 for each version the policy serves, as resolved by the last successful poll",
            [*labels, "version"], registry=self.registry)
        info = Gauge(
            "modelserve_sync_info", "the sync process: its mode (sidecar or cache)",
            [*labels, "mode"], registry=self.registry)
        info.labels(model, mode).set(1)
        for result in ("success", "failure"):
            self._polls.labels(model, result)  # both series exist from the start, so rate() works
        self._versions: dict[str, set[int]] = {"present": set(), "served": set()}

    def observe(self, state: syncstate.State) -> None:
        """One poll's outcome (or the first fetch's), as recorded in the state file."""
        m = self.model
        self._degraded.labels(m).set(1 if state.degraded else 0)
        self._complete.labels(m).set(1 if state.complete else 0)
        self._failures.labels(m).set(state.consecutive_failures)
        if state.last_success is not None:
            self._last_success.labels(m).set(state.last_success)
        else:
            self._last_success.labels(m)  # exported as 0 until the first success
        self._polls.labels(m, "failure" if state.degraded else "success").inc()
        self._set_versions(self._present, "present", set(state.present))
        if not state.degraded:
            # A failed poll resolved nothing: the last resolved policy stays what is served.
            self._set_versions(self._served, "served", set(state.served))

    def _set_versions(self, gauge: Gauge, kind: str, versions: set[int]) -> None:
        for gone in self._versions[kind] - versions:
            gauge.remove(self.model, str(gone))
        for version in versions:
            gauge.labels(self.model, str(version)).set(1)
        self._versions[kind] = versions

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:  # Prometheus scrapes the pod IP
        """A daemon thread answering GET /metrics (prometheus-client's own server)."""
        start_http_server(port, addr=addr, registry=self.registry)
