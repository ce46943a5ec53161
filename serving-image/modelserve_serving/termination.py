"""The one-line reason a failing container leaves behind for kubelet and the operator."""

from __future__ import annotations

import sys
from pathlib import Path

# kubelet keeps at most 4096 bytes of a termination message; stay well below with room for a prefix.
_MAX_CHARS = 1024


def one_line(text: str) -> str:
    """Collapses whitespace (tracebacks, multi-line server errors) so the reason fits one line."""
    line = " ".join(text.split())
    return line if len(line) <= _MAX_CHARS else line[: _MAX_CHARS - 3] + "..."


def report_failure(command: str, reason: str, path: Path) -> None:
    """Writes the reason to stderr and to the termination message file (best effort for the file:
    a missing or read-only path must not hide the real error)."""
    line = one_line(reason)
    print(f"{command}: error: {line}", file=sys.stderr, flush=True)
    try:
        path.write_text(line + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"{command}: could not write termination message to {path}: {exc}", file=sys.stderr)
