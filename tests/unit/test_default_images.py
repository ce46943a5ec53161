"""The operator's default serving images are the ones `make image image-gpu` builds."""

from __future__ import annotations

import re

import pytest

import modelserve
from kit import REPO
from modelserve import settings

pytestmark = pytest.mark.unit


def test_default_images_follow_the_dockerfile_base_and_the_operator_version() -> None:
    dockerfile = (REPO / "serving-image" / "Dockerfile").read_text()
    match = re.search(r"^ARG BASE=tensorflow/serving:(\S+)$", dockerfile, re.MULTILINE)
    assert match, "serving-image/Dockerfile must pin its TensorFlow Serving base with ARG BASE"
    tag = f"{match.group(1)}-{modelserve.__version__}"
    assert f"ghcr.io/modelserve/serving:{tag}" == settings.DEFAULT_CPU_IMAGE
    assert f"ghcr.io/modelserve/serving:{tag}-gpu" == settings.DEFAULT_GPU_IMAGE


def test_chart_defaults_match_the_operator_defaults() -> None:
    import yaml

    values = yaml.safe_load((REPO / "charts" / "modelserve-operator" / "values.yaml").read_text())
    text = yaml.safe_dump(values)
    assert settings.DEFAULT_CPU_IMAGE in text and settings.DEFAULT_GPU_IMAGE in text
