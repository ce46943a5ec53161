"""The EndpointSlice that routes a scale-to-zero model's Service to the activator (pure).

A Service's traffic goes to the endpoints of every EndpointSlice labelled with its name. While a
model with minReplicas: 0 has no ready pod, the operator adds one slice of its own holding the
activator's pod addresses, so requests reach the activator, which holds them and wakes the model.
Once a pod is ready the slice is deleted and traffic goes to the pods again: no mesh, no change to
the Service itself. The EndpointSlice controller leaves the slice alone: it is managed by us.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from modelserve import api, contract, naming

SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
MANAGED_BY_LABEL: Final = "endpointslice.kubernetes.io/managed-by"


def wants_activator(md: api.ModelDeployment, ready_replicas: int) -> bool:
    autoscaling = md.spec.autoscaling
    return (
        autoscaling is not None
        and autoscaling.min_replicas == 0
        and not md.spec.suspend
        and ready_replicas == 0
    )


def build_activator_slice(md: api.ModelDeployment, addresses: Sequence[str]) -> dict[str, Any]:
    """The activator's ready addresses under the model Service's port names (the activator listens
    on TF Serving's port numbers)."""
    labels = {
        **naming.child_labels(md),
        SERVICE_NAME_LABEL: naming.service_name(md),
        MANAGED_BY_LABEL: naming.FIELD_MANAGER,
    }
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {**naming.child_metadata(md, naming.activator_slice_name(md)), "labels": labels},
        "addressType": "IPv6" if addresses and ":" in addresses[0] else "IPv4",
        "ports": [
            {
                "name": contract.GRPC_PORT_NAME,
                "port": contract.GRPC_PORT,
                "protocol": "TCP",
                "appProtocol": "grpc",
            },
            {
                "name": contract.REST_PORT_NAME,
                "port": contract.REST_PORT,
                "protocol": "TCP",
                "appProtocol": "http",
            },
        ],
        "endpoints": [
            {"addresses": [address], "conditions": {"ready": True}} for address in sorted(addresses)
        ],
    }


def ready_addresses(slices: Sequence[dict[str, Any]]) -> list[str]:
    """Ready endpoint addresses in a Service's EndpointSlices."""
    found: set[str] = set()
    for item in slices:
        for endpoint in item.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready", True):
                found.update(endpoint.get("addresses") or [])
    return sorted(found)
