"""Names, labels and keys of a ModelDeployment's children (pure)."""

from __future__ import annotations

from typing import Final

from modelserve import api

FIELD_MANAGER: Final = "modelserve-operator"

SELECTOR_LABEL: Final = "modelserve.dev/deployment"
NAME_LABEL: Final = "app.kubernetes.io/name"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
VERSION_LABEL: Final = "app.kubernetes.io/version"

MANAGED_BY: Final = "modelserve-operator"
PART_OF: Final = "modelserve"
APP_NAME: Final = "tfserving"

# Pod template annotation holding a hash of the configuration TF Serving reads only at start-up
# (batching, monitoring, warmup): changing it rolls pods. Model source, image, resources and scheduling
# are in the pod template already; the model config (versions, labels) is excluded, since TF Serving
# reloads it, so policy and label changes never restart pods.
ROLLOUT_HASH_ANNOTATION: Final = "modelserve.dev/rollout-hash"

# Node labels and taint of GPU nodes (NVIDIA GPU feature discovery / GPU operator conventions).
GPU_PRODUCT_LABEL: Final = "nvidia.com/gpu.product"
GPU_TAINT_KEY: Final = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX: Final = "nvidia.com/mig-"

SERVING_CONTAINER: Final = "tfserving"
FETCH_CONTAINER: Final = "fetch-model"  # the one-shot init container of earlier releases
SYNC_CONTAINER: Final = "model-sync"
# Selector label of the <name>-model-sync Deployment's pods: never the serving selector label, so
# neither the serving Deployment nor the Service ever picks a sync pod.
MODEL_SYNC_LABEL: Final = "modelserve.dev/model-sync"
SYNC_APP_NAME: Final = "model-sync"
CONFIG_VOLUME: Final = "tfserving-config"
MODEL_VOLUME: Final = "model"
CREDENTIALS_VOLUME: Final = "storage-credentials"
TMP_VOLUME: Final = "tmp"


def deployment_name(md: api.ModelDeployment) -> str:
    return md.name


def service_name(md: api.ModelDeployment) -> str:
    return md.name


def hpa_name(md: api.ModelDeployment) -> str:
    return md.name


def service_monitor_name(md: api.ModelDeployment) -> str:
    return md.name


def network_policy_name(md: api.ModelDeployment) -> str:
    return md.name


def pdb_name(md: api.ModelDeployment) -> str:
    return md.name


def model_sync_name(md: api.ModelDeployment) -> str:
    return f"{md.name}-model-sync"


def model_cache_claim_name(md: api.ModelDeployment) -> str:
    """The claim the operator creates for spec.model.cache.size (see cache_claim for claimName)."""
    return f"{md.name}-model-cache"


def model_sync_selector_labels(md: api.ModelDeployment) -> dict[str, str]:
    return {MODEL_SYNC_LABEL: md.name}


def model_sync_label_selector(md: api.ModelDeployment) -> str:
    return ",".join(f"{k}={v}" for k, v in model_sync_selector_labels(md).items())


def model_sync_labels(md: api.ModelDeployment) -> dict[str, str]:
    return {**descriptive_labels(md), NAME_LABEL: SYNC_APP_NAME, **model_sync_selector_labels(md)}


def config_map_name(md: api.ModelDeployment) -> str:
    return f"{md.name}-tfserving"


def selector_labels(md: api.ModelDeployment) -> dict[str, str]:
    """Minimal and immutable: a Deployment's selector can never change after creation."""
    return {SELECTOR_LABEL: md.name}


def descriptive_labels(md: api.ModelDeployment) -> dict[str, str]:
    """Labels for people and tools; free to change without recreating anything."""
    return {
        NAME_LABEL: APP_NAME,
        INSTANCE_LABEL: md.name,
        MANAGED_BY_LABEL: MANAGED_BY,
        PART_OF_LABEL: PART_OF,
    }


def child_labels(md: api.ModelDeployment) -> dict[str, str]:
    return {**descriptive_labels(md), **selector_labels(md)}


def owner_reference(md: api.ModelDeployment) -> dict[str, object]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": md.name,
        "uid": md.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(md: api.ModelDeployment, name: str) -> dict[str, object]:
    """Metadata every child carries: its name, our labels and the controller owner reference."""
    return {
        "name": name,
        "namespace": md.namespace,
        "labels": child_labels(md),
        "ownerReferences": [owner_reference(md)],
    }


def label_selector(md: api.ModelDeployment) -> str:
    return ",".join(f"{k}={v}" for k, v in selector_labels(md).items())


def scaled_object_name(md: api.ModelDeployment) -> str:
    return md.name


def activator_slice_name(md: api.ModelDeployment) -> str:
    """The EndpointSlice that routes the model's Service to the activator while it has no ready pod."""
    return f"{md.name}-activator"
