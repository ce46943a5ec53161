"""Pure builders: one module per child kind, each `build_<kind>(md, settings) -> dict | None`.

No kopf, no Kubernetes client, no I/O: a ModelDeployment and the operator settings in, plain
manifests out. `None` means "this child should not exist" (autoscaling or monitoring switched off),
which the reconciler turns into a delete of a child it controls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from modelserve import api, naming
from modelserve.builders.configmap import build_config_map
from modelserve.builders.deployment import build_deployment
from modelserve.builders.hpa import build_hpa
from modelserve.builders.networkpolicy import build_network_policy
from modelserve.builders.service import build_service
from modelserve.builders.servicemonitor import build_service_monitor
from modelserve.settings import Settings

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Child:
    """One desired child. `manifest` is None when the child should be absent; api_version, kind and
    name are still set so the reconciler knows what to delete."""

    api_version: str
    kind: str
    name: str
    manifest: Manifest | None

    @property
    def present(self) -> bool:
        return self.manifest is not None


_Builder = Callable[[api.ModelDeployment, Settings], Manifest | None]

# Apply order: the ConfigMap the pods mount, the Service, the NetworkPolicy guarding the pods before
# they exist, the Deployment, then the objects that refer to it (HPA) or only observe it
# (ServiceMonitor).
CHILD_KINDS: Final[tuple[tuple[str, str, Callable[[api.ModelDeployment], str], _Builder], ...]] = (
    ("v1", "ConfigMap", naming.config_map_name, build_config_map),
    ("v1", "Service", naming.service_name, build_service),
    ("networking.k8s.io/v1", "NetworkPolicy", naming.network_policy_name, build_network_policy),
    ("apps/v1", "Deployment", naming.deployment_name, build_deployment),
    ("autoscaling/v2", "HorizontalPodAutoscaler", naming.hpa_name, build_hpa),
    ("monitoring.coreos.com/v1", "ServiceMonitor", naming.service_monitor_name, build_service_monitor),
)


def desired_children(md: api.ModelDeployment, settings: Settings) -> list[Child]:
    """Every child kind in apply order, present or absent."""
    return [
        Child(api_version=api_version, kind=kind, name=name_of(md), manifest=build(md, settings))
        for api_version, kind, name_of, build in CHILD_KINDS
    ]


__all__ = [
    "CHILD_KINDS",
    "Child",
    "Manifest",
    "build_config_map",
    "build_deployment",
    "build_hpa",
    "build_network_policy",
    "build_service",
    "build_service_monitor",
    "desired_children",
]
