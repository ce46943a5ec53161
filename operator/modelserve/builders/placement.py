"""Where pods may run: the serving pods' node selector and tolerations (the user's plus the GPU's),
and the cache's sync pod's, which must follow the serving pods onto their nodes when a
ReadWriteOnce claim ties the two to one node (pure)."""

from __future__ import annotations

import copy
from typing import Any

from modelserve import api
from modelserve.builders import gpu, model_source


def node_selector(md: api.ModelDeployment) -> dict[str, str]:
    """The user's node selector plus the GPU product (spec.gpu.product wins on the same key)."""
    user = md.spec.scheduling.node_selector if md.spec.scheduling else None
    return dict(sorted({**(user or {}), **gpu.gpu_node_selector(md)}.items()))


def user_tolerations(md: api.ModelDeployment) -> list[dict[str, Any]]:
    user = md.spec.scheduling.tolerations if md.spec.scheduling else None
    return [t.model_dump(by_alias=True, exclude_none=True) for t in user or ()]


def tolerations(md: api.ModelDeployment) -> list[dict[str, Any]]:
    """The user's tolerations, then the GPU taint's unless the user already listed the same one."""
    out = user_tolerations(md)
    out += [t for t in gpu.gpu_tolerations(md) if t not in out]
    return out


def sync_pod_placement(md: api.ModelDeployment) -> dict[str, Any]:
    """Scheduling fields of the cache's `<name>-model-sync` pod.

    A ReadWriteOnce claim attaches to one node, and the serving pod is pinned to the sync pod's
    (model_source.serving_affinity): so the sync pod must only land where a serving pod may run (the
    GPU product's nodes, the user's selector and node affinity), or a GPU model would wait forever
    beside a sync pod on a CPU node. It never requests a GPU itself. With ReadWriteMany the sync pod
    may run anywhere (it is a CPU copy job); it still tolerates the user's taints, so a cluster
    whose every node is tainted for the model's team can run it.
    """
    if model_source.serving_affinity(md) is None:
        tols = user_tolerations(md)
        return {"tolerations": tols} if tols else {}
    out: dict[str, Any] = {}
    if selector := node_selector(md):
        out["nodeSelector"] = selector
    if tols := tolerations(md):
        out["tolerations"] = tols
    node_affinity = ((md.spec.scheduling.affinity or {}) if md.spec.scheduling else {}).get("nodeAffinity")
    if node_affinity:
        out["affinity"] = {"nodeAffinity": copy.deepcopy(node_affinity)}
    return out
