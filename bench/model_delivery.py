"""Model delivery: bytes and requests the store serves to bring N replicas up, with and without the
shared cache, and the time from uploading a new version to its files being complete on disk.

Everything is real except the cluster: the S3 implementation (gofakes3, built from its Go module by
serving-image/hack/test-servers.sh), the counting reverse proxy in front of it (its front door: every
request and byte the store answers passes it), and one real `modelserve-serving sync` process per
replica (without a cache: each pod's sidecar) or one in total (with the cache: the
`<name>-model-sync` pod; serving pods then run no sync and hold no credentials, which
tests/integration/test_model_cache_cluster.py checks on the cluster). The SavedModel is synthetic
(a TF Serving layout: saved_model.pb plus a random variables file of --version-mb MiB) with three
versions in the bucket and `latest {num_versions: 1}` served; the "every version" row reproduces the
earlier fetch init container, which copied the whole prefix, with policy `all`.

    .venv/bin/python bench/model_delivery.py [--version-mb 50] [--replicas 1,5,10] [--uploads 10]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "serving_image"))

from serving_kit import BUCKET, S3_KEY, S3_SECRET, S3Store, build_test_servers, start_s3server  # noqa: E402
from sync_kit import CountingProxy, SyncProcess, latest, models_config  # noqa: E402

MiB = 1 << 20


def make_version(root: Path, size_mb: int) -> Path:
    (root / "variables").mkdir(parents=True, exist_ok=True)
    (root / "saved_model.pb").write_bytes(secrets.token_bytes(64 << 10))
    (root / "variables" / "variables.index").write_bytes(secrets.token_bytes(4 << 10))
    with (root / "variables" / "variables.data-00000-of-00001").open("wb") as f:
        for _ in range(size_mb):
            f.write(secrets.token_bytes(MiB))
    return root


def creds(store: S3Store, proxy: CountingProxy) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": S3_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_ENDPOINT_URL": proxy.endpoint,
        "AWS_REGION": "eu-test-1",
    }


def bring_up(
    work: Path, store: S3Store, proxy: CountingProxy, *, prefix: str, syncs: int, config: str
) -> dict[str, Any]:
    """Starts `syncs` sync processes at once and waits until each has its first sync done."""
    proxy.reset()
    procs = [
        SyncProcess(
            work / f"sync-{i}", f"s3://{BUCKET}/{prefix}", creds(store, proxy), config, poll_seconds=0
        ).start()
        for i in range(syncs)
    ]
    started = time.monotonic()
    try:
        for p in procs:
            p.wait_for(lambda p=p: p.state().get("started") is True, timeout=900, what="first sync")
        elapsed = time.monotonic() - started
    finally:
        for p in procs:
            p.stop()
    reqs = proxy.snapshot()
    return {
        "requests": len(reqs),
        "bytes": sum(r.body_bytes for r in reqs),
        "seconds": elapsed,
        "versions": procs[0].versions(),
    }


def upload_latency(
    work: Path,
    store: S3Store,
    proxy: CountingProxy,
    *,
    prefix: str,
    version_dir: Path,
    uploads: int,
    poll: float,
) -> list[float]:
    proc = SyncProcess(
        work / "cd", f"s3://{BUCKET}/{prefix}", creds(store, proxy), latest(1), poll_seconds=poll
    ).start()
    out = []
    try:
        proc.wait_for(lambda: proc.state().get("started") is True, timeout=600, what="first sync")
        for i in range(uploads):
            version = 100 + i
            # saved_model.pb last, as docs/models.md advises: until it lands the folder is passed over.
            store.upload(version_dir / "variables", f"{prefix}/{version}/variables")
            store.upload(version_dir / "saved_model.pb", f"{prefix}/{version}/saved_model.pb")
            uploaded = time.monotonic()
            proc.wait_for(lambda v=version: str(v) in proc.versions(), timeout=600, what=f"version {version}")
            out.append(time.monotonic() - uploaded)
    finally:
        proc.stop()
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version-mb", type=int, default=50)
    parser.add_argument("--replicas", default="1,5,10")
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    args = parser.parse_args()
    replicas = [int(n) for n in args.replicas.split(",")]

    with tempfile.TemporaryDirectory(prefix="model-delivery-") as tmp:
        work = Path(tmp)
        bins = build_test_servers()
        server = start_s3server(
            bins / "s3server", work / "s3.log", access_key=S3_KEY, secret_key=S3_SECRET, buckets=[BUCKET]
        )
        store = S3Store(server.endpoint, server)
        try:
            version = make_version(work / "model", args.version_mb)
            version_bytes = sum(p.stat().st_size for p in version.rglob("*") if p.is_file())
            for v in (1, 2, 3):
                store.upload(version, f"bench/{v}")
            rows = []
            with CountingProxy(server.endpoint).running() as proxy:
                for n in replicas:
                    for label, syncs, config in (
                        ("no cache: a sync sidecar per pod", n, latest(1)),
                        ("cache: one sync pod, replicas read the claim", 1, latest(1)),
                        ("every version per pod (the earlier init container)", n, models_config("all {}")),
                    ):
                        r = bring_up(
                            work / f"{n}-{syncs}-{len(rows)}",
                            store,
                            proxy,
                            prefix="bench",
                            syncs=syncs,
                            config=config,
                        )
                        rows.append((n, label, r))
                        print(
                            f"N={n:>2} {label}: {r['requests']} requests, {r['bytes'] / MiB:.1f} MiB, "
                            f"{r['seconds']:.1f} s, versions {r['versions']}",
                            flush=True,
                        )
                lat = upload_latency(
                    work,
                    store,
                    proxy,
                    prefix="bench",
                    version_dir=version,
                    uploads=args.uploads,
                    poll=args.poll_seconds,
                )
        finally:
            server.stop()
    print()
    print(f"version size: {version_bytes / MiB:.1f} MiB; 3 versions in the bucket; latest 1 served")
    print(
        "| replicas | delivery | requests to the store | bytes from the store | in units of one version | "
        "time to all synced |"
    )
    print("|---|---|---|---|---|---|")
    for n, label, r in rows:
        units = r["bytes"] / version_bytes
        print(
            f"| {n} | {label} | {r['requests']} | {r['bytes'] / MiB:.1f} MiB | {units:.2f} "
            f"| {r['seconds']:.1f} s |"
        )
    print()
    size = version_bytes / MiB
    print(
        f"upload-to-complete, pollSeconds {args.poll_seconds:g}, {len(lat)} uploads of {size:.1f} MiB: "
        f"p50 {statistics.median(lat):.2f} s, p95 {pct(lat, 0.95):.2f} s, max {max(lat):.2f} s"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
