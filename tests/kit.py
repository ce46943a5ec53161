"""Helpers shared by the cluster-backed tests: the local cluster handle, condition waits, dumps."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPT = REPO / "hack" / "cluster" / "cluster.sh"
CRD_DIR = REPO / "crds"

T = TypeVar("T")


def cache_root() -> Path:
    """Where hack/cluster/lib.sh caches built binaries and fetched CRDs (its cache_root)."""
    root = os.environ.get("MODELSERVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "modelserve-operator"
    )
    return Path(root)


def pinned_versions() -> dict[str, str]:
    """hack/cluster/versions.env as a dict."""
    versions = {}
    for line in (REPO / "hack" / "cluster" / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            versions[key.strip()] = value.strip()
    return versions


class WaitTimeoutError(AssertionError):
    pass


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float = 60.0,
    interval: float = 0.25,
    what: str = "condition",
    describe: Callable[[], str] | None = None,
) -> T:
    """Polls `probe` until it returns something truthy, or fails naming what never happened.

    Each poll asks the API server for the current state, so this waits on a condition with a
    deadline rather than sleeping a fixed time.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # a probe may race a create; keep polling until the deadline
            last_error = exc
        if time.monotonic() >= deadline:
            detail = describe() if describe else ""
            raise WaitTimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what}"
                + (f"; last error: {last_error!r}" if last_error else "")
                + (f"\n{detail}" if detail else "")
            )
        time.sleep(interval)


@dataclass(frozen=True)
class Cluster:
    """A running cluster the tests may use: the local kwok one, or any named by MODELSERVE_TEST_KUBECONFIG."""

    kubeconfig: str
    bin_dir: str | None
    local: bool

    def env(self) -> dict[str, str]:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        if self.bin_dir:
            env["PATH"] = f"{self.bin_dir}:{env.get('PATH', '')}"
        return env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["kubectl", *args],
            env=self.env(),
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def dump(self, namespace: str) -> str:
        """Everything worth reading after a failure in `namespace`."""
        sections = []
        for args in (
            ["get", "modeldeployments,deployments,replicasets,pods,services,configmaps,hpa", "-o", "wide"],
            ["get", "modeldeployments", "-o", "yaml"],
            ["get", "events", "--sort-by=.lastTimestamp"],
        ):
            proc = self.kubectl("-n", namespace, *args, check=False)
            sections.append(f"$ kubectl -n {namespace} {' '.join(args)}\n{proc.stdout}{proc.stderr}")
        nodes = self.kubectl("get", "nodes", "-L", "nvidia.com/gpu.product", check=False)
        sections.append(f"$ kubectl get nodes\n{nodes.stdout}{nodes.stderr}")
        return "\n".join(sections)


def start_local_cluster() -> Cluster:
    """Brings the local cluster up (building binaries on a cold cache) and returns its handle."""
    proc = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), "up"], capture_output=True, text=True, timeout=5400, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"hack/cluster/cluster.sh up failed:\n{proc.stdout}\n{proc.stderr}")
    kubeconfig = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), "kubeconfig"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env_lines = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), "env"], capture_output=True, text=True, check=True
    ).stdout
    bin_dir = next(
        line.split("=", 1)[1].split(":", 1)[0]
        for line in env_lines.splitlines()
        if line.startswith("export PATH=")
    )
    return Cluster(kubeconfig=kubeconfig, bin_dir=bin_dir, local=True)


def model_deployment(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelserve.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def get_or_none(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    proc = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if proc.returncode != 0:
        if "NotFound" in proc.stderr or "not found" in proc.stderr:
            return None
        raise AssertionError(proc.stderr)
    return dict(json.loads(proc.stdout))


def wait_condition(
    cluster: Cluster,
    namespace: str,
    name: str,
    type_: str,
    status: str,
    *,
    reason: str | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Waits until the ModelDeployment's condition has this status (and reason), at the current generation."""

    def probe() -> dict[str, Any] | None:
        md = get_or_none(cluster, namespace, "modeldeployment", name)
        cond = condition(md, type_)
        if md is None or cond is None:
            return None
        current = md["status"].get("observedGeneration") == md["metadata"]["generation"]
        if current and cond["status"] == status and (reason is None or cond["reason"] == reason):
            return md
        return None

    return wait_until(
        probe,
        timeout=timeout,
        what=f"{name}: {type_}={status}" + (f" ({reason})" if reason else ""),
        describe=lambda: json.dumps(
            (get_or_none(cluster, namespace, "modeldeployment", name) or {}).get("status"), indent=1
        ),
    )


def wait_event(
    cluster: Cluster,
    namespace: str,
    name: str,
    reason: str,
    *,
    type_: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Waits for an Event with this reason (and type) on the ModelDeployment `name`.

    The operator posts Events from a thread of its own after the status write, so a test that has
    seen the status may still have to wait a moment for the Event."""

    def events() -> list[dict[str, Any]]:
        listed = cluster.kubectl_json(
            "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
        )
        return [e for e in listed["items"] if e["involvedObject"].get("kind") == "ModelDeployment"]

    return wait_until(
        lambda: next(
            (e for e in events() if e["reason"] == reason and (type_ is None or e["type"] == type_)), None
        ),
        timeout=timeout,
        what=f"{type_ or 'an'} Event {reason} on {name}",
        describe=lambda: json.dumps([(e["type"], e["reason"], e["message"]) for e in events()], indent=1),
    )
