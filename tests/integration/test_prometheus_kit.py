"""The test Prometheus (real, from its Go module) scrapes the TF Serving stand-in exporter.

The rollout analysis and the autoscaling tests rely on these numbers being what the test set, so
this checks the rates, the error ratio and the p99 latency PromQL computes from the stand-in."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from kit import wait_until
from prometheus_kit import Exporter, Prometheus, prometheus_bin_dir

RATE = 'sum(rate(:tensorflow:serving:request_count{{namespace="{ns}"}}[5s]))'
ERRORS = (
    'sum(rate(:tensorflow:serving:request_count{{namespace="{ns}",status!="OK"}}[5s]))'
    ' / sum(rate(:tensorflow:serving:request_count{{namespace="{ns}"}}[5s]))'
)
P99_MS = (
    "histogram_quantile(0.99, sum by (le) (rate(:tensorflow:serving:request_latency_bucket"
    '{{namespace="{ns}"}}[5s]))) / 1000'
)


def test_binaries_are_version_stamped() -> None:
    out = subprocess.run(
        [str(prometheus_bin_dir() / "prometheus"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert "prometheus, version 3." in out, out
    assert "module-v0." in out, out  # the revision names the module version it was built from
    tool = subprocess.run(
        [str(prometheus_bin_dir() / "promtool"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert "promtool, version 3." in tool, tool


def test_prometheus_sees_the_rates_the_test_sets(
    prometheus: Prometheus, exporters: Callable[..., Exporter]
) -> None:
    ns = "kit-rates"
    pod = exporters(model="resnet", namespace=ns, pod="resnet-abc", rps=20, error_ratio=0.0, latency_ms=20)
    wait_until(
        lambda: (v := prometheus.value(RATE.format(ns=ns))) is not None and 18 <= v <= 22,
        timeout=30,
        what="a request rate of ~20/s",
    )
    assert prometheus.value(ERRORS.format(ns=ns)) == 0
    p99 = prometheus.value(P99_MS.format(ns=ns))
    assert p99 is not None and 10 <= p99 <= 40, p99  # 20 ms, within one of TF Serving's 1.8x buckets

    pod.set(error_ratio=0.2, latency_ms=400)
    wait_until(
        lambda: prometheus.value(ERRORS.format(ns=ns) + " >= 0.19") is not None,
        timeout=30,
        what="an error ratio of 20%",
    )
    wait_until(
        lambda: (v := prometheus.value(P99_MS.format(ns=ns))) is not None and v > 200,
        timeout=30,
        what="a p99 above 200 ms",
    )
    labels = prometheus.query(f':tensorflow:serving:request_count{{namespace="{ns}"}}')[0]["metric"]
    assert labels["job"] == "tfserving" and labels["pod"] == "resnet-abc" and labels["model_name"] == "resnet"


def test_a_removed_target_goes_stale(prometheus: Prometheus, exporters: Callable[..., Exporter]) -> None:
    ns = "kit-stale"
    pod = exporters(model="m", namespace=ns, pod="m-1", rps=5)
    prometheus.wait_for_series(f':tensorflow:serving:request_count{{namespace="{ns}"}}')
    prometheus.remove_target(pod.address)
    wait_until(
        lambda: not prometheus.query(f':tensorflow:serving:request_count{{namespace="{ns}"}}'),
        timeout=30,
        what="the series to go stale",
    )
