"""`fetch` of HTTP(S) archives from a stdlib HTTP/1.1 server on loopback (Content-Length, optional
Authorization check, and responses it can cut short on purpose)."""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from serving_kit import ArchiveServer, call_saved_model

from modelserve import contract

pytestmark = pytest.mark.unit


def make_tar_gz(src: Path, dest: Path, arcname: str = "affine") -> Path:
    with tarfile.open(dest, "w:gz") as tf:
        tf.add(src, arcname=arcname)
    return dest


def make_zip(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.rglob("*")):
            zf.write(path, path.relative_to(src).as_posix())
    return dest


@pytest.fixture
def archives(tmp_path: Path, saved_model: Path, big_model: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    make_tar_gz(saved_model, root / "affine.tar.gz")
    make_zip(saved_model, root / "affine.zip")
    make_tar_gz(big_model, root / "big.tar.gz", arcname="big")
    data = (root / "affine.tar.gz").read_bytes()
    (root / "corrupt.tar.gz").write_bytes(data[: len(data) // 2] + b"\0" * 512)
    (root / "notanarchive.tar.gz").write_bytes(b"<html>login page</html>")
    flat = io.BytesIO()
    with tarfile.open(fileobj=flat, mode="w:gz") as tf:
        info = tarfile.TarInfo("saved_model.pb")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"graph"))
    (root / "flat.tar.gz").write_bytes(flat.getvalue())
    return root


def test_tar_gz_with_wrapper_folder_is_fetched_and_runs(archives: Path, run_fetch: Any) -> None:
    with ArchiveServer(archives).running() as server:
        result = run_fetch(f"{server.endpoint}/affine.tar.gz")
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in result.model.iterdir()) == ["1", "2"]
    assert call_saved_model(result.model / "1", [10.0]) == [21.0]


def test_zip_with_matching_sha256_is_fetched(archives: Path, run_fetch: Any) -> None:
    digest = hashlib.sha256((archives / "affine.zip").read_bytes()).hexdigest()
    with ArchiveServer(archives).running() as server:
        result = run_fetch(f"{server.endpoint}/affine.zip", sha256=digest)
    assert result.code == 0, result.stderr
    assert call_saved_model(result.model / "2", [1.0]) == [3.0]


def test_sha256_mismatch_fails_without_publishing(archives: Path, run_fetch: Any) -> None:
    with ArchiveServer(archives).running() as server:
        result = run_fetch(f"{server.endpoint}/affine.zip", sha256="0" * 64)
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "SHA-256 mismatch" in result.termination
    assert list(result.model_root.iterdir()) == []


def test_required_authorization_header_is_sent(archives: Path, run_fetch: Any) -> None:
    with ArchiveServer(archives, authorization="Bearer good").running() as server:
        ok = run_fetch(f"{server.endpoint}/affine.tar.gz", {"HTTP_AUTHORIZATION": "Bearer good\n"})
        denied = run_fetch(f"{server.endpoint}/affine.tar.gz", {"HTTP_AUTHORIZATION": "Bearer bad"})
    assert ok.code == 0, ok.stderr
    assert denied.code == contract.EXIT_FETCH_FAILED
    assert "access denied (HTTP 401)" in denied.termination


def test_missing_archive_is_not_retried(archives: Path, run_fetch: Any) -> None:
    with ArchiveServer(archives).running() as server:
        result = run_fetch(f"{server.endpoint}/nope.tar.gz")
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "not found (HTTP 404)" in result.termination
    assert server.requests == ["/nope.tar.gz"]


def test_server_errors_are_retried_then_reported(archives: Path, run_fetch: Any) -> None:
    server = ArchiveServer(archives, status_override={"/affine.tar.gz": 503})
    with server.running():
        result = run_fetch(f"{server.endpoint}/affine.tar.gz", args=("--attempts", "3"))
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "HTTP 503" in result.termination
    assert len(server.requests) == 3


@pytest.mark.parametrize("name", ["corrupt.tar.gz", "notanarchive.tar.gz"])
def test_corrupt_archive_fails_cleanly(archives: Path, run_fetch: Any, name: str) -> None:
    with ArchiveServer(archives).running() as server:
        result = run_fetch(f"{server.endpoint}/{name}")
    assert result.code == contract.EXIT_FETCH_FAILED
    assert "corrupt archive" in result.termination
    assert len(server.requests) == 1  # a corrupt archive stays corrupt: no retry
    assert list(result.model_root.iterdir()) == []  # staging removed


def test_archive_without_version_folders_is_a_layout_error(archives: Path, run_fetch: Any) -> None:
    with ArchiveServer(archives).running() as server:
        result = run_fetch(f"{server.endpoint}/flat.tar.gz")
    assert result.code == contract.EXIT_BAD_LAYOUT
    assert "no numeric version folders" in result.termination


def test_download_cut_mid_body_is_retried(
    archives: Path, big_model: Path, run_fetch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = ArchiveServer(archives, cut_responses=1, cut_after=1 << 20)
    with server.running():
        result = run_fetch(f"{server.endpoint}/big.tar.gz")
    assert result.code == 0, result.stderr
    assert len(server.requests) == 2
    blob = "1/variables/variables.data-00000-of-00001"
    assert (result.model / blob).read_bytes() == (big_model / blob).read_bytes()
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed (attempt 1 of 5)" in m for m in messages), messages
    assert any(m.startswith("fetching http") and "%" in m for m in messages), messages  # progress lines


def test_refetch_replaces_the_previous_model_atomically(archives: Path, run_fetch: Any) -> None:
    with ArchiveServer(archives).running() as server:
        first = run_fetch(f"{server.endpoint}/big.tar.gz")
        (first.model_root / ".fetch-m-leftover").mkdir()  # a killed attempt's staging dir
        second = run_fetch(f"{server.endpoint}/affine.tar.gz")
    assert first.code == 0 and second.code == 0, second.stderr
    assert sorted(p.name for p in second.model_root.iterdir()) == ["m"]
    assert sorted(p.name for p in second.model.iterdir()) == ["1", "2"]


def test_console_entry_point_end_to_end(archives: Path, tmp_path: Path) -> None:
    """The real process, as the init container runs it: env in, exit code and termination file out."""
    import os
    import subprocess
    import sys

    termination = tmp_path / "termination-log"

    def run(uri: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            contract.ENV_STORAGE_URI: uri,
            contract.ENV_MODEL_NAME: "resnet",
            contract.ENV_MODEL_ROOT: str(tmp_path / "models"),
            contract.ENV_CREDENTIALS_DIR: str(tmp_path / "no-creds"),
            contract.ENV_CONFIG_DIR: str(tmp_path / "no-config"),
        }
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "modelserve_serving",
                "--termination-message-path",
                str(termination),
                contract.CMD_FETCH,
                "--backoff-seconds",
                "0.01",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    with ArchiveServer(archives).running() as server:
        ok = run(f"{server.endpoint}/affine.tar.gz")
        bad = run(f"{server.endpoint}/corrupt.tar.gz")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "models" / "resnet" / "2" / "saved_model.pb").is_file()
    assert "model resnet versions 1, 2 ready" in ok.stderr
    assert bad.returncode == contract.EXIT_FETCH_FAILED
    reason = termination.read_text()
    assert reason.startswith(f"{server.endpoint}/corrupt.tar.gz: corrupt archive") and reason.count("\n") == 1
    assert reason.strip() in bad.stderr
