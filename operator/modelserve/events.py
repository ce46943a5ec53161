"""Kubernetes Events posted off the reconcile path, like client-go's event recorder.

A reconcile that reports a Ready transition only queues the Event; threads of their own post it.
Events are best effort (the status is the record of truth), so a reconcile never waits for one and a
full queue drops the newest with a count in the metrics instead of blocking the workers.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

log = logging.getLogger(__name__)

# A burst of 2,000 ModelDeployments turning Ready queued over 1,000 (the Ready waves come at the end).
DEFAULT_CAPACITY: Final = 5000
# Enough posters to keep up with a burst of thousands of ModelDeployments turning Ready, few enough
# that Events never compete with the reconciles' own requests for the API server's attention.
DEFAULT_POSTERS: Final = 3


@dataclass(frozen=True)
class PendingEvent:
    involved: dict[str, Any]  # the ModelDeployment's metadata fields the Event refers to
    event_type: str  # Normal | Warning
    reason: str
    message: str
    at: datetime


Poster = Callable[[PendingEvent], None]


def pending_event(md: dict[str, Any], event_type: str, reason: str, message: str) -> PendingEvent:
    meta = md.get("metadata") or {}
    involved = {k: meta.get(k, "") for k in ("name", "namespace", "uid", "resourceVersion")}
    return PendingEvent(involved, event_type, reason, message, datetime.now(UTC))


class EventRecorder:
    """Queues Events and posts them from `posters` threads; one ModelDeployment's Events always go
    through the same thread, so they are posted in the order they were recorded."""

    def __init__(
        self,
        post: Poster,
        *,
        posters: int = DEFAULT_POSTERS,
        capacity: int = DEFAULT_CAPACITY,
        on_dropped: Callable[[], None] | None = None,
    ) -> None:
        self._post = post
        self._on_dropped = on_dropped
        per_poster = max(1, capacity // posters)
        self._queues: list[queue.Queue[PendingEvent | None]] = [
            queue.Queue(per_poster) for _ in range(posters)
        ]
        self._threads: list[threading.Thread] = []
        self._pending = 0
        self._pending_lock = threading.Lock()

    def record(self, md: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """Queues an Event on this ModelDeployment; never blocks."""
        event = pending_event(md, event_type, reason, message)
        shard = zlib.crc32(f"{event.involved['namespace']}/{event.involved['name']}".encode())
        with self._pending_lock:
            self._pending += 1
        try:
            self._queues[shard % len(self._queues)].put_nowait(event)
        except queue.Full:
            self._done()
            log.warning(
                "event queue full: dropped %s %s on %s/%s",
                event_type,
                reason,
                event.involved["namespace"],
                event.involved["name"],
            )
            if self._on_dropped is not None:
                self._on_dropped()

    def pending(self) -> int:
        """Events recorded and not yet posted (or given up on)."""
        with self._pending_lock:
            return self._pending

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._run, args=(q,), name=f"modelserve-events-{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Posts what is queued (for about `timeout` seconds), then ends the threads."""
        deadline = time.monotonic() + timeout
        for q in self._queues:
            # A poster still stuck after the timeout is a daemon thread: it ends with the process.
            with contextlib.suppress(queue.Full):
                q.put(None, timeout=max(0.0, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def _run(self, events: queue.Queue[PendingEvent | None]) -> None:
        while (event := events.get()) is not None:
            try:
                self._post(event)
            except Exception:  # one bad Event must not end the thread that posts all the others
                log.exception("posting event %s failed", event.reason)
            finally:
                self._done()

    def _done(self) -> None:
        with self._pending_lock:
            self._pending -= 1
