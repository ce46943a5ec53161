"""A credentialsSecret that does not exist is SecretNotFound within seconds, and Ready once it is
created, read the way the operator reads it on a real cluster: from the kubelet's FailedMount Event
of a pod that cannot start (the operator has no access to Secrets).

kwok runs no kubelet and would report every pod Running, so this test schedules the pods onto a node
kwok does not manage and plays that node's kubelet itself (`StandInKubelet`, a test stand-in named
as such): a pod whose Secret volume is missing stays Pending with its containers waiting and gets the
kubelet's FailedMount Event, word for word; once the Secret exists the pod runs and turns Ready. The
scheduler, the ReplicaSet and Deployment controllers, the API server and the operator are real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from kit import Cluster, condition, model_deployment, wait_condition, wait_event, wait_until

pytestmark = pytest.mark.integration

TAINT = "modelserve.dev/test-kubelet"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StandInKubelet:
    """What a kubelet reports for the pods bound to its node, given which Secrets exist."""

    def __init__(self, cluster: Cluster, node: str, namespace: str) -> None:
        self.cluster, self.node, self.namespace = cluster, node, namespace
        self.failed_mounts: set[str] = set()

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
            missing = [
                (v["name"], v["secret"]["secretName"])
                for v in pod["spec"].get("volumes") or []
                if "secret" in v and not self.secret_exists(v["secret"]["secretName"])
            ]
            if missing:
                self._cannot_mount(pod, *missing[0])
            elif pod["status"].get("phase") != "Running":
                self._run(pod)

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


@pytest.fixture
def kubelet(cluster: Cluster, namespace: str) -> Iterator[StandInKubelet]:
    stand_in = StandInKubelet(cluster, f"standin-{namespace}"[:63], namespace)
    stand_in.register()
    yield stand_in
    cluster.kubectl("delete", "node", stand_in.node, "--ignore-not-found", "--wait=false", check=False)


@pytest.mark.usefixtures("operator")
def test_a_missing_credentials_secret_is_secret_not_found_until_it_exists(
    cluster: Cluster, namespace: str, kubelet: StandInKubelet
) -> None:
    spec = {
        "model": {"storageUri": "s3://models/resnet", "credentialsSecret": "s3-creds"},
        "scheduling": {
            "nodeSelector": {"kubernetes.io/hostname": kubelet.node},
            "tolerations": [{"key": TAINT, "operator": "Equal", "value": namespace, "effect": "NoSchedule"}],
        },
    }
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-",
                    input=json.dumps(model_deployment("creds", spec)))

    def reason() -> str | None:
        kubelet.sync()
        md = cluster.kubectl_json("get", "mdep", "creds", "-n", namespace)
        ready = condition(md, "Ready") or {}
        return str(ready.get("reason")) if ready.get("reason") == "SecretNotFound" else None

    wait_until(reason, timeout=30, what="Ready reason SecretNotFound")
    md = cluster.kubectl_json("get", "mdep", "creds", "-n", namespace)
    message = str((condition(md, "Ready") or {}).get("message"))
    assert 'secret "s3-creds" not found' in message and "MountVolume.SetUp failed" in message
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    wait_event(cluster, namespace, "creds", "SecretNotFound", type_="Warning", timeout=20)

    cluster.kubectl("create", "secret", "generic", "s3-creds", "-n", namespace,
                    "--from-literal=AWS_ACCESS_KEY_ID=x", "--from-literal=AWS_SECRET_ACCESS_KEY=y")

    def ready() -> bool:
        kubelet.sync()
        md = cluster.kubectl_json("get", "mdep", "creds", "-n", namespace)
        return (condition(md, "Ready") or {}).get("status") == "True"

    wait_until(ready, timeout=90, what="Ready once the Secret exists")
    wait_condition(cluster, namespace, "creds", "Ready", "True", timeout=10)
    wait_event(cluster, namespace, "creds", "Ready", type_="Normal", timeout=20)
