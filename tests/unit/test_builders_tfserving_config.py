"""TF Serving config files: exact text, escaping, base paths, and parsing by TF Serving's own protos."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import text_encoding, text_format
from tensorflow_serving.config import model_server_config_pb2

from modelserve import api, contract
from modelserve.builders import model_source
from modelserve.builders import tfserving_config as tfc

pytestmark = pytest.mark.unit


def make(model: dict[str, Any], name: str = "resnet", **spec: Any) -> api.ModelDeployment:
    return api.parse({"metadata": {"name": name, "namespace": "ml"}, "spec": {"model": model, **spec}})


def test_latest_policy_with_labels_renders_exact_text_with_sorted_labels() -> None:
    md = make(
        {
            "storageUri": "gs://models/resnet",
            "versionPolicy": {"latest": {"count": 2}},
            "versionLabels": {"stable": 1, "canary": 2},
        }
    )
    assert tfc.render_model_config(md) == (
        "model_config_list {\n"
        "  config {\n"
        '    name: "resnet"\n'
        '    base_path: "/models/resnet"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy {\n"
        "      latest {\n"
        "        num_versions: 2\n"
        "      }\n"
        "    }\n"
        "    version_labels {\n"
        '      key: "canary"\n'
        "      value: 2\n"
        "    }\n"
        "    version_labels {\n"
        '      key: "stable"\n'
        "      value: 1\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


def test_all_policy_and_explicit_model_name() -> None:
    md = make({"name": "my_model.v2", "storageUri": "s3://bucket/m", "versionPolicy": {"all": {}}})
    assert tfc.render_model_config(md) == (
        "model_config_list {\n"
        "  config {\n"
        '    name: "my_model.v2"\n'
        '    base_path: "/models/my_model.v2"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy {\n"
        "      all {}\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


def test_specific_policy_versions_sorted_and_deduplicated() -> None:
    md = make(
        {"storageUri": "https://example.com/m.tar.gz", "versionPolicy": {"specific": {"versions": [3, 1, 3]}}}
    )
    text = tfc.render_model_config(md)
    assert "      specific {\n        versions: 1\n        versions: 3\n      }\n" in text
    assert tfc.served_versions_summary(md) == "1,3"


def test_default_policy_is_latest_one() -> None:
    md = make({"storageUri": "gs://models/resnet"})
    assert "latest {\n        num_versions: 1\n" in tfc.render_model_config(md)
    assert tfc.served_versions_summary(md) == "latest 1"
    assert "version_labels" not in tfc.render_model_config(md)


@pytest.mark.parametrize(
    ("policy", "summary"),
    [
        ({"latest": {"count": 2}}, "latest 2"),
        ({"all": {}}, "all"),
        ({"specific": {"versions": [2, 1]}}, "1,2"),
    ],
)
def test_served_versions_summary(policy: dict[str, Any], summary: str) -> None:
    assert (
        tfc.served_versions_summary(make({"storageUri": "gs://bucket/m", "versionPolicy": policy})) == summary
    )


def test_rendering_is_deterministic_whatever_the_label_order() -> None:
    a = make(
        {
            "storageUri": "gs://bucket/m",
            "versionPolicy": {"all": {}},
            "versionLabels": {"a": 1, "b": 2, "c": 3},
        }
    )
    b = make(
        {
            "storageUri": "gs://bucket/m",
            "versionPolicy": {"all": {}},
            "versionLabels": {"c": 3, "b": 2, "a": 1},
        }
    )
    assert tfc.render_model_config(a) == tfc.render_model_config(b)


@pytest.mark.parametrize(
    ("uri", "claim", "path"),
    [
        ("pvc://models-claim/resnet/v1", "models-claim", "/mnt/models/resnet/v1"),
        ("pvc://models-claim/resnet/", "models-claim", "/mnt/models/resnet"),
        ("pvc://models-claim//a/./b", "models-claim", "/mnt/models/a/b"),
        ("pvc://models-claim", "models-claim", "/mnt/models"),
        ("pvc://models-claim/", "models-claim", "/mnt/models"),
    ],
)
def test_pvc_base_path_is_inside_the_mounted_claim(uri: str, claim: str, path: str) -> None:
    md = make({"storageUri": uri})
    assert model_source.pvc_source(md) == model_source.PvcSource(claim=claim, local_path=path)
    assert tfc.base_path(md) == path
    assert path.startswith(contract.PVC_MOUNT_DIR)
    assert f'base_path: "{path}"' in tfc.render_model_config(md)


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("pvc://claim/../etc", "/mnt/models/etc"),
        ("pvc://claim/a/../../etc", "/mnt/models/etc"),
        ("pvc://claim/..", "/mnt/models"),
        ("pvc://claim/a/b/../c", "/mnt/models/a/c"),
    ],
)
def test_pvc_path_never_leaves_the_volume(uri: str, path: str) -> None:
    assert tfc.base_path(make({"storageUri": uri})) == path


def test_fetched_uris_have_no_pvc_source() -> None:
    assert model_source.pvc_source(make({"storageUri": "gs://bucket/m"})) is None
    assert tfc.base_path(make({"storageUri": "gs://bucket/m"}, name="x")) == f"{contract.MODEL_ROOT}/x"


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("plain/path", '"plain/path"'),
        ('a"b', '"a\\"b"'),
        ("back\\slash", '"back\\\\slash"'),
        ("it's", '"it\\\'s"'),
        ("tab\tnew\nline\r", '"tab\\tnew\\nline\\r"'),
        ("\x01", '"\\001"'),
        ("\x7f", '"\\177"'),
        ("é/模型", '"é/模型"'),
    ],
)
def test_quote_escapes_like_protobuf_text_format(raw: str, quoted: str) -> None:
    assert tfc.quote(raw) == quoted
    assert tfc.quote(raw) == '"' + text_encoding.CEscape(raw, as_utf8=True) + '"'


def test_hostile_pvc_path_round_trips_through_tf_serving_proto() -> None:
    md = make({"storageUri": "pvc://claim/we\"ird\\dir/é\x01'"})
    parsed = text_format.Parse(tfc.render_model_config(md), model_server_config_pb2.ModelServerConfig())
    assert parsed.model_config_list.config[0].base_path == "/mnt/models/we\"ird\\dir/é\x01'"


def test_model_config_parses_as_tf_servings_model_server_config() -> None:
    md = make(
        {
            "storageUri": "gs://models/resnet",
            "versionPolicy": {"specific": {"versions": [1, 2]}},
            "versionLabels": {"stable": 1, "canary": 2},
        }
    )
    parsed = text_format.Parse(tfc.render_model_config(md), model_server_config_pb2.ModelServerConfig())
    (config,) = parsed.model_config_list.config
    assert config.name == "resnet"
    assert config.base_path == "/models/resnet"
    assert config.model_platform == "tensorflow"
    assert config.model_version_policy.WhichOneof("policy_choice") == "specific"
    assert list(config.model_version_policy.specific.versions) == [1, 2]
    assert dict(config.version_labels) == {"stable": 1, "canary": 2}

    for policy, choice in (({"latest": {"count": 3}}, "latest"), ({"all": {}}, "all")):
        md = make({"storageUri": "gs://bucket/m", "versionPolicy": policy})
        parsed = text_format.Parse(tfc.render_model_config(md), model_server_config_pb2.ModelServerConfig())
        assert parsed.model_config_list.config[0].model_version_policy.WhichOneof("policy_choice") == choice
    assert parsed.model_config_list.config[0].model_version_policy.HasField("all")


def test_monitoring_config_exact() -> None:
    assert tfc.render_monitoring_config() == (
        'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n'
    )


def test_batching_config_uses_wrapper_messages_and_plain_repeated_fields() -> None:
    batching = api.Batching.model_validate(
        {
            "maxBatchSize": 32,
            "batchTimeoutMicros": 500,
            "maxEnqueuedBatches": 8,
            "numBatchThreads": 4,
            "allowedBatchSizes": [8, 16, 32],
            "padVariableLengthInputs": True,
        }
    )
    assert tfc.render_batching_config(batching) == (
        "max_batch_size { value: 32 }\n"
        "batch_timeout_micros { value: 500 }\n"
        "max_enqueued_batches { value: 8 }\n"
        "num_batch_threads { value: 4 }\n"
        "allowed_batch_sizes: 8\n"
        "allowed_batch_sizes: 16\n"
        "allowed_batch_sizes: 32\n"
        "pad_variable_length_inputs: true\n"
    )


def test_batching_defaults_leave_thread_count_to_tf_serving() -> None:
    assert tfc.render_batching_config(api.Batching()) == (
        "max_batch_size { value: 32 }\n"
        "batch_timeout_micros { value: 1000 }\n"
        "max_enqueued_batches { value: 100 }\n"
        "pad_variable_length_inputs: false\n"
    )
