"""`sync`'s metrics: each poll's state becomes series; versions come and go with the disk."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelserve_serving.syncmetrics import SyncMetrics
from modelserve_serving.syncstate import State

pytestmark = pytest.mark.unit


def scrape(metrics: SyncMetrics) -> dict[str, float]:
    """Through the text format, as Prometheus reads it."""
    text = generate_latest(metrics.registry).decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()) if k != "model")
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def test_a_fresh_sync_exports_zeroes_and_its_mode() -> None:
    got = scrape(SyncMetrics("m", "sidecar"))
    assert got["modelserve_sync_info{mode=sidecar}"] == 1
    assert got["modelserve_sync_polls_total{result=success}"] == 0
    assert got["modelserve_sync_polls_total{result=failure}"] == 0
    assert not any(k.startswith("modelserve_sync_version_") for k in got)


def test_polls_outage_and_recovery() -> None:
    metrics = SyncMetrics("m", "sidecar")
    metrics.observe(State(started=True, complete=True, served=[1], present=[1], last_success=100.0))
    got = scrape(metrics)
    assert got["modelserve_sync_degraded{}"] == 0
    assert got["modelserve_sync_complete{}"] == 1
    assert got["modelserve_sync_version_present{version=1}"] == 1
    assert got["modelserve_sync_version_served{version=1}"] == 1
    assert got["modelserve_sync_last_success_timestamp_seconds{}"] == 100.0

    # An outage: nothing was resolved, so the served versions stay as last resolved.
    metrics.observe(
        State(started=True, degraded=True, present=[1], consecutive_failures=3, last_success=100.0)
    )
    got = scrape(metrics)
    assert got["modelserve_sync_degraded{}"] == 1
    assert got["modelserve_sync_complete{}"] == 0
    assert got["modelserve_sync_consecutive_failures{}"] == 3
    assert got["modelserve_sync_version_served{version=1}"] == 1
    assert got["modelserve_sync_polls_total{result=failure}"] == 1
    assert got["modelserve_sync_last_success_timestamp_seconds{}"] == 100.0

    # Recovery with a new version: version 1 stops being served, then leaves the disk.
    metrics.observe(State(started=True, complete=True, served=[2], present=[1, 2], last_success=200.0))
    got = scrape(metrics)
    assert "modelserve_sync_version_served{version=1}" not in got
    assert got["modelserve_sync_version_served{version=2}"] == 1
    assert got["modelserve_sync_version_present{version=1}"] == 1
    metrics.observe(State(started=True, complete=True, served=[2], present=[2], last_success=260.0))
    got = scrape(metrics)
    assert "modelserve_sync_version_present{version=1}" not in got
    assert got["modelserve_sync_version_present{version=2}"] == 1
    assert got["modelserve_sync_polls_total{result=success}"] == 3
    assert got["modelserve_sync_degraded{}"] == 0
