"""A kubelet played by the test for one node kwok does not manage (`StandInKubelet`, a test
stand-in named as such): kwok runs no kubelet and reports every pod it runs as Running and Ready, so
what only a kubelet can report (a FailedMount Event, a container's exit code and termination
message) is reported by this class, word for word as a kubelet would, for the pods the real
scheduler binds to its node. Everything else (API server, scheduler, controllers, operator) is real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kit import Cluster

# A pod's status to report instead of the default (mount the Secrets, run, Ready), or None.
PodStatus = Callable[[dict[str, Any]], dict[str, Any] | None]


TAINT = "modelserve.dev/test-kubelet"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StandInKubelet:
    """What a kubelet reports for the pods bound to its node, given which Secrets exist."""

    def __init__(self, cluster: Cluster, node: str, namespace: str) -> None:
        self.cluster, self.node, self.namespace = cluster, node, namespace
        self.failed_mounts: set[str] = set()
        self.report: PodStatus | None = None  # a test's own status for some pods (a crashing container)

    def register(self) -> None:
        resources = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "200Gi"}
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node}},
            "spec": {"taints": [{"key": TAINT, "value": self.namespace, "effect": "NoSchedule"}]},
        }
        self.cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(node))
        status = {"status": {"capacity": resources, "allocatable": resources}}
        self.cluster.kubectl(
            "patch", "node", self.node, "--subresource=status", "--type=merge", "-p", json.dumps(status)
        )
        self.heartbeat()

    def heartbeat(self) -> None:
        ready = {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "test stand-in kubelet",
            "lastHeartbeatTime": now(),
            "lastTransitionTime": now(),
        }
        self.cluster.kubectl(
            "patch", "node", self.node, "--subresource=status", "--type=strategic",
            "-p", json.dumps({"status": {"conditions": [ready]}}),
        )

    def secret_exists(self, name: str) -> bool:
        proc = self.cluster.kubectl("get", "secret", name, "-n", self.namespace, check=False)
        return proc.returncode == 0

    def sync(self) -> None:
        """One pass of the kubelet's pod workers over the pods bound to this node."""
        self.heartbeat()
        pods = self.cluster.kubectl_json(
            "get", "pods", "-n", self.namespace, "--field-selector", f"spec.nodeName={self.node}"
        )["items"]
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            reported = self.report(pod) if self.report is not None else None
            if reported is not None:
                self.patch_status(pod, reported)
                continue
            missing = [
                (v["name"], v["secret"]["secretName"])
                for v in pod["spec"].get("volumes") or []
                if "secret" in v and not self.secret_exists(v["secret"]["secretName"])
            ]
            if missing:
                self._cannot_mount(pod, *missing[0])
            elif not _ready(pod):
                self._run(pod)  # nothing keeps it from starting (any more): it runs and is Ready

    def _statuses(self, pod: dict[str, Any], state: dict[str, Any], ready: bool) -> dict[str, Any]:
        def status(c: dict[str, Any]) -> dict[str, Any]:
            return {"name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
                    "restartCount": 0, "started": ready, "state": state}

        return {
            "initContainerStatuses": [status(c) for c in pod["spec"].get("initContainers") or []],
            "containerStatuses": [status(c) for c in pod["spec"]["containers"]],
        }

    def _cannot_mount(self, pod: dict[str, Any], volume: str, secret: str) -> None:
        name = pod["metadata"]["name"]
        waiting = {"waiting": {"reason": "PodInitializing"}}
        status = {
            "phase": "Pending",
            "hostIP": "127.0.0.1",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
            ],
            **self._statuses(pod, waiting, ready=False),
        }
        self.cluster.kubectl(
            "patch", "pod", name, "-n", self.namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps({"status": status}),
        )
        if name in self.failed_mounts:
            return
        self.failed_mounts.add(name)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": self.namespace},
            "involvedObject": {"kind": "Pod", "name": name, "namespace": self.namespace,
                               "uid": pod["metadata"]["uid"], "apiVersion": "v1"},
            "type": "Warning",
            "reason": "FailedMount",
            "message": f'MountVolume.SetUp failed for volume "{volume}" : secret "{secret}" not found',
            "source": {"component": "kubelet", "host": self.node},
            "firstTimestamp": now(),
            "lastTimestamp": now(),
            "count": 1,
        }
        self.cluster.kubectl("create", "-f", "-", input=json.dumps(event))

    def patch_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        self.cluster.kubectl(
            "patch", "pod", pod["metadata"]["name"], "-n", self.namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": status}),
        )

    def _run(self, pod: dict[str, Any]) -> None:
        running = {"running": {"startedAt": now()}}
        status = {
            "phase": "Running",
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.2",
            "startTime": now(),
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": now()}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            **self._statuses(pod, running, ready=True),
        }
        self.cluster.kubectl(
            "patch", "pod", pod["metadata"]["name"], "-n", self.namespace, "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": status}),
        )


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in pod["status"].get("conditions") or []
    )
