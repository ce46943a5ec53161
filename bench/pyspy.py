"""Sampling profiles of the operator process with py-spy, summarised by function.

py-spy attaches to the running operator (no restart, no code change) and samples every thread's
stack; `--nonblocking` keeps it from pausing the process it measures, and `--gil` keeps only the
thread holding the GIL, so samples are the operator's Python CPU time (a thread waiting for the API
server or in the event loop's selector does not count; without the GIL filter, nonblocking sampling
counts them as busy). The raw output is kept in
bench/results/ for flame graphs (`flamegraph.pl` or speedscope read it as collapsed stacks).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

SAMPLE_RATE = 100  # per second; py-spy's default, cheap enough to leave the numbers comparable
OWN_CODE = "/operator/modelserve/"
FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^():]+)(?::\d+)?\)$")


class Profile:
    """A py-spy recording of one process, from start() until stop()."""

    def __init__(self, pid: int, output: Path, rate: int = SAMPLE_RATE) -> None:
        executable = shutil.which("py-spy", path=str(Path(__file__).resolve().parents[1] / ".venv" / "bin"))
        if executable is None:
            raise RuntimeError("py-spy is missing: `make venv` installs it with the dev extras")
        self.output = output
        self.rate = rate
        self.proc = subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--nonblocking",
                "--gil",
                "--threads",
                "--full-filenames",
                "--format",
                "raw",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        _, stderr = self.proc.communicate(timeout=60)
        if not self.output.exists():
            raise RuntimeError(f"py-spy wrote no profile: {stderr.decode(errors='replace')[-500:]}")
        return summarise(self.output.read_text(), rate=self.rate)


def _function(frame: str) -> tuple[str, bool]:
    """`function (file.py)` and whether the frame is the operator's own code."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), False
    return f"{match['function']} ({Path(match['file']).name})", OWN_CODE in match["file"]


def summarise(collapsed: str, top: int = 15, rate: int = SAMPLE_RATE) -> dict[str, Any]:
    """Samples by thread group; the functions with the most samples on top of the stack (self), and
    the operator's own functions with the most anywhere in it (inclusive).

    Collapsed stacks: `thread;outermost;...;innermost count` per line, only of the thread that
    held the GIL: shares of the operator's Python CPU time."""
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        thread, *frames = stack.split(";")
        # "thread (4242): reconcile_3" -> "reconcile": one line per pool, not per thread.
        threads[re.sub(r"[-_]\d+$", "", re.sub(r"^thread \(\d+\): ", "", thread))] += count
        functions = [_function(f) for f in frames]
        for function in {name for name, own in functions if own}:
            inclusive[function] += count
        if functions:
            self_time[functions[-1][0]] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)] if total else []

    return {
        "samples": total,
        "gil_seconds": round(total / rate, 1),
        "threads": share(threads),
        "inclusive": share(inclusive),
        "self": share(self_time),
    }
