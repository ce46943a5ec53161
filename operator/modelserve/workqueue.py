"""A keyed work queue on asyncio: each key is processed by one worker at a time, duplicates collapse.

Like client-go's workqueue: adding a key that is queued does nothing; adding a key that is being
processed marks it dirty so it runs once more afterwards; delayed adds keep the earliest due time.
A held queue (a standby replica) keeps collecting keys but hands none to its workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        process: Callable[[K], Awaitable[float | None]],
        workers: int,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self._process = process
        self._workers = workers
        self._on_depth = on_depth
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._open = asyncio.Event()
        self._open.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"modelserve-worker-{i}") for i in range(self._workers)
        ]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def depth(self) -> int:
        return len(self._queued) + len(self._timers)

    def tracked(self) -> int:
        """Every per-key entry the queue holds (queued, delayed, active, dirty)."""
        return len(self._queued) + len(self._timers) + len(self._active) + len(self._dirty)

    def hold(self) -> None:
        """Workers take no new key until release(); keys still collect (and collapse)."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    @property
    def held(self) -> bool:
        return not self._open.is_set()

    def add(self, key: K, delay: float = 0.0) -> None:
        """Schedules `key`; must be called on the queue's event loop."""
        if delay > 0:
            timer = self._timers.get(key)
            loop = asyncio.get_running_loop()
            due = loop.time() + delay
            if timer is not None and timer.when() <= due:
                return
            if timer is not None:
                timer.cancel()
            self._timers[key] = loop.call_at(due, self._fire, key)
            self._report()
            return
        if key in self._active:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._ready.put_nowait(key)
        self._report()

    def forget(self, key: K) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._report()

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _report(self) -> None:
        if self._on_depth:
            self._on_depth(self.depth())

    async def _worker(self) -> None:
        while True:
            await self._open.wait()
            key = await self._ready.get()
            if not self._open.is_set():  # held while this worker waited for a key: put it back
                self._ready.put_nowait(key)
                continue
            self._queued.discard(key)
            self._active.add(key)
            delay: float | None = None
            try:
                delay = await self._process(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # the process function reports its own errors; the queue must survive
                log.exception("unhandled error processing %s", key)
                delay = 5.0
            finally:
                self._active.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(key)
            elif delay is not None:
                self.add(key, delay)
            self._report()
