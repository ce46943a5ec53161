"""Runs TF Serving as a child and forwards termination signals to it.

The entrypoint stays as PID 1 instead of exec'ing: the kernel ignores SIGTERM for a PID 1 that has no
handler, and tensorflow_model_server installs none, so an exec'd server would only die by SIGKILL at
the end of the grace period. As PID 1 we also reap any orphaned grandchildren.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger(__name__)

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def run(argv: Sequence[str]) -> int:
    """Starts argv, forwards FORWARDED signals, returns its exit code (128+N when killed by signal N,
    the shell convention kubelet shows)."""
    log.info("starting: %s", " ".join(argv))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        child = subprocess.Popen(list(argv))
    except OSError as exc:
        raise FileNotFoundError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None

    def forward(signum: int, _frame: FrameType | None) -> None:
        log.info("forwarding %s to %s (pid %d)", signal.Signals(signum).name, argv[0], child.pid)
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        code = _wait(child.pid)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    child.returncode = code
    return code


def _wait(pid: int) -> int:
    # As PID 1, waitpid(-1) also reaps orphans re-parented to us; elsewhere (tests, debugging) only
    # our own child is waited for, so other children of the caller are left alone.
    target = -1 if os.getpid() == 1 else pid
    while True:
        done, status = os.waitpid(target, 0)
        if done == pid:
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
