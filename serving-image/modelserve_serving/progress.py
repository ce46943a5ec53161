"""Progress lines in the init container's log, so a slow multi-gigabyte fetch is visibly alive."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class Progress:
    """Counts bytes across files and threads; logs every `every_seconds` and at each 10% step.

    Retried downloads report negative deltas (`rewind`) so the total stays honest.
    """

    def __init__(
        self,
        total: int | None,
        *,
        label: str,
        every_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self._every = every_seconds
        self._clock = clock
        self._start = clock()
        self._last_log = self._start
        self._last_decile = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = self._clock()
            decile = (self.done * 10 // self.total) if self.total else 0
            if now - self._last_log >= self._every or decile > self._last_decile:
                self._last_decile = max(decile, self._last_decile)
                self._last_log = now
                self._log(now)

    def rewind(self, n: int) -> None:
        with self._lock:
            self.done = max(0, self.done - n)

    def finish(self) -> None:
        with self._lock:
            self._log(self._clock(), final=True)

    def _log(self, now: float, *, final: bool = False) -> None:
        elapsed = max(now - self._start, 1e-6)
        rate = human(self.done / elapsed) + "/s"
        if self.total:
            pct = 100 * self.done / self.total
            text = f"{human(self.done)} of {human(self.total)} ({pct:.0f}%)"
        else:
            text = human(self.done)
        verb = "fetched" if final else "fetching"
        log.info("%s %s: %s at %s, %.1fs", verb, self.label, text, rate, elapsed)
