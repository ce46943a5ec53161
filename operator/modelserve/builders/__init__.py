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
from modelserve.builders.keda import build_scaled_object
from modelserve.builders.model_cache import build_model_cache_claim, build_model_sync_deployment
from modelserve.builders.networkpolicy import build_network_policy
from modelserve.builders.pdb import build_pdb
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
    role: str = ""  # which child this is when a kind appears twice (the sync Deployment)

    @property
    def present(self) -> bool:
        return self.manifest is not None


_Builder = Callable[[api.ModelDeployment, Settings], Manifest | None]
MODEL_SYNC_ROLE: Final = "ModelSyncDeployment"
ACTIVATOR_ROUTE_ROLE: Final = "ActivatorRoute"


def activator_route_placeholder(md: api.ModelDeployment, settings: Settings) -> Manifest | None:
    """The activator's EndpointSlice depends on live state (the model's ready pods, the activator's
    addresses): the reconciler builds it with activator_route.build_activator_slice, not here."""
    del md, settings
    return None


@dataclass(frozen=True)
class ChildKind:
    """One kind of child: the single list every other part derives its own from (the watches and
    their label filters in handlers.py, the API paths in kube.py, the RBAC test, the status)."""

    api_version: str
    kind: str
    plural: str
    name_of: Callable[[api.ModelDeployment], str]
    build: _Builder
    # Set where one kind appears twice: the key the reconciler and the status know the child by.
    role: str = ""

    @property
    def key(self) -> str:
        return self.role or self.kind

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


# Apply order: the ConfigMap the pods mount, the Service, the NetworkPolicy guarding the pods before
# they exist, the Deployment, then the objects that refer to it (HPA, PodDisruptionBudget) or only
# observe it (ServiceMonitor).
CHILD_KINDS: Final[tuple[ChildKind, ...]] = (
    ChildKind("v1", "ConfigMap", "configmaps", naming.config_map_name, build_config_map),
    ChildKind("v1", "Service", "services", naming.service_name, build_service),
    ChildKind(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "networkpolicies",
        naming.network_policy_name,
        build_network_policy,
    ),
    # The shared model cache (spec.model.cache): the claim, then the one pod that fills it, both
    # before the serving Deployment whose pods mount it.
    ChildKind(
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        naming.model_cache_claim_name,
        build_model_cache_claim,
    ),
    ChildKind(
        "apps/v1",
        "Deployment",
        "deployments",
        naming.model_sync_name,
        build_model_sync_deployment,
        role=MODEL_SYNC_ROLE,
    ),
    ChildKind("apps/v1", "Deployment", "deployments", naming.deployment_name, build_deployment),
    ChildKind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", naming.pdb_name, build_pdb),
    ChildKind(
        "autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", naming.hpa_name, build_hpa
    ),
    # Load targets and scale to zero: KEDA's ScaledObject instead of the HPA (one engine at a time).
    ChildKind(
        "keda.sh/v1alpha1", "ScaledObject", "scaledobjects", naming.scaled_object_name, build_scaled_object
    ),
    # While a scale-to-zero model has no ready pod: its Service's route to the activator.
    ChildKind(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        "endpointslices",
        naming.activator_slice_name,
        activator_route_placeholder,
        role=ACTIVATOR_ROUTE_ROLE,
    ),
    ChildKind(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        "servicemonitors",
        naming.service_monitor_name,
        build_service_monitor,
    ),
)


def desired_children(md: api.ModelDeployment, settings: Settings) -> list[Child]:
    """Every child kind in apply order, present or absent."""
    return [
        Child(
            api_version=k.api_version,
            kind=k.kind,
            name=k.name_of(md),
            manifest=k.build(md, settings),
            role=k.key,
        )
        for k in CHILD_KINDS
    ]


def activator_route_child(md: api.ModelDeployment, manifest: Manifest | None) -> Child:
    """The activator route (its manifest built by the reconciler from live state, None: absent),
    named and typed by its entry in CHILD_KINDS."""
    (route,) = [k for k in CHILD_KINDS if k.key == ACTIVATOR_ROUTE_ROLE]
    return Child(route.api_version, route.kind, route.name_of(md), manifest, role=route.key)


__all__ = [
    "ACTIVATOR_ROUTE_ROLE",
    "CHILD_KINDS",
    "MODEL_SYNC_ROLE",
    "Child",
    "ChildKind",
    "Manifest",
    "activator_route_child",
    "build_config_map",
    "build_deployment",
    "build_hpa",
    "build_model_cache_claim",
    "build_model_sync_deployment",
    "build_network_policy",
    "build_pdb",
    "build_scaled_object",
    "build_service",
    "build_service_monitor",
    "desired_children",
]
