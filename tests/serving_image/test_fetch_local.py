"""`fetch` for mounted volumes (`pvc://`, `file://`, absolute paths): validated in place, never
copied; plus the version policy check against a mounted model config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from serving_kit import write_files

from modelserve import contract

pytestmark = pytest.mark.unit

GOOD = {
    "1/saved_model.pb": b"g",
    "3/saved_model.pbtxt": b"g",
    "3/variables/variables.index": b"i",
    "README": b"ignored by TF Serving",
}


def test_pvc_uri_is_validated_in_the_mount_and_not_copied(tmp_path: Path, run_fetch: Any) -> None:
    mount = tmp_path / "mnt"
    write_files(mount / "team" / "resnet", GOOD)
    result = run_fetch("pvc://claim/team/resnet", args=("--pvc-mount-dir", str(mount)))
    assert result.code == 0, result.stderr
    assert not result.model_root.exists()


def test_pvc_path_that_does_not_exist(tmp_path: Path, run_fetch: Any) -> None:
    result = run_fetch("pvc://claim/nothing", args=("--pvc-mount-dir", str(tmp_path)))
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "does not exist (is the volume mounted?)" in result.termination


@pytest.mark.parametrize("prefix", ["", "file://"])
def test_local_path_layout_errors(tmp_path: Path, run_fetch: Any, prefix: str) -> None:
    write_files(tmp_path / "model", {"v1/saved_model.pb": b"g"})
    result = run_fetch(prefix + str(tmp_path / "model"))
    assert result.code == contract.EXIT_BAD_LAYOUT
    assert "no numeric version folders" in result.termination


def test_specific_policy_naming_a_missing_version_fails_early(tmp_path: Path, run_fetch: Any) -> None:
    write_files(tmp_path / "model", GOOD)
    config = """model_config_list { config { name: "m" base_path: "/models/m" model_platform: "tensorflow"
      model_version_policy { specific { versions: 1 versions: 2 } } } }"""
    result = run_fetch(str(tmp_path / "model"), config=config)
    assert result.code == contract.EXIT_BAD_LAYOUT
    assert "serves version(s) 2, but only 1, 3 exist" in result.termination


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("ftp://host/model", "unsupported scheme 'ftp'"),
        ("s3:///no-bucket", "names no bucket"),
        ("pvc://claim/../etc", "pvc://<claim>/<path inside the claim>"),
        ("relative/path", "unsupported scheme"),
    ],
)
def test_bad_uris_are_usage_errors(run_fetch: Any, uri: str, needle: str) -> None:
    result = run_fetch(uri)
    assert result.code == contract.EXIT_USAGE
    assert needle in result.termination


def test_checksum_on_a_directory_source_is_a_usage_error(tmp_path: Path, run_fetch: Any) -> None:
    write_files(tmp_path / "model", GOOD)
    result = run_fetch(str(tmp_path / "model"), sha256="a" * 64)
    assert result.code == contract.EXIT_USAGE
