"""GPU helpers."""

from __future__ import annotations

from typing import Any

import pytest

from modelserve import api
from modelserve.builders import gpu

pytestmark = pytest.mark.unit


def make(gpu_spec: dict[str, Any] | None) -> api.ModelDeployment:
    spec: dict[str, Any] = {"model": {"storageUri": "gs://models/resnet"}}
    if gpu_spec is not None:
        spec["gpu"] = gpu_spec
    return api.parse({"metadata": {"name": "resnet"}, "spec": spec})


def test_no_gpu() -> None:
    md = make(None)
    assert gpu.gpu_resources(md) == {}
    assert gpu.gpu_node_selector(md) == {}
    assert gpu.gpu_tolerations(md) == []
    assert gpu.gpu_summary(md) is None


def test_whole_gpus_of_a_product() -> None:
    md = make({"count": 1, "product": "NVIDIA-A100-SXM4-80GB"})
    assert gpu.gpu_resources(md) == {"nvidia.com/gpu": "1"}
    assert gpu.gpu_node_selector(md) == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert gpu.gpu_tolerations(md) == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert gpu.gpu_summary(md) == "1x NVIDIA-A100-SXM4-80GB"


def test_any_product() -> None:
    md = make({"count": 4})
    assert gpu.gpu_resources(md) == {"nvidia.com/gpu": "4"}
    assert gpu.gpu_node_selector(md) == {}
    assert gpu.gpu_summary(md) == "4x nvidia.com/gpu"


def test_custom_resource_name() -> None:
    md = make({"count": 2, "resourceName": "amd.com/gpu"})
    assert gpu.gpu_resources(md) == {"amd.com/gpu": "2"}
    assert gpu.gpu_summary(md) == "2x amd.com/gpu"


def test_mig_profile() -> None:
    md = make({"count": 2, "migProfile": "1g.10gb"})
    assert gpu.gpu_resources(md) == {"nvidia.com/mig-1g.10gb": "2"}
    assert gpu.gpu_summary(md) == "2x nvidia.com/mig-1g.10gb"
    assert gpu.gpu_tolerations(md)[0]["key"] == "nvidia.com/gpu"
    with_product = make({"count": 1, "migProfile": "3g.40gb", "product": "NVIDIA-A100-SXM4-80GB"})
    assert gpu.gpu_summary(with_product) == "1x nvidia.com/mig-3g.40gb on NVIDIA-A100-SXM4-80GB"
    assert gpu.gpu_node_selector(with_product) == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}


def test_summary_fits_the_status_field() -> None:
    md = make({"count": 16, "product": "X" * 63, "migProfile": "7g.80gb"})
    summary = gpu.gpu_summary(md)
    assert summary is not None
    api.ModelDeploymentStatus(gpu=summary)  # within the declared maxLength
