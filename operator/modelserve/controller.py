"""The running controller: what kopf's watches feed, the work queue, retries, resync and health.

kopf owns the watch streams (reconnects, bookmarks, namespaces); every event only updates an
in-memory view and enqueues the owning ModelDeployment. Reconciles are level-triggered from that
view, so no kopf handler state (annotations, finalizers) is ever written onto user objects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from modelserve import metrics
from modelserve.events import EventRecorder
from modelserve.kube import Kube, KubeError, Transient
from modelserve.reconcile import ChildCache, Key, Reconciler, slim
from modelserve.settings import Settings
from modelserve.workqueue import WorkQueue

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0


@dataclass
class WatchHealth:
    """Detects a watch that silently stopped delivering: the resync LIST sees a newer object than any
    event did, for longer than the allowed stall."""

    stall_seconds: float
    seen_rv: dict[Key, str] = field(default_factory=dict)
    lagging_since: dict[Key, float] = field(default_factory=dict)

    def on_event(self, key: Key, rv: str) -> None:
        self.seen_rv[key] = rv
        self.lagging_since.pop(key, None)

    def on_list(self, listed: dict[Key, str], now: float) -> None:
        for key, rv in listed.items():
            if self.seen_rv.get(key) == rv:
                self.lagging_since.pop(key, None)
            else:
                self.lagging_since.setdefault(key, now)
        for key in list(self.lagging_since):
            if key not in listed:
                self.lagging_since.pop(key, None)

    def problem(self, now: float) -> str | None:
        stalled = [k for k, since in self.lagging_since.items() if now - since > self.stall_seconds]
        if stalled:
            ns, name = stalled[0]
            return (
                f"watch stalled: {len(stalled)} ModelDeployments changed without an event (e.g. {ns}/{name})"
            )
        return None


class Controller:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self.kube = kube
        self.settings = settings
        self.cache = ChildCache()
        self.bodies: dict[Key, dict[str, Any]] = {}
        self._bodies_lock = threading.Lock()
        self.failures: dict[Key, int] = {}
        self.ready: dict[Key, str] = {}
        for value in ("True", "False"):  # this controller's counts start from zero, both exported
            metrics.MODEL_DEPLOYMENTS.labels(ready=value).set(0)
        self.health = WatchHealth(settings.watch_stall_seconds)
        self._monitoring_crd = False
        self.events = EventRecorder(kube.post_event, on_dropped=metrics.EVENTS_DROPPED.inc)
        metrics.EVENTS_PENDING.set_function(self.events.pending)
        self.reconciler = Reconciler(
            kube, settings, self.cache, lambda: self._monitoring_crd, record_event=self.events.record
        )
        self.queue: WorkQueue[Key] = WorkQueue(
            self._process, workers=settings.workers, on_depth=metrics.QUEUE_DEPTH.set
        )
        self._resync_task: asyncio.Task[None] | None = None
        # Reconciles block on HTTP; they get threads of their own so nothing else (kopf's sync
        # machinery, the default executor) queues behind them.
        self._threads = concurrent.futures.ThreadPoolExecutor(
            settings.workers, thread_name_prefix="reconcile"
        )
        self._progress_polls: dict[Key, int] = {}

    # --- lifecycle ---------------------------------------------------------------------------------

    async def discover(self) -> None:
        """Probes optional APIs once at start-up; the CRD watch and resync keep it current."""
        self._monitoring_crd = await asyncio.to_thread(
            self.kube.has_resource, "monitoring.coreos.com/v1", "servicemonitors"
        )

    def start(self) -> None:
        self.events.start()
        self.queue.start()
        self._resync_task = asyncio.create_task(self._resync_loop(), name="modelserve-resync")

    async def stop(self) -> None:
        if self._resync_task:
            self._resync_task.cancel()
        await self.queue.stop()
        self._threads.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self.events.stop)

    # --- events ------------------------------------------------------------------------------------

    def on_model_deployment(self, event_type: str | None, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED":
            with self._bodies_lock:
                self.bodies.pop(key, None)
            self.queue.forget(key)
            self.reconciler.forget(*key)
            self._progress_polls.pop(key, None)
            self.failures.pop(key, None)
            self._set_ready(key, None)
            return
        with self._bodies_lock:
            self.bodies[key] = slim(body)
        self.health.on_event(key, str(meta.get("resourceVersion", "")))
        self.queue.add(key)

    def on_child(self, event_type: str | None, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        if event_type == "DELETED":
            self.cache.forget(body.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))
        else:
            self.cache.put(body)
        owner = next(
            (
                ref.get("name")
                for ref in meta.get("ownerReferences") or []
                if ref.get("controller") and ref.get("kind") == "ModelDeployment"
            ),
            None,
        )
        if owner:
            self.queue.add((meta.get("namespace", ""), owner))

    def on_monitoring_crd(self, installed: bool) -> None:
        if installed == self._monitoring_crd:
            return
        log.info("ServiceMonitor CRD %s", "installed" if installed else "removed")
        self._monitoring_crd = installed
        self.enqueue_all()

    def enqueue_all(self) -> None:
        with self._bodies_lock:
            keys = list(self.bodies)
        for key in keys:
            self.queue.add(key)

    # --- processing --------------------------------------------------------------------------------

    async def _process(self, key: Key) -> float | None:
        with self._bodies_lock:
            body = self.bodies.get(key)
        if body is None:
            return None
        started = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(self._threads, self.reconciler.reconcile, body)
        except Transient as exc:
            return self._retry(key, "Transient", f"{exc.status} {exc.reason}: {exc.message}")
        except KubeError as exc:
            return self._retry(key, "APIError", f"{exc.status} {exc.reason}: {exc.message}")
        except Exception as exc:
            log.exception("reconcile of %s/%s failed", *key)
            return self._retry(key, "Error", repr(exc))
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        metrics.RECONCILES.labels(result=outcome.result, reason=outcome.reason).inc()
        self.failures.pop(key, None)
        self._set_ready(key, "True" if outcome.result == "ready" else "False")
        if outcome.requeue_after is None:
            self._progress_polls.pop(key, None)
            return None
        # Polls for pod-level trouble back off (5 s, 10 s, ... 60 s): a slow rollout of many objects
        # must not flood the queue.
        polls = self._progress_polls.get(key, 0)
        self._progress_polls[key] = polls + 1
        return float(min(MAX_BACKOFF, outcome.requeue_after * 2 ** min(polls, 6)))

    def _retry(self, key: Key, reason: str, message: str) -> float:
        attempts = self.failures.get(key, 0) + 1
        self.failures[key] = attempts
        delay = min(MAX_BACKOFF, self.settings.retry_delay_seconds * float(2 ** min(attempts - 1, 10)))
        delay *= random.uniform(0.8, 1.2)  # spread retries of many objects after an API outage
        metrics.RECONCILES.labels(result="error", reason=reason).inc()
        log.warning(
            "reconcile of %s/%s failed (%s), retry %d in %.1fs: %s", *key, reason, attempts, delay, message
        )
        return delay

    def _set_ready(self, key: Key, value: str | None) -> None:
        """Keeps the ModelDeployments-by-Ready gauge current in O(1) per reconcile."""
        old = self.ready.pop(key, None)
        if value is not None:
            self.ready[key] = value
        if old != value:
            if old is not None:
                metrics.MODEL_DEPLOYMENTS.labels(ready=old).dec()
            if value is not None:
                metrics.MODEL_DEPLOYMENTS.labels(ready=value).inc()

    # --- resync and health -------------------------------------------------------------------------

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            try:
                await self.resync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("resync failed; next attempt in %ss", self.settings.resync_seconds)

    async def resync(self) -> None:
        """Re-reads every ModelDeployment with one LIST (independent of the watch) and enqueues each."""
        namespaces = self.settings.namespaces or (None,)
        listed: dict[Key, str] = {}
        with self._bodies_lock:
            known = dict(self.bodies)
        for ns in namespaces:
            items = await asyncio.to_thread(self.kube.list, "ModelDeployment", ns)
            for item in items:
                meta = item["metadata"]
                key = (meta["namespace"], meta["name"])
                listed[key] = str(meta.get("resourceVersion", ""))
                with self._bodies_lock:
                    current = self.bodies.get(key)
                    if current is None or _rv(current) < _rv(item):
                        item.setdefault("apiVersion", "modelserve.dev/v1alpha1")
                        item.setdefault("kind", "ModelDeployment")
                        self.bodies[key] = slim(item)
                self.queue.add(key)
        self._forget_unlisted(known, listed)
        self.health.on_list(listed, time.monotonic())
        self._monitoring_crd = await asyncio.to_thread(
            self.kube.has_resource, "monitoring.coreos.com/v1", "servicemonitors"
        )

    def _forget_unlisted(self, known: dict[Key, dict[str, Any]], listed: dict[Key, str]) -> None:
        """Forgets ModelDeployments that are gone although no DELETED event said so.

        kopf re-lists after a broken watch without reporting what disappeared meanwhile (found by
        the churn test): a ghost body stayed, every child event re-applied its children and the
        garbage collector deleted them again, forever. A body known before the LIST, absent from
        it and not replaced since (by an event for a new object of the same name) is gone."""
        for key, body in known.items():
            if key in listed:
                continue
            with self._bodies_lock:
                unchanged = self.bodies.get(key) is body
            if unchanged:
                log.info("forgetting %s/%s: gone from the API server without a DELETED event", *key)
                self.on_model_deployment("DELETED", body)

    def liveness_problem(self) -> str | None:
        return self.health.problem(time.monotonic())


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (KeyError, ValueError):
        return 0


__all__ = ["Controller", "WatchHealth"]
