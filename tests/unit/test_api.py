"""The pydantic models accept what users write and refuse what they must not.

CEL rules (cross-field constraints) are enforced by the API server, not by pydantic; they are
covered by tests/integration/test_validation.py. Here: types, bounds, patterns, unknown fields.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelserve import api

pytestmark = pytest.mark.unit

# DESIGN.md section 1, verbatim.
DESIGN_EXAMPLE = """
apiVersion: modelserve.dev/v1alpha1
kind: ModelDeployment
metadata: {name: resnet, namespace: ml}
spec:
  model:
    storageUri: gs://models/resnet          # holds numbered version folders: 1/, 2/, ...
    versionPolicy: {latest: {count: 2}}
    versionLabels: {stable: 1, canary: 2}
  gpu: {count: 1, product: NVIDIA-A100-SXM4-80GB}
  autoscaling: {minReplicas: 2, maxReplicas: 10, targetCPUUtilization: 70}
  monitoring: {enabled: true}
"""


def body(spec: dict[str, Any], name: str = "resnet") -> dict[str, Any]:
    return {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": name}, "spec": spec}


def test_design_example_parses() -> None:
    md = api.parse(yaml.safe_load(DESIGN_EXAMPLE))
    assert md.name == "resnet" and md.namespace == "ml"
    assert md.spec.model.version_policy.latest == api.LatestPolicy(count=2)
    assert md.spec.model.version_labels == {"stable": 1, "canary": 2}
    assert md.spec.gpu is not None and md.spec.gpu.resource_name == "nvidia.com/gpu"
    assert md.spec.autoscaling is not None and md.spec.autoscaling.target_cpu_utilization == 70
    assert md.spec.monitoring.enabled and md.spec.monitoring.interval == "30s"
    assert md.model_name == "resnet"


def test_minimal_spec_gets_the_documented_defaults() -> None:
    md = api.parse(body({"model": {"storageUri": "s3://bucket-1/models/bert"}}))
    assert md.spec.model.version_policy == api.VersionPolicy(latest=api.LatestPolicy(count=1))
    assert md.spec.replicas is None and md.spec.autoscaling is None
    assert md.spec.service.type == api.ServiceType.CLUSTER_IP
    assert not md.spec.suspend and not md.spec.monitoring.enabled


@pytest.mark.parametrize(
    "spec",
    [
        {"model": {"storageUri": "pvc://models-claim/resnet", "versionPolicy": {"all": {}}}},
        {
            "model": {
                "storageUri": "https://example.com/models/resnet.tar.gz",
                "versionPolicy": {"specific": {"versions": [1, 3]}},
                "versionLabels": {"stable": 1, "canary": 3},
            },
            "replicas": 3,
        },
        {
            "model": {"storageUri": "gs://models/resnet", "credentialsSecret": "gcs-reader"},
            "serving": {
                "batching": {"maxBatchSize": 64, "allowedBatchSizes": [8, 16, 64]},
                "extraArgs": ["--tensorflow_intra_op_parallelism=4"],
                "env": [{"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"}],
            },
            "resources": {"requests": {"cpu": 2, "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
            "scheduling": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]},
        },
    ],
    ids=["pvc-all-versions", "https-specific-labels", "batching-env-resources"],
)
def test_valid_specs_parse(spec: dict[str, Any]) -> None:
    api.parse(body(spec))


def test_integer_quantities_become_strings() -> None:
    # The CRD declares quantities int-or-string, so the API server may hand us `cpu: 2`.
    md = api.parse(
        body({"model": {"storageUri": "gs://models/resnet"}, "resources": {"requests": {"cpu": 2}}})
    )
    assert md.spec.resources is not None and md.spec.resources.requests == {"cpu": "2"}
    with pytest.raises(ValidationError):
        api.parse(
            body({"model": {"storageUri": "gs://models/r"}, "resources": {"limits": {"memory": "4GB"}}})
        )


@pytest.mark.parametrize(
    ("spec", "location"),
    [
        ({"model": {}}, ("spec", "model", "storageUri")),
        ({"model": {"storageUri": "ftp://models/resnet"}}, ("spec", "model", "storageUri")),
        ({"model": {"storageUri": "gs://models/resnet", "storageURI": "x"}}, ("spec", "model", "storageURI")),
        ({"model": {"storageUri": "gs://m/r", "versionPolicy": {"latest": {"count": 0}}}}, ("count",)),
        ({"model": {"storageUri": "gs://models/r"}, "replicas": -1}, ("spec", "replicas")),
        ({"model": {"storageUri": "gs://models/r"}, "gpu": {"count": 17}}, ("spec", "gpu", "count")),
        ({"model": {"storageUri": "gs://models/r"}, "serving": {"extraArgs": ["-v"]}}, ("extraArgs", 0)),
        (
            {"model": {"storageUri": "gs://models/r"}, "service": {"type": "ExternalName"}},
            ("service", "type"),
        ),
        (
            {"model": {"storageUri": "gs://models/r"}, "resources": {"requests": {"cpu": "lots"}}},
            ("requests", "cpu"),
        ),
        (
            {"model": {"storageUri": "gs://models/r"}, "monitoring": {"interval": "30"}},
            ("monitoring", "interval"),
        ),
        (
            {"model": {"storageUri": "gs://models/r"}, "serving": {"batching": {"allowedBatchSizes": []}}},
            ("allowedBatchSizes",),
        ),
    ],
    ids=[
        "storage-uri-missing",
        "storage-uri-ftp",
        "unknown-field",
        "latest-count-zero",
        "negative-replicas",
        "too-many-gpus",
        "extra-arg-not-a-flag",
        "service-type-external-name",
        "bad-quantity",
        "interval-without-unit",
        "empty-allowed-batch-sizes",
    ],
)
def test_invalid_specs_are_refused(spec: dict[str, Any], location: tuple[str | int, ...]) -> None:
    with pytest.raises(ValidationError) as error:
        api.parse(body(spec))
    locations = [err["loc"] for err in error.value.errors()]
    assert any(loc[-len(location) :] == location for loc in locations), locations
