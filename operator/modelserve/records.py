"""One record per ModelDeployment: everything the operator keeps about it, forgotten in one step.

Like kopf's `streams[key]`: the controller, the reconciler and the watch-health check all read and
write the same `Record`, so deleting a ModelDeployment is one `forget(key)` and nothing outlives its
object (a review found seven stores that the delete path had to clear by hand, and two that it
never cleared). Children live in the ChildCache instead: they have their own watch events.

Threads: records are created and forgotten on the event loop; a reconcile (worker thread) only sets
fields of the record it was handed. A record forgotten while its reconcile runs is simply dropped
with whatever that reconcile wrote into it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (namespace, name)


@dataclass
class Record:
    """What the operator knows about one ModelDeployment."""

    # The newest body seen (watch event or resync LIST), without managedFields.
    body: dict[str, Any] | None = None
    # Watch health: the resourceVersion of the last watch event, and since when a LIST has seen a
    # newer one than any event did.
    seen_rv: str = ""
    lagging_since: float | None = None
    # Consecutive failed reconciles (retry backoff) and progress polls while a rollout has trouble.
    failures: int = 0
    progress_polls: int = 0
    # Status of Ready after the last reconcile ("True"/"False"), for the by-Ready gauge.
    ready: str | None = None
    # The status we last wrote, with the resourceVersion our write produced: a reconcile may run on a
    # body the watch delivered before that write came back. Cleared once the watch delivers it.
    written: tuple[int, dict[str, Any]] | None = None
    # Children a read confirmed absent, as absent_key(kind, name) (spares the read next time); a
    # watch event of that child clears its mark. By name too: two Deployments share a kind.
    absent: set[str] = field(default_factory=set)
    # Consecutive transient refusals (409, 429, 5xx) of a child apply: reported from the third on.
    transient_apply_failures: int = 0
    # The uid of this ModelDeployment once its namespace was found terminating: it is not
    # reconciled again (a recreated namespace brings a new object, with another uid).
    namespace_terminating_uid: str | None = None


def absent_key(kind: str, name: str) -> str:
    return f"{kind}/{name}"


class Records:
    """The records by key; thread-safe for lookups from the reconcile threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[Key, Record] = {}

    def get(self, key: Key) -> Record | None:
        with self._lock:
            return self._by_key.get(key)

    def ensure(self, key: Key) -> Record:
        with self._lock:
            record = self._by_key.get(key)
            if record is None:
                record = self._by_key[key] = Record()
            return record

    def forget(self, key: Key) -> Record | None:
        """Drops everything known about `key`; returns what was dropped."""
        with self._lock:
            return self._by_key.pop(key, None)

    def items(self) -> list[tuple[Key, Record]]:
        with self._lock:
            return list(self._by_key.items())

    def keys(self) -> list[Key]:
        with self._lock:
            return list(self._by_key)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._by_key

    def __iter__(self) -> Iterator[Key]:
        return iter(self.keys())

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_key)


__all__ = ["Key", "Record", "Records"]
