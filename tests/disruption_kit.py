"""Fake nodes of a test's own and a sampler of serving health, for the drain and node-loss tests.

Each test gets a pool of kwok nodes carrying a label and a NoSchedule taint named after its
namespace: only its own pods (which select and tolerate them) land there, so draining or losing one
of them disturbs nothing else on a shared cluster.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kit import Cluster, condition, get_or_none, wait_until

POOL_KEY = "modelserve.dev/test-pool"


def pool_scheduling(namespace: str, *, not_ready_toleration: int | None = None) -> dict[str, Any]:
    """spec.scheduling putting the pods on the test's pool (and evicting them soon off a lost node:
    the default toleration of a NotReady node is 300 s)."""
    tolerations: list[dict[str, Any]] = [
        {"key": POOL_KEY, "operator": "Equal", "value": namespace, "effect": "NoSchedule"}
    ]
    if not_ready_toleration is not None:
        tolerations += [
            {
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": not_ready_toleration,
            }
            for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
        ]
    return {"nodeSelector": {POOL_KEY: namespace}, "tolerations": tolerations}


@contextlib.contextmanager
def node_pool(cluster: Cluster, namespace: str, count: int) -> Iterator[list[str]]:
    names = [f"{namespace}-n{i}"[:63] for i in range(count)]
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": name,
                    "topology.kubernetes.io/zone": f"zone-{i % 3}",
                    "type": "kwok",
                    POOL_KEY: namespace,
                },
            },
            "spec": {"taints": [{"key": POOL_KEY, "value": namespace, "effect": "NoSchedule"}]},
            "status": {
                "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            },
        }
        for i, name in enumerate(names)
    ]
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=modelserve-tests", "-f", "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}),
    )  # fmt: skip
    try:
        for name in names:
            cluster.kubectl("wait", "--for=condition=Ready", "--timeout=60s", f"node/{name}")
        yield names
    finally:
        cluster.kubectl("delete", "node", *names, "--ignore-not-found", "--wait=false", check=False)


def serving_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"modelserve.dev/deployment={name}")
    return [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def nodes_of(cluster: Cluster, namespace: str, name: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for pod in serving_pods(cluster, namespace, name):
        node = pod["spec"].get("nodeName")
        if node and is_ready(pod):
            out[node] = out.get(node, 0) + 1
    return out


@dataclass
class Sample:
    at: float
    ready_pods: int
    model_ready: str
    reason: str = ""
    message: str = ""
    status: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sampler:
    """Samples, every `interval` seconds, how many serving pods are Ready and the model's Ready."""

    cluster: Cluster
    namespace: str
    name: str
    interval: float = 0.3
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="disruption-sampler", daemon=True)
        self._thread.start()
        wait_until(lambda: self.samples, timeout=30, what="a first sample")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready = sum(1 for p in serving_pods(self.cluster, self.namespace, self.name) if is_ready(p))
                md = get_or_none(self.cluster, self.namespace, "modeldeployment", self.name)
                cond = condition(md, "Ready") or {}
                self.samples.append(
                    Sample(
                        time.monotonic(),
                        ready,
                        str(cond.get("status")),
                        str(cond.get("reason", "")),
                        str(cond.get("message", "")),
                        dict((md or {}).get("status") or {}) if cond.get("status") != "True" else {},
                    )
                )
            except AssertionError:  # a kubectl call failed: no sample this time
                pass
            self._stop.wait(self.interval)

    def min_ready(self) -> int:
        return min(s.ready_pods for s in self.samples)

    def not_ready(self) -> list[Sample]:
        return [s for s in self.samples if s.model_ready != "True"]
