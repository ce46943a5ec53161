"""glibc malloc tuning: the operator caps arenas and returns freed heap memory to the OS."""

from __future__ import annotations

import asyncio
import os

import pytest

from modelserve import memory


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_glibc_is_found_on_the_platform_we_ship() -> None:
    # The operator image and CI run on Debian (glibc); elsewhere the functions are no-ops.
    assert memory.limit_arenas() is True


def test_trim_returns_freed_heap_memory_to_the_os() -> None:
    chunks = [bytearray(4096) for _ in range(25_000)]  # ~100 MiB from malloc, not Python's pools
    pin = bytearray(4096)  # above them on the heap: free() alone cannot shrink the heap past it
    grown = _rss_mib()
    del chunks
    freed = _rss_mib()
    assert freed > grown - 10  # what the operator saw: freed memory stays resident ...
    assert memory.trim() is True
    assert _rss_mib() < freed - 50  # ... until trimmed
    del pin


def test_periodic_trim_runs_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "trim", lambda: calls.append(1) or True)

    async def run() -> None:
        task = asyncio.create_task(memory.trim_periodically(0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(calls) >= 3
