"""`modelserve-serving drain`: the preStop hook waits the given time, then lets kubelet stop the pod."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from modelserve_serving.__main__ import main


def test_drain_waits_the_given_seconds_and_succeeds() -> None:
    started = time.monotonic()
    assert main(["drain", "--seconds", "0.3"]) == 0
    assert time.monotonic() - started >= 0.3


def test_drain_refuses_a_negative_time() -> None:
    assert main(["--termination-message-path", "/nonexistent/x", "drain", "--seconds", "-1"]) == 2


def test_drain_is_a_subcommand_of_the_image_executable() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "modelserve_serving", "drain", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--seconds" in proc.stdout


@pytest.mark.parametrize("bad", [["drain", "--seconds", "soon"], ["drain", "extra"]])
def test_drain_usage_errors(bad: list[str]) -> None:
    with pytest.raises(SystemExit):
        main(bad)
