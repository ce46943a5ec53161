"""Kubernetes Events posted off the reconcile path, like client-go's event recorder.

A reconcile that reports a Ready transition only queues the Event; one thread of its own posts it.
Events are best effort (the status is the record of truth), so a reconcile never waits for one and a
full queue drops the newest with a count in the metrics instead of blocking the workers.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

log = logging.getLogger(__name__)

DEFAULT_CAPACITY: Final = 1000


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
    def __init__(
        self,
        post: Poster,
        capacity: int = DEFAULT_CAPACITY,
        on_dropped: Callable[[], None] | None = None,
    ) -> None:
        self._post = post
        self._on_dropped = on_dropped
        self._queue: queue.Queue[PendingEvent | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None

    def record(self, md: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """Queues an Event on this ModelDeployment; never blocks."""
        event = pending_event(md, event_type, reason, message)
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.warning(
                "event queue full: dropped %s %s on %s/%s",
                event_type,
                reason,
                event.involved["namespace"],
                event.involved["name"],
            )
            if self._on_dropped is not None:
                self._on_dropped()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="modelserve-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Posts what is queued (for at most `timeout` seconds), then ends the thread."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return  # the daemon thread ends with the process
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._post(event)
            except Exception:  # one bad Event must not end the thread that posts all the others
                log.exception("posting event %s failed", event.reason)
