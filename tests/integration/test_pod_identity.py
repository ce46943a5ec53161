"""Pod identity and metadata on the local cluster: the serving pods run as the named
ServiceAccount without an API token, pull with the given secrets, carry the user's labels and
annotations beside the operator's, and request the model's size of ephemeral storage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kit import Cluster, condition, model_deployment, wait_condition

pytestmark = pytest.mark.integration


def apply(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps(manifest))


@pytest.mark.usefixtures("operator")
def test_serving_pods_get_the_service_account_pull_secrets_metadata_and_storage_request(
    cluster: Cluster, namespace: str
) -> None:
    cluster.kubectl("create", "serviceaccount", "resnet-reader", "-n", namespace)
    spec = {
        "model": {"storageUri": "s3://models/resnet", "size": "20Gi"},
        "serviceAccountName": "resnet-reader",
        "imagePullSecrets": [{"name": "regcred"}],
        "podMetadata": {"labels": {"team": "search"}, "annotations": {"example.com/owner": "search"}},
    }
    apply(cluster, namespace, model_deployment("who", spec))
    wait_condition(cluster, namespace, "who", "Ready", "True", timeout=90)
    selector = "modelserve.dev/deployment=who"
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
    assert pods
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == "resnet-reader"
        assert pod["spec"]["automountServiceAccountToken"] is False
        # No API token volume reached any container.
        volumes = pod["spec"]["volumes"]
        assert not [v for v in volumes if "projected" in v and v["name"].startswith("kube-api-access")]
        assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod["metadata"]["labels"]["team"] == "search"
        assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelserve-operator"
        assert pod["metadata"]["annotations"]["example.com/owner"] == "search"
        assert pod["metadata"]["annotations"]["eks.amazonaws.com/skip-containers"] == "tfserving"
        serving = next(c for c in pod["spec"]["containers"] if c["name"] == "tfserving")
        assert serving["resources"]["requests"]["ephemeral-storage"] == "20Gi"
        model = next(v for v in pod["spec"]["volumes"] if v["name"] == "model")
        assert model["emptyDir"]["sizeLimit"] == "20Gi"


@pytest.mark.usefixtures("operator")
def test_a_service_account_that_does_not_exist_is_pod_create_failed(cluster: Cluster, namespace: str) -> None:
    spec = {"model": {"storageUri": "s3://models/resnet"}, "serviceAccountName": "nobody"}
    apply(cluster, namespace, model_deployment("anon", spec))
    md = wait_condition(cluster, namespace, "anon", "Ready", "False", reason="PodCreateFailed", timeout=60)
    assert 'serviceaccount "nobody" not found' in str((condition(md, "Ready") or {}).get("message"))
