"""The /metrics server listens only where it is told (metrics.bindAddress in the chart)."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from modelserve import metrics
from modelserve.settings import from_env

pytestmark = pytest.mark.unit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_address_defaults_to_every_interface_and_reads_the_env() -> None:
    assert str(from_env({}).metrics_address) == "0.0.0.0"
    assert str(from_env({"MODELSERVE_METRICS_ADDRESS": "127.0.0.1"}).metrics_address) == "127.0.0.1"
    assert str(from_env({"MODELSERVE_METRICS_ADDRESS": "::1"}).metrics_address) == "::1"


def _connects(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def test_a_bound_address_is_the_only_one_answering() -> None:
    """127.0.0.2 stands in for the pod IP: also loopback, but not the address the socket is bound to."""
    loopback_only, every_interface = _free_port(), _free_port()
    metrics.serve(loopback_only, "127.0.0.1")
    metrics.serve(every_interface, "0.0.0.0")
    with urllib.request.urlopen(f"http://127.0.0.1:{loopback_only}/metrics", timeout=5) as response:
        assert b"modelserve_reconciles_total" in response.read()
    assert not _connects("127.0.0.2", loopback_only)
    assert _connects("127.0.0.2", every_interface)
