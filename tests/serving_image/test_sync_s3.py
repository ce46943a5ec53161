"""The real `modelserve-serving sync` process against the real S3 implementation (gofakes3, built
from its Go module), behind a counting proxy: which versions are fetched, how many requests and
bytes the store serves, continuous delivery, policy changes, outages, kills and rotated keys."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from serving_kit import BUCKET, S3Store, StatusStub, call_saved_model, free_port, s3_creds, write_files
from sync_kit import CountingProxy, SyncProcess, latest, specific, tree_bytes

from modelserve import contract

pytestmark = pytest.mark.unit


def upload_versions(s3: S3Store, saved_model: Path, prefix: str, versions: dict[int, int]) -> None:
    """versions: store version -> which of the fixture's real SavedModels (1: 2x+1, 2: 3x) it holds."""
    for version, source in versions.items():
        s3.upload(saved_model / str(source), f"{prefix}/{version}")


def version_bytes(saved_model: Path, source: int) -> int:
    return sum(len(b) for b in tree_bytes(saved_model / str(source)).values())


@pytest.fixture
def proxy(s3: S3Store) -> CountingProxy:
    with CountingProxy(s3.endpoint).running() as p:
        yield p


def sync(
    tmp_path: Path, s3: S3Store, proxy: CountingProxy, prefix: str, config: str | None, **kw: object
) -> SyncProcess:
    return SyncProcess(
        tmp_path / "sync",
        f"s3://{BUCKET}/{prefix}",
        s3_creds(s3, AWS_ENDPOINT_URL=proxy.endpoint),
        config,
        **kw,
    )  # type: ignore[arg-type]


def test_first_fetch_downloads_only_the_served_version(
    s3: S3Store, saved_model: Path, proxy: CountingProxy, tmp_path: Path
) -> None:
    upload_versions(s3, saved_model, "only", {1: 1, 2: 2, 3: 1})
    proxy.reset()
    proc = sync(tmp_path, s3, proxy, "only", latest(1)).start()
    try:
        proc.wait_for(lambda: proc.state().get("started") is True, what="the first sync")
        assert proc.versions() == ["3"]
        assert call_saved_model(proc.model / "3", [1.0]) == [3.0]
        gets = [
            r
            for r in proxy.snapshot()
            if r.method == "GET"
            and "list-type" not in r.path
            and "delimiter" not in r.path
            and "prefix=" not in r.path
        ]
        # Object downloads touched version 3 only, and moved exactly its bytes.
        assert gets and all("/only/3/" in r.path for r in gets), [r.path for r in gets]
        assert sum(r.body_bytes for r in gets) == version_bytes(saved_model, 1)
        assert not any("/only/1/" in r.path or "/only/2/" in r.path for r in proxy.snapshot())
        # An idle poll costs one listing request and no object bytes.
        proxy.reset()
        proc.wait_for(lambda: len(proxy.snapshot()) >= 2, what="two idle polls")
        assert all(r.method == "GET" and "delimiter" in r.path for r in proxy.snapshot()[:2])
        assert [p.name for p in proc.model_root.iterdir()] in (["m", ".staging-m"], [".staging-m", "m"])
        assert not any((proc.model_root / ".staging-m").iterdir())
    finally:
        proc.stop()


def test_new_version_appears_atomically_and_the_old_one_goes_once_unloaded(
    s3: S3Store, saved_model: Path, proxy: CountingProxy, tmp_path: Path
) -> None:
    upload_versions(s3, saved_model, "cd", {1: 1})
    with StatusStub().running() as tfs:
        tfs.set("m", (1, "AVAILABLE"))
        proc = sync(tmp_path, s3, proxy, "cd", latest(1), tfserving_port=tfs.port).start()
        try:
            proc.wait_for(lambda: proc.versions() == ["1"], what="version 1")
            seen_partial: list[str] = []
            stop = threading.Event()

            def watch() -> None:
                # Whenever version 2 is visible at all, it must be whole.
                want = tree_bytes(saved_model / "2")
                while not stop.is_set():
                    if (proc.model / "2").is_dir() and tree_bytes(proc.model / "2") != want:
                        seen_partial.append("2")

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            upload_versions(s3, saved_model, "cd", {2: 2})
            proc.wait_for(lambda: "2" in proc.versions(), what="version 2 to be published")
            stop.set()
            watcher.join()
            assert seen_partial == []
            assert call_saved_model(proc.model / "2", [1.0]) == [3.0]
            # TF Serving still holds version 1: it stays on disk until it reports it unloaded.
            proc.wait_for(lambda: proc.state().get("present") == [1, 2], what="the state after the poll")
            assert proc.versions() == ["1", "2"]
            tfs.set("m", (1, "END"), (2, "AVAILABLE"))
            proc.wait_for(lambda: proc.versions() == ["2"], what="version 1 to be removed")
        finally:
            proc.stop()


def test_policy_change_in_the_mounted_config_fetches_the_new_version_and_drops_the_old(
    s3: S3Store, saved_model: Path, proxy: CountingProxy, tmp_path: Path
) -> None:
    upload_versions(s3, saved_model, "policy", {1: 1, 2: 2})
    with StatusStub().running() as tfs:
        proc = sync(tmp_path, s3, proxy, "policy", specific(1), tfserving_port=tfs.port).start()
        try:
            proc.wait_for(lambda: proc.versions() == ["1"], what="version 1")
            tfs.set("m", (1, "AVAILABLE"))
            proc.write_config(specific(2))  # what kubelet does when the ConfigMap changes
            proc.wait_for(lambda: "2" in proc.versions(), what="version 2")
            tfs.set("m", (1, "END"), (2, "AVAILABLE"))
            proc.wait_for(lambda: proc.versions() == ["2"], what="version 1 gone")
            assert proc.proc is not None and proc.proc.poll() is None  # no restart needed
        finally:
            proc.stop()


def test_store_outage_keeps_serving_backs_off_and_recovers(
    s3: S3Store, saved_model: Path, proxy: CountingProxy, tmp_path: Path
) -> None:
    upload_versions(s3, saved_model, "outage", {1: 1})
    proc = sync(tmp_path, s3, proxy, "outage", latest(1), poll_seconds=0.5, metrics_port=free_port()).start()
    m = 'model="m"'
    try:
        proc.wait_for(lambda: proc.state().get("complete") is True, what="the first sync")
        proc.wait_for(lambda: proc.metrics().get(f"modelserve_sync_complete{{{m}}}") == 1, what="metrics")
        healthy = proc.metrics()
        assert healthy[f"modelserve_sync_degraded{{{m}}}"] == 0
        assert healthy[f'modelserve_sync_version_present{{{m},version="1"}}'] == 1
        assert healthy[f'modelserve_sync_version_served{{{m},version="1"}}'] == 1
        assert healthy[f"modelserve_sync_last_success_timestamp_seconds{{{m}}}"] > 0
        proxy.down = True
        down_at = time.time()
        proc.wait_for(
            lambda: proc.state().get("consecutive_failures", 0) >= 2, timeout=120, what="two failed polls"
        )
        state = proc.state()
        assert state["degraded"] is True and state["started"] is True
        assert proc.versions() == ["1"]  # what is on disk stays served
        assert "s3://models/outage" in state["last_error"]
        assert "failed (2 in a row)" in proc.log.read_text()
        # The outage shows on the sidecar's metrics (the ModelServeSyncDegraded alert's input), with
        # the version still served and the time of the last poll that reached the store.
        outage = proc.metrics()
        assert outage[f"modelserve_sync_degraded{{{m}}}"] == 1
        assert outage[f"modelserve_sync_consecutive_failures{{{m}}}"] >= 2
        assert outage[f'modelserve_sync_polls_total{{{m},result="failure"}}'] >= 2
        assert outage[f'modelserve_sync_version_present{{{m},version="1"}}'] == 1
        # The last poll that reached the store was before the outage (polls go on every 0.5 s).
        assert (
            healthy[f"modelserve_sync_last_success_timestamp_seconds{{{m}}}"]
            <= outage[f"modelserve_sync_last_success_timestamp_seconds{{{m}}}"]
            <= down_at
        )
        proxy.down = False
        upload_versions(s3, saved_model, "outage", {2: 2})
        proc.wait_for(lambda: "2" in proc.versions(), timeout=120, what="recovery")
        proc.wait_for(lambda: proc.state().get("degraded") is False, what="the state after recovery")
        proc.wait_for(
            lambda: proc.metrics().get(f"modelserve_sync_degraded{{{m}}}") == 0
            and f'modelserve_sync_version_served{{{m},version="1"}}' not in proc.metrics(),
            timeout=60,
            what="the metrics after recovery",
        )
        recovered = proc.metrics()
        assert recovered[f'modelserve_sync_version_served{{{m},version="2"}}'] == 1
        assert recovered[f"modelserve_sync_consecutive_failures{{{m}}}"] == 0
    finally:
        proc.stop()


def test_cache_mode_exits_with_the_reason_when_the_store_is_unreachable(
    s3: S3Store, saved_model: Path, proxy: CountingProxy, tmp_path: Path
) -> None:
    upload_versions(s3, saved_model, "cache-outage", {1: 1})
    proc = sync(
        tmp_path, s3, proxy, "cache-outage", latest(1), poll_seconds=0.5, mode=contract.SYNC_MODE_CACHE
    ).start()
    try:
        proc.wait_for(lambda: proc.state().get("complete") is True, what="the first sync")
        proxy.down = True
        assert proc.wait_exit(120) == contract.EXIT_SYNC_DEGRADED
        assert "s3://models/cache-outage" in proc.termination.read_text()
        assert proc.versions() == ["1"]
        # Restarted by kubelet while the store is still out: the cache still serves the policy.
        restarted = sync(
            tmp_path, s3, proxy, "cache-outage", latest(1), poll_seconds=0.5, mode=contract.SYNC_MODE_CACHE
        ).start()
        assert restarted.wait_exit(120) == contract.EXIT_SYNC_DEGRADED
        assert proc.versions() == ["1"]
    finally:
        proc.stop()


def test_specific_version_missing_names_the_version_and_the_uri(
    s3: S3Store, saved_model: Path, proxy: CountingProxy, tmp_path: Path
) -> None:
    upload_versions(s3, saved_model, "missing", {1: 1})
    proc = sync(tmp_path, s3, proxy, "missing", specific(1, 7)).start()
    assert proc.wait_exit() == contract.EXIT_BAD_LAYOUT
    reason = proc.termination.read_text()
    assert "s3://models/missing" in reason and "version(s) 7" in reason and reason.count("\n") == 1


def test_refused_credentials_are_a_one_line_reason_and_rotation_is_picked_up_at_the_next_poll(
    s3: S3Store, saved_model: Path, proxy: CountingProxy, tmp_path: Path
) -> None:
    upload_versions(s3, saved_model, "rotate", {1: 1})
    refused = sync(tmp_path / "a", s3, proxy, "rotate", latest(1))
    refused.creds["AWS_SECRET_ACCESS_KEY"] = "wrong"
    assert refused.start().wait_exit() == contract.EXIT_FETCH_FAILED
    assert "access denied" in refused.termination.read_text()

    proc = sync(tmp_path / "b", s3, proxy, "rotate", latest(1), poll_seconds=0.5).start()
    try:
        proc.wait_for(lambda: proc.versions() == ["1"], what="version 1")
        proc.write_creds(s3_creds(s3, AWS_ENDPOINT_URL=proxy.endpoint, AWS_SECRET_ACCESS_KEY="revoked"))
        proc.wait_for(
            lambda: "access denied" in (proc.state().get("last_error") or ""), what="a refused poll"
        )
        upload_versions(s3, saved_model, "rotate", {2: 2})
        proc.write_creds(s3_creds(s3, AWS_ENDPOINT_URL=proxy.endpoint))  # the rotated Secret
        proc.wait_for(lambda: "2" in proc.versions(), timeout=120, what="version 2 with the new key")
    finally:
        proc.stop()


def test_sigkill_mid_download_publishes_nothing_and_the_next_start_cleans_staging(
    s3: S3Store, proxy: CountingProxy, tmp_path: Path
) -> None:
    big = write_files(
        tmp_path / "big",
        {
            "5/saved_model.pb": b"graph",
            "5/variables/variables.data-00000-of-00001": bytes(range(256)) * (24 << 12),  # 24 MiB
            "5/variables/variables.index": b"index",
        },
    )
    s3.upload(big, "killed")
    proxy.throttle = 4 << 20  # 4 MiB/s: the download takes seconds
    proc = sync(tmp_path, s3, proxy, "killed", latest(1)).start()
    staging = proc.model_root / ".staging-m"

    def partial_on_disk() -> bool:
        return any(p.is_file() and p.stat().st_size > (1 << 20) for p in staging.rglob("*"))

    proc.wait_for(partial_on_disk, what="a partly downloaded file")
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGKILL)
    proc.proc.wait()
    assert proc.versions() == []  # nothing half-copied is ever visible
    assert any(staging.rglob("*"))
    proxy.throttle = 0
    again = sync(tmp_path, s3, proxy, "killed", latest(1)).start()
    try:
        again.wait_for(lambda: again.state().get("started") is True, what="the restarted sync")
        assert again.versions() == ["5"]
        assert tree_bytes(again.model / "5") == tree_bytes(big / "5")
        assert "removing leftover staging" in again.log.read_text()
        assert not any(staging.iterdir())
    finally:
        again.stop()


def test_disk_full_is_a_one_line_reason(s3: S3Store, proxy: CountingProxy, tmp_path: Path) -> None:
    big = write_files(
        tmp_path / "big",
        {
            "1/saved_model.pb": b"graph",
            "1/variables/variables.data-00000-of-00001": bytes(4 << 20),
        },
    )
    s3.upload(big, "full")
    root = tmp_path / "sync" / "models"
    root.mkdir(parents=True)
    # Its own mount namespace with a 1 MiB tmpfs as the model volume: a full disk, nothing mounted
    # on the host.
    wrapper = [
        "unshare",
        "--mount",
        "--map-root-user",
        "sh",
        "-c",
        f'mount -t tmpfs -o size=1m tmpfs "{root}" && exec "$@"',
        "sh",
    ]
    proc = sync(tmp_path, s3, proxy, "full", latest(1), wrapper=wrapper).start()
    assert proc.wait_exit() == contract.EXIT_FETCH_FAILED, proc.log.read_text()
    reason = proc.termination.read_text()
    assert "disk full" in reason and reason.count("\n") == 1, reason
    assert "1/variables/variables.data-00000-of-00001" in reason
