"""What is live at the operator's memory peak during a burst: the operator runs under memray.

    .venv/bin/pip install memray     # not in the dev extras: only this probe needs it
    .venv/bin/python bench/memray_burst.py 2000
    .venv/bin/python -m memray summary bench/results/memray-2000.bin    # allocations live at the peak

A burst of N ModelDeployments on a fresh bench cluster (no floor, no idle window, no restart).
memray slows the operator down, so its timings are not benchmark numbers.
"""

from __future__ import annotations

import json
import sys

from benchcluster import REPO, delete_cluster
from run import OperatorRun, Plan


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    output = REPO / "bench" / "results" / f"memray-{n}.bin"
    # Python's small-object allocator too: without it, memray charges whole 256 KiB pools to
    # whichever line happened to need a new one.
    wrapper = (
        sys.executable,
        "-m",
        "memray",
        "run",
        "--trace-python-allocators",
        "--force",
        "--quiet",
        "--output",
        str(output),
    )
    run = OperatorRun(Plan(n, 8, 120 + n * 0.5, 0, 300, 0, operator_wrapper=wrapper))
    try:
        burst = run.burst()
    finally:
        run.watches.stop()
        run.ready.stop()
        run.operator.stop()
        delete_cluster()
    print(json.dumps({k: burst[k] for k in ("seconds_to_ready", "peak_rss_mib", "cpu_seconds")}))
    print(f"memray output: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
