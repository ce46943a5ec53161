"""The `<name>-tfserving` ConfigMap: TF Serving's model, monitoring and batching config (pure)."""

from __future__ import annotations

from typing import Any

from modelserve import api, contract, naming
from modelserve.builders import tfserving_config
from modelserve.settings import Settings


def config_data(md: api.ModelDeployment) -> dict[str, str]:
    """The ConfigMap's files. The batching file exists only when batching is on."""
    data = {
        contract.MODEL_CONFIG_FILE: tfserving_config.render_model_config(md),
        contract.MONITORING_CONFIG_FILE: tfserving_config.render_monitoring_config(),
    }
    batching = md.spec.serving.batching
    if batching is not None:
        data[contract.BATCHING_CONFIG_FILE] = tfserving_config.render_batching_config(batching)
    return data


def build_config_map(md: api.ModelDeployment, settings: Settings) -> dict[str, Any]:
    """Not `immutable`: TF Serving polls the mounted model config, so it is updated in place."""
    del settings  # same signature as every builder
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": naming.child_metadata(md, naming.config_map_name(md)),
        "data": config_data(md),
    }
