"""The shared cache's failures, from the real `modelserve-serving sync` to the ModelDeployment's status.

kwok runs no containers, so the sync pod's outcome is produced here for real and carried the way a
kubelet carries it: the real `sync` runs in cache mode on this host against a store that refuses
connections; its exit code and termination message are what the stand-in kubelet
(tests/kubelet_kit.py, a test stand-in named as such) reports for the `model-sync` container of the
sync pod the real scheduler bound to its node. The API server, the PV controller, the scheduler,
the Deployment controller and the operator are real. Two failures: the first fill cannot fetch
(CacheFetchFailed: Ready False, the reason in status.lastSyncError), and a restarted sync whose
versions are on the claim loses the store (StoreUnreachable: the cache keeps serving, CacheReady
stays True, ModelSyncDegraded True); then the sync recovers.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from kit import Cluster, condition, wait_event, wait_until
from kubelet_kit import TAINT, StandInKubelet, now
from modelserve import contract, naming
from serving_image.sync_kit import SyncProcess, specific

pytestmark = pytest.mark.integration


def closed_port() -> int:
    """A loopback port nobody listens on: the store refuses every connection."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def real_sync_failure(workdir: Path, *, versions_on_disk: bool) -> tuple[int, str]:
    """Exit code and termination message of the real sync in cache mode, the store refusing."""
    proc = SyncProcess(
        workdir,
        "s3://models/big",
        {
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}",
        },
        specific(1),
        poll_seconds=1,
        mode=contract.SYNC_MODE_CACHE,
    )
    if versions_on_disk:
        # What an earlier sync left on the claim: version 1, complete.
        (proc.model / "1").mkdir(parents=True)
        (proc.model / "1" / "saved_model.pb").write_bytes(b"\x08\x01")
    proc.start()
    try:
        code = proc.wait_exit(timeout=120)
    finally:
        proc.stop()
    return code, proc.termination.read_text().strip()


def crashed_sync(pod: dict[str, Any], code: int, message: str) -> dict[str, Any]:
    """The status a kubelet reports for a pod whose only container keeps exiting: running (the
    pod), the container waiting in CrashLoopBackOff with its last exit and termination message."""
    (container,) = pod["spec"]["containers"]
    terminated = {
        "exitCode": code,
        "reason": "Error",
        "message": message,
        "startedAt": now(),
        "finishedAt": now(),
    }
    return {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.3",
        "startTime": now(),
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
        ],
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting"}},
                "lastState": {"terminated": terminated},
            }
        ],
    }


def waiting_for_the_model(pod: dict[str, Any]) -> dict[str, Any]:
    """A serving pod whose TF Serving runs but has no version to load: running, not ready."""
    statuses = [
        {"name": c["name"], "image": c["image"], "imageID": "", "ready": False, "started": True,
         "restartCount": 0, "state": {"running": {"startedAt": now()}}}
        for c in pod["spec"]["containers"]
    ]
    return {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.4",
        "startTime": now(),
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
        ],
        "containerStatuses": statuses,
    }


def static_volume(cluster: Cluster, name: str, storage_class: str) -> None:
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"modelserve.dev/test": "model-cache"}},
        "spec": {
            "capacity": {"storage": "2Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": storage_class,
            "hostPath": {"path": f"/tmp/modelserve-cache/{name}", "type": "DirectoryOrCreate"},
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pv))


@pytest.mark.usefixtures("operator")
def test_sync_failures_reach_the_status_as_the_real_sync_reports_them(
    cluster: Cluster, namespace: str, kubelet: StandInKubelet, tmp_path: Path
) -> None:
    fetch_code, fetch_message = real_sync_failure(tmp_path / "first-fill", versions_on_disk=False)
    assert fetch_code == contract.EXIT_FETCH_FAILED, fetch_message
    assert "s3://models/big" in fetch_message
    outage_code, outage_message = real_sync_failure(tmp_path / "restarted", versions_on_disk=True)
    assert outage_code == contract.EXIT_SYNC_DEGRADED, outage_message

    storage_class = f"failing-{namespace}"
    static_volume(cluster, f"failing-{namespace}", storage_class)
    # ReadWriteOnce: the sync pod takes the model's node selector and tolerations, so both pods
    # are bound to the stand-in kubelet's node.
    spec = {
        "model": {
            "storageUri": "s3://models/big",
            "cache": {"size": "1Gi", "storageClassName": storage_class, "accessMode": "ReadWriteOnce"},
            "versionPolicy": {"specific": {"versions": [1]}},
        },
        "replicas": 1,
        "scheduling": {
            "nodeSelector": {"kubernetes.io/hostname": kubelet.node},
            "tolerations": [{"key": TAINT, "operator": "Equal", "value": namespace, "effect": "NoSchedule"}],
        },
    }
    body = {
        "apiVersion": "modelserve.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "big", "namespace": namespace},
        "spec": spec,
    }
    failure = {"code": fetch_code, "message": fetch_message}

    def report(pod: dict[str, Any]) -> dict[str, Any] | None:
        labels = pod["metadata"].get("labels") or {}
        if labels.get(naming.MODEL_SYNC_LABEL) == "big" and failure["code"]:
            return crashed_sync(pod, int(failure["code"]), str(failure["message"]))
        if labels.get(naming.MODEL_SYNC_LABEL) != "big" and failure["code"] == contract.EXIT_FETCH_FAILED:
            return waiting_for_the_model(pod)  # nothing on the claim to load yet
        return None  # run it, Ready

    kubelet.report = report
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))

        def wait_for_conditions(what: str, **wanted: tuple[str, str | None]) -> dict[str, Any]:
            """The ModelDeployment once each named condition has (status, reason); reason None: any.
            Each poll is one pass of the stand-in kubelet."""

            def probe() -> dict[str, Any] | None:
                kubelet.sync()
                md = cluster.kubectl_json("get", "mdep", "big", "-n", namespace)
                for type_, (status_, reason) in wanted.items():
                    cond = condition(md, type_) or {}
                    if cond.get("status") != status_ or reason not in (None, cond.get("reason")):
                        return None
                return md

            return wait_until(probe, timeout=90, what=what)

        # 1. The first fill fails: CacheFetchFailed with the sync's own one-line reason.
        md = wait_for_conditions("CacheFetchFailed", CacheReady=("False", "CacheFetchFailed"))
        cache_ready = condition(md, "CacheReady") or {}
        assert fetch_message.splitlines()[-1] in cache_ready["message"]
        assert md["status"]["lastSyncError"] == fetch_message.splitlines()[-1]
        assert (condition(md, "Ready") or {})["status"] == "False"
        wait_event(cluster, namespace, "big", "CacheFetchFailed", type_="Warning", timeout=20)

        # 2. A restarted sync whose version is on the claim loses the store: the cache keeps
        # serving (CacheReady True), ModelSyncDegraded says why, a Warning Event is posted.
        failure.update(code=outage_code, message=outage_message)
        md = wait_for_conditions("ModelSyncDegraded=True", ModelSyncDegraded=("True", None))
        degraded = condition(md, "ModelSyncDegraded") or {}
        assert degraded["reason"] == "StoreUnreachable"
        assert outage_message.splitlines()[-1] in degraded["message"]
        cache_ready = condition(md, "CacheReady") or {}
        assert (cache_ready["status"], cache_ready["reason"]) == ("True", "StoreUnreachable")
        assert md["status"]["lastSyncError"] == outage_message.splitlines()[-1]
        wait_event(cluster, namespace, "big", "StoreUnreachable", type_="Warning", timeout=20)

        # 3. The store answers again: the sync pod is ready, the condition clears with a Normal Event.
        failure.update(code=0, message="")
        md = wait_for_conditions(
            "the cache healthy again", ModelSyncDegraded=("False", None), CacheReady=("True", "CacheReady")
        )
        assert md["status"]["lastSyncError"] == ""
        wait_event(cluster, namespace, "big", "SyncHealthy", type_="Normal", timeout=20)
    finally:
        cluster.kubectl("delete", "mdep", "big", "-n", namespace, "--wait=true", check=False)
        cluster.kubectl("delete", "pv", f"failing-{namespace}", "--wait=false", check=False)
