"""spec.model.cache on the local cluster: the claim is bound to a statically provisioned volume by
the real PV controller, one `<name>-model-sync` Deployment fills it, serving pods mount it read-only
and download nothing, CacheReady follows the claim and the sync Deployment, scaling the replicas
leaves the sync alone, everything passes the restricted Pod Security Standard."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kit import Cluster, get_or_none, wait_condition, wait_event, wait_until
from modelserve import contract, naming

pytestmark = pytest.mark.integration


def static_volume(cluster: Cluster, name: str, storage_class: str, *, size: str = "2Gi") -> None:
    """A PersistentVolume made by hand (no dynamic provisioner here): hostPath, cluster-scoped."""
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"modelserve.dev/test": "model-cache"}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": storage_class,
            "hostPath": {"path": f"/tmp/modelserve-cache/{name}", "type": "DirectoryOrCreate"},
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pv))


def apply(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": "modelserve.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


def cond(cluster: Cluster, namespace: str, name: str, type_: str) -> dict[str, Any] | None:
    md = get_or_none(cluster, namespace, "mdep", name) or {}
    return next((c for c in (md.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def assert_serving_pods_read_only(cluster: Cluster, namespace: str, name: str) -> None:
    # Serving pods: the claim read-only, no sync container, no credentials.
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"modelserve.dev/deployment={name}")
    assert pods["items"], "no serving pod was admitted under the restricted Pod Security Standard"
    for pod in pods["items"]:
        spec = pod["spec"]
        assert not spec.get("initContainers")
        (volume,) = [v for v in spec["volumes"] if v["name"] == naming.MODEL_VOLUME]
        assert volume["persistentVolumeClaim"] == {"claimName": f"{name}-model-cache", "readOnly": True}
        (serving,) = spec["containers"]
        model_mounts = [m for m in serving["volumeMounts"] if m["name"] == naming.MODEL_VOLUME]
        assert model_mounts == [
            {"name": naming.MODEL_VOLUME, "mountPath": contract.MODEL_ROOT, "readOnly": True}
        ]
        assert "store" not in json.dumps(spec["volumes"])


@pytest.mark.usefixtures("operator")
def test_cached_model_claim_sync_deployment_and_read_only_replicas(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "store",
        "-n",
        namespace,
        "--from-literal=AWS_ACCESS_KEY_ID=k",
        "--from-literal=AWS_SECRET_ACCESS_KEY=s",
    )
    storage_class = f"static-{namespace}"
    apply(
        cluster,
        namespace,
        "big",
        {
            "model": {
                "storageUri": "s3://models/big",
                "credentialsSecret": "store",
                "cache": {"size": "1Gi", "storageClassName": storage_class},
            },
            "replicas": 1,
        },
    )
    # No volume yet: the claim waits, and the status says so.
    wait_condition(cluster, namespace, "big", "CacheReady", "False", reason="ClaimPending", timeout=60)
    ready = cond(cluster, namespace, "big", "Ready")
    assert ready is not None and ready["status"] == "False"
    # A waiting reason (Argo CD: Progressing): no Warning Event for it.

    static_volume(cluster, f"cache-{namespace}", storage_class)
    try:
        # The real PV controller binds the claim; the sync pod becomes ready (kwok), so the cache is.
        md = wait_condition(cluster, namespace, "big", "CacheReady", "True", reason="CacheReady", timeout=120)
        assert md["status"]["cache"]["claimName"] == "big-model-cache"
        assert md["status"]["cache"]["phase"] == "Bound"
        assert md["status"]["cache"]["capacity"] == "2Gi"
        wait_condition(cluster, namespace, "big", "Ready", "True", timeout=120)
        wait_event(cluster, namespace, "big", "CacheReady", type_="Normal")
        degraded = cond(cluster, namespace, "big", "ModelSyncDegraded")
        assert degraded is not None and degraded["status"] == "False"

        claim = cluster.kubectl_json("get", "pvc", "big-model-cache", "-n", namespace)
        assert claim["status"]["phase"] == "Bound" and claim["spec"]["volumeName"] == f"cache-{namespace}"
        assert claim["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"

        sync = cluster.kubectl_json("get", "deployment", "big-model-sync", "-n", namespace)
        assert sync["spec"]["replicas"] == 1 and sync["spec"]["strategy"]["type"] == "Recreate"
        (container,) = sync["spec"]["template"]["spec"]["containers"]
        assert container["command"] == [contract.EXECUTABLE, contract.CMD_SYNC]
        assert {"name": contract.ENV_SYNC_MODE, "value": contract.SYNC_MODE_CACHE} in container["env"]
        assert "nvidia.com/gpu" not in json.dumps(container["resources"])
        sync_pods = cluster.kubectl_json(
            "get", "pods", "-n", namespace, "-l", "modelserve.dev/model-sync=big"
        )
        assert len(sync_pods["items"]) == 1

        assert_serving_pods_read_only(cluster, namespace, "big")

        wide = cluster.kubectl("get", "mdep", "big", "-n", namespace, "-o", "wide").stdout
        header, row = wide.splitlines()[:2]
        assert "CACHE" in header and row.split()[header.split().index("CACHE")] == "CacheReady"

        # Scaling out to 10 changes nothing about the sync Deployment: one download whatever N.
        before = cluster.kubectl_json("get", "deployment", "big-model-sync", "-n", namespace)
        cluster.kubectl("scale", "mdep", "big", "-n", namespace, "--replicas=10")
        wait_until(
            lambda: (
                (get_or_none(cluster, namespace, "deployment", "big") or {}).get("spec", {}).get("replicas")
                == 10
            ),
            timeout=60,
            what="10 serving replicas",
        )
        wait_condition(cluster, namespace, "big", "Ready", "True", timeout=180)
        after = cluster.kubectl_json("get", "deployment", "big-model-sync", "-n", namespace)
        assert after["metadata"]["generation"] == before["metadata"]["generation"]
        assert after["spec"] == before["spec"]
        assert (
            len(
                cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "modelserve.dev/model-sync=big")[
                    "items"
                ]
            )
            == 1
        )
    finally:
        cluster.kubectl("delete", "mdep", "big", "-n", namespace, "--wait=true", check=False)
        cluster.kubectl("delete", "pv", f"cache-{namespace}", "--wait=false", check=False)


@pytest.mark.usefixtures("operator")
def test_without_cache_the_sidecar_serves_and_removing_the_cache_removes_its_children(
    cluster: Cluster, namespace: str
) -> None:
    """The upgrade path both ways: a ModelDeployment without cache keeps per-pod sync; adding and
    then removing spec.model.cache creates and deletes the claim and the sync Deployment."""
    apply(cluster, namespace, "plain", {"model": {"storageUri": "gs://models/plain"}})
    md = wait_condition(cluster, namespace, "plain", "Ready", "True", timeout=120)
    assert "cache" not in md["status"] and cond(cluster, namespace, "plain", "CacheReady") is None
    dep = cluster.kubectl_json("get", "deployment", "plain", "-n", namespace)
    (sidecar,) = dep["spec"]["template"]["spec"]["initContainers"]
    assert sidecar["name"] == naming.SYNC_CONTAINER and sidecar["restartPolicy"] == "Always"
    assert get_or_none(cluster, namespace, "deployment", "plain-model-sync") is None

    storage_class = f"static-{namespace}"
    static_volume(cluster, f"cache-{namespace}", storage_class)
    try:
        apply(
            cluster,
            namespace,
            "plain",
            {
                "model": {
                    "storageUri": "gs://models/plain",
                    "cache": {"size": "1Gi", "storageClassName": storage_class},
                }
            },
        )
        wait_condition(cluster, namespace, "plain", "CacheReady", "True", timeout=120)
        wait_condition(cluster, namespace, "plain", "Ready", "True", timeout=120)
        apply(cluster, namespace, "plain", {"model": {"storageUri": "gs://models/plain"}})
        wait_until(
            lambda: get_or_none(cluster, namespace, "deployment", "plain-model-sync") is None,
            timeout=60,
            what="the sync Deployment to go",
        )
        wait_until(
            lambda: (
                get_or_none(cluster, namespace, "pvc", "plain-model-cache") is None
                or get_or_none(
                    cluster,
                    namespace,
                    "pvc",
                    "plain-model-cache",
                )
                .get("metadata", {})
                .get("deletionTimestamp")
                is not None
            ),
            timeout=60,
            what="the claim to go",
        )
        md = wait_condition(cluster, namespace, "plain", "Ready", "True", timeout=120)
        assert "cache" not in md["status"]
    finally:
        cluster.kubectl("delete", "pv", f"cache-{namespace}", "--wait=false", check=False)


@pytest.mark.usefixtures("operator")
def test_a_read_write_once_cache_of_a_gpu_model_puts_sync_and_serving_pods_on_one_gpu_node(
    cluster: Cluster, namespace: str
) -> None:
    # The serving pod must join the sync pod's node (one node can attach a ReadWriteOnce volume);
    # the sync pod therefore follows the serving pod's GPU selector and taint toleration, or it
    # would sit on a CPU node and the GPU model would stay Unschedulable. The real scheduler decides.
    storage_class = f"rwo-{namespace}"
    static_volume(cluster, f"rwo-{namespace}", storage_class)
    product = "NVIDIA-A100-SXM4-80GB"  # one node of the fake fleet has it (hack/cluster/nodes.yaml)
    try:
        apply(
            cluster,
            namespace,
            "gpu-cached",
            {
                "model": {
                    "storageUri": "s3://models/big",
                    "cache": {
                        "size": "1Gi",
                        "storageClassName": storage_class,
                        "accessMode": "ReadWriteOnce",
                    },
                },
                "gpu": {"count": 1, "product": product},
                "replicas": 1,
            },
        )
        wait_condition(cluster, namespace, "gpu-cached", "CacheReady", "True", timeout=120)
        nodes = cluster.kubectl_json("get", "nodes", "-l", f"{naming.GPU_PRODUCT_LABEL}={product}")["items"]
        (a100,) = [n["metadata"]["name"] for n in nodes]
        (sync_pod,) = cluster.kubectl_json(
            "get", "pods", "-n", namespace, "-l", "modelserve.dev/model-sync=gpu-cached"
        )["items"]
        assert sync_pod["spec"]["nodeName"] == a100
        wait_condition(cluster, namespace, "gpu-cached", "Ready", "True", timeout=120)
        serving = [
            p
            for p in cluster.kubectl_json(
                "get", "pods", "-n", namespace, "-l", "modelserve.dev/deployment=gpu-cached"
            )["items"]
            if not p["metadata"].get("deletionTimestamp")
        ]
        assert [p["spec"]["nodeName"] for p in serving] == [a100]
        # The sync pod holds no GPU: the node's GPUs stay for serving.
        assert "nvidia.com/gpu" not in json.dumps(sync_pod["spec"]["containers"][0]["resources"])
    finally:
        cluster.kubectl("delete", "mdep", "gpu-cached", "-n", namespace, "--wait=true", check=False)
        cluster.kubectl("delete", "pv", f"rwo-{namespace}", "--wait=false", check=False)
