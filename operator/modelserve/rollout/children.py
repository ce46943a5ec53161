"""The children of a ModelDeployment with spec.rollout, for one `Plan` (pure).

Every pod template still comes from builders.deployment: the stable is built from the ModelDeployment
as it looks with the stable's rolled spec (`revision.with_rolled_spec`), the canary from the current
spec; this module only names the canary's copies, adds the track label and sets replica counts.

- `<name>` (Deployment): the stable, `<name>-tfserving` its model config.
- `<name>-canary` (Deployment) and `<name>-canary-tfserving` (ConfigMap): the canary, present while
  a plan has canary replicas. Its pods carry the Service's selector label, so the Service's share of
  traffic is the share of ready endpoints; a pod that is not Ready gets none.
- With rollout.gatewayAPI: Services `<name>-stable` and `<name>-canary` (one track each) and an
  HTTPRoute `<name>` splitting REST traffic by the step's weight.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Final

from modelserve import api, builders, naming
from modelserve.builders import Child
from modelserve.builders.configmap import build_config_map
from modelserve.builders.deployment import build_deployment
from modelserve.builders.service import service_ports
from modelserve.rollout.machine import Plan
from modelserve.rollout.revision import with_rolled_spec
from modelserve.settings import Settings

TRACK_LABEL: Final = "modelserve.dev/track"
STABLE_TRACK, CANARY_TRACK = "stable", "canary"
GATEWAY_API_VERSION: Final = "gateway.networking.k8s.io/v1"
# Kinds that set the stable's replicas on their own; absent while the plan splits the replicas.
AUTOSCALER_KINDS: Final = ("HorizontalPodAutoscaler", "ScaledObject")
# The reconciler and the status know children by role; these are the rollout's own.
CANARY_ROLE: Final = "CanaryDeployment"
CANARY_CONFIG_ROLE: Final = "CanaryConfigMap"
STABLE_SERVICE_ROLE: Final = "StableService"
CANARY_SERVICE_ROLE: Final = "CanaryService"
HTTPROUTE_ROLE: Final = "HTTPRoute"
# No surge: a Deployment's own rolling update must not take a GPU the other track is using.
NO_SURGE: Final = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def canary_name(md: api.ModelDeployment) -> str:
    return f"{md.name}-canary"


def canary_config_map_name(md: api.ModelDeployment) -> str:
    return f"{md.name}-canary-tfserving"


def stable_service_name(md: api.ModelDeployment) -> str:
    return f"{md.name}-stable"


def canary_service_name(md: api.ModelDeployment) -> str:
    return f"{md.name}-canary"


def httproute_name(md: api.ModelDeployment) -> str:
    return md.name


def _label_pods(deployment: dict[str, Any], track: str, *, selector: bool) -> None:
    spec = deployment["spec"]
    template = spec["template"]
    template["metadata"]["labels"] = {**template["metadata"]["labels"], TRACK_LABEL: track}
    deployment["metadata"]["labels"] = {**deployment["metadata"]["labels"], TRACK_LABEL: track}
    if selector:
        spec["selector"] = {"matchLabels": {**spec["selector"]["matchLabels"], TRACK_LABEL: track}}


def stable_deployment(md: api.ModelDeployment, settings: Settings, plan: Plan) -> dict[str, Any]:
    stable_md = with_rolled_spec(md, plan.stable_spec)
    dep = copy.deepcopy(build_deployment(stable_md, settings))
    rollout = md.spec.rollout
    if rollout is not None and rollout.gateway_api is not None:
        # The `-stable` Service needs a label to select; the selector itself is immutable and stays.
        _label_pods(dep, STABLE_TRACK, selector=False)
    dep["spec"]["strategy"] = copy.deepcopy(NO_SURGE)
    if plan.autoscaler_owns_stable and md.spec.autoscaling is not None and not md.spec.suspend:
        dep["spec"].pop("replicas", None)
    else:
        dep["spec"] = {
            "replicas": plan.stable_replicas,
            **{k: v for k, v in dep["spec"].items() if k != "replicas"},
        }
    return dep


def canary_deployment(md: api.ModelDeployment, settings: Settings, replicas: int) -> dict[str, Any]:
    dep = copy.deepcopy(build_deployment(md, settings))
    dep["metadata"]["name"] = canary_name(md)
    _label_pods(dep, CANARY_TRACK, selector=True)
    for volume in dep["spec"]["template"]["spec"].get("volumes") or []:
        if (volume.get("configMap") or {}).get("name") == naming.config_map_name(md):
            volume["configMap"]["name"] = canary_config_map_name(md)
    dep["spec"]["strategy"] = copy.deepcopy(NO_SURGE)
    dep["spec"] = {"replicas": replicas, **{k: v for k, v in dep["spec"].items() if k != "replicas"}}
    return dep


def canary_config_map(md: api.ModelDeployment, settings: Settings) -> dict[str, Any]:
    cm = copy.deepcopy(build_config_map(md, settings))
    cm["metadata"]["name"] = canary_config_map_name(md)
    cm["metadata"]["labels"] = {**cm["metadata"]["labels"], TRACK_LABEL: CANARY_TRACK}
    return cm


def track_service(md: api.ModelDeployment, name: str, track: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": naming.child_metadata(md, name),
        "spec": {
            "type": "ClusterIP",
            "selector": {**naming.selector_labels(md), TRACK_LABEL: track},
            "ports": service_ports(),
        },
    }


def httproute(md: api.ModelDeployment, canary_weight: int) -> dict[str, Any]:
    rollout = md.spec.rollout
    assert rollout is not None and rollout.gateway_api is not None
    parents = [p.model_dump(by_alias=True, exclude_none=True) for p in rollout.gateway_api.parent_refs]
    port = next(p["port"] for p in service_ports() if p["name"] == "http")
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": naming.child_metadata(md, httproute_name(md)),
        "spec": {
            "parentRefs": parents,
            "rules": [
                {
                    "backendRefs": [
                        {"name": stable_service_name(md), "port": port, "weight": 100 - canary_weight},
                        {"name": canary_service_name(md), "port": port, "weight": canary_weight},
                    ]
                }
            ],
        },
    }


def rollout_children(
    md: api.ModelDeployment, settings: Settings, plan: Plan, *, gateway_api_installed: bool
) -> list[Child]:
    """Every child in apply order for a ModelDeployment under a rollout plan, present or absent."""
    stable_md = with_rolled_spec(md, plan.stable_spec)
    out: list[Child] = []
    canary = plan.canary_replicas
    for child in builders.desired_children(stable_md, settings):
        if child.role == "Deployment":
            out.append(replace(child, manifest=stable_deployment(md, settings, plan)))
            manifest = None if canary is None else canary_deployment(md, settings, canary)
            out.append(Child("apps/v1", "Deployment", canary_name(md), manifest, CANARY_ROLE))
            continue
        if child.kind in AUTOSCALER_KINDS and not plan.autoscaler_owns_stable:
            out.append(replace(child, manifest=None))
            continue
        if child.role == "Service":
            # The shared Service and the in-place settings come from the current spec.
            out.append(replace(child, manifest=builders.build_service(md, settings)))
            out.extend(_gateway_children(md, plan, gateway_api_installed))
            continue
        out.append(child)
        if child.role == "ConfigMap":
            manifest = None if canary is None else canary_config_map(md, settings)
            out.append(Child("v1", "ConfigMap", canary_config_map_name(md), manifest, CANARY_CONFIG_ROLE))
    return out


def _gateway_children(md: api.ModelDeployment, plan: Plan, installed: bool) -> list[Child]:
    rollout = md.spec.rollout
    wanted = rollout is not None and rollout.gateway_api is not None
    stable = track_service(md, stable_service_name(md), STABLE_TRACK) if wanted else None
    canary = track_service(md, canary_service_name(md), CANARY_TRACK) if wanted else None
    out = [
        Child("v1", "Service", stable_service_name(md), stable, STABLE_SERVICE_ROLE),
        Child("v1", "Service", canary_service_name(md), canary, CANARY_SERVICE_ROLE),
    ]
    if installed:
        route = httproute(md, plan.canary_weight) if wanted else None
        out.append(Child(GATEWAY_API_VERSION, "HTTPRoute", httproute_name(md), route, HTTPROUTE_ROLE))
    return out


def absent_rollout_children(md: api.ModelDeployment) -> list[Child]:
    """What a rollout may have left, for a ModelDeployment whose spec.rollout was removed."""
    return [
        Child("apps/v1", "Deployment", canary_name(md), None, CANARY_ROLE),
        Child("v1", "ConfigMap", canary_config_map_name(md), None, CANARY_CONFIG_ROLE),
        Child("v1", "Service", stable_service_name(md), None, STABLE_SERVICE_ROLE),
        Child("v1", "Service", canary_service_name(md), None, CANARY_SERVICE_ROLE),
    ]
