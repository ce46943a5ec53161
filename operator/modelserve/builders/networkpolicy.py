"""The NetworkPolicy limiting who may reach the serving ports (pure).

Present only when spec.networkPolicy is set. It selects the serving pods by their immutable selector
label and admits ingress on the gRPC and REST ports from the listed clients only; since a pod selected
by any Ingress policy refuses everything no policy admits, all other ingress is denied.
"""

from __future__ import annotations

from typing import Any, Final

from modelserve import api, contract, naming
from modelserve.builders import model_source
from modelserve.settings import Settings

# Every namespace carries this label with its own name (Kubernetes >= 1.22).
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"


def _peer(client: api.NetworkPolicyClient) -> dict[str, Any]:
    """One NetworkPolicyPeer: both selectors in one peer means "pods like this in namespaces like that"."""
    peer: dict[str, Any] = {}
    if client.namespaces:
        peer["namespaceSelector"] = {
            "matchExpressions": [
                {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": sorted(set(client.namespaces))}
            ]
        }
    elif client.namespace_labels:
        peer["namespaceSelector"] = {"matchLabels": dict(sorted(client.namespace_labels.items()))}
    if client.pod_labels:
        peer["podSelector"] = {"matchLabels": dict(sorted(client.pod_labels.items()))}
    elif not peer:
        # No namespace and no pod condition: every pod of the ModelDeployment's namespace.
        peer["podSelector"] = {}
    return peer


def serving_ports(md: api.ModelDeployment) -> list[dict[str, Any]]:
    """gRPC, REST (TF Serving's metrics too) and, with a sync sidecar, its metrics: the clients
    listed are the ones admitted, so a Prometheus that scrapes the model is listed among them."""
    sync = [{"protocol": "TCP", "port": contract.SYNC_METRICS_PORT}] if model_source.sync_sidecar(md) else []
    return [
        {"protocol": "TCP", "port": contract.GRPC_PORT},
        {"protocol": "TCP", "port": contract.REST_PORT},
        *sync,
    ]


def build_network_policy(md: api.ModelDeployment, settings: Settings) -> dict[str, Any] | None:
    del settings  # same signature as every builder
    policy = md.spec.network_policy
    if policy is None:
        return None
    peers = [_peer(client) for client in policy.allowed_clients]
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": naming.selector_labels(md)},
        "policyTypes": ["Ingress"],
    }
    if peers:
        spec["ingress"] = [{"from": peers, "ports": serving_ports(md)}]
    # No rules admits nobody. An empty `ingress: []` would mean the same, but the API server drops
    # empty lists, so the live object would never match the manifest and every reconcile would apply.
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": naming.child_metadata(md, naming.network_policy_name(md)),
        "spec": spec,
    }
