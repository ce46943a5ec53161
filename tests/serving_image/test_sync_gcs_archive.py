"""The real `sync` process against fake-gcs-server (the GCS JSON API emulator, built from its Go
module) and against archives over HTTP: only served versions are fetched or extracted."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from serving_kit import BUCKET, ArchiveServer, GcsStore, call_saved_model
from sync_kit import CountingProxy, SyncProcess, latest, specific, tree_bytes

pytestmark = pytest.mark.unit


def test_gcs_first_fetch_downloads_only_the_served_version_then_follows_new_uploads(
    gcs: GcsStore, saved_model: Path, tmp_path: Path
) -> None:
    for version, source in {1: 1, 2: 2, 3: 1}.items():
        gcs.upload(saved_model / str(source), f"gcs-sync/{version}")
    with CountingProxy(gcs.endpoint).running() as proxy:
        proc = SyncProcess(
            tmp_path / "sync", f"gs://{BUCKET}/gcs-sync", {"STORAGE_EMULATOR_HOST": proxy.endpoint}, latest(1)
        ).start()
        try:
            proc.wait_for(lambda: proc.state().get("started") is True, what="the first sync")
            assert proc.versions() == ["3"]
            media = [r for r in proxy.snapshot() if "alt=media" in r.path]
            assert media and all("gcs-sync%2F3%2F" in r.path or "gcs-sync/3/" in r.path for r in media), [
                r.path for r in media
            ]
            served_bytes = sum(len(b) for b in tree_bytes(saved_model / "1").values())
            assert sum(r.body_bytes for r in media) == served_bytes
            gcs.upload(saved_model / "2", "gcs-sync/4")
            proc.wait_for(lambda: "4" in proc.versions(), what="version 4")
            assert call_saved_model(proc.model / "4", [1.0]) == [3.0]
        finally:
            proc.stop()


def test_archive_is_downloaded_whole_but_only_served_versions_are_extracted(
    saved_model: Path, tmp_path: Path
) -> None:
    root = tmp_path / "archives"
    root.mkdir()
    with tarfile.open(root / "affine.tar.gz", "w:gz") as tf:
        tf.add(saved_model, arcname="affine")
    with ArchiveServer(root).running() as server:
        proc = SyncProcess(
            tmp_path / "sync", f"{server.endpoint}/affine.tar.gz", {}, specific(2), poll_seconds=0.5
        ).start()
        try:
            proc.wait_for(lambda: proc.state().get("started") is True, what="the first sync")
            assert proc.versions() == ["2"]
            assert call_saved_model(proc.model / "2", [1.0]) == [3.0]
            downloads = len(server.requests)
            assert downloads == 1
            # Unchanged archive and policy: a poll costs a HEAD, not a download.
            proc.wait_for(lambda: len(server.heads) >= 3, what="idle polls")
            assert len(server.requests) == 1
            proc.write_config(specific(1))
            proc.wait_for(lambda: "1" in proc.versions(), what="version 1 after the policy change")
            assert len(server.requests) == 2  # the archive again: it is the only way to read it
        finally:
            proc.stop()
