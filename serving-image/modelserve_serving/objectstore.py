"""Copies a model from S3 or GCS through fsspec (s3fs, gcsfs): the stores' own maintained clients do
the request signing, endpoints and addressing styles; this module lists, downloads and counts."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from fsspec.callbacks import Callback

from .credentials import Credentials, gcs_options, s3_options
from .errors import FetchError
from .progress import Progress
from .retry import Backoff, retry
from .uri import Source

log = logging.getLogger(__name__)

# Deeper than any SavedModel layout (version/variables/file, version/assets/.../file).
_MAX_DEPTH = 32


def filesystem(source: Source, creds: Credentials) -> fsspec.AbstractFileSystem:
    """A fresh filesystem per fetch (skip_instance_cache): fsspec would otherwise reuse one keyed by
    arguments, which keeps stale connections and credentials around in tests and retries."""
    if source.kind == "s3":
        import s3fs

        opts = s3_options(creds)
        client_kwargs: dict[str, Any] = {}
        if opts.region:
            client_kwargs["region_name"] = opts.region
        fs: fsspec.AbstractFileSystem = s3fs.S3FileSystem(
            key=opts.key,
            secret=opts.secret,
            token=opts.token,
            endpoint_url=opts.endpoint_url,
            client_kwargs=client_kwargs,
            config_kwargs={
                "s3": {"addressing_style": opts.addressing_style},
                "connect_timeout": 10,
                "read_timeout": 60,
            },
            skip_instance_cache=True,
        )
        return fs
    if source.kind == "gs":
        # The core class, not gcsfs' default export: since 2026.x that is an "extended" class that
        # first asks the Storage Control gRPC API for each bucket's layout (zonal/HNS), which plain
        # object reads do not need, needs an extra IAM permission, and stalls for minutes on
        # endpoints that do not speak it (emulators, proxies).
        from gcsfs.core import GCSFileSystem

        gopts = gcs_options(creds)
        fs = GCSFileSystem(token=gopts.token, endpoint_url=gopts.endpoint_url, skip_instance_cache=True)
        return fs
    raise AssertionError(f"not an object store: {source.kind}")  # pragma: no cover


def root_path(source: Source) -> str:
    return f"{source.bucket}/{source.key}".rstrip("/")


def list_files(fs: fsspec.AbstractFileSystem, source: Source, backoff: Backoff) -> dict[str, int]:
    """Relative path -> size of every object under the source prefix (directory markers dropped)."""
    root = root_path(source)

    def find() -> dict[str, Any]:
        # A bounded maxdepth makes fsspec walk one delimiter listing per folder instead of one flat
        # listing: a model has few folders, and S3-compatible stores disagree on flat listings
        # (s3fs sends an empty delimiter, which gofakes3 answers with a lone common prefix).
        # on_error="raise": fsspec would otherwise turn a refused listing into an empty one.
        found: dict[str, Any] = fs.find(root, maxdepth=_MAX_DEPTH, detail=True, on_error="raise")
        return found

    found = retry(find, what=f"listing {source.uri}", backoff=backoff)
    files: dict[str, int] = {}
    for path, info in found.items():
        if info.get("type") == "directory" or not path.startswith(root + "/"):
            continue
        rel = path[len(root) + 1 :]
        if not rel or rel.endswith("/"):
            continue
        if ".." in PurePosixPath(rel).parts:
            raise FetchError(f"{source.uri}: refusing object name with '..': {rel}")
        files[rel] = int(info.get("size") or 0)
    if not files:
        raise FetchError(f"{source.uri}: no objects found (missing object or wrong prefix?)")
    return files


def object_size(fs: fsspec.AbstractFileSystem, source: Source, backoff: Backoff) -> int:
    info = retry(lambda: fs.info(root_path(source)), what=f"looking up {source.uri}", backoff=backoff)
    return int(info.get("size") or 0)


class _Counter(Callback):  # type: ignore[misc]  # fsspec ships no type hints
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress
        self.count = 0

    def relative_update(self, inc: int = 1) -> None:
        self.count += inc
        self.progress.add(inc)


def download(
    fs: fsspec.AbstractFileSystem,
    remote: str,
    local: Path,
    size: int,
    *,
    progress: Progress,
    backoff: Backoff,
) -> None:
    """Downloads one object, retrying interrupted transfers from the start of that object."""
    local.parent.mkdir(parents=True, exist_ok=True)

    def attempt() -> None:
        counter = _Counter(progress)
        try:
            fs.get_file(remote, str(local), callback=counter)
            got = local.stat().st_size
            if got != size:
                raise FetchError(f"{remote}: got {got} of {size} bytes", transient=True)
        except BaseException:
            progress.rewind(counter.count)
            raise

    retry(attempt, what=f"downloading {remote}", backoff=backoff)


def download_tree(
    fs: fsspec.AbstractFileSystem,
    source: Source,
    files: dict[str, int],
    dest: Path,
    *,
    backoff: Backoff,
) -> None:
    root = root_path(source)
    progress = Progress(sum(files.values()), label=source.uri)
    log.info("fetching %d object(s) from %s", len(files), source.uri)
    for rel, size in sorted(files.items()):
        download(fs, f"{root}/{rel}", dest / rel, size, progress=progress, backoff=backoff)
    progress.finish()
