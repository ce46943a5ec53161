"""The TF Serving Deployment: model-fetch init container, serving container, scheduling (pure).

What rolls pods and what does not:
- TF Serving polls the model config file, so version policy and labels only change the ConfigMap;
  nothing derived from them may appear in the pod template.
- Batching and monitoring config and the warmup flag are read once at start-up: their hash is a pod
  template annotation (naming.ROLLOUT_HASH_ANNOTATION), so changing them rolls pods.
- Storage URI, image, resources and scheduling change the template directly.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Final

from modelserve import api, contract, naming
from modelserve.builders import disruption, gpu, tfserving_config
from modelserve.settings import Settings

DEFAULT_REQUESTS: Final = {"cpu": "500m", "memory": "1Gi"}
PVC_VOLUME: Final = "model-pvc"
ROLLOUT_HASH_LENGTH: Final = 16

# The startup probe allows 30 minutes for loading (large models, warmup); readiness and liveness
# only start once it has passed, so they can stay tight.
STARTUP_PERIOD_SECONDS: Final = 10
STARTUP_FAILURE_THRESHOLD: Final = 180
# A rollout counts as stuck (ProgressDeadlineExceeded) only after the fetch and the whole startup
# budget could have elapsed; the default 600 s would flag every large model as failed.
PROGRESS_DEADLINE_SECONDS: Final = STARTUP_PERIOD_SECONDS * STARTUP_FAILURE_THRESHOLD + 1800
SECRET_MODE: Final = 0o440  # readable by the pod's fsGroup, not world


def rollout_hash(md: api.ModelDeployment) -> str:
    """Short sha256 of the configuration TF Serving reads only at start-up."""
    batching = md.spec.serving.batching
    payload = {
        "batching": tfserving_config.render_batching_config(batching) if batching else None,
        "monitoring": tfserving_config.render_monitoring_config(),
        "warmup": md.spec.serving.warmup,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()
    return digest[:ROLLOUT_HASH_LENGTH]


def serving_image(md: api.ModelDeployment, settings: Settings) -> str:
    if md.spec.serving.image:
        return md.spec.serving.image
    return settings.gpu_image if md.spec.gpu is not None else settings.cpu_image


def replicas(md: api.ModelDeployment) -> int | None:
    """None means "omit spec.replicas": with autoscaling the HPA owns the count, and an applied value
    would reset it on every reconcile (and on every rollout)."""
    if md.spec.suspend:
        return 0
    if md.spec.autoscaling is not None:
        return None
    return md.spec.replicas if md.spec.replicas is not None else 1


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _flag(value: bool) -> str:
    return "true" if value else "false"


def container_security_context() -> dict[str, Any]:
    """The `restricted` Pod Security Standard, per container."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": contract.RUN_AS_USER,
        "runAsGroup": contract.RUN_AS_GROUP,
        # Makes the emptyDirs and the credentials Secret readable by the non-root user.
        "fsGroup": contract.RUN_AS_GROUP,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(md: api.ModelDeployment, *, with_gpu: bool = True) -> dict[str, Any]:
    """spec.resources (or the default requests) without any GPU resource, plus, with_gpu, spec.gpu's
    resource in requests and limits: spec.gpu is the only GPU count that reaches a pod."""
    spec = md.spec.resources
    requests = gpu.without_gpus(md, spec.requests) if spec is not None else dict(DEFAULT_REQUESTS)
    limits = gpu.without_gpus(md, spec.limits) if spec is not None else {}
    if with_gpu:
        gpus = gpu.gpu_resources(md)
        requests.update(gpus)
        limits.update(gpus)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = dict(sorted(requests.items()))
    if limits:
        out["limits"] = dict(sorted(limits.items()))
    return out


def _user_env(md: api.ModelDeployment) -> list[dict[str, Any]]:
    out = []
    for var in md.spec.serving.env or ():
        entry: dict[str, Any] = {"name": var.name}
        if var.value_from is not None:
            entry["valueFrom"] = copy.deepcopy(var.value_from)
        else:
            entry["value"] = var.value or ""
        out.append(entry)
    return out


def _mount(name: str, path: str, *, read_only: bool) -> dict[str, Any]:
    # readOnly: false is the API default; leaving it out keeps the applied manifest minimal.
    mount: dict[str, Any] = {"name": name, "mountPath": path}
    if read_only:
        mount["readOnly"] = True
    return mount


def volumes(md: api.ModelDeployment) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": naming.CONFIG_VOLUME, "configMap": {"name": naming.config_map_name(md)}},
        {"name": naming.MODEL_VOLUME, "emptyDir": {}},
        {"name": naming.TMP_VOLUME, "emptyDir": {}},
    ]
    pvc = tfserving_config.pvc_source(md)
    if pvc is not None:
        out.append({"name": PVC_VOLUME, "persistentVolumeClaim": {"claimName": pvc.claim, "readOnly": True}})
    if md.spec.model.credentials_secret:
        out.append(
            {
                "name": naming.CREDENTIALS_VOLUME,
                "secret": {"secretName": md.spec.model.credentials_secret, "defaultMode": SECRET_MODE},
            }
        )
    return out


def fetch_container(md: api.ModelDeployment, settings: Settings) -> dict[str, Any]:
    """Fetches storageUri into the model emptyDir (for pvc:// it checks the mounted layout instead).

    The only container that sees the storage credentials. Its one-line failure reason goes to the
    termination message, which the operator reports as ModelFetchFailed.
    """
    pvc = tfserving_config.pvc_source(md)
    env = [
        _env(contract.ENV_STORAGE_URI, pvc.local_path if pvc else md.spec.model.storage_uri),
        _env(contract.ENV_MODEL_NAME, md.model_name),
        _env(contract.ENV_MODEL_ROOT, contract.MODEL_ROOT),
        # The fetcher checks the policy's versions against what it found, so a `specific` version
        # missing from the store fails here with a reason rather than as a never-ready pod.
        _env(contract.ENV_CONFIG_DIR, contract.CONFIG_DIR),
        # Always set; the fetcher treats a missing directory as "no credentials" (workload identity).
        _env(contract.ENV_CREDENTIALS_DIR, contract.CREDENTIALS_DIR),
    ]
    mounts = [
        _mount(naming.CONFIG_VOLUME, contract.CONFIG_DIR, read_only=True),
        _mount(naming.MODEL_VOLUME, contract.MODEL_ROOT, read_only=False),
        _mount(naming.TMP_VOLUME, contract.TMP_DIR, read_only=False),
    ]
    if pvc is not None:
        mounts.append(_mount(PVC_VOLUME, contract.PVC_MOUNT_DIR, read_only=True))
    if md.spec.model.credentials_secret:
        mounts.append(_mount(naming.CREDENTIALS_VOLUME, contract.CREDENTIALS_DIR, read_only=True))
    container: dict[str, Any] = {
        "name": naming.FETCH_CONTAINER,
        "image": serving_image(md, settings),
        "command": [contract.EXECUTABLE, contract.CMD_FETCH],
        "env": env,
        "volumeMounts": mounts,
        # CPU and memory like the server (archives are unpacked here), never a GPU: a pod's effective
        # request is max(largest init container, sum of the app containers), so a GPU here would be
        # reserved on top of the server's whenever it asks for more. Equal CPU and memory cost nothing.
        "resources": resources(md, with_gpu=False),
        "securityContext": container_security_context(),
        "terminationMessagePath": contract.TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return _with_pull_policy(md, container)


def _ready_exec() -> dict[str, Any]:
    return {"exec": {"command": [contract.EXECUTABLE, contract.CMD_READY]}}


def probes() -> dict[str, Any]:
    """Readiness asks TF Serving whether every served version is AVAILABLE (an open port is not
    enough); liveness only checks the gRPC port, so a slow model status call never kills a pod."""
    return {
        "startupProbe": {
            **_ready_exec(),
            "periodSeconds": STARTUP_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": STARTUP_FAILURE_THRESHOLD,
        },
        "readinessProbe": {**_ready_exec(), "periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {
            "tcpSocket": {"port": contract.GRPC_PORT_NAME},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
    }


def serving_container(md: api.ModelDeployment, settings: Settings) -> dict[str, Any]:
    serving = md.spec.serving
    mounts = [
        _mount(naming.CONFIG_VOLUME, contract.CONFIG_DIR, read_only=True),
        _mount(naming.MODEL_VOLUME, contract.MODEL_ROOT, read_only=True),
        _mount(naming.TMP_VOLUME, contract.TMP_DIR, read_only=False),
    ]
    if tfserving_config.pvc_source(md) is not None:
        mounts.append(_mount(PVC_VOLUME, contract.PVC_MOUNT_DIR, read_only=True))
    container: dict[str, Any] = {
        "name": naming.SERVING_CONTAINER,
        "image": serving_image(md, settings),
        "command": [contract.EXECUTABLE, contract.CMD_SERVE],
        "ports": [
            {"name": contract.GRPC_PORT_NAME, "containerPort": contract.GRPC_PORT, "protocol": "TCP"},
            {"name": contract.REST_PORT_NAME, "containerPort": contract.REST_PORT, "protocol": "TCP"},
        ],
        "env": [
            _env(contract.ENV_MODEL_NAME, md.model_name),
            _env(contract.ENV_CONFIG_DIR, contract.CONFIG_DIR),
            _env(contract.ENV_MODEL_ROOT, contract.MODEL_ROOT),
            _env(contract.ENV_ENABLE_BATCHING, _flag(serving.batching is not None)),
            _env(contract.ENV_ENABLE_WARMUP, _flag(serving.warmup)),
            *_user_env(md),
        ],
        "volumeMounts": mounts,
        "resources": resources(md),
        **probes(),
        "lifecycle": disruption.lifecycle(md),
        "securityContext": container_security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if serving.extra_args:
        container["args"] = list(serving.extra_args)
    return _with_pull_policy(md, container)


def _with_pull_policy(md: api.ModelDeployment, container: dict[str, Any]) -> dict[str, Any]:
    if md.spec.serving.image_pull_policy:
        container["imagePullPolicy"] = md.spec.serving.image_pull_policy
    return container


def node_selector(md: api.ModelDeployment) -> dict[str, str]:
    """The user's node selector plus the GPU product (spec.gpu.product wins on the same key)."""
    user = md.spec.scheduling.node_selector if md.spec.scheduling else None
    return dict(sorted({**(user or {}), **gpu.gpu_node_selector(md)}.items()))


def tolerations(md: api.ModelDeployment) -> list[dict[str, Any]]:
    """The user's tolerations, then the GPU taint's unless the user already listed the same one."""
    user = md.spec.scheduling.tolerations if md.spec.scheduling else None
    out = [t.model_dump(by_alias=True, exclude_none=True) for t in user or ()]
    out += [t for t in gpu.gpu_tolerations(md) if t not in out]
    return out


def pod_spec(md: api.ModelDeployment, settings: Settings) -> dict[str, Any]:
    spec: dict[str, Any] = {
        # TF Serving never calls the API server; no token means nothing to steal.
        "automountServiceAccountToken": False,
        # Service links inject an env var per Service in the namespace: noise, and slow pod start
        # in namespaces with hundreds of models.
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": disruption.termination_grace_seconds(md),
        "topologySpreadConstraints": disruption.topology_spread_constraints(md),
        "initContainers": [fetch_container(md, settings)],
        "containers": [serving_container(md, settings)],
        "volumes": volumes(md),
    }
    if selector := node_selector(md):
        spec["nodeSelector"] = selector
    if tols := tolerations(md):
        spec["tolerations"] = tols
    scheduling = md.spec.scheduling
    if scheduling is not None:
        if scheduling.affinity:
            spec["affinity"] = copy.deepcopy(scheduling.affinity)
        if scheduling.priority_class_name:
            spec["priorityClassName"] = scheduling.priority_class_name
    return spec


def build_deployment(md: api.ModelDeployment, settings: Settings) -> dict[str, Any]:
    spec: dict[str, Any] = {
        # Selector labels only: a Deployment's selector is immutable after creation.
        "selector": {"matchLabels": naming.selector_labels(md)},
        "progressDeadlineSeconds": PROGRESS_DEADLINE_SECONDS,
        "revisionHistoryLimit": 3,
        "template": {
            "metadata": {
                "labels": naming.child_labels(md),
                "annotations": {naming.ROLLOUT_HASH_ANNOTATION: rollout_hash(md)},
            },
            "spec": pod_spec(md, settings),
        },
    }
    if strategy := gpu.rollout_strategy(md):
        spec["strategy"] = strategy
    count = replicas(md)
    if count is not None:
        spec = {"replicas": count, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": naming.child_metadata(md, naming.deployment_name(md)),
        "spec": spec,
    }
