"""The TF Serving Deployment: identity, containers, probes, security, scheduling, replicas, rollout hash."""

from __future__ import annotations

from typing import Any

import pytest

from modelserve import api, contract, naming
from modelserve.builders.deployment import build_deployment, rollout_hash
from modelserve.settings import Settings

pytestmark = pytest.mark.unit

SETTINGS = Settings(cpu_image="reg/cpu:1", gpu_image="reg/gpu:1")


def make(name: str = "resnet", **spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet"})
    return api.parse({"metadata": {"name": name, "namespace": "ml", "uid": "uid-1"}, "spec": spec})


def build(**spec: Any) -> dict[str, Any]:
    return build_deployment(make(**spec), SETTINGS)


def pod(manifest: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def serving(manifest: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod(manifest)["containers"]
    assert container["name"] == naming.SERVING_CONTAINER
    return container  # type: ignore[no-any-return]


def fetch(manifest: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod(manifest)["initContainers"]
    assert container["name"] == naming.SYNC_CONTAINER
    return container  # type: ignore[no-any-return]


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def mounts(container: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {m["name"]: (m["mountPath"], m.get("readOnly", False)) for m in container["volumeMounts"]}


def test_identity_labels_owner_and_immutable_selector() -> None:
    d = build()
    assert d["apiVersion"] == "apps/v1"
    assert d["kind"] == "Deployment"
    meta = d["metadata"]
    assert meta["name"] == "resnet"
    assert meta["namespace"] == "ml"
    assert meta["labels"][naming.MANAGED_BY_LABEL] == "modelserve-operator"
    (owner,) = meta["ownerReferences"]
    assert owner == {
        "apiVersion": "modelserve.dev/v1alpha1",
        "kind": "ModelDeployment",
        "name": "resnet",
        "uid": "uid-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert d["spec"]["selector"] == {"matchLabels": {"modelserve.dev/deployment": "resnet"}}
    template_labels = d["spec"]["template"]["metadata"]["labels"]
    assert template_labels == naming.child_labels(make())
    assert template_labels.items() >= d["spec"]["selector"]["matchLabels"].items()
    # Nothing from kopf or kubectl leaks onto the child.
    assert "annotations" not in meta
    assert list(d["spec"]["template"]["metadata"]["annotations"]) == [naming.ROLLOUT_HASH_ANNOTATION]


def test_selector_does_not_depend_on_anything_but_the_name() -> None:
    a = build()
    b = build(
        model={"storageUri": "s3://other/m", "name": "x"},
        gpu={"count": 2},
        serving={"image": "my/img:2"},
        autoscaling={"maxReplicas": 3},
    )
    assert a["spec"]["selector"] == b["spec"]["selector"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, 1),
        ({"replicas": 4}, 4),
        ({"replicas": 0}, 0),
        ({"replicas": 4, "suspend": True}, 0),
        ({"autoscaling": {"maxReplicas": 5}, "suspend": True}, 0),
    ],
)
def test_replicas(spec: dict[str, Any], expected: int) -> None:
    assert build(**spec)["spec"]["replicas"] == expected


def test_replicas_omitted_when_the_hpa_owns_them() -> None:
    assert "replicas" not in build(autoscaling={"minReplicas": 2, "maxReplicas": 5})["spec"]


def test_images_cpu_gpu_and_override() -> None:
    assert serving(build())["image"] == "reg/cpu:1"
    assert serving(build(gpu={"count": 1}))["image"] == "reg/gpu:1"
    d = build(gpu={"count": 1}, serving={"image": "mine:3", "imagePullPolicy": "Always"})
    assert serving(d)["image"] == fetch(d)["image"] == "mine:3"
    assert serving(d)["imagePullPolicy"] == fetch(d)["imagePullPolicy"] == "Always"
    assert "imagePullPolicy" not in serving(build())


def test_sync_sidecar_contract() -> None:
    c = fetch(
        build(
            model={"storageUri": "gs://models/resnet", "name": "rn", "pollSeconds": 120},
            gpu={"count": 2},
            resources={"requests": {"cpu": "8", "memory": "64Gi"}},
        )
    )
    assert c["command"] == [contract.EXECUTABLE, contract.CMD_SYNC]
    # A native sidecar: up before TF Serving, which starts once the startup probe passes.
    assert c["restartPolicy"] == "Always"
    assert c["startupProbe"]["exec"]["command"] == [contract.EXECUTABLE, contract.CMD_SYNC_STATUS]
    assert "readinessProbe" not in c  # its readiness would gate the pod's
    assert env(c) == {
        contract.ENV_STORAGE_URI: "gs://models/resnet",
        contract.ENV_MODEL_NAME: "rn",
        contract.ENV_MODEL_ROOT: contract.MODEL_ROOT,
        contract.ENV_CONFIG_DIR: contract.CONFIG_DIR,
        contract.ENV_CREDENTIALS_DIR: contract.CREDENTIALS_DIR,
        contract.ENV_POLL_SECONDS: "120",
        contract.ENV_SYNC_MODE: contract.SYNC_MODE_SIDECAR,
        contract.ENV_SYNC_METRICS_PORT: str(contract.SYNC_METRICS_PORT),
    }
    assert c["ports"] == [{"name": "sync-metrics", "containerPort": 8502, "protocol": "TCP"}]
    assert mounts(c) == {
        naming.CONFIG_VOLUME: (contract.CONFIG_DIR, True),
        naming.MODEL_VOLUME: (contract.MODEL_ROOT, False),
        naming.TMP_VOLUME: (contract.TMP_DIR, False),
    }
    assert c["terminationMessagePath"] == contract.TERMINATION_MESSAGE_PATH
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    # Its requests add to the pod's for its whole life: small, fixed, never a GPU, whatever the
    # server asks for.
    assert c["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    assert "gpu" not in str(c["resources"])


def test_credentials_are_mounted_into_the_init_container_only() -> None:
    d = build(model={"storageUri": "s3://bucket/m", "credentialsSecret": "s3-creds"})
    (volume,) = [v for v in pod(d)["volumes"] if v["name"] == naming.CREDENTIALS_VOLUME]
    assert volume["secret"]["secretName"] == "s3-creds"
    assert mounts(fetch(d))[naming.CREDENTIALS_VOLUME] == (contract.CREDENTIALS_DIR, True)
    assert naming.CREDENTIALS_VOLUME not in mounts(serving(d))
    assert contract.ENV_CREDENTIALS_DIR not in env(serving(d))
    assert "s3-creds" not in str(serving(d))
    # Without a secret there is no volume to mount at all.
    assert all(v["name"] != naming.CREDENTIALS_VOLUME for v in pod(build())["volumes"])


def test_pvc_source_is_mounted_read_only_and_passed_as_a_local_path() -> None:
    d = build(model={"storageUri": "pvc://model-store/resnet/v1"})
    (volume,) = [v for v in pod(d)["volumes"] if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"] == {"claimName": "model-store", "readOnly": True}
    for container in (fetch(d), serving(d)):
        assert mounts(container)[volume["name"]] == (contract.PVC_MOUNT_DIR, True)
    assert env(fetch(d))[contract.ENV_STORAGE_URI] == f"{contract.PVC_MOUNT_DIR}/resnet/v1"
    assert all("persistentVolumeClaim" not in v for v in pod(build())["volumes"])


def test_serving_container_contract() -> None:
    d = build(
        serving={
            "extraArgs": ["--tensorflow_intra_op_parallelism=4"],
            "warmup": True,
            "env": [
                {"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ],
        }
    )
    c = serving(d)
    assert c["command"] == [contract.EXECUTABLE, contract.CMD_SERVE]
    assert c["args"] == ["--tensorflow_intra_op_parallelism=4"]
    assert c["ports"] == [
        {"name": "grpc", "containerPort": 8500, "protocol": "TCP"},
        {"name": "http", "containerPort": 8501, "protocol": "TCP"},
    ]
    assert [e["name"] for e in c["env"]] == [
        contract.ENV_MODEL_NAME,
        contract.ENV_CONFIG_DIR,
        contract.ENV_MODEL_ROOT,
        contract.ENV_ENABLE_BATCHING,
        contract.ENV_ENABLE_WARMUP,
        "TF_CPP_MIN_LOG_LEVEL",
        "TOKEN",
    ]
    values = env(c)
    assert values[contract.ENV_MODEL_NAME] == "resnet"
    assert values[contract.ENV_CONFIG_DIR] == contract.CONFIG_DIR
    assert values[contract.ENV_ENABLE_BATCHING] == "false"
    assert values[contract.ENV_ENABLE_WARMUP] == "true"
    assert c["env"][-1] == {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
    assert mounts(c) == {
        naming.CONFIG_VOLUME: (contract.CONFIG_DIR, True),
        naming.MODEL_VOLUME: (contract.MODEL_ROOT, True),
        naming.TMP_VOLUME: (contract.TMP_DIR, False),
    }
    (config_volume,) = [v for v in pod(d)["volumes"] if v["name"] == naming.CONFIG_VOLUME]
    assert config_volume["configMap"]["name"] == "resnet-tfserving"
    assert "args" not in serving(build())


def test_probes() -> None:
    c = serving(build())
    ready = [contract.EXECUTABLE, contract.CMD_READY]
    assert c["readinessProbe"]["exec"]["command"] == ready
    assert c["startupProbe"]["exec"]["command"] == ready
    startup_budget = c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"]
    assert startup_budget >= 30 * 60
    assert c["livenessProbe"] == {
        "tcpSocket": {"port": "grpc"},
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "failureThreshold": 6,
    }
    # A slow start must not be reported as a stuck rollout.
    assert build()["spec"]["progressDeadlineSeconds"] > startup_budget


def test_restricted_pod_security() -> None:
    d = build(model={"storageUri": "gs://models/resnet", "credentialsSecret": "creds"})
    p = pod(d)
    assert p["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": contract.RUN_AS_USER,
        "runAsGroup": contract.RUN_AS_GROUP,
        "fsGroup": contract.RUN_AS_GROUP,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for c in (fetch(d), serving(d)):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["runAsNonRoot"] is True
    assert p["automountServiceAccountToken"] is False
    assert p["enableServiceLinks"] is False
    # Restricted forbids hostPath and friends: only these volume kinds are used.
    kinds = {next(k for k in v if k != "name") for v in p["volumes"]}
    assert kinds == {"configMap", "emptyDir", "secret"}


def test_default_and_custom_resources() -> None:
    assert serving(build())["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}}
    custom = {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "4Gi"}}
    assert serving(build(resources=custom))["resources"] == custom


def test_gpu_resources_selector_and_toleration() -> None:
    d = build(
        gpu={"count": 2, "product": "NVIDIA-A100-SXM4-80GB"},
        resources={"requests": {"cpu": "4"}, "limits": {"memory": "16Gi"}},
    )
    assert serving(d)["resources"] == {
        "requests": {"cpu": "4", "nvidia.com/gpu": "2"},
        "limits": {"memory": "16Gi", "nvidia.com/gpu": "2"},
    }
    assert "nvidia.com/gpu" not in str(fetch(d)["resources"])
    assert pod(d)["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert pod(d)["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_mig_profile_requests_the_mig_resource() -> None:
    res = serving(build(gpu={"count": 1, "migProfile": "1g.10gb"}))["resources"]
    assert res["requests"]["nvidia.com/mig-1g.10gb"] == res["limits"]["nvidia.com/mig-1g.10gb"] == "1"
    assert "nvidia.com/gpu" not in res["requests"]


def test_cpu_pods_get_no_gpu_scheduling() -> None:
    p = pod(build())
    assert "nodeSelector" not in p
    assert "tolerations" not in p
    assert "nvidia.com/gpu" not in str(serving(build())["resources"])


def test_scheduling_passthrough_merged_with_gpu() -> None:
    affinity: dict[str, Any] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    spread = [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
    ]
    d = build(
        gpu={"count": 1, "product": "L4"},
        scheduling={
            "nodeSelector": {"pool": "inference", "nvidia.com/gpu.product": "T4"},
            "tolerations": [
                {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            ],
            "affinity": affinity,
            "priorityClassName": "high",
            "topologySpreadConstraints": spread,
        },
    )
    p = pod(d)
    assert p["nodeSelector"] == {"nvidia.com/gpu.product": "L4", "pool": "inference"}
    assert p["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert p["affinity"] == affinity
    assert p["priorityClassName"] == "high"
    assert p["topologySpreadConstraints"] == spread


def template(**spec: Any) -> dict[str, Any]:
    t: dict[str, Any] = build(**spec)["spec"]["template"]
    return t


def test_version_policy_and_labels_never_change_the_pod_template() -> None:
    base = {"storageUri": "gs://models/resnet"}
    variants = [
        {**base},
        {**base, "versionPolicy": {"latest": {"count": 3}}},
        {**base, "versionPolicy": {"specific": {"versions": [1, 2]}}, "versionLabels": {"stable": 1}},
        {**base, "versionPolicy": {"specific": {"versions": [1, 2]}}, "versionLabels": {"stable": 2}},
        {**base, "versionPolicy": {"all": {}}, "versionLabels": {"canary": 7}},
    ]
    templates = [template(model=m) for m in variants]
    assert all(t == templates[0] for t in templates)


def test_start_up_config_changes_roll_pods() -> None:
    plain = template()
    batching = template(serving={"batching": {"maxBatchSize": 16}})
    bigger = template(serving={"batching": {"maxBatchSize": 64, "allowedBatchSizes": [64]}})
    warm = template(serving={"warmup": True})
    hashes = [
        t["metadata"]["annotations"][naming.ROLLOUT_HASH_ANNOTATION] for t in (plain, batching, bigger, warm)
    ]
    assert len(set(hashes)) == 4
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in hashes)
    # Same input, same hash: re-applying an unchanged spec never rolls pods.
    assert rollout_hash(make()) == rollout_hash(make())


def test_model_source_image_and_resources_change_the_template() -> None:
    plain = template()
    assert template(model={"storageUri": "gs://models/other"}) != plain
    assert template(serving={"image": "x:1"}) != plain
    assert template(resources={"requests": {"cpu": "1"}}) != plain


def test_deterministic() -> None:
    assert build(gpu={"count": 1}, monitoring={"enabled": True}) == build(
        gpu={"count": 1}, monitoring={"enabled": True}
    )


def test_serving_pods_without_fixed_ids_for_openshift() -> None:
    """restricted-v2 assigns the namespace's UID and fsGroup and refuses any other: none is set."""
    settings = Settings(cpu_image="reg/cpu:1", gpu_image="reg/gpu:1", serving_fixed_ids=False)
    p = pod(build_deployment(make(), settings))
    assert p["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    for c in (*p["initContainers"], *p["containers"]):
        assert "runAsUser" not in c["securityContext"] and "runAsGroup" not in c["securityContext"]
