"""What `sync` last did, in a small JSON file its probes read (`sync-status`).

The file lives in the container's own scratch volume, written atomically (temp file + rename), and
is removed when `sync` starts, so a probe never reads an earlier process's word.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class State:
    started: bool = False  # the first sync is done (or what is on disk already serves the policy)
    complete: bool = False  # the last successful poll found every served version on disk
    degraded: bool = False  # the last poll failed; what is on disk stays served
    served: list[int] = field(default_factory=list)
    present: list[int] = field(default_factory=list)
    last_error: str | None = None
    consecutive_failures: int = 0
    last_success: float | None = None


def write(path: Path, state: State) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".sync-state-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(state), f, sort_keys=True)
    os.replace(tmp, path)


def read(path: Path) -> State | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    known = State.__dataclass_fields__
    return State(**{k: v for k, v in data.items() if k in known})


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def verdict(state: State | None, *, ready: bool) -> tuple[bool, str]:
    """Startup: the first sync is done. Readiness (the cache's sync pod): every served version is
    on disk and the last poll reached the store."""
    if state is None:
        return False, "sync has not finished its first fetch yet"
    if not state.started:
        return False, "sync has not finished its first fetch yet"
    versions = ", ".join(str(v) for v in state.present) or "none"
    if not ready:
        return True, f"synced: version(s) {versions} on disk"
    if state.degraded:
        return False, f"sync degraded (version(s) {versions} on disk): {state.last_error}"
    if not state.complete:
        missing = sorted(set(state.served) - set(state.present))
        return False, f"filling: version(s) {', '.join(map(str, missing))} not on disk yet"
    return True, f"every served version on disk: {versions}"
