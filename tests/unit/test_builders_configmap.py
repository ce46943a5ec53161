"""The `<name>-tfserving` ConfigMap."""

from __future__ import annotations

from typing import Any

import pytest

from modelserve import api, contract, naming
from modelserve.builders import tfserving_config
from modelserve.builders.configmap import build_config_map
from modelserve.settings import Settings

pytestmark = pytest.mark.unit


def make(**spec: Any) -> api.ModelDeployment:
    spec.setdefault("model", {"storageUri": "gs://models/resnet", "versionLabels": {"stable": 1}})
    return api.parse({"metadata": {"name": "resnet", "namespace": "ml", "uid": "u"}, "spec": spec})


def test_name_labels_owner_and_files_without_batching() -> None:
    md = make()
    cm = build_config_map(md, Settings())
    assert cm["apiVersion"] == "v1"
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"] == naming.child_metadata(md, "resnet-tfserving")
    assert cm["metadata"]["ownerReferences"][0]["controller"] is True
    assert cm["data"] == {
        contract.MODEL_CONFIG_FILE: tfserving_config.render_model_config(md),
        contract.MONITORING_CONFIG_FILE: tfserving_config.render_monitoring_config(),
    }
    assert 'key: "stable"' in cm["data"][contract.MODEL_CONFIG_FILE]
    # Updated in place: TF Serving polls the mounted file.
    assert "immutable" not in cm


def test_batching_file_only_with_batching() -> None:
    cm = build_config_map(make(serving={"batching": {"maxBatchSize": 8}}), Settings())
    assert set(cm["data"]) == {
        contract.MODEL_CONFIG_FILE,
        contract.MONITORING_CONFIG_FILE,
        contract.BATCHING_CONFIG_FILE,
    }
    assert cm["data"][contract.BATCHING_CONFIG_FILE].startswith("max_batch_size { value: 8 }\n")


def test_label_change_changes_only_the_model_config() -> None:
    a = build_config_map(make(), Settings())
    b = build_config_map(
        make(model={"storageUri": "gs://models/resnet", "versionLabels": {"stable": 2}}), Settings()
    )
    assert a["data"][contract.MODEL_CONFIG_FILE] != b["data"][contract.MODEL_CONFIG_FILE]
    assert a["data"][contract.MONITORING_CONFIG_FILE] == b["data"][contract.MONITORING_CONFIG_FILE]
    assert a["metadata"] == b["metadata"]
