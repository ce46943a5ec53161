"""Pieces every pod we render shares (pure): security contexts, env entries, mounts, the image."""

from __future__ import annotations

from typing import Any

from modelserve import api, contract
from modelserve.settings import Settings


def serving_image(md: api.ModelDeployment, settings: Settings) -> str:
    if md.spec.serving.image:
        return md.spec.serving.image
    return settings.gpu_image if md.spec.gpu is not None else settings.cpu_image


def env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def mount(name: str, path: str, *, read_only: bool) -> dict[str, Any]:
    # readOnly: false is the API default; leaving it out keeps the applied manifest minimal.
    out: dict[str, Any] = {"name": name, "mountPath": path}
    if read_only:
        out["readOnly"] = True
    return out


def container_security_context() -> dict[str, Any]:
    """The `restricted` Pod Security Standard, per container."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(fixed_ids: bool = True) -> dict[str, Any]:
    """Without fixed IDs (OpenShift's restricted-v2 assigns the namespace's UID and fsGroup itself and
    refuses others) only runAsNonRoot and seccomp are set; the image runs as any UID."""
    ids: dict[str, Any] = {}
    if fixed_ids:
        ids = {
            "runAsUser": contract.RUN_AS_USER,
            "runAsGroup": contract.RUN_AS_GROUP,
            # Makes the emptyDirs, the cache claim and the credentials Secret usable by the non-root user.
            "fsGroup": contract.RUN_AS_GROUP,
        }
    return {"runAsNonRoot": True, **ids, "seccompProfile": {"type": "RuntimeDefault"}}


def with_pull_policy(md: api.ModelDeployment, container: dict[str, Any]) -> dict[str, Any]:
    if md.spec.serving.image_pull_policy:
        container["imagePullPolicy"] = md.spec.serving.image_pull_policy
    return container
