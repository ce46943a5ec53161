"""The Service in front of the serving pods (pure)."""

from __future__ import annotations

from typing import Any

from modelserve import api, contract, naming
from modelserve.builders import model_source
from modelserve.settings import Settings


def service_ports() -> list[dict[str, Any]]:
    """gRPC and REST; appProtocol lets meshes and gateways pick HTTP/2 for gRPC without guessing."""
    return [
        {
            "name": contract.GRPC_PORT_NAME,
            "port": contract.GRPC_PORT,
            "targetPort": contract.GRPC_PORT_NAME,
            "protocol": "TCP",
            "appProtocol": "grpc",
        },
        {
            "name": contract.REST_PORT_NAME,
            "port": contract.REST_PORT,
            "targetPort": contract.REST_PORT_NAME,
            "protocol": "TCP",
            "appProtocol": "http",
        },
    ]


def build_service(md: api.ModelDeployment, settings: Settings) -> dict[str, Any]:
    """Selects pods by the immutable selector label only, so descriptive labels may change freely.

    Node ports and cluster IPs are left to the API server: not listing them means server-side apply
    never claims (or fights over) the allocated values.
    """
    del settings  # same signature as every builder
    metadata = naming.child_metadata(md, naming.service_name(md))
    if md.spec.service.annotations:
        metadata["annotations"] = dict(sorted(md.spec.service.annotations.items()))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": md.spec.service.type.value,
            "selector": naming.selector_labels(md),
            "ports": [*service_ports(), *model_source.sync_metrics_service_ports(md)],
        },
    }
