"""Who the serving pods are and what they carry (pure): service account, image pull secrets, the
user's pod labels and annotations, and the model emptyDir's size (spec.model.size).

Applied to the finished pod template, so it stays apart from what the pod runs (deployment,
model_source); the model sync Deployment of a cache can use it the same way.

Tokens: automountServiceAccountToken stays false (TF Serving never calls the API server). Cloud
workload identity does not need that token: GKE Workload Identity answers from the node's metadata
server for the pod's ServiceAccount; the EKS (IRSA) and Azure webhooks project a token of their own
into the containers, and the skip annotations below keep it out of TF Serving, so only the model
sync, which reads the store, holds a cloud credential.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from modelserve import api, naming

# Webhook annotations that leave named containers without the projected cloud token.
SKIP_TOKEN_ANNOTATIONS: Final = (
    "eks.amazonaws.com/skip-containers",
    "azure.workload.identity/skip-containers",
)
EPHEMERAL_STORAGE: Final = "ephemeral-storage"


def pod_labels(md: api.ModelDeployment, ours: dict[str, str]) -> dict[str, str]:
    """The user's labels, then ours (the CRD refuses user keys that would collide)."""
    user = md.spec.pod_metadata.labels if md.spec.pod_metadata else None
    return {**(user or {}), **ours}


def pod_annotations(md: api.ModelDeployment, ours: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    if md.spec.service_account_name:
        out.update(dict.fromkeys(SKIP_TOKEN_ANNOTATIONS, naming.SERVING_CONTAINER))
    user = md.spec.pod_metadata.annotations if md.spec.pod_metadata else None
    return {**out, **(user or {}), **ours}


def identity(md: api.ModelDeployment) -> dict[str, Any]:
    """Pod spec fields: serviceAccountName and imagePullSecrets, when set."""
    out: dict[str, Any] = {}
    if md.spec.service_account_name:
        out["serviceAccountName"] = md.spec.service_account_name
    if md.spec.image_pull_secrets:
        out["imagePullSecrets"] = [{"name": ref.name} for ref in md.spec.image_pull_secrets]
    return out


def sized_volumes(md: api.ModelDeployment, volumes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model emptyDir limited to spec.model.size (the kubelet evicts the pod past it)."""
    size = md.spec.model.size
    if not size:
        return volumes
    return [
        {**v, "emptyDir": {**v["emptyDir"], "sizeLimit": size}}
        if v.get("name") == naming.MODEL_VOLUME and "emptyDir" in v
        else v
        for v in volumes
    ]


def with_storage_request(md: api.ModelDeployment, container: dict[str, Any]) -> dict[str, Any]:
    """The serving container requests spec.model.size of ephemeral storage (unless spec.resources
    states one), so the scheduler only picks nodes whose disk holds the model."""
    size = md.spec.model.size
    requests = (container.get("resources") or {}).get("requests") or {}
    if not size or EPHEMERAL_STORAGE in requests:
        return container
    requests = dict(sorted({**requests, EPHEMERAL_STORAGE: size}.items()))
    resources = {**(container.get("resources") or {}), "requests": requests}
    return {**container, "resources": resources}


def apply_to_sync(md: api.ModelDeployment, template: dict[str, Any]) -> dict[str, Any]:
    """The `<name>-model-sync` pod of a cache: the same ServiceAccount (it is the pod that reads the
    store, so the one that needs the cloud identity and its token), pull secrets and the user's pod
    labels and annotations; no skip annotations (its only container is the sync)."""
    out = copy.deepcopy(template)
    meta = out.setdefault("metadata", {})
    meta["labels"] = pod_labels(md, meta.get("labels") or {})
    user = md.spec.pod_metadata.annotations if md.spec.pod_metadata else None
    if user or meta.get("annotations"):
        meta["annotations"] = {**(user or {}), **(meta.get("annotations") or {})}
    out["spec"].update(identity(md))
    return out


def apply(md: api.ModelDeployment, template: dict[str, Any]) -> dict[str, Any]:
    """The pod template with this module's fields; the input is not modified."""
    out = copy.deepcopy(template)
    meta = out.setdefault("metadata", {})
    meta["labels"] = pod_labels(md, meta.get("labels") or {})
    annotations = pod_annotations(md, meta.get("annotations") or {})
    if annotations:
        meta["annotations"] = annotations
    spec = out["spec"]
    spec.update(identity(md))
    spec["volumes"] = sized_volumes(md, spec.get("volumes") or [])
    spec["containers"] = [
        with_storage_request(md, c) if c.get("name") == naming.SERVING_CONTAINER else c
        for c in spec.get("containers") or []
    ]
    return out
