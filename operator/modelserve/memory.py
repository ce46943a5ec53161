"""Hands freed heap memory back to the OS once ModelDeployments are gone.

Measured with bench/failover.py (churn of 1,000, docs/reliability.md): after every ModelDeployment was
deleted the live Python objects were back at their baseline size, yet RSS stayed at its peak. Two
allocators kept the freed memory: CPython's pymalloc returns a 1 MiB arena only when every block in
it is free (after the churn 22 of 54 arenas were free pools and free blocks pinned by a few live
objects each), and glibc keeps free pages inside its heaps until `malloc_trim`. So the operator
image runs with PYTHONMALLOC=malloc (every object from glibc, whose free pages can be returned
page by page) and the controller calls `release()` once the deletes have settled.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import time
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

# How the operator's interpreter is started (operator/Dockerfile, the chart's Deployment; the test
# and bench harnesses copy it): CPython's objects from glibc, and glibc with two arenas instead of one
# per thread (after a churn of 1,000, 15 thread arenas held about 8 MiB of free fragments).
ALLOCATOR_ENV: Final = {"PYTHONMALLOC": "malloc", "MALLOC_ARENA_MAX": "2"}

# Deletes come in waves (a namespace, a GitOps prune, the garbage collector's children): trim once
# the wave is over, not on every forget.
SETTLE_SECONDS: Final = 5.0


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_MALLOC_TRIM: Final = _load_malloc_trim()


def trim() -> bool:
    """glibc's malloc_trim(0): returns every whole free page of every heap; False without glibc."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


def rss_mib() -> float:
    """This process's resident set (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def release() -> tuple[float, float]:
    """Collects garbage, then trims; returns RSS in MiB before and after.

    The collection comes first: objects of deleted ModelDeployments that sit in reference cycles
    (kopf's per-object state, asyncio tasks) are freed only by the cyclic collector, whose oldest
    generation runs seldom; without it a trim after a churn of 1,000 gave back little."""
    before = rss_mib()
    gc.collect()
    trim()
    return before, rss_mib()


class Trimmer:
    """Trims once forgetting has paused for `settle` seconds: `forgot()` on every forget, `due()`
    from a timer, `trim` when it says so."""

    def __init__(self, settle: float = SETTLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.settle = settle
        self.clock = clock
        self._pending = 0
        self._last = 0.0

    def forgot(self) -> None:
        self._pending += 1
        self._last = self.clock()

    def due(self) -> bool:
        """True (once per wave) when something was forgotten and nothing since `settle` seconds."""
        if self._pending and self.clock() - self._last >= self.settle:
            self._pending = 0
            return True
        return False


__all__ = ["ALLOCATOR_ENV", "SETTLE_SECONDS", "Trimmer", "release", "rss_mib", "trim"]
