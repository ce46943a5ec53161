"""Retries with exponential backoff for transient storage failures.

Only errors that another attempt can fix are retried: a missing object, a refused credential or a
corrupt archive fails at once so the pod reports the real reason quickly instead of after minutes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import FetchError, ServingError
from .termination import one_line

log = logging.getLogger(__name__)
T = TypeVar("T")

# Python's own exceptions whose meaning does not change on a second try.
_PERMANENT = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError)


@dataclass(frozen=True)
class Backoff:
    attempts: int = 5
    initial_seconds: float = 1.0
    max_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        """Delay after the given failed attempt (1-based), with jitter so replicas spread out."""
        base = min(self.max_seconds, self.initial_seconds * 2.0 ** (attempt - 1))
        return base * random.uniform(0.5, 1.0)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, FetchError):
        return exc.transient
    if isinstance(exc, (ServingError, *_PERMANENT)):
        return False
    # Connection resets, timeouts, 5xx surfaced as OSError or client-library errors: unknown errors
    # get the bounded retries too, since a needless retry costs seconds and a missed one a pod.
    return isinstance(exc, Exception)


def retry(
    action: Callable[[], T],
    *,
    what: str,
    backoff: Backoff,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Runs action until it succeeds, a permanent error occurs, or attempts run out."""
    for attempt in range(1, backoff.attempts + 1):
        try:
            return action()
        except Exception as exc:
            if not is_transient(exc) or attempt == backoff.attempts:
                raise
            delay = backoff.delay(attempt)
            log.warning(
                "%s failed (attempt %d of %d): %s; retrying in %.1fs",
                what, attempt, backoff.attempts, one_line(describe(exc)), delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, ServingError) else f"{type(exc).__name__}: {text}"
