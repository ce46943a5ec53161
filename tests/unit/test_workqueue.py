"""The keyed work queue: collapsing, dirty re-runs, one worker per key, delays, forget, error retries.

Each test runs its own event loop whose clock is virtual (`Clock.advance`), so delayed adds and retry
delays are exercised without waiting in real time. Synchronisation is by queues and events only: a
"sentinel" key processed after the keys under test proves that nothing else ran before it (one
worker and a FIFO queue, or timers firing in due order).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from modelserve.workqueue import WorkQueue

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

WAIT = 5.0  # bound for what should happen at once; shorter than every delay a test must not see


class Clock:
    """Virtual time for the loop: real monotonic time plus whatever the test advanced."""

    def __init__(self, real: Callable[[], float]) -> None:
        self._real = real
        self.offset = 0.0

    def time(self) -> float:
        return self._real() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def run(test: Callable[[Clock], Awaitable[None]]) -> None:
    with asyncio.Runner() as runner:
        loop = runner.get_loop()
        clock = Clock(loop.time)
        loop.time = clock.time  # type: ignore[method-assign]
        runner.run(test(clock))  # type: ignore[arg-type]


async def settle(turns: int = 100) -> None:
    """Lets every task on the loop run until it blocks: a worker that could take a key would have
    taken it by then (all of them live on this loop, nothing runs in threads), without waiting on
    the wall clock."""
    for _ in range(turns):
        await asyncio.sleep(0)


class Recorder:
    """The process function: records calls, can hold a key until released, fails or asks for a delay."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.started: asyncio.Queue[str] = asyncio.Queue()
        self.active: set[str] = set()
        self.overlaps: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.failures: dict[str, int] = {}  # key -> how many more calls raise
        self.delays: dict[str, list[float | None]] = {}  # key -> what successive calls return

    def hold(self, key: str) -> asyncio.Event:
        self.gates[key] = asyncio.Event()
        return self.gates[key]

    async def process(self, key: str) -> float | None:
        if key in self.active:
            self.overlaps.append(key)
        self.active.add(key)
        self.calls.append(key)
        self.started.put_nowait(key)
        try:
            gate = self.gates.pop(key, None)
            if gate is not None:
                await gate.wait()
            if self.failures.get(key, 0) > 0:
                self.failures[key] -= 1
                raise RuntimeError(f"boom on {key}")
            delays = self.delays.get(key)
            return delays.pop(0) if delays else None
        finally:
            self.active.discard(key)

    async def next_start(self) -> str:
        return await asyncio.wait_for(self.started.get(), timeout=WAIT)

    async def wait_for_start(self, key: str) -> None:
        """Waits until `key` starts, ignoring keys that start before it."""
        while await self.next_start() != key:
            pass


def test_duplicate_adds_collapse() -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        depths: list[int] = []
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=1, on_depth=depths.append)
        for key in ("a", "b", "a", "a", "b"):
            queue.add(key)
        assert queue.depth() == 2
        assert depths == [1, 2]  # only real additions are reported
        queue.add("z")
        queue.start()
        await rec.wait_for_start("z")
        assert rec.calls == ["a", "b", "z"]
        await queue.stop()

    run(body)


def test_a_key_added_while_processing_runs_once_more_afterwards() -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=1)
        queue.start()
        gate = rec.hold("a")
        queue.add("a")
        assert await rec.next_start() == "a"
        for _ in range(3):
            queue.add("a")  # dirty, not queued: depth stays 0
        assert queue.depth() == 0
        gate.set()
        assert await rec.next_start() == "a"
        queue.add("z")
        await rec.wait_for_start("z")
        assert rec.calls == ["a", "a", "z"]
        await queue.stop()

    run(body)


def test_never_two_workers_on_one_key() -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=3)
        queue.start()
        gate = rec.hold("a")
        queue.add("a")
        assert await rec.next_start() == "a"
        queue.add("a")
        queue.add("a", delay=1.0)
        clock.advance(2.0)  # the timer fires while "a" is still being processed
        queue.add("b")
        queue.add("c")
        # Two idle workers take b and c; neither may take the dirty "a".
        assert {await rec.next_start(), await rec.next_start()} == {"b", "c"}
        queue.add("sentinel")
        await rec.wait_for_start("sentinel")
        assert rec.calls.count("a") == 1
        gate.set()
        assert await rec.next_start() == "a"
        queue.add("z")
        await rec.wait_for_start("z")
        assert rec.calls.count("a") == 2  # the dirty mark and the timer collapsed into one run
        assert rec.overlaps == []
        await queue.stop()

    run(body)


@pytest.mark.parametrize("delays", [(10.0, 1.0), (1.0, 10.0)], ids=["later-then-sooner", "sooner-then-later"])
def test_a_delayed_add_keeps_the_earliest_due_time(delays: tuple[float, float]) -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=1)
        queue.start()
        for delay in delays:
            queue.add("a", delay=delay)
        assert queue.depth() == 1
        queue.add("early", delay=0.5)
        clock.advance(0.75)
        await rec.wait_for_start("early")
        assert rec.calls == ["early"]  # "a" is not due yet
        clock.advance(0.5)  # 1.25 s in: the earlier due time has passed
        assert await rec.next_start() == "a"
        # The later due time (10 s) must not produce a second run: a sentinel due after it proves it.
        queue.add("z", delay=15.0)
        clock.advance(20.0)
        await rec.wait_for_start("z")
        assert rec.calls == ["early", "a", "z"]
        assert queue.depth() == 0
        await queue.stop()

    run(body)


def test_an_immediate_add_does_not_wait_for_a_pending_delay() -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=1)
        queue.start()
        queue.add("a", delay=30.0)
        queue.add("a")
        assert await rec.next_start() == "a"
        await queue.stop()

    run(body)


def test_forget_cancels_a_delayed_add() -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        depths: list[int] = []
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=1, on_depth=depths.append)
        queue.start()
        queue.add("a", delay=5.0)
        assert queue.depth() == 1
        queue.forget("a")
        assert queue.depth() == 0
        assert depths[-1] == 0
        queue.forget("never-added")  # harmless
        queue.add("z", delay=10.0)
        clock.advance(11.0)
        await rec.wait_for_start("z")
        assert rec.calls == ["z"]
        await queue.stop()

    run(body)


def test_errors_are_retried_after_a_delay_and_do_not_kill_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        rec.failures["a"] = 1
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=1)
        queue.start()
        queue.add("a")
        assert await rec.next_start() == "a"
        queue.add("b")  # the only worker must survive the error to take it
        assert await rec.next_start() == "b"
        assert queue.depth() == 1  # "a" waits for its retry
        assert rec.calls == ["a", "b"]  # not retried at once
        clock.advance(6.0)
        assert await rec.next_start() == "a"
        queue.add("z")
        await rec.wait_for_start("z")
        assert rec.calls == ["a", "b", "a", "z"]  # the retry succeeded: no third run
        assert queue.depth() == 0
        await queue.stop()

    with caplog.at_level(logging.ERROR, logger="modelserve.workqueue"):
        run(body)
    assert [r.getMessage() for r in caplog.records] == ["unhandled error processing a"]
    assert caplog.records[0].exc_info is not None


def test_a_returned_delay_requeues_the_key_after_it() -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        rec.delays["a"] = [30.0, None]
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=1)
        queue.start()
        queue.add("a")
        assert await rec.next_start() == "a"
        queue.add("early", delay=20.0)
        clock.advance(21.0)
        await rec.wait_for_start("early")
        assert rec.calls == ["a", "early"]  # 21 s in: "a" is not due yet
        clock.advance(10.0)
        assert await rec.next_start() == "a"
        queue.add("z", delay=60.0)
        clock.advance(61.0)
        await rec.wait_for_start("z")
        assert rec.calls == ["a", "early", "a", "z"]  # None: not requeued again
        await queue.stop()

    run(body)


def test_stop_cancels_workers_and_timers() -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        depths: list[int] = []
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=2, on_depth=depths.append)
        queue.start()
        gate = rec.hold("a")
        queue.add("a")
        assert await rec.next_start() == "a"
        queue.add("b", delay=1.0)
        await asyncio.wait_for(queue.stop(), timeout=WAIT)
        assert not gate.is_set()
        assert rec.active == set()  # the held call was cancelled
        depths.clear()
        clock.advance(5.0)
        # A timer due after "b": timers fire in due order, so had "b"'s not been cancelled it
        # would have been added (and reported) before this one resolves.
        loop = asyncio.get_running_loop()
        later: asyncio.Future[None] = loop.create_future()
        loop.call_at(loop.time(), later.set_result, None)
        await asyncio.wait_for(later, timeout=WAIT)
        assert depths == []
        assert rec.calls == ["a"]

    run(body)


def test_a_held_queue_collects_keys_and_processes_them_once_released() -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=2)
        queue.hold()
        queue.start()
        for key in ("a", "b", "a"):
            queue.add(key)
        queue.add("c", delay=1.0)
        clock.advance(2.0)  # a timer firing while held only queues its key
        await settle()
        assert rec.calls == []
        assert queue.held and queue.depth() == 3 and queue.tracked() == 3
        queue.release()
        for _ in range(3):
            await rec.next_start()
        assert sorted(rec.calls) == ["a", "b", "c"]
        # Held again: a worker that was already waiting for a key hands it back untouched.
        queue.hold()
        await asyncio.sleep(0)
        queue.add("d")
        await settle()
        assert rec.calls.count("d") == 0 and queue.depth() == 1
        queue.release()
        await rec.wait_for_start("d")
        await queue.stop()

    run(body)


def test_forget_drops_a_delayed_key_so_nothing_is_tracked() -> None:
    async def body(clock: Clock) -> None:
        rec = Recorder()
        queue: WorkQueue[str] = WorkQueue(rec.process, workers=1)
        queue.add("a", delay=30.0)
        assert queue.tracked() == 1
        queue.forget("a")
        assert queue.tracked() == 0
        await queue.stop()

    run(body)
