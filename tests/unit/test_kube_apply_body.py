"""The server-side apply body: JSON the API server's YAML decoder accepts for any string."""

from __future__ import annotations

import json

import pytest
import yaml

from modelserve.kube import apply_body

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "😀 emoji beyond the BMP",
        "𤪽\U000a8e7c mixed ¾ é \xa0",
        "a literal backslash-u: \\ud83d\\ude00 stays text",
        "\\\\😀 escaped backslash before an emoji",
        "del \x7f and controls \x01\t\n",
        "line separators \u2028 \u2029 \x85 and a BOM \ufeff",
    ],
)
def test_every_string_survives_a_yaml_decoder(value: str) -> None:
    manifest = {"metadata": {"annotations": {"example.com/note": value}}, "data": [value]}
    body = apply_body(manifest)
    assert body.isascii()
    assert "\\ud8" not in body.decode() or "\\\\ud8" in body.decode()  # no surrogate escapes left
    assert yaml.safe_load(body.decode()) == manifest
    assert "\x7f" not in body.decode()


def test_plain_manifest_is_compact_json() -> None:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    assert json.loads(apply_body(manifest)) == manifest
