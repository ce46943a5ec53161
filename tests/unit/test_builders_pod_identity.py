"""builders/pod_identity.py: service account, pull secrets, pod labels and annotations, model size."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from modelserve import api, naming
from modelserve.builders import pod_identity
from modelserve.builders.deployment import build_deployment
from modelserve.settings import Settings

pytestmark = pytest.mark.unit

SETTINGS = Settings(cpu_image="reg/cpu:1", gpu_image="reg/gpu:1")


def make(**spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "s3://models/resnet"})
    return api.parse({"metadata": {"name": "resnet", "namespace": "ml", "uid": "uid-1"}, "spec": spec})


def template(**spec: Any) -> dict[str, Any]:
    out: dict[str, Any] = build_deployment(make(**spec), SETTINGS)["spec"]["template"]
    return out


def container(tpl: dict[str, Any], name: str) -> dict[str, Any]:
    spec = tpl["spec"]
    return next(c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name)


def volume(tpl: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in tpl["spec"]["volumes"] if v["name"] == name)


def test_nothing_changes_without_the_new_fields() -> None:
    tpl = template()
    assert "serviceAccountName" not in tpl["spec"] and "imagePullSecrets" not in tpl["spec"]
    assert set(tpl["metadata"]["annotations"]) == {naming.ROLLOUT_HASH_ANNOTATION}
    assert tpl["metadata"]["labels"] == naming.child_labels(make())
    assert volume(tpl, naming.MODEL_VOLUME) == {"name": naming.MODEL_VOLUME, "emptyDir": {}}
    assert "ephemeral-storage" not in container(tpl, naming.SERVING_CONTAINER)["resources"]["requests"]


def test_service_account_keeps_the_api_token_out_and_the_cloud_token_out_of_tf_serving() -> None:
    tpl = template(serviceAccountName="resnet-reader")
    assert tpl["spec"]["serviceAccountName"] == "resnet-reader"
    assert tpl["spec"]["automountServiceAccountToken"] is False
    annotations = tpl["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/skip-containers"] == naming.SERVING_CONTAINER
    assert annotations["azure.workload.identity/skip-containers"] == naming.SERVING_CONTAINER
    # The model sync is the one container the webhooks may give a cloud token.
    assert naming.SYNC_CONTAINER not in annotations["eks.amazonaws.com/skip-containers"]


def test_image_pull_secrets_are_pod_level() -> None:
    tpl = template(imagePullSecrets=[{"name": "regcred"}, {"name": "mirror"}])
    assert tpl["spec"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]


def test_user_labels_and_annotations_join_ours_and_never_replace_them() -> None:
    md = make(
        podMetadata={
            "labels": {"team": "search", "app.kubernetes.io/component": "model"},
            "annotations": {"sidecar.istio.io/inject": "false", "eks.amazonaws.com/skip-containers": "x"},
        },
        serviceAccountName="sa",
    )
    tpl = build_deployment(md, SETTINGS)["spec"]["template"]
    labels = tpl["metadata"]["labels"]
    assert labels["team"] == "search" and labels["app.kubernetes.io/component"] == "model"
    assert {k: labels[k] for k in naming.child_labels(md)} == naming.child_labels(md)
    annotations = tpl["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/inject"] == "false"
    assert annotations["eks.amazonaws.com/skip-containers"] == "x"  # the user's choice wins
    assert naming.ROLLOUT_HASH_ANNOTATION in annotations
    # Ours win even if a colliding key got past the CRD (an older CRD, a direct render).
    assert pod_identity.pod_labels(md, {naming.SELECTOR_LABEL: "resnet"})[naming.SELECTOR_LABEL] == "resnet"


def test_model_size_limits_the_emptydir_and_is_requested_as_ephemeral_storage() -> None:
    tpl = template(model={"storageUri": "s3://models/resnet", "size": "20Gi"})
    assert volume(tpl, naming.MODEL_VOLUME)["emptyDir"] == {"sizeLimit": "20Gi"}
    requests = container(tpl, naming.SERVING_CONTAINER)["resources"]["requests"]
    assert requests["ephemeral-storage"] == "20Gi"
    assert "ephemeral-storage" not in (container(tpl, naming.SYNC_CONTAINER).get("resources") or {}).get(
        "requests", {}
    )


def test_an_explicit_ephemeral_storage_request_is_kept() -> None:
    tpl = template(
        model={"storageUri": "s3://models/resnet", "size": "20Gi"},
        resources={"requests": {"cpu": "1", "memory": "2Gi", "ephemeral-storage": "30Gi"}},
    )
    assert container(tpl, naming.SERVING_CONTAINER)["resources"]["requests"]["ephemeral-storage"] == "30Gi"
    assert volume(tpl, naming.MODEL_VOLUME)["emptyDir"] == {"sizeLimit": "20Gi"}


def test_an_integer_size_is_a_quantity() -> None:
    assert make(model={"storageUri": "s3://models/resnet", "size": 1000000}).spec.model.size == "1000000"


@pytest.mark.parametrize(
    "spec",
    [
        {"serviceAccountName": "Bad_Name"},
        {"imagePullSecrets": [{"name": ""}]},
        {"model": {"storageUri": "s3://m/r", "size": "lots"}},
        {"podMetadata": {"labels": {"team": "a b"}}},
    ],
)
def test_the_models_refuse_what_the_crd_refuses(spec: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        make(**spec)


def test_the_model_sync_pod_of_a_cache_has_the_identity_too() -> None:
    from modelserve.builders.model_cache import build_model_sync_deployment

    md = make(
        model={"storageUri": "s3://models/resnet", "cache": {"size": "50Gi"}},
        serviceAccountName="resnet-reader",
        imagePullSecrets=[{"name": "regcred"}],
        podMetadata={"labels": {"team": "search"}, "annotations": {"example.com/owner": "search"}},
    )
    manifest = build_model_sync_deployment(md, SETTINGS)
    assert manifest is not None
    tpl = manifest["spec"]["template"]
    assert tpl["spec"]["serviceAccountName"] == "resnet-reader"
    assert tpl["spec"]["automountServiceAccountToken"] is False
    assert tpl["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert tpl["metadata"]["labels"]["team"] == "search"
    assert set(manifest["spec"]["selector"]["matchLabels"].items()) <= set(tpl["metadata"]["labels"].items())
    # Its one container is the sync, which needs the cloud token: nothing is skipped.
    assert tpl["metadata"]["annotations"] == {"example.com/owner": "search"}
    # The serving pods of a cache mount the claim: no emptyDir to size, no token skip needed but kept.
    serving = build_deployment(md, SETTINGS)["spec"]["template"]
    assert serving["spec"]["serviceAccountName"] == "resnet-reader"
