"""`fetch` from GCS against fake-gcs-server (github.com/fsouza/fake-gcs-server, built from its Go
module): an emulator of the GCS JSON API. It does not check credentials, so wrong-credential
behaviour for GCS is not covered here (S3 and HTTP cover the code path that reports it)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
from serving_kit import BUCKET, CuttingProxy, GcsStore, call_saved_model, gcs_creds

from modelserve import contract

pytestmark = pytest.mark.unit


def test_fetches_a_real_saved_model_that_tensorflow_loads_and_runs(
    gcs: GcsStore, saved_model: Path, run_fetch: Any
) -> None:
    gcs.upload(saved_model, "affine")
    result = run_fetch(f"gs://{BUCKET}/affine", gcs_creds(gcs))
    assert result.code == contract.EXIT_OK, result.stderr
    assert sorted(p.name for p in result.model.iterdir()) == ["1", "2"]
    assert call_saved_model(result.model / "2", [2.0]) == [6.0]


def test_missing_prefix_fails_as_not_found(gcs: GcsStore, run_fetch: Any) -> None:
    result = run_fetch(f"gs://{BUCKET}/nothing-here", gcs_creds(gcs))
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "gs://models/nothing-here" in result.termination


def test_missing_bucket_fails(gcs: GcsStore, run_fetch: Any) -> None:
    result = run_fetch("gs://no-such-bucket/m", gcs_creds(gcs))
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "gs://no-such-bucket/m" in result.termination


def test_version_folder_without_saved_model_is_refused(gcs: GcsStore, tmp_path: Path, run_fetch: Any) -> None:
    bad = tmp_path / "bad"
    (bad / "1" / "variables").mkdir(parents=True)
    (bad / "1" / "variables" / "variables.index").write_bytes(b"x")
    (bad / "2").mkdir()
    (bad / "2" / "saved_model.pb").write_bytes(b"x")
    gcs.upload(bad, "no-graph")
    result = run_fetch(f"gs://{BUCKET}/no-graph", gcs_creds(gcs))
    assert result.code == contract.EXIT_BAD_LAYOUT
    assert "version folder(s) 1 hold no saved_model.pb" in result.termination


def test_interrupted_download_is_retried_and_completes(
    gcs: GcsStore, big_model: Path, run_fetch: Any
) -> None:
    gcs.upload(big_model, "interrupted")
    proxy = CuttingProxy(gcs.endpoint, cut_after=1 << 20)
    try:
        result = run_fetch(f"gs://{BUCKET}/interrupted", {"STORAGE_EMULATOR_HOST": proxy.endpoint})
    finally:
        proxy.close()
    assert result.code == 0, result.stderr
    assert proxy.cuts == 1
    blob = "1/variables/variables.data-00000-of-00001"
    assert (result.model / blob).read_bytes() == (big_model / blob).read_bytes()


def test_corrupt_zip_object_fails_as_corrupt(
    gcs: GcsStore, saved_model: Path, tmp_path: Path, run_fetch: Any
) -> None:
    archive = tmp_path / "m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in saved_model.rglob("*"):
            zf.write(path, path.relative_to(saved_model).as_posix())
    data = bytearray(archive.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64  # damage member data, keep the directory
    archive.write_bytes(bytes(data))
    gcs.upload(archive, "zips/m.zip")
    result = run_fetch(f"gs://{BUCKET}/zips/m.zip", gcs_creds(gcs))
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "corrupt archive" in result.termination
