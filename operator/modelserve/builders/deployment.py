"""The TF Serving Deployment: serving container, scheduling (pure); where the model lives (the
sync sidecar, the model volume, the cache claim) comes from model_source.

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
from modelserve.builders import disruption, gpu, model_source, placement, pod_identity, tfserving_config
from modelserve.builders.containers import (
    container_security_context,
    env,
    pod_security_context,
    serving_image,
    with_pull_policy,
)
from modelserve.settings import Settings

DEFAULT_REQUESTS: Final = {"cpu": "500m", "memory": "1Gi"}
ROLLOUT_HASH_LENGTH: Final = 16

# The startup probe allows 30 minutes for loading (large models, warmup); readiness and liveness
# only start once it has passed, so they can stay tight.
STARTUP_PERIOD_SECONDS: Final = 10
STARTUP_FAILURE_THRESHOLD: Final = 180
# A rollout counts as stuck (ProgressDeadlineExceeded) only after the fetch and the whole startup
# budget could have elapsed; the default 600 s would flag every large model as failed.
PROGRESS_DEADLINE_SECONDS: Final = STARTUP_PERIOD_SECONDS * STARTUP_FAILURE_THRESHOLD + 1800


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


def replicas(md: api.ModelDeployment) -> int | None:
    """None means "omit spec.replicas": with autoscaling the HPA owns the count, and an applied value
    would reset it on every reconcile (and on every rollout)."""
    if md.spec.suspend:
        return 0
    if md.spec.autoscaling is not None:
        return None
    return md.spec.replicas if md.spec.replicas is not None else 1


def _flag(value: bool) -> str:
    return "true" if value else "false"


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
    container: dict[str, Any] = {
        "name": naming.SERVING_CONTAINER,
        "image": serving_image(md, settings),
        "command": [contract.EXECUTABLE, contract.CMD_SERVE],
        "ports": [
            {"name": contract.GRPC_PORT_NAME, "containerPort": contract.GRPC_PORT, "protocol": "TCP"},
            {"name": contract.REST_PORT_NAME, "containerPort": contract.REST_PORT, "protocol": "TCP"},
        ],
        "env": [
            env(contract.ENV_MODEL_NAME, md.model_name),
            env(contract.ENV_CONFIG_DIR, contract.CONFIG_DIR),
            env(contract.ENV_MODEL_ROOT, contract.MODEL_ROOT),
            env(contract.ENV_ENABLE_BATCHING, _flag(serving.batching is not None)),
            env(contract.ENV_ENABLE_WARMUP, _flag(serving.warmup)),
            *_user_env(md),
        ],
        "volumeMounts": model_source.serving_mounts(md),
        "resources": resources(md),
        **probes(),
        "lifecycle": disruption.lifecycle(md),
        "securityContext": container_security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if serving.extra_args:
        container["args"] = list(serving.extra_args)
    return with_pull_policy(md, container)


def pod_spec(md: api.ModelDeployment, settings: Settings) -> dict[str, Any]:
    spec: dict[str, Any] = {
        # TF Serving never calls the API server; no token means nothing to steal.
        "automountServiceAccountToken": False,
        # Service links inject an env var per Service in the namespace: noise, and slow pod start
        # in namespaces with hundreds of models.
        "enableServiceLinks": False,
        "securityContext": pod_security_context(settings.serving_fixed_ids),
        "terminationGracePeriodSeconds": disruption.termination_grace_seconds(md),
        "topologySpreadConstraints": disruption.topology_spread_constraints(md),
        "initContainers": model_source.serving_init_containers(md, settings),
        "containers": [serving_container(md, settings)],
        "volumes": model_source.serving_volumes(md),
    }
    if selector := placement.node_selector(md):
        spec["nodeSelector"] = selector
    if tols := placement.tolerations(md):
        spec["tolerations"] = tols
    scheduling = md.spec.scheduling
    if scheduling is not None:
        if scheduling.affinity:
            spec["affinity"] = copy.deepcopy(scheduling.affinity)
        if scheduling.priority_class_name:
            spec["priorityClassName"] = scheduling.priority_class_name
    # A ReadWriteOnce cache: the serving pod must land on the sync pod's node (unless the user
    # already states pod affinity, then that is theirs to get right).
    cache_affinity = model_source.serving_affinity(md)
    if cache_affinity and "podAffinity" not in spec.get("affinity", {}):
        spec["affinity"] = {**spec.get("affinity", {}), **cache_affinity}
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
    spec["template"] = pod_identity.apply(md, spec["template"])
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
