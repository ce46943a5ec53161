"""The NetworkPolicy: absent unless asked, serving ports only, one peer per allowed client."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from modelserve import api, naming
from modelserve.builders.networkpolicy import build_network_policy
from modelserve.settings import Settings

pytestmark = pytest.mark.unit

# gRPC, REST (TF Serving's metrics too) and the sync sidecar's metrics.
PORTS = [{"protocol": "TCP", "port": port} for port in (8500, 8501, 8502)]


def make(**spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet"})
    return api.parse({"metadata": {"name": "resnet", "namespace": "ml", "uid": "u"}, "spec": spec})


def build(**spec: Any) -> dict[str, Any]:
    policy = build_network_policy(make(**spec), Settings())
    assert policy is not None
    return policy


def test_absent_without_spec_network_policy() -> None:
    assert build_network_policy(make(), Settings()) is None


def test_empty_allow_list_denies_every_ingress_to_the_serving_pods() -> None:
    md = make(networkPolicy={})
    policy = build(networkPolicy={})
    assert policy["apiVersion"] == "networking.k8s.io/v1"
    assert policy["kind"] == "NetworkPolicy"
    assert policy["metadata"] == naming.child_metadata(md, "resnet")
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"modelserve.dev/deployment": "resnet"}},
        "policyTypes": ["Ingress"],
    }


def test_each_client_is_one_peer_on_the_serving_ports_only() -> None:
    clients = [
        {"namespaces": ["web", "batch", "web"], "podLabels": {"role": "client", "app": "shop"}},
        {"namespaceLabels": {"team": "ml"}},
        {"podLabels": {"app": "gateway"}},
        {},
    ]
    policy = build(networkPolicy={"allowedClients": clients})
    assert policy["spec"]["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/metadata.name",
                                "operator": "In",
                                "values": ["batch", "web"],
                            }
                        ]
                    },
                    "podSelector": {"matchLabels": {"app": "shop", "role": "client"}},
                },
                {"namespaceSelector": {"matchLabels": {"team": "ml"}}},
                # Without a namespace condition a peer means the ModelDeployment's own namespace.
                {"podSelector": {"matchLabels": {"app": "gateway"}}},
                {"podSelector": {}},
            ],
            "ports": PORTS,
        }
    ]


def test_a_cached_model_has_no_sync_sidecar_port_to_admit() -> None:
    policy = build(
        model={"storageUri": "gs://models/resnet", "cache": {"size": "1Gi"}},
        networkPolicy={"allowedClients": [{}]},
    )
    assert policy["spec"]["ingress"][0]["ports"] == PORTS[:2]


def test_names_and_labels_of_namespaces_are_exclusive_in_one_entry() -> None:
    # The CRD's CEL rule refuses this at the API server; the model accepts it and names win.
    policy = build(networkPolicy={"allowedClients": [{"namespaces": ["a"], "namespaceLabels": {"x": "y"}}]})
    (peer,) = policy["spec"]["ingress"][0]["from"]
    assert set(peer) == {"namespaceSelector"}
    assert "matchExpressions" in peer["namespaceSelector"]


@pytest.mark.parametrize(
    "bad",
    [
        {"allowedClients": [{"namespaces": []}]},
        {"allowedClients": [{"namespaces": ["Not_A_Namespace"]}]},
        {"allowedClients": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]},
        {"ports": [22]},
    ],
)
def test_model_refuses_malformed_policies(bad: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        make(networkPolicy=bad)
