"""Cost of the operator's sync-health poll (ModelSyncDegraded without a cache) at fleet size.

A real Prometheus (tests/prometheus_kit.py) scrapes one loopback endpoint that publishes the series
of `--models` x `--pods` model-sync sidecars (`modelserve_sync_*`, with the `namespace`, `service`
and `pod` labels a ServiceMonitor's target would carry, kept by honor_labels), a `--degraded`
share of them failing. Then the operator's own code path runs `--polls` times: the query
(modelserve.rollout.prometheus.query_vector with sync_health.QUERY), the parse and the diff.
Reported: query wall time p50/p95, answer samples and bytes, parse+diff time.

    .venv/bin/python bench/sync_health_bench.py --models 2000 --pods 3 --degraded 0.1
"""

from __future__ import annotations

import argparse
import http.server
import json
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from measure import percentile

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "operator")]

from modelserve import sync_health  # noqa: E402
from modelserve.rollout import prometheus  # noqa: E402
from prometheus_kit import free_port, start_prometheus  # noqa: E402


def exposition(models: int, pods: int, degraded: float) -> bytes:
    lines = []
    now = time.time()
    for m in range(models):
        failing = m < models * degraded
        for p in range(pods):
            labels = f'namespace="ns{m % 50}",service="m{m}",pod="m{m}-abc-{p}",model="m{m}"'
            bad = failing and p == 0
            lines += [
                f"modelserve_sync_degraded{{{labels}}} {1 if bad else 0}",
                f"modelserve_sync_consecutive_failures{{{labels}}} {3 if bad else 0}",
                f"modelserve_sync_last_success_timestamp_seconds{{{labels}}} {now - (300 if bad else 5)}",
                f'modelserve_sync_version_present{{{labels},version="1"}} 1',
                f'modelserve_sync_version_served{{{labels},version="1"}} 1',
            ]
    return ("\n".join(lines) + "\n").encode()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--pods", type=int, default=3)
    parser.add_argument("--degraded", type=float, default=0.1, help="share of models with a failing pod")
    parser.add_argument("--polls", type=int, default=20)
    args = parser.parse_args()

    body = exposition(args.models, args.pods, args.degraded)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        prom = start_prometheus(
            Path(tmp) / "prometheus",
            scrape_interval="5s",
            extra_scrape_configs=[
                {
                    "job_name": "sync",
                    "honor_labels": True,
                    "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
                }
            ],
        )
        try:
            expected = args.models * args.pods
            deadline = time.monotonic() + 120
            while prom.value("count(modelserve_sync_degraded)") != expected:
                if time.monotonic() > deadline:
                    raise SystemExit("Prometheus did not ingest the series in 120 s")
                time.sleep(0.5)  # waiting for the first scrape, inside a deadline
            url = prom.url + "/api/v1/query?" + urllib.parse.urlencode({"query": sync_health.QUERY})
            with urllib.request.urlopen(url, timeout=30) as resp:
                answer_bytes = len(resp.read())
            query_ms, parse_ms = [], []
            snapshot: dict[sync_health.Key, sync_health.SyncObservation] = {}
            for _ in range(args.polls):
                t0 = time.perf_counter()
                samples = prometheus.query_vector(prom.url, sync_health.QUERY, timeout=30)
                t1 = time.perf_counter()
                new = sync_health.parse(samples)
                sync_health.changed(snapshot, new)
                snapshot = new
                query_ms.append((t1 - t0) * 1000)
                parse_ms.append((time.perf_counter() - t1) * 1000)
            degraded = sum(1 for o in snapshot.values() if o.degraded)
            print(
                json.dumps(
                    {
                        "models": args.models,
                        "pods": args.pods,
                        "series_scraped": expected * 5,
                        "models_seen": len(snapshot),
                        "models_degraded": degraded,
                        "answer_samples": len(samples),
                        "answer_kib": round(answer_bytes / 1024, 1),
                        "query_ms_p50": round(percentile(query_ms, 50), 1),
                        "query_ms_p95": round(percentile(query_ms, 95), 1),
                        "parse_and_diff_ms_p50": round(percentile(parse_ms, 50), 2),
                    },
                    indent=1,
                )
            )
        finally:
            prom.stop()
            server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
