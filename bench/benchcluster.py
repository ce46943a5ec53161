"""A fresh, audited local cluster per benchmark phase (hack/cluster with its own name)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SH = REPO / "hack" / "cluster" / "cluster.sh"
NAME = "modelserve-bench"
BENCH_NODES = 4


def _env() -> dict[str, str]:
    return dict(
        os.environ,
        MODELSERVE_CLUSTER_NAME=NAME,
        MODELSERVE_CLUSTER_AUDIT_POLICY=str(REPO / "bench" / "audit-policy.yaml"),
        MODELSERVE_CLUSTER_NO_QPS_LIMITS="1",
    )


def _sh(*args: str) -> str:
    return subprocess.run(
        ["bash", str(CLUSTER_SH), *args], env=_env(), check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass(frozen=True)
class BenchCluster:
    kubeconfig: str
    bin_dir: str
    audit_log: Path

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, PATH=f"{self.bin_dir}:{os.environ['PATH']}")
        return subprocess.run(
            ["kubectl", *args], env=env, input=stdin, check=True, capture_output=True, text=True
        ).stdout


def fresh_cluster() -> BenchCluster:
    """Deletes any previous bench cluster and starts a new one with large fake nodes."""
    _sh("down")
    subprocess.run(["bash", str(CLUSTER_SH), "up"], env=_env(), check=True, capture_output=True, text=True)
    env_lines = _sh("env").splitlines()
    bin_dir = next(
        line.split("=", 1)[1].split(":", 1)[0] for line in env_lines if line.startswith("export PATH=")
    )
    cluster = BenchCluster(
        kubeconfig=_sh("kubeconfig"), bin_dir=bin_dir, audit_log=Path(_sh("workdir")) / "logs" / "audit.log"
    )
    nodes: list[dict[str, Any]] = []
    for i in range(BENCH_NODES):
        capacity = {"cpu": "1000", "memory": "4Ti", "pods": "1000", "ephemeral-storage": "10Ti"}
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": f"bench-node-{i}",
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {"type": "kwok", "modelserve.dev/bench": "true", "kubernetes.io/os": "linux"},
                },
                "status": {"capacity": capacity, "allocatable": capacity},
            }
        )
    cluster.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes})
    )
    cluster.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    return cluster


def delete_cluster() -> None:
    _sh("down")
