"""`fetch` from S3 against a genuine S3 implementation on loopback: rclone's gofakes3, built from
its Go module, which checks AWS Signature V4 (so wrong credentials are really refused)."""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path
from typing import Any

import pytest
from serving_kit import BUCKET, CuttingProxy, S3Store, call_saved_model, s3_creds

from modelserve import contract

pytestmark = pytest.mark.unit


def test_fetches_a_real_saved_model_that_tensorflow_loads_and_runs(
    s3: S3Store, saved_model: Path, run_fetch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    s3.upload(saved_model, "affine")
    caplog.set_level(logging.INFO)
    result = run_fetch(f"s3://{BUCKET}/affine", s3_creds(s3))
    assert result.code == contract.EXIT_OK, result.stderr
    assert sorted(p.name for p in result.model.iterdir()) == ["1", "2"]
    assert call_saved_model(result.model / "1", [1.0, 2.0]) == [3.0, 5.0]
    assert call_saved_model(result.model / "2", [1.0, 2.0]) == [3.0, 6.0]
    # Only the published model is left: no staging directories.
    assert [p.name for p in result.model_root.iterdir()] == ["m"]
    assert any("fetched s3://models/affine" in r.getMessage() for r in caplog.records)


def test_path_style_addressing_is_the_default_with_a_custom_endpoint(
    s3: S3Store, big_model: Path, run_fetch: Any
) -> None:
    # gofakes3 answers path-style only when it is not told a host-bucket base: a virtual-hosted
    # request to 127.0.0.1 would name no bucket, so success here proves path-style was used.
    s3.upload(big_model, "path-style")
    result = run_fetch(f"s3://{BUCKET}/path-style", s3_creds(s3))
    assert result.code == 0, result.stderr
    explicit = run_fetch(f"s3://{BUCKET}/path-style", s3_creds(s3, AWS_S3_ADDRESSING_STYLE="path"))
    assert explicit.code == 0, explicit.stderr


def test_wrong_secret_is_refused_with_a_one_line_reason(s3: S3Store, big_model: Path, run_fetch: Any) -> None:
    s3.upload(big_model, "secret")
    result = run_fetch(f"s3://{BUCKET}/secret", s3_creds(s3, AWS_SECRET_ACCESS_KEY="wrong"))
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "access denied" in result.termination
    assert result.termination.count("\n") == 1 and result.termination.endswith("\n")
    assert "attempt" not in result.stderr  # permanent: not retried
    assert not (result.model_root / "m").exists()


def test_unknown_access_key_is_refused(s3: S3Store, big_model: Path, run_fetch: Any) -> None:
    s3.upload(big_model, "key")
    result = run_fetch(f"s3://{BUCKET}/key", s3_creds(s3, AWS_ACCESS_KEY_ID="nobody"))
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "access denied" in result.termination


def test_missing_prefix_fails_as_not_found(s3: S3Store, run_fetch: Any) -> None:
    result = run_fetch(f"s3://{BUCKET}/does-not-exist", s3_creds(s3))
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "s3://models/does-not-exist" in result.termination
    assert "no objects found" in result.termination or "not found" in result.termination


def test_missing_bucket_fails_as_not_found(s3: S3Store, run_fetch: Any) -> None:
    result = run_fetch("s3://no-such-bucket/model", s3_creds(s3))
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "not found" in result.termination or "no objects found" in result.termination


def test_layout_without_version_folders_is_refused_before_downloading(
    s3: S3Store, tmp_path: Path, run_fetch: Any
) -> None:
    flat = tmp_path / "flat"
    (flat / "variables").mkdir(parents=True)
    (flat / "saved_model.pb").write_bytes(b"graph")
    (flat / "variables" / "variables.index").write_bytes(b"i")
    s3.upload(flat, "flat")
    result = run_fetch(f"s3://{BUCKET}/flat", s3_creds(s3))
    assert result.code == contract.EXIT_BAD_LAYOUT
    assert "no numeric version folders" in result.termination


def test_interrupted_download_is_retried_and_completes(s3: S3Store, big_model: Path, run_fetch: Any) -> None:
    s3.upload(big_model, "interrupted")
    proxy = CuttingProxy(s3.endpoint, cut_after=1 << 20)
    try:
        result = run_fetch(f"s3://{BUCKET}/interrupted", s3_creds(s3, AWS_ENDPOINT_URL=proxy.endpoint))
    finally:
        proxy.close()
    assert result.code == 0, result.stderr
    assert proxy.cuts == 1
    blob = "1/variables/variables.data-00000-of-00001"
    assert (result.model / blob).read_bytes() == (big_model / blob).read_bytes()


def test_archive_object_in_a_bucket_is_extracted(
    s3: S3Store, saved_model: Path, tmp_path: Path, run_fetch: Any
) -> None:
    archive = tmp_path / "affine.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(saved_model, arcname="affine")
    s3.upload(archive, "archives/affine.tar.gz")
    result = run_fetch(f"s3://{BUCKET}/archives/affine.tar.gz", s3_creds(s3))
    assert result.code == 0, result.stderr
    assert call_saved_model(result.model / "1", [0.0]) == [1.0]
