"""The leader's one background task that asks Prometheus about the per-pod model syncs.

One cluster-wide instant query per interval (sync_health.QUERY), whatever the number of
ModelDeployments; only the models whose observation changed are enqueued, and the reconcile reads
the last observation when it builds the status. A failing Prometheus changes nothing: the last
answer stands (conditions do not flap), the failure is logged once per change of state and counted
in modelserve_sync_health_queries_total{result="failure"}.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from modelserve import metrics, sync_health
from modelserve.rollout import prometheus
from modelserve.sync_health import Key, Reading, SyncObservation

log = logging.getLogger(__name__)

Query = Callable[[str, str], list[tuple[dict[str, str], float]]]


def _query_vector(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
    return prometheus.query_vector(url, promql)


class SyncHealthPoller:
    def __init__(
        self,
        url: str,
        interval: float,
        *,
        is_leader: Callable[[], bool],
        enqueue: Callable[[Key], None],
        enqueue_all: Callable[[], None] = lambda: None,
        query: Query = _query_vector,
    ) -> None:
        self.url = url
        self.interval = interval
        self.is_leader = is_leader
        self.enqueue = enqueue
        self.enqueue_all = enqueue_all
        self.query = query
        # Replaced whole by each successful query (read from the reconcile threads).
        self._snapshot: Mapping[Key, SyncObservation] = {}
        self._known = False
        self._failing: str | None = None
        self._task: asyncio.Task[None] | None = None

    def reading(self, key: Key) -> Reading:
        if not self._known:
            return sync_health.PENDING
        return Reading(known=True, observation=self._snapshot.get(key))

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="modelserve-sync-health")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sync health poll failed; next attempt in %ss", self.interval)
            await asyncio.sleep(self.interval)

    async def poll(self) -> set[Key]:
        """One query (leader only); returns the keys it enqueued."""
        if not self.is_leader():
            # A standby's answer would be stale by the time it leads: it asks afresh then, and the
            # stored conditions stand until it has.
            self._known, self._snapshot = False, {}
            return set()
        try:
            samples = await asyncio.to_thread(self.query, self.url, sync_health.QUERY)
        except prometheus.PrometheusError as exc:
            metrics.SYNC_HEALTH_QUERIES.labels(result="failure").inc()
            if self._failing is None:
                log.warning(
                    "cannot ask Prometheus about the model syncs (the last answer stands): %s", exc
                )
            self._failing = str(exc)
            return set()
        metrics.SYNC_HEALTH_QUERIES.labels(result="success").inc()
        if self._failing is not None:
            log.info("Prometheus answers the model sync query again")
            self._failing = None
        return self.update(sync_health.parse(samples))

    def update(self, new: Mapping[Key, SyncObservation]) -> set[Key]:
        """Takes a new answer; enqueues the models whose observation changed (every model the first
        time: their stored conditions may be stale)."""
        first = not self._known
        keys = sync_health.changed(self._snapshot, new)
        self._snapshot, self._known = new, True
        if first:
            self.enqueue_all()
        for key in keys:
            self.enqueue(key)
        return keys
