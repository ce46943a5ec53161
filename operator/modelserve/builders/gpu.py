"""GPU scheduling of the serving pods: resources, node selector, tolerations (pure)."""

from __future__ import annotations

from typing import Any

from modelserve import api, naming


def gpu_resource_name(gpu: api.Gpu) -> str:
    """A MIG slice is its own extended resource (nvidia.com/mig-<profile>, GPU operator's mixed strategy)."""
    if gpu.mig_profile:
        return f"{naming.MIG_RESOURCE_PREFIX}{gpu.mig_profile}"
    return gpu.resource_name


def gpu_resources(md: api.ModelDeployment) -> dict[str, str]:
    """Resource name -> count, for both requests and limits (extended resources require them equal)."""
    gpu = md.spec.gpu
    if gpu is None:
        return {}
    return {gpu_resource_name(gpu): str(gpu.count)}


def is_gpu_resource(md: api.ModelDeployment, resource: str) -> bool:
    """Whether `resource` counts GPUs: a known device plugin's or spec.gpu's own resourceName."""
    own = gpu_resource_name(md.spec.gpu) if md.spec.gpu is not None else None
    return resource == own or resource.startswith(api.GPU_RESOURCE_PREFIXES)


def without_gpus(md: api.ModelDeployment, quantities: dict[str, str] | None) -> dict[str, str]:
    """`quantities` minus every GPU resource. The CRD already refuses GPUs in spec.resources; this
    keeps a spec stored under an older CRD from reserving GPUs twice."""
    return {k: v for k, v in (quantities or {}).items() if not is_gpu_resource(md, k)}


def gpu_node_selector(md: api.ModelDeployment) -> dict[str, str]:
    """Pins the pods to nodes of the requested product (label from GPU feature discovery)."""
    gpu = md.spec.gpu
    if gpu is None or not gpu.product:
        return {}
    return {naming.GPU_PRODUCT_LABEL: gpu.product}


def gpu_tolerations(md: api.ModelDeployment) -> list[dict[str, Any]]:
    """GPU nodes are commonly tainted nvidia.com/gpu:NoSchedule (any value) to keep CPU pods off."""
    if md.spec.gpu is None:
        return []
    return [{"key": naming.GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]


def rollout_strategy(md: api.ModelDeployment) -> dict[str, Any] | None:
    """GPU pods are replaced one at a time and never surged: a surge pod needs a GPU more than the
    replicas hold, and on a fully allocated node it stays Pending while the rollout waits for it
    forever. The cost: one replica fewer serves during a rollout (a single-replica GPU model is down
    while its pod is replaced). None keeps Kubernetes' default (25% surge, 25% unavailable)."""
    if md.spec.gpu is None:
        return None
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def gpu_summary(md: api.ModelDeployment) -> str | None:
    """For status and the GPU printer column: '1x NVIDIA-A100-SXM4-80GB', '2x nvidia.com/mig-1g.10gb'."""
    gpu = md.spec.gpu
    if gpu is None:
        return None
    if gpu.mig_profile:
        suffix = f" on {gpu.product}" if gpu.product else ""
        return f"{gpu.count}x {gpu_resource_name(gpu)}{suffix}"
    return f"{gpu.count}x {gpu.product or gpu.resource_name}"
