"""TF Serving config text checked with protobuf's own text-format parser.

- models.config: TF Serving's generated protos (tensorflow-serving-api). The image's reader
  (modelserve_serving.modelconfig) parses with the same protos, installed without TensorFlow; it
  must read every sample as TF Serving does and refuse what it cannot serve from.
- monitoring.config and batching.config: no Python protos ship for them, so
  modelserve_serving/proto/modelserve_tfserving_checks.proto restates those messages (same package,
  names, numbers and types) and is compiled with grpcio-tools' protoc; protobuf's parser then refuses
  unknown fields, wrong types and bad syntax exactly as for generated protos.
The operator's own renderer (operator/modelserve/builders/tfserving_config.py) is run through both.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import text_format

from modelserve import api
from modelserve.builders import tfserving_config as tfc
from modelserve_serving import modelconfig, protos
from modelserve_serving.modelconfig import ModelConfigError

pytestmark = pytest.mark.unit

SAMPLES = {
    "latest with labels": """
model_config_list {
  config {
    name: "resnet"
    base_path: "/models/resnet"
    model_platform: "tensorflow"
    model_version_policy { latest { num_versions: 2 } }
    version_labels { key: "canary" value: 2 }
    version_labels { key: "stable" value: 1 }
  }
}
""",
    "all, compact syntax": 'model_config_list: { config: { name: "m", base_path: "/models/m", '
    'model_platform: "tensorflow", model_version_policy: { all: {} } } }',
    "specific, comments and list syntax": """
# rendered by the operator
model_config_list {
  config {
    name: "bert_q8"  # model name
    base_path: "/mnt/models/team/bert"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: [3, 7] } }
  }
}
""",
    "default policy, escaped name": (
        r"""model_config_list { config { name: "a\"b\\c" base_path: '/models/x' } }"""
    ),
    "two models": """
model_config_list {
  config { name: "a" base_path: "/models/a" model_platform: "tensorflow" }
  config { name: "b" base_path: "/models/b" model_platform: "tensorflow"
           model_version_policy { latest {} } }
}
""",
}


def read_with_tf_serving(text: str) -> list[tuple[str, str, str, int, tuple[int, ...], dict[str, int]]]:
    """The fields the image relies on, as TF Serving's own protos read them."""
    out = []
    for config in protos.parse_model_config(text).model_config_list.config:
        policy = config.model_version_policy
        kind = policy.WhichOneof("policy_choice") or "latest"
        num = policy.latest.num_versions or 1 if kind == "latest" else 1
        versions = tuple(policy.specific.versions) if kind == "specific" else ()
        out.append((config.name, config.base_path, kind, num, versions, dict(config.version_labels)))
    return out


def read_with_image(text: str) -> list[tuple[str, str, str, int, tuple[int, ...], dict[str, int]]]:
    return [
        (m.name, m.base_path, m.policy.kind, m.policy.num_versions, m.policy.versions, m.labels)
        for m in modelconfig.parse_models(text)
    ]


@pytest.mark.parametrize("text", SAMPLES.values(), ids=SAMPLES.keys())
def test_samples_parse_with_tf_serving_protos_and_round_trip(text: str) -> None:
    message = protos.parse_model_config(text)
    assert message.model_config_list.config
    again = protos.parse_model_config(text_format.MessageToString(message))
    assert again == message


@pytest.mark.parametrize("text", SAMPLES.values(), ids=SAMPLES.keys())
def test_image_reader_agrees_with_tf_serving_protos(text: str) -> None:
    assert read_with_image(text) == read_with_tf_serving(text)


@pytest.mark.parametrize(
    "text",
    [
        'model_config_list { config { name: "m" base_pth: "/x" } }',  # unknown field
        'model_config_list { config { name: "m" } ',  # unbalanced
        'model_config_list { config { name: m" } }',  # broken string
        "model_config_list { config { model_version_policy { latest { num_versions: two } } } }",
    ],
)
def test_invalid_model_configs_are_refused_by_tf_serving_protos(text: str) -> None:
    with pytest.raises(text_format.ParseError):
        protos.parse_model_config(text)


@pytest.mark.parametrize(
    "text",
    [
        'model_config_list { config { name: "m" } ',
        'model_config_list { config { name: m" } }',
        "model_config_list { config { model_version_policy { latest { num_versions: two } } } }",
        'model_config_list { config { name: "m" model_version_policy { all {} latest {} } } }',
        'modelconfig_list { config { name: "m" } }',
        'model_config_list { config { base_path: "/models/m" } }',  # no name
        'model_config_list { config { name: "m" model_version_policy { specific {} } } }',
        "",  # no model_config_list
    ],
)
def test_invalid_model_configs_are_refused_by_the_image_reader(text: str) -> None:
    with pytest.raises(ModelConfigError):
        modelconfig.parse_models(text)


def make(model: dict[str, Any], **spec: Any) -> api.ModelDeployment:
    return api.parse({"metadata": {"name": "resnet", "namespace": "ml"}, "spec": {"model": model, **spec}})


OPERATOR_SPECS = {
    "latest 2 with labels": {
        "storageUri": "gs://models/resnet",
        "versionPolicy": {"latest": {"count": 2}},
        "versionLabels": {"stable": 1, "canary": 2},
    },
    "all": {"storageUri": "s3://models/m", "versionPolicy": {"all": {}}},
    "specific on a pvc": {
        "storageUri": "pvc://claim/team/m",
        "versionPolicy": {"specific": {"versions": [1, 3]}},
    },
    "default": {"storageUri": "https://example.com/m.tar.gz"},
}


@pytest.mark.parametrize("model", OPERATOR_SPECS.values(), ids=OPERATOR_SPECS.keys())
def test_operator_rendered_model_config_parses_both_ways(model: dict[str, Any]) -> None:
    text = tfc.render_model_config(make(model))
    assert read_with_image(text) == read_with_tf_serving(text)
    assert protos.parse_model_config(text_format.MessageToString(protos.parse_model_config(text))) == (
        protos.parse_model_config(text)
    )


def test_operator_rendered_monitoring_config_is_a_valid_monitoring_config() -> None:
    message = protos.parse_monitoring_config(tfc.render_monitoring_config())
    assert message.prometheus_config.enable is True
    assert message.prometheus_config.path == "/monitoring/prometheus/metrics"


@pytest.mark.parametrize(
    "batching",
    [
        {},
        {
            "maxBatchSize": 64,
            "batchTimeoutMicros": 500,
            "maxEnqueuedBatches": 10,
            "numBatchThreads": 4,
            "allowedBatchSizes": [8, 16, 64],
            "padVariableLengthInputs": True,
        },
    ],
    ids=["defaults", "everything"],
)
def test_operator_rendered_batching_config_is_valid_batching_parameters(batching: dict[str, Any]) -> None:
    md = make({"storageUri": "gs://models/m"}, serving={"batching": batching})
    assert md.spec.serving.batching is not None
    message = protos.parse_batching_parameters(tfc.render_batching_config(md.spec.serving.batching))
    assert message.max_batch_size.value == md.spec.serving.batching.max_batch_size
    assert list(message.allowed_batch_sizes) == (md.spec.serving.batching.allowed_batch_sizes or [])


@pytest.mark.parametrize(
    "text",
    [
        "prometheus_config { enabled: true }",  # misspelt field
        'prometheus_config { enable: "yes" }',  # wrong type
        "prometheus_config { path: 1 }",
        "prometheus { enable: true }",
    ],
)
def test_strict_monitoring_check_refuses_mistakes(text: str) -> None:
    with pytest.raises(text_format.ParseError):
        protos.parse_monitoring_config(text)


@pytest.mark.parametrize(
    "text",
    [
        "max_batch_size: 8",  # a wrapper message, not a scalar
        "max_batch_size { value: 8.5 }",
        "allowed_batch_sizes: [8, x]",
        "batch_timeout { value: 1 }",
    ],
)
def test_strict_batching_check_refuses_mistakes(text: str) -> None:
    with pytest.raises(text_format.ParseError):
        protos.parse_batching_parameters(text)
