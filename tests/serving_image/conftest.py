"""Fixtures for the serving image's tests: real storage servers on loopback, a real SavedModel made
with TensorFlow once per session, and a helper that runs `modelserve-serving fetch` in-process."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from serving_kit import (
    BUCKET,
    S3_KEY,
    S3_SECRET,
    GcsStore,
    S3Store,
    build_test_servers,
    start_fake_gcs,
    start_s3server,
    write_files,
)

from modelserve import contract
from modelserve_serving.__main__ import main


@pytest.fixture(scope="session")
def server_bin() -> Path:
    try:
        return build_test_servers()
    except Exception as exc:  # a server that cannot be built fails the tests; it never skips them
        pytest.fail(f"could not build the test storage servers: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def s3(server_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Store]:
    log = tmp_path_factory.mktemp("s3server") / "server.log"
    proc = start_s3server(
        server_bin / "s3server", log, access_key=S3_KEY, secret_key=S3_SECRET, buckets=[BUCKET]
    )
    try:
        yield S3Store(proc.endpoint, proc)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def gcs(server_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsStore]:
    log = tmp_path_factory.mktemp("fake-gcs") / "server.log"
    proc = start_fake_gcs(server_bin / "fake-gcs-server", log)
    try:
        store = GcsStore(proc.endpoint, proc)
        store.fs().mkdir(BUCKET)
        yield store
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real two-version SavedModel: version 1 computes 2x+1, version 2 computes 3x.

    Made once per session: importing TensorFlow takes seconds."""
    import tensorflow as tf

    base = tmp_path_factory.mktemp("saved_model") / "affine"

    class Affine(tf.Module):  # type: ignore[misc]
        def __init__(self, w: float, b: float) -> None:
            super().__init__()
            self.w = tf.Variable(w)
            self.b = tf.Variable(b)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])  # type: ignore[misc]
        def __call__(self, x: Any) -> Any:
            return {"y": x * self.w + self.b}

    for version, (w, b) in {1: (2.0, 1.0), 2: (3.0, 0.0)}.items():
        module = Affine(w, b)
        tf.saved_model.save(module, str(base / str(version)), signatures={"serving_default": module.__call__})
    return base


@pytest.fixture(scope="session")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TF Serving layout with a 4 MiB variables file (not a loadable model): big enough that a
    transfer can be cut in the middle."""
    root = tmp_path_factory.mktemp("big_model") / "big"
    return write_files(
        root,
        {
            "1/saved_model.pb": b"not really a graph",
            "1/variables/variables.data-00000-of-00001": secrets.token_bytes(4 << 20),
            "1/variables/variables.index": b"index",
        },
    )


@dataclass
class FetchResult:
    code: int
    model_root: Path
    termination: str
    stderr: str

    @property
    def model(self) -> Path:
        return self.model_root / "m"


@pytest.fixture
def run_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Runs `modelserve-serving fetch` in-process (the real CLI entry, with env as the operator sets
    it) for model "m" into tmp_path/models; short backoff so retries take milliseconds."""
    counter = iter(range(1000))

    def run(
        uri: str,
        creds: dict[str, str] | None = None,
        *,
        sha256: str | None = None,
        config: str | None = None,
        args: tuple[str, ...] = (),
    ) -> FetchResult:
        n = next(counter)
        creds_dir = tmp_path / f"creds-{n}"
        write_files(creds_dir, {k: v.encode() for k, v in (creds or {}).items()})
        config_dir = tmp_path / f"config-{n}"
        config_dir.mkdir()
        if config is not None:
            (config_dir / contract.MODEL_CONFIG_FILE).write_text(config)
        termination = tmp_path / f"termination-{n}"
        for key in list(os.environ):
            if key.startswith(("AWS_", "GOOGLE_")) or key == "STORAGE_EMULATOR_HOST":
                monkeypatch.delenv(key)
        monkeypatch.setenv(contract.ENV_STORAGE_URI, uri)
        monkeypatch.setenv(contract.ENV_MODEL_NAME, "m")
        monkeypatch.setenv(contract.ENV_MODEL_ROOT, str(tmp_path / "models"))
        monkeypatch.setenv(contract.ENV_CREDENTIALS_DIR, str(creds_dir))
        monkeypatch.setenv(contract.ENV_CONFIG_DIR, str(config_dir))
        if sha256:
            monkeypatch.setenv(contract.ENV_STORAGE_CHECKSUM, sha256)
        else:
            monkeypatch.delenv(contract.ENV_STORAGE_CHECKSUM, raising=False)
        capsys.readouterr()
        code = main(
            ["--termination-message-path", str(termination), "fetch", "--backoff-seconds", "0.01", *args]
        )
        stderr = capsys.readouterr().err
        text = termination.read_text() if termination.exists() else ""
        return FetchResult(code, tmp_path / "models", text, stderr)

    return run
