"""A stand-in for TF Serving's Prometheus metrics endpoint, for tests on the kwok cluster.

kwok pods run no containers, so nothing in the test cluster can serve TF Serving's metrics. This
module is a small HTTP server that publishes the same metric names, labels and units as TF Serving's
own exporter (tensorflow_serving/util/prometheus_exporter.cc over the request metrics registered in
tensorflow_serving/servables/tensorflow/util.cc), with a request rate, error ratio and latency that
the test sets. A real Prometheus scrapes it like it would scrape a serving pod.

What it publishes at /monitoring/prometheus/metrics (TF Serving's path):

    :tensorflow:serving:request_count{model_name, status}          counter; status is the gRPC code
                                                                    name ("OK", "INTERNAL", ...)
    :tensorflow:serving:request_latency_bucket{model_name, API, entrypoint, status, le}
    :tensorflow:serving:request_latency_sum / _count                histogram in microseconds, TF
                                                                    Serving's buckets 10 * 1.8^i

Counters grow continuously at the configured rate (computed from the time of each scrape), so
`rate()` over any window sees exactly the rate the test asked for.

Run as a process (what tests do, see `start_exporter` in prometheus_kit.py):

    python tests/tfserving_exporter.py --model resnet [--port 0]

It prints `listening on 127.0.0.1:<port>` and takes its settings from `POST /control` with a JSON
body `{"rps": 20, "error_ratio": 0.2, "latency_ms": 40}` (any subset); `GET /control` returns them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

METRICS_PATH = "/monitoring/prometheus/metrics"
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
# TF Serving's request_latency sampler: Buckets::Exponential(10, 1.8, 33), in microseconds.
LATENCY_BUCKETS_US = [10 * 1.8**i for i in range(33)]
ERROR_STATUS = "INTERNAL"


class Traffic:
    """Cumulative request counts that grow at a configurable rate, integrated piecewise over time."""

    def __init__(self, model: str, api: str = "predict", entrypoint: str = "REST") -> None:
        self.model, self.api, self.entrypoint = model, api, entrypoint
        self.rps = 0.0
        self.error_ratio = 0.0
        self.latency_ms = 10.0
        self.ok = 0.0
        self.errors = 0.0
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def _advance(self) -> None:
        now = time.monotonic()
        served = self.rps * (now - self._since)
        self.ok += served * (1 - self.error_ratio)
        self.errors += served * self.error_ratio
        self._since = now

    def configure(self, **settings: float) -> dict[str, float]:
        with self._lock:
            self._advance()  # what was served so far keeps the old settings
            for key in ("rps", "error_ratio", "latency_ms"):
                if key in settings:
                    setattr(self, key, float(settings[key]))
            return self.settings()

    def settings(self) -> dict[str, float]:
        return {"rps": self.rps, "error_ratio": self.error_ratio, "latency_ms": self.latency_ms}

    def render(self) -> str:
        with self._lock:
            self._advance()
            ok, errors = math.floor(self.ok), math.floor(self.errors)
            latency_us = self.latency_ms * 1000
        lines = [f"# TYPE {REQUEST_COUNT} counter"]
        for status, count in (("OK", ok), (ERROR_STATUS, errors)):
            lines.append(f'{REQUEST_COUNT}{{model_name="{self.model}",status="{status}"}} {count}')
        lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
        for status, count in (("OK", ok), (ERROR_STATUS, errors)):
            labels = (
                f'model_name="{self.model}",API="{self.api}",entrypoint="{self.entrypoint}",status="{status}"'
            )
            # Every request takes latency_ms: it lands in the first bucket whose limit is above it.
            for limit in LATENCY_BUCKETS_US:
                below = count if latency_us <= limit else 0
                lines.append(f'{REQUEST_LATENCY}_bucket{{{labels},le="{limit:g}"}} {below}')
            lines.append(f'{REQUEST_LATENCY}_bucket{{{labels},le="+Inf"}} {count}')
            lines.append(f"{REQUEST_LATENCY}_sum{{{labels}}} {count * latency_us:g}")
            lines.append(f"{REQUEST_LATENCY}_count{{{labels}}} {count}")
        return "\n".join(lines) + "\n"


def make_server(traffic: Traffic, port: int = 0) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, body: str, content_type: str = "text/plain; version=0.0.4") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == METRICS_PATH:
                self._reply(200, traffic.render())
            elif self.path == "/control":
                self._reply(200, json.dumps(traffic.settings()), "application/json")
            else:
                self._reply(404, "not found\n")

        def do_POST(self) -> None:
            if self.path != "/control":
                self._reply(404, "not found\n")
                return
            body: dict[str, Any] = json.loads(
                self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"
            )
            self._reply(200, json.dumps(traffic.configure(**body)), "application/json")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per scrape would drown the test output

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the model_name label")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--rps", type=float, default=0.0)
    parser.add_argument("--error-ratio", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    traffic = Traffic(args.model)
    traffic.configure(rps=args.rps, error_ratio=args.error_ratio, latency_ms=args.latency_ms)
    server = make_server(traffic, args.port)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
