"""The activator and its forward target for tests.

- `start_activator`: `modelserve activator` as a process on loopback ports, watching the test
  cluster (the real program the chart runs in a pod).
- `TFServingStub`: a stand-in for a serving pod's TF Serving (kwok pods run no containers): REST
  `/v1/models/<name>:predict` and gRPC `tensorflow.serving.PredictionService/Predict` on the pod's
  own IP. gRPC is answered from the raw bytes (the request's model_spec.name is read by field number)
  so the tests need not import TensorFlow's protos.
- `loopback_node`: a kwok node whose pod CIDR is in 127.0.0.0/8, so the pods kwok runs there get
  addresses this host can listen on: the activator forwards to a ready pod's own IP, and the stub
  is listening there. (EndpointSlices may not hold loopback addresses, so the activator reads pod IPs
  from the pods, as it does in a cluster.)
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc

from kit import Cluster

LOOPBACK_NODE = "kwok-loopback-1"
LOOPBACK_CIDR = "127.77.0.0/24"
LOOPBACK_TAINT = "modelserve.dev/loopback"
# Scheduling for a ModelDeployment whose pods must land on the loopback node.
LOOPBACK_SCHEDULING = {
    "nodeSelector": {"kubernetes.io/hostname": LOOPBACK_NODE},
    "tolerations": [{"key": LOOPBACK_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
}
PREDICT = "/tensorflow.serving.PredictionService/Predict"


def loopback_node(cluster: Cluster, name: str = LOOPBACK_NODE, cidr: str = LOOPBACK_CIDR) -> None:
    """A kwok node named `name` whose pods get addresses from `cidr` (in 127.0.0.0/8)."""
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource",
            },
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
        },
        "spec": {
            "podCIDR": cidr,
            "taints": [{"key": LOOPBACK_TAINT, "value": "true", "effect": "NoSchedule"}],
        },
        "status": {
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
        },
    }
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=modelserve-tests", "-f", "-", input=json.dumps(node)
    )
    cluster.kubectl("wait", "--for=condition=Ready", f"node/{name}", "--timeout=60s")


def predict_request(model: str) -> bytes:
    """PredictRequest{model_spec{name: model}} in protobuf wire format."""
    name = model.encode()
    spec = b"\x0a" + bytes([len(name)]) + name
    return b"\x0a" + bytes([len(spec)]) + spec


@dataclass
class Activator:
    process: subprocess.Popen[str]
    rest: str
    grpc: str
    scaler: str
    metrics: str
    log: Path

    def stop(self, sig: str = "TERM") -> None:
        if self.process.poll() is None:
            (self.process.terminate if sig == "TERM" else self.process.kill)()
            self.process.wait(timeout=30)

    def metric(self, name: str, **labels: str) -> float:
        import urllib.request

        with urllib.request.urlopen(f"http://{self.metrics}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
                head, value = line.rsplit(" ", 1)
                if head.split("{")[0] == name:
                    total += float(value)
        return total


def start_activator(
    cluster: Cluster,
    workdir: Path,
    *,
    namespace: str,
    hold_timeout: float = 30,
    queue_size: int = 100,
    scaler_port: int = 0,
) -> Activator:
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"activator-{len(list(workdir.glob('activator-*.log')))}.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelserve",
            "activator",
            "--bind-address=127.0.0.1",
            "--rest-port=0",
            "--grpc-port=0",
            f"--scaler-port={scaler_port}",
            "--metrics-port=0",
            f"--kubeconfig={cluster.kubeconfig}",
            f"--hold-timeout={hold_timeout}",
            f"--queue-size={queue_size}",
            f"--namespace={namespace}",
            "--retry-after=3",
        ],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=cluster.env(),
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.match(r"activator listening rest=(\S+) grpc=(\S+) scaler=(\S+) metrics=(\S+)", line)
    if not match:
        process.kill()
        raise AssertionError(f"the activator did not start: {line!r}\n{log.read_text()}")
    return Activator(process, *match.groups(), log=log)


class StubHTTPServer(ThreadingHTTPServer):
    """http.server with a real server's listen backlog. socketserver's default is 5: a burst of 50
    connections (an activator releasing its held requests) overflows it, the kernel drops the SYNs
    and each caller waits out TCP's 1 s retransmit, which measured the stand-in, not the activator."""

    request_queue_size = 1024
    daemon_threads = True


@dataclass
class TFServingStub:
    """Stand-in for TF Serving on one pod IP: counts what it served."""

    ip: str
    rest_port: int = 8501
    grpc_port: int = 8500
    served: list[str] = field(default_factory=list)
    # time.perf_counter() when each REST request reached this stand-in (before it is read): what
    # the activator's benchmark measures the activator's own share up to.
    arrivals: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def running(self) -> Iterator[TFServingStub]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                arrived = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with stub._lock:
                    stub.served.append(f"rest {self.path}")
                    stub.arrivals.append(arrived)
                body = json.dumps({"predictions": [[2.5]]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Predict(grpc.GenericRpcHandler):  # type: ignore[misc]
            def service(self, details: Any) -> Any:
                def unary(request: bytes, context: Any) -> bytes:
                    with stub._lock:
                        stub.served.append(f"grpc {details.method}")
                    return b"\x0a\x00"  # an empty PredictResponse.model_spec

                return grpc.unary_unary_rpc_method_handler(unary)

        http = StubHTTPServer((self.ip, self.rest_port), Handler)
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        server.add_generic_rpc_handlers([Predict()])
        server.add_insecure_port(f"{self.ip}:{self.grpc_port}")
        server.start()
        try:
            yield self
        finally:
            http.shutdown()
            http.server_close()
            server.stop(0)


def port_free(ip: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


class StubFleet:
    """TF Serving stand-ins on the first addresses of the loopback node's pod CIDR, listening before
    any pod is Ready (kwok hands out the lowest free address), so a wake never waits for a stand-in
    to start: what is measured and tested is the activator."""

    def __init__(self, count: int = 24) -> None:
        prefix = LOOPBACK_CIDR.rsplit(".", 1)[0]
        self.stubs = [TFServingStub(f"{prefix}.{i}") for i in range(1, count + 1)]
        self._contexts: list[Any] = []

    def served(self) -> list[str]:
        return [item for stub in self.stubs for item in stub.served]

    def arrivals_since(self, since: float) -> list[float]:
        return [t for stub in self.stubs for t in stub.arrivals if t >= since]

    def __enter__(self) -> StubFleet:
        for stub in self.stubs:
            context = stub.running()
            context.__enter__()
            self._contexts.append(context)
        return self

    def __exit__(self, *_: object) -> None:
        for context in self._contexts:
            context.__exit__(None, None, None)
        self._contexts.clear()
