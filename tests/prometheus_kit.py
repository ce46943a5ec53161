"""A real Prometheus for tests, and stand-in TF Serving metrics endpoints for it to scrape.

Prometheus is the real server, built from its Go module by hack/cluster/build.sh (family
`prometheus`, cached like the control plane's binaries) and run on a loopback port. The serving pods
on the kwok cluster run no containers, so their metrics come from `tests/tfserving_exporter.py`
processes (a stand-in, named as such) that publish TF Serving's metric names and labels with the
rates the test sets.

    prom = start_prometheus(workdir)                    # or the session fixture `prometheus`
    pod = start_exporter(model="resnet", rps=20)        # one stand-in per serving pod
    prom.add_target(pod.address, namespace="ns", pod="resnet-canary-7d9c-abcde")
    pod.set(error_ratio=0.2, latency_ms=300)            # what the next scrapes report
    prom.wait_for_series('sum(rate(:tensorflow:serving:request_count{namespace="ns"}[10s])) > 0')
    prom.query('...')                                   # instant vector/scalar as parsed JSON
    pod.stop(); prom.stop()

Targets are file-based service discovery (`file_sd_configs`) in the job `tfserving` with TF
Serving's metrics path; the labels given to `add_target` become target labels, as a ServiceMonitor's
relabelling would set `namespace`, `pod`, `service`, `container` and `endpoint` in a cluster.
Scrapes and rule evaluation run every second (`scrape_interval`), so `rate(...[5s])` works.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit import REPO, wait_until

BUILD_SCRIPT = REPO / "hack" / "cluster" / "build.sh"
EXPORTER = Path(__file__).resolve().parent / "tfserving_exporter.py"
TFSERVING_JOB = "tfserving"
METRICS_PATH = "/monitoring/prometheus/metrics"


def prometheus_bin_dir() -> Path:
    """The directory with `prometheus` and `promtool`, built from the pinned Go module on a cold cache."""
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "prometheus"], capture_output=True, text=True, timeout=3600, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster/build.sh prometheus failed:\n{proc.stdout}\n{proc.stderr}")
    bin_dir = Path(proc.stdout.strip().splitlines()[-1])
    for tool in ("prometheus", "promtool"):
        if not (bin_dir / tool).exists():
            raise RuntimeError(f"{bin_dir / tool} is missing after hack/cluster/build.sh prometheus")
    return bin_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


@dataclass
class Prometheus:
    """A running Prometheus: its URL, its file_sd targets and a few API helpers."""

    url: str
    workdir: Path
    process: subprocess.Popen[bytes]
    scrape_interval: str = "1s"
    _targets: dict[str, dict[str, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def targets_file(self) -> Path:
        return self.workdir / "targets.json"

    def add_target(self, address: str, **labels: str) -> None:
        """Scrapes `address` (host:port) with these target labels from the next SD refresh on."""
        with self._lock:
            self._targets[address] = dict(labels)
            self._write_targets()

    def remove_target(self, address: str) -> None:
        """Stops scraping `address`; its series go stale at once (Prometheus writes stale markers)."""
        with self._lock:
            self._targets.pop(address, None)
            self._write_targets()

    def _write_targets(self) -> None:
        groups = [{"targets": [addr], "labels": labels} for addr, labels in sorted(self._targets.items())]
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        os.replace(tmp, self.targets_file)  # Prometheus must never read a half-written file

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant query's result list (vector samples; a scalar comes back as one sample)."""
        body = _get_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        if body.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {body}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def value(self, promql: str) -> float | None:
        """The single sample's value of an instant query, or None when it returns nothing."""
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait_for_series(self, promql: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Waits until the query returns at least one sample (e.g. after a target was added)."""
        return wait_until(lambda: self.query(promql), timeout=timeout, what=f"Prometheus series for {promql}")

    def active_targets(self) -> list[dict[str, Any]]:
        return list(_get_json(f"{self.url}/api/v1/targets?state=active")["data"]["activeTargets"])

    def wait_for_targets_up(self, count: int, *, timeout: float = 30.0) -> None:
        wait_until(
            lambda: sum(t["health"] == "up" for t in self.active_targets()) >= count,
            timeout=timeout,
            what=f"{count} scraped targets up",
            describe=lambda: json.dumps(self.active_targets(), indent=1),
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_prometheus(
    workdir: Path,
    *,
    scrape_interval: str = "1s",
    extra_scrape_configs: list[dict[str, Any]] | None = None,
    bin_dir: Path | None = None,
    port: int | None = None,
) -> Prometheus:
    """Starts Prometheus on 127.0.0.1 and waits until it is ready.

    The job `tfserving` scrapes the targets given to `add_target`; `extra_scrape_configs` are added
    as they are (Prometheus' own `scrape_configs` entries, e.g. static_configs for another exporter).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    binary = (bin_dir or prometheus_bin_dir()) / "prometheus"
    port = port or free_port()
    (workdir / "targets.json").write_text("[]")
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": scrape_interval,
        },
        "scrape_configs": [
            {
                "job_name": TFSERVING_JOB,
                "metrics_path": METRICS_PATH,
                "file_sd_configs": [{"files": [str(workdir / "targets.json")], "refresh_interval": "1s"}],
            },
            *(extra_scrape_configs or []),
        ],
    }
    # JSON is YAML: no YAML writer needed for the config.
    (workdir / "prometheus.yml").write_text(json.dumps(config, indent=1))
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    prom = Prometheus(
        url=f"http://127.0.0.1:{port}", workdir=workdir, process=process, scrape_interval=scrape_interval
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"prometheus exited with {process.returncode}:\n{(workdir / 'prometheus.log').read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{prom.url}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    try:
        wait_until(ready, timeout=60, what="Prometheus /-/ready")
    except BaseException:
        prom.stop()
        raise
    return prom


@dataclass
class Exporter:
    """One stand-in TF Serving metrics endpoint (a child process) whose traffic the test sets."""

    model: str
    port: int
    process: subprocess.Popen[str]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(
        self, *, rps: float | None = None, error_ratio: float | None = None, latency_ms: float | None = None
    ) -> None:
        """Changes what the counters grow by from now on (requests per second, share failing, latency)."""
        settings = {
            k: v
            for k, v in {"rps": rps, "error_ratio": error_ratio, "latency_ms": latency_ms}.items()
            if v is not None
        }
        req = urllib.request.Request(
            f"http://{self.address}/control",
            data=json.dumps(settings).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5):
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def start_exporter(
    *, model: str, rps: float = 0.0, error_ratio: float = 0.0, latency_ms: float = 10.0
) -> Exporter:
    """Starts a stand-in TF Serving metrics endpoint on a free loopback port."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(EXPORTER),
            "--model",
            model,
            "--rps",
            str(rps),
            "--error-ratio",
            str(error_ratio),
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # "listening on 127.0.0.1:<port>", printed once bound
    if not line.startswith("listening on "):
        process.kill()
        raise AssertionError(f"the TF Serving stand-in exporter did not start: {line!r}")
    return Exporter(model=model, port=int(line.rsplit(":", 1)[1]), process=process)
