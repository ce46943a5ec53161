"""glibc malloc settings for a long-running, multi-threaded Python process.

glibc gives every thread that meets contention an arena of its own (up to 8 per core) and keeps
what is freed in each for reuse, so a burst handled by the reconcile threads leaves the RSS at its
high-water mark. Two arenas and a periodic malloc_trim keep the resident size near what is live.
Elsewhere (musl, macOS) these are no-ops.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
from typing import Final

log = logging.getLogger(__name__)

M_ARENA_MAX: Final = -8  # from glibc's malloc.h
ARENAS: Final = 2
TRIM_SECONDS: Final = 15.0


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_arenas(count: int = ARENAS) -> bool:
    """Caps glibc's malloc arenas; call before the worker threads start. False where unsupported."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, count))


def trim() -> bool:
    """Returns free heap memory to the OS; True if any was released."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


async def trim_periodically(seconds: float = TRIM_SECONDS) -> None:
    if _libc() is None:
        return
    while True:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(trim)
