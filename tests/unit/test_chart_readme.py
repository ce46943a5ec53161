"""Each chart's README.md is generated from its values.yaml, and is current."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from kit import REPO

pytestmark = pytest.mark.unit

SCRIPT = REPO / "hack" / "chart-readme.py"


def test_chart_readmes_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_every_value_is_in_the_readme_with_its_comment() -> None:
    spec = importlib.util.spec_from_file_location("chart_readme", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = {
        key: (default, text)
        for key, default, text in module.value_rows(
            "# a heading, not copied\n\n"
            'image:\n  # The image.\n  repository: r\n  tag: ""\n'
            "# Peers:\n# - {namespaceSelector: {}}\nfrom: []\nnested:\n  deeper:\n    x: 1\n"
        )
    }
    assert rows == {
        "image.repository": ('`"r"`', "The image."),
        "image.tag": ('`""`', ""),
        "from": ("`[]`", "Peers: - {namespaceSelector: {}}"),
        "nested.deeper.x": ("`1`", ""),
    }
    readme = (REPO / "charts" / "modelserve-operator" / "README.md").read_text()
    for key in ("metrics.bindAddress", "podSecurityContext.runAsUser", "prometheusRule.enabled"):
        assert f"| `{key}` |" in readme, key
