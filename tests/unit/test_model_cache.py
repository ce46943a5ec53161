"""spec.model.cache: the claim, the sync Deployment, serving pods without credentials, CacheReady."""

from __future__ import annotations

from typing import Any

import pytest

from modelserve import api, cache_status, contract, naming, status
from modelserve.builders import build_deployment, build_model_cache_claim, build_model_sync_deployment
from modelserve.settings import Settings

pytestmark = pytest.mark.unit
S = Settings()


def make(cache: dict[str, Any] | None = None, **spec: Any) -> api.ModelDeployment:
    model: dict[str, Any] = {"storageUri": "s3://models/big", "credentialsSecret": "store"}
    if cache is not None:
        model["cache"] = cache
    return api.parse(
        {
            "metadata": {"name": "big", "namespace": "ml", "uid": "u", "generation": 1},
            "spec": {"model": model, **spec},
        }
    )


def test_claim_is_built_only_for_a_size() -> None:
    claim = build_model_cache_claim(make({"size": "100Gi", "storageClassName": "fast"}), S)
    assert claim is not None and claim["metadata"]["name"] == "big-model-cache"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "100Gi"}},
        "storageClassName": "fast",
    }
    assert build_model_cache_claim(make({"claimName": "shared"}), S) is None
    assert build_model_cache_claim(make(), S) is None
    assert build_model_sync_deployment(make(), S) is None


def test_sync_deployment_holds_the_credentials_and_serving_pods_none() -> None:
    md = make({"claimName": "shared"}, replicas=10, gpu={"count": 1})
    sync = build_model_sync_deployment(md, S)
    assert sync is not None and sync["spec"]["replicas"] == 1  # whatever the replica count
    assert sync["spec"]["strategy"] == {"type": "Recreate"}
    pod = sync["spec"]["template"]["spec"]
    assert naming.SELECTOR_LABEL not in sync["spec"]["template"]["metadata"]["labels"]
    (c,) = pod["containers"]
    assert c["image"] == S.cpu_image and "restartPolicy" not in c
    assert c["readinessProbe"]["exec"]["command"][-1] == "--ready"
    assert {"name": contract.ENV_SYNC_MODE, "value": contract.SYNC_MODE_CACHE} in c["env"]
    assert any(v.get("secret", {}).get("secretName") == "store" for v in pod["volumes"])
    assert {"name": naming.MODEL_VOLUME, "persistentVolumeClaim": {"claimName": "shared"}} in pod["volumes"]
    serving = build_deployment(md, S)["spec"]["template"]["spec"]
    assert serving["initContainers"] == []
    assert "store" not in str(serving)
    assert {
        "name": naming.MODEL_VOLUME,
        "persistentVolumeClaim": {"claimName": "shared", "readOnly": True},
    } in (serving["volumes"])


def test_read_write_once_cache_pins_the_serving_pod_to_the_sync_pods_node() -> None:
    spec = build_deployment(make({"size": "1Gi", "accessMode": "ReadWriteOnce"}), S)["spec"]["template"][
        "spec"
    ]
    (term,) = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchLabels"] == {naming.MODEL_SYNC_LABEL: "big"}
    assert "affinity" not in build_deployment(make({"size": "1Gi"}), S)["spec"]["template"]["spec"]


def test_a_read_write_once_sync_pod_lands_only_where_the_serving_pod_may_run() -> None:
    # The serving pod is pinned to the sync pod's node; a sync pod on a CPU node would leave a GPU
    # model unschedulable for ever. So the sync pod takes the serving pods' node constraints (the
    # GPU product, the user's selector, tolerations and node affinity) but never a GPU.
    node_affinity = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
        }
    }
    md = make(
        {"size": "1Gi", "accessMode": "ReadWriteOnce"},
        gpu={"count": 1, "product": "NVIDIA-A100-SXM4-80GB"},
        scheduling={
            "nodeSelector": {"pool": "ml"},
            "tolerations": [{"key": "team", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": node_affinity, "podAntiAffinity": {"x": 1}},
        },
    )
    sync = build_model_sync_deployment(md, S)
    serving = build_deployment(md, S)["spec"]["template"]["spec"]
    assert sync is not None
    pod = sync["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == serving["nodeSelector"]
    assert pod["nodeSelector"][naming.GPU_PRODUCT_LABEL] == "NVIDIA-A100-SXM4-80GB"
    assert pod["tolerations"] == serving["tolerations"]
    assert pod["affinity"] == {"nodeAffinity": node_affinity}  # pod (anti-)affinity is the serving pods'
    assert "gpu" not in str(pod["containers"][0]["resources"])


def test_a_read_write_many_sync_pod_runs_anywhere_but_tolerates_the_users_taints() -> None:
    toleration = {"key": "team", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    md = make({"size": "1Gi"}, gpu={"count": 1, "product": "H100"}, scheduling={"tolerations": [toleration]})
    sync = build_model_sync_deployment(md, S)
    assert sync is not None
    pod = sync["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "affinity" not in pod
    assert pod["tolerations"] == [toleration]  # not the GPU taint: no reason to sit on a GPU node
    plain = build_model_sync_deployment(make({"size": "1Gi"}), S)
    assert plain is not None and "tolerations" not in plain["spec"]["template"]["spec"]


def sync_pod(cs: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "big-model-sync-x"},
        "status": {"containerStatuses": [{"name": naming.SYNC_CONTAINER, **cs}]},
    }


BOUND = {"status": {"phase": "Bound", "capacity": {"storage": "100Gi"}}}
NOT_READY = {"status": {"readyReplicas": 0}}


@pytest.mark.parametrize(
    ("claim", "sync", "pods", "ready", "reason"),
    [
        (None, None, (), False, "ClaimPending"),
        ({"status": {"phase": "Pending"}}, None, (), False, "ClaimPending"),
        (BOUND, None, (), False, "CacheFilling"),
        (BOUND, NOT_READY, (sync_pod({"started": False, "state": {"running": {}}}),), False, "CacheFilling"),
        (
            BOUND,
            NOT_READY,
            (
                sync_pod(
                    {
                        "started": False,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"exitCode": 4, "message": "s3://m: version(s) 7"}},
                    }
                ),
            ),
            False,
            "CacheFetchFailed",
        ),
        (
            BOUND,
            NOT_READY,
            (
                sync_pod(
                    {
                        "started": True,
                        "state": {"waiting": {}},
                        "lastState": {"terminated": {"exitCode": 5, "message": "s3://m: down"}},
                    }
                ),
            ),
            True,
            "StoreUnreachable",
        ),
        (BOUND, {"status": {"readyReplicas": 1}}, (), True, "CacheReady"),
    ],
)
def test_cache_ready_follows_the_claim_and_the_sync_pod(
    claim: Any, sync: Any, pods: Any, ready: bool, reason: str
) -> None:
    md = make({"size": "100Gi"})
    obs = status.Observed(deployment=None, cache_claim=claim, model_sync=sync, sync_pods=pods)
    out = status.compute_status(md, obs, None, "2026-01-01T00:00:00Z")
    conds = {c["type"]: c for c in out["conditions"]}
    assert conds[cache_status.CACHE_READY]["status"] == str(ready)
    assert conds[cache_status.CACHE_READY]["reason"] == reason
    assert out["cache"]["state"] == reason
    degraded = conds[cache_status.MODEL_SYNC_DEGRADED]
    assert degraded["status"] == str(reason == "StoreUnreachable")
    if reason == "CacheFetchFailed":
        assert out["lastSyncError"] == "s3://m: version(s) 7"
        assert conds["Ready"]["reason"] == "CacheFetchFailed"  # the replicas wait for the cache


def test_no_cache_no_cache_conditions_and_a_removed_cache_is_cleared() -> None:
    out = status.compute_status(make(), status.Observed(), {"cache": {"state": "CacheReady"}}, "t")
    assert out["cache"] is None and "CacheReady" not in {c["type"] for c in out["conditions"]}
