"""The API server itself refuses bad ModelDeployments (there is no admission webhook).

Every case of invalid_specs.yaml is created against the real kube-apiserver with strict field
validation, as `kubectl apply` does, and must be refused with a message naming the field. Valid
specs must be accepted, with the schema's defaults applied by the server.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelserve import api

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).with_name("invalid_specs.yaml")
JSON = dict[str, Any]


# --- the corpus ------------------------------------------------------------------------------------


class _CorpusLoader(yaml.SafeLoader):
    """SafeLoader with the corpus' size tags (see the head of invalid_specs.yaml)."""


def _seq(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
    assert isinstance(node, yaml.SequenceNode)
    return loader.construct_sequence(node, deep=True)


def _str(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    prefix, char, length = _seq(loader, node)
    return str(prefix) + str(char) * (int(length) - len(str(prefix)))


def _list(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
    count, item = _seq(loader, node)
    return [copy.deepcopy(item) for _ in range(int(count))]


def _map(loader: yaml.SafeLoader, node: yaml.Node) -> JSON:
    count, prefix, value = _seq(loader, node)
    return {f"{prefix}{i}": value for i in range(int(count))}


def _longkey(loader: yaml.SafeLoader, node: yaml.Node) -> JSON:
    length, value = _seq(loader, node)
    return {"k" * int(length): value}


for _tag, _constructor in {"!str": _str, "!list": _list, "!map": _map, "!longkey": _longkey}.items():
    _CorpusLoader.add_constructor(_tag, _constructor)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def load_corpus() -> tuple[JSON, list[JSON]]:
    data = yaml.load(CORPUS.read_text(), Loader=_CorpusLoader)  # a SafeLoader subclass
    return data["base"], data["cases"]


BASE, CASES = load_corpus()


def invalid_object(case: JSON, index: int) -> JSON:
    base = copy.deepcopy(BASE)
    base["metadata"]["name"] = f"bad-{index}"
    return merge_patch(base, case["patch"])  # type: ignore[no-any-return]


def test_corpus_is_large_and_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 45
    assert len(set(ids)) == len(ids), "case ids must be unique"
    for case in CASES:
        assert set(case) == {"id", "patch", "expect"}, case["id"]
        assert case["expect"] and all(isinstance(e, str) for e in case["expect"]), case["id"]


# --- the cluster -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def objects(kube_api: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(kube_api)


@pytest.fixture(scope="module")
def shared_namespace(kube_api: Any) -> Iterator[str]:
    """One namespace for the whole module: refused creates leave nothing behind, and a namespace
    per case would make 100 cases cost 100 namespace lifecycles."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    name = f"t-validation-{uuid.uuid4().hex[:5]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def create(objects: Any, namespace: str, body: JSON, **kwargs: Any) -> JSON:
    result = objects.create_namespaced_custom_object(
        api.GROUP, api.VERSION, namespace, api.PLURAL, body, field_validation="Strict", **kwargs
    )
    return result  # type: ignore[no-any-return]


@pytest.mark.parametrize(("index", "case"), list(enumerate(CASES)), ids=[c["id"] for c in CASES])
def test_invalid_spec_is_refused(objects: Any, shared_namespace: str, index: int, case: JSON) -> None:
    from kubernetes.client.exceptions import ApiException

    body = invalid_object(case, index)
    try:
        create(objects, shared_namespace, body)
    except ApiException as error:
        # 422 Invalid for schema and CEL failures, 400 BadRequest for strict decoding errors.
        assert error.status in (400, 422), f"unexpected status {error.status}: {error.body}"
        message = json.loads(error.body or "{}")["message"]
        missing = [needle for needle in case["expect"] if needle not in message]
        assert not missing, f"message lacks {missing}:\n{message}"
        # A rule that fails to evaluate shows CEL's internals instead of a message (a duration()
        # of a value the pattern already refused did).
        for internal in ("type conversion error", "no such overload", "compilation failed"):
            assert internal not in message, f"CEL evaluation error shown to the user:\n{message}"
        return
    objects.delete_namespaced_custom_object(
        api.GROUP, api.VERSION, shared_namespace, api.PLURAL, body["metadata"]["name"]
    )
    pytest.fail(f"the API server accepted invalid case {case['id']}: {json.dumps(body)[:500]}")


# --- valid specs -----------------------------------------------------------------------------------

VALID: dict[str, JSON] = {
    "design-example": {
        "model": {
            "storageUri": "gs://models/resnet",
            "versionPolicy": {"latest": {"count": 2}},
            "versionLabels": {"stable": 1, "canary": 2},
        },
        "gpu": {"count": 1, "product": "NVIDIA-A100-SXM4-80GB"},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 10, "targetCPUUtilization": 70},
        "monitoring": {"enabled": True},
    },
    "minimal": {"model": {"storageUri": "s3://bucket-1/models/bert"}},
    "load-targets-and-scale-to-zero": {
        "model": {"storageUri": "gs://models/resnet"},
        "gpu": {"count": 1},
        "autoscaling": {
            "minReplicas": 0,
            "maxReplicas": 8,
            "idleWindow": "10m",
            "targetRequestsPerSecond": 12.5,
            "targetLatency": {"percentile": 95, "milliseconds": 250},
            "prometheus": [{"name": "queue", "query": "sum(q)", "target": 4, "targetType": "Value"}],
        },
    },
    "specific-versions-with-labels": {
        "model": {
            "storageUri": "pvc://models/bert",
            "versionPolicy": {"specific": {"versions": [1, 3]}},
            "versionLabels": {"stable": 1, "canary": 3},
        },
        "replicas": 3,
    },
    "all-versions": {"model": {"storageUri": "gs://models/resnet", "versionPolicy": {"all": {}}}},
    "presigned-zip-archive": {
        "model": {"storageUri": "https://bucket.example.com/m/RESNET.ZIP?X-Amz-Signature=abc&x=1.tar"},
        "monitoring": {"enabled": True, "interval": "1m30s", "scrapeTimeout": "500ms"},
    },
    "https-archive-with-everything": {
        "model": {
            "name": "resnet_v2.1",
            "storageUri": "https://example.com/models/resnet.tar.gz",
            "credentialsSecret": "archive-token",
            "size": "20Gi",
        },
        "serving": {
            "image": "registry.example.com/tfserving:2.16-gpu",
            "imagePullPolicy": "IfNotPresent",
            "batching": {"maxBatchSize": 64, "allowedBatchSizes": [8, 16, 64]},
            "warmup": True,
            "extraArgs": ["--tensorflow_intra_op_parallelism=4", "--grpc_max_threads=8"],
            "env": [
                {"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ],
        },
        "resources": {"requests": {"cpu": 2, "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
        "gpu": {"count": 2, "migProfile": "1g.10gb"},
        "scheduling": {
            "nodeSelector": {"pool": "inference"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {"anythingTheServerChecksLater": True}},
            "priorityClassName": "high-priority",
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname"}],
        },
        "monitoring": {"enabled": True, "interval": "15s", "scrapeTimeout": "15s", "labels": {"team": "ml"}},
        "service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "internal"}},
        "suspend": True,
        "serviceAccountName": "resnet-reader",
        "imagePullSecrets": [{"name": "regcred"}],
        "podMetadata": {
            "labels": {"team": "ml", "app.kubernetes.io/component": "model"},
            "annotations": {"sidecar.istio.io/inject": "false"},
        },
    },
}


@pytest.mark.parametrize("case", list(VALID), ids=list(VALID))
def test_valid_spec_is_accepted(objects: Any, shared_namespace: str, case: str) -> None:
    body = {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": case}, "spec": VALID[case]}
    created = create(objects, shared_namespace, body)
    # What the server stores (with its defaults) must parse into the models the operator uses.
    md = api.parse(created)
    assert md.name == case


def test_server_applies_schema_defaults(objects: Any, shared_namespace: str) -> None:
    body = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": "defaults"},
        "spec": {
            "model": {"storageUri": "gs://models/resnet"},
            "gpu": {"count": 1},
            # A GPU model must name its target (a CPU default is refused for it).
            "autoscaling": {"maxReplicas": 3, "targetRequestsPerSecond": 10},
            "serving": {"batching": {"maxBatchSize": 16}},
        },
    }
    spec = create(objects, shared_namespace, body)["spec"]
    # No server default for the policy: see test_switching_from_the_default_policy_is_accepted.
    assert "versionPolicy" not in spec["model"]
    assert spec["gpu"]["resourceName"] == "nvidia.com/gpu"
    assert spec["autoscaling"]["minReplicas"] == 1
    assert spec["monitoring"] == {"enabled": False, "interval": "30s", "scrapeTimeout": "10s"}
    assert spec["service"] == {"type": "ClusterIP"}
    assert spec["suspend"] is False
    assert spec["serving"]["warmup"] is False
    assert spec["serving"]["batching"] == {
        "maxBatchSize": 16,
        "batchTimeoutMicros": 1000,
        "maxEnqueuedBatches": 100,
        "padVariableLengthInputs": False,
    }
    assert "replicas" not in spec  # no default: it would collide with autoscaling


def test_switching_from_the_default_policy_is_accepted(objects: Any, shared_namespace: str) -> None:
    """A stored default `latest` would stay beside the `specific` of a later apply and trip the
    exactly-one rule (found by the kill-round tests, which re-apply specs)."""
    body = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": "policy-switch"},
        "spec": {"model": {"storageUri": "gs://models/resnet"}},
    }
    create(objects, shared_namespace, body)
    assert api.parse(body).spec.model.version_policy.latest == api.LatestPolicy(count=1)
    for policy in ({"specific": {"versions": [1, 2]}}, {"all": {}}, {"latest": {"count": 3}}):
        body["spec"] = {"model": {"storageUri": "gs://models/resnet", "versionPolicy": policy}}
        applied = objects.patch_namespaced_custom_object(
            api.GROUP,
            api.VERSION,
            shared_namespace,
            api.PLURAL,
            "policy-switch",
            body,
            field_manager="modelserve-tests",
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        assert applied["spec"]["model"]["versionPolicy"] == policy


def test_name_of_exactly_53_characters_is_accepted(objects: Any, shared_namespace: str) -> None:
    name = "m" * api.MAX_NAME_LENGTH
    body = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": name},
        "spec": VALID["minimal"],
    }
    assert create(objects, shared_namespace, body)["metadata"]["name"] == name


def test_scale_subresource_obeys_replicas_xor_autoscaling(objects: Any, shared_namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException

    fixed = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": "fixed"},
        "spec": VALID["minimal"],
    }
    create(objects, shared_namespace, fixed)
    scale = {"spec": {"replicas": 4}}
    objects.patch_namespaced_custom_object_scale(
        api.GROUP, api.VERSION, shared_namespace, api.PLURAL, "fixed", scale
    )
    stored = objects.get_namespaced_custom_object(
        api.GROUP, api.VERSION, shared_namespace, api.PLURAL, "fixed"
    )
    assert stored["spec"]["replicas"] == 4

    auto = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": "auto"},
        "spec": {**VALID["minimal"], "autoscaling": {"maxReplicas": 3}},
    }
    create(objects, shared_namespace, auto)
    with pytest.raises(ApiException) as error:
        objects.patch_namespaced_custom_object_scale(
            api.GROUP, api.VERSION, shared_namespace, api.PLURAL, "auto", scale
        )
    assert error.value.status == 422
    assert (
        "set spec.replicas or spec.autoscaling, not both" in json.loads(error.value.body or "{}")["message"]
    )
