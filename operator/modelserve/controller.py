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
import time
from typing import Any

from modelserve import leader, logs, memory, metrics, naming
from modelserve.childcache import ChildCache, slim
from modelserve.events import EventRecorder
from modelserve.kube import Kube, KubeError, NotLeader, Transient
from modelserve.leader import LeaderElector
from modelserve.reconcile import Reconciler
from modelserve.records import Key, Record, Records, absent_key
from modelserve.settings import Settings
from modelserve.sync_health_poller import SyncHealthPoller
from modelserve.workqueue import WorkQueue

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0


class WatchHealth:
    """Detects a watch that silently stopped delivering: the resync LIST sees a newer object than any
    event did, for longer than the allowed stall. Its state lives in the records."""

    def __init__(self, stall_seconds: float, records: Records) -> None:
        self.stall_seconds = stall_seconds
        self.records = records

    def on_event(self, record: Record, rv: str) -> None:
        record.seen_rv = rv
        record.lagging_since = None

    def on_list(self, listed: dict[Key, str], now: float) -> None:
        for key, record in self.records.items():
            rv = listed.get(key)
            if rv is None or record.seen_rv == rv:
                record.lagging_since = None
            elif record.lagging_since is None:
                record.lagging_since = now

    def lagging(self) -> dict[Key, float]:
        return {k: r.lagging_since for k, r in self.records.items() if r.lagging_since is not None}

    def problem(self, now: float) -> str | None:
        stalled = [k for k, since in self.lagging().items() if now - since > self.stall_seconds]
        if stalled:
            ns, name = stalled[0]
            return (
                f"watch stalled: {len(stalled)} ModelDeployments changed without an event (e.g. {ns}/{name})"
            )
        return None


class Controller:
    def __init__(self, kube: Kube, settings: Settings, identity: str = "") -> None:
        self.kube = kube
        self.settings = settings
        self.cache = ChildCache()
        # Everything per ModelDeployment, in one place with one forget (records.py).
        self.records = Records()
        for value in ("True", "False"):  # this controller's counts start from zero, both exported
            metrics.MODEL_DEPLOYMENTS.labels(ready=value).set(0)
        self.health = WatchHealth(settings.watch_stall_seconds, self.records)
        self._monitoring_crd = False
        self._keda_crd = False
        self.events = EventRecorder(kube.post_event, on_dropped=metrics.EVENTS_DROPPED.inc)
        # Per-pod model sync health (ModelSyncDegraded without a cache) needs a Prometheus.
        self.sync_health: SyncHealthPoller | None = None
        if settings.prometheus_url:
            self.sync_health = SyncHealthPoller(
                settings.prometheus_url,
                settings.sync_health_seconds,
                is_leader=lambda: self.role == "leader",
                enqueue=self._enqueue_known,
                enqueue_all=self.enqueue_all,
            )
        metrics.EVENTS_PENDING.set_function(self.events.pending)
        self.reconciler = Reconciler(
            kube,
            settings,
            self.cache,
            lambda: self._monitoring_crd,
            record_event=self.events.record,
            records=self.records,
            keda_installed=lambda: self._keda_crd,
            sync_health=self.sync_health.reading if self.sync_health is not None else None,
        )
        self.queue: WorkQueue[Key] = WorkQueue(
            self._process, workers=settings.workers, on_depth=metrics.QUEUE_DEPTH.set
        )
        self._resync_task: asyncio.Task[None] | None = None
        self.trimmer = memory.Trimmer()
        self._trim_task: asyncio.Task[None] | None = None
        # Reconciles block on HTTP; they get threads of their own so nothing else (kopf's sync
        # machinery, the default executor) queues behind them.
        self._threads = concurrent.futures.ThreadPoolExecutor(
            settings.workers, thread_name_prefix="reconcile"
        )
        # With leader election the queue stays held (keys collect, nothing is reconciled) until this
        # replica holds the Lease; every write is fenced on it in kube.py.
        self.elector: LeaderElector | None = None
        if settings.leader_election:
            self.elector = LeaderElector(
                kube,
                namespace=leader.lease_namespace(settings),
                name=settings.lease_name,
                identity=identity or leader.identity(settings),
                timing=leader.Timing.of(settings),
                on_started=self._started_leading,
                on_stopped=self._stopped_leading,
            )
            kube.may_write = self.elector.may_write
            self.queue.hold()
        else:
            metrics.LEADER.set(1)
        metrics.track_store("records", self.records.__len__)
        metrics.track_store("children", self.cache.__len__)
        metrics.track_store("queue", self.queue.tracked)

    # --- lifecycle ---------------------------------------------------------------------------------

    async def discover(self) -> None:
        """Probes optional APIs once at start-up; the CRD watch and resync keep it current."""
        self._monitoring_crd = await asyncio.to_thread(
            self.kube.has_resource, "monitoring.coreos.com/v1", "servicemonitors"
        )
        self._keda_crd = await asyncio.to_thread(self.kube.has_resource, "keda.sh/v1alpha1", "scaledobjects")

    def start(self) -> None:
        self.events.start()
        self.queue.start()
        if self.elector is not None:
            self.elector.start()
        self._resync_task = asyncio.create_task(self._resync_loop(), name="modelserve-resync")
        self._trim_task = asyncio.create_task(self._trim_loop(), name="modelserve-trim")
        if self.sync_health is not None:
            self.sync_health.start()

    async def stop(self) -> None:
        for task in (self._resync_task, self._trim_task):
            if task:
                task.cancel()
        if self.sync_health is not None:
            self.sync_health.stop()
        await self.queue.stop()
        if self.elector is not None:
            await self.elector.stop()
        self._threads.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self.events.stop)

    # --- events ------------------------------------------------------------------------------------

    def on_model_deployment(self, event_type: str | None, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event_type == "DELETED":
            self.forget(key)
            return
        record = self.records.ensure(key)
        record.body = slim(body)
        self.health.on_event(record, str(meta.get("resourceVersion", "")))
        self.queue.add(key)

    def forget(self, key: Key) -> None:
        """Everything known about a ModelDeployment goes, in one step (its children's cache entries
        go with their own DELETED events)."""
        record = self.records.forget(key)
        self.queue.forget(key)
        self.trimmer.forgot()
        if record is not None and record.ready is not None:
            metrics.MODEL_DEPLOYMENTS.labels(ready=record.ready).dec()
        metrics.set_ready(*key, None)

    def on_child(self, event_type: str | None, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        kind = body.get("kind", "")
        if event_type == "DELETED":
            self.cache.forget(kind, meta.get("namespace", ""), meta.get("name", ""))
            self.trimmer.forgot()
        else:
            self.cache.put(body)
        owner = next(
            (
                ref.get("name")
                for ref in meta.get("ownerReferences") or []
                # KEDA's HPA (it carries our labels) belongs to the ScaledObject of the same name.
                if ref.get("controller") and ref.get("kind") in ("ModelDeployment", "ScaledObject")
            ),
            None,
        )
        if owner:
            key = (meta.get("namespace", ""), owner)
            record = self.records.get(key)
            if record is not None:
                record.absent.discard(absent_key(kind, meta.get("name", "")))
            self.queue.add(key)

    def on_sync_pod(self, body: dict[str, Any]) -> None:
        """A sync pod changed (its container exited, restarted, became ready): its model's cache
        status may have. Pods are not cached: the reconcile lists them when it needs them."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), (meta.get("labels") or {}).get(naming.MODEL_SYNC_LABEL, ""))
        if key[1] and self.records.get(key) is not None:
            self.queue.add(key)

    def on_monitoring_crd(self, installed: bool) -> None:
        if installed == self._monitoring_crd:
            return
        log.info("ServiceMonitor CRD %s", "installed" if installed else "removed")
        self._monitoring_crd = installed
        self.enqueue_all()

    @property
    def role(self) -> str:
        return "leader" if self.elector is None else self.elector.role

    def _started_leading(self) -> None:
        # The caches are warm (the watches ran all along): reconcile everything known, no LIST.
        self.queue.release()
        self.enqueue_all()

    def _stopped_leading(self) -> None:
        self.queue.hold()

    def on_keda_crd(self, installed: bool) -> None:
        if installed == self._keda_crd:
            return
        log.info("KEDA ScaledObject CRD %s", "installed" if installed else "removed")
        self._keda_crd = installed
        self.enqueue_all()

    def _enqueue_known(self, key: Key) -> None:
        if key in self.records:
            self.queue.add(key)

    def enqueue_all(self) -> None:
        for key in self.records:
            self.queue.add(key)

    # --- processing --------------------------------------------------------------------------------

    async def _process(self, key: Key) -> float | None:
        record = self.records.get(key)
        body = record.body if record is not None else None
        if record is None or body is None:
            return None
        started = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(self._threads, self.reconciler.reconcile, body, record)
        except NotLeader as exc:
            # The lease was lost mid-reconcile: the key waits in the held queue for the next term.
            log.info("reconcile of %s/%s stopped: %s", *key, exc.message)
            return None
        except Transient as exc:
            return self._retry(record, key, "Transient", f"{exc.status} {exc.reason}: {exc.message}")
        except KubeError as exc:
            return self._retry(record, key, "APIError", f"{exc.status} {exc.reason}: {exc.message}")
        except Exception as exc:
            log.exception("reconcile of %s/%s failed", *key, extra=logs.about(*key))
            return self._retry(record, key, "Error", repr(exc))
        finally:
            metrics.RECONCILE_SECONDS.observe(time.monotonic() - started)
        metrics.RECONCILES.labels(result=outcome.result, reason=outcome.reason).inc()
        record.failures = 0
        self._set_ready(key, record, "True" if outcome.result == "ready" else "False")
        if outcome.requeue_after is None or not outcome.backoff:
            record.progress_polls = 0
            return outcome.requeue_after
        # Polls for pod-level trouble back off (5 s, 10 s, ... 60 s): a slow rollout of many objects
        # must not flood the queue.
        polls = record.progress_polls
        record.progress_polls = polls + 1
        return float(min(MAX_BACKOFF, outcome.requeue_after * 2 ** min(polls, 6)))

    def _retry(self, record: Record, key: Key, reason: str, message: str) -> float:
        attempts = record.failures + 1
        record.failures = attempts
        delay = min(MAX_BACKOFF, self.settings.retry_delay_seconds * float(2 ** min(attempts - 1, 10)))
        delay *= random.uniform(0.8, 1.2)  # spread retries of many objects after an API outage
        metrics.RECONCILES.labels(result="error", reason=reason).inc()
        log.warning(
            "reconcile of %s/%s failed (%s), retry %d in %.1fs: %s",
            *key,
            reason,
            attempts,
            delay,
            message,
            extra=logs.about(*key, reason),
        )
        return delay

    def _set_ready(self, key: Key, record: Record, value: str) -> None:
        """Keeps the ModelDeployments-by-Ready gauge current in O(1) per reconcile."""
        if self.records.get(key) is not record:
            return  # forgotten while it was reconciled: it no longer counts
        old, record.ready = record.ready, value
        metrics.set_ready(*key, value)
        if old != value:
            if old is not None:
                metrics.MODEL_DEPLOYMENTS.labels(ready=old).dec()
            metrics.MODEL_DEPLOYMENTS.labels(ready=value).inc()

    async def _trim_loop(self) -> None:
        """Once a wave of deletes is over, freed heap pages go back to the OS (memory.py)."""
        while True:
            await asyncio.sleep(self.trimmer.settle)
            if self.trimmer.due():
                before, after = await asyncio.to_thread(memory.release)
                log.info("deletes settled: RSS %.1f -> %.1f MiB after collecting and trimming", before, after)

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
        known = {key: record.body for key, record in self.records.items()}
        for ns in namespaces:
            items = await asyncio.to_thread(self.kube.list, "ModelDeployment", ns)
            for item in items:
                meta = item["metadata"]
                key = (meta["namespace"], meta["name"])
                listed[key] = str(meta.get("resourceVersion", ""))
                record = self.records.ensure(key)
                current = record.body
                if current is None or _rv(current) < _rv(item):
                    item.setdefault("apiVersion", "modelserve.dev/v1alpha1")
                    item.setdefault("kind", "ModelDeployment")
                    record.body = slim(item)
                self.queue.add(key)
        self._forget_unlisted(known, listed)
        self.health.on_list(listed, time.monotonic())
        self._monitoring_crd = await asyncio.to_thread(
            self.kube.has_resource, "monitoring.coreos.com/v1", "servicemonitors"
        )
        self._keda_crd = await asyncio.to_thread(self.kube.has_resource, "keda.sh/v1alpha1", "scaledobjects")

    def _forget_unlisted(self, known: dict[Key, dict[str, Any] | None], listed: dict[Key, str]) -> None:
        """Forgets ModelDeployments that are gone although no DELETED event said so.

        kopf re-lists after a broken watch without reporting what disappeared meanwhile (found by
        the churn test): a ghost body stayed, every child event re-applied its children and the
        garbage collector deleted them again, forever. A body known before the LIST, absent from
        it and not replaced since (by an event for a new object of the same name) is gone."""
        for key, body in known.items():
            if key in listed:
                continue
            record = self.records.get(key)
            if record is not None and record.body is body:
                log.info(
                    "forgetting %s/%s: gone from the API server without a DELETED event",
                    *key,
                    extra=logs.about(*key),
                )
                self.forget(key)

    def liveness_problem(self) -> str | None:
        return self.health.problem(time.monotonic())


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (KeyError, ValueError):
        return 0


__all__ = ["Controller", "WatchHealth"]
