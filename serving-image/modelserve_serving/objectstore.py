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
                # Our own retry (retry.py) spaces attempts out and reports them; botocore's legacy
                # default would add up to five hidden attempts to each, a minute per failed poll.
                "retries": {"mode": "standard", "total_max_attempts": 2},
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


def list_folders(fs: fsspec.AbstractFileSystem, source: Source, backoff: Backoff) -> list[str]:
    """The names of the folders right under the source prefix: one delimiter listing (one request
    for up to 1,000 entries), which is all a poll costs when nothing changed."""
    root = root_path(source)

    def ls() -> list[Any]:
        entries: list[Any] = fs.ls(root, detail=True, refresh=True)
        return entries

    try:
        entries = retry(ls, what=f"listing {source.uri}", backoff=backoff)
    except FileNotFoundError as exc:
        raise FetchError(f"{source.uri}: not found (missing bucket or wrong prefix?): {exc}") from None
    if not entries:
        raise FetchError(f"{source.uri}: no objects found (missing object or wrong prefix?)")
    names = []
    for entry in entries:
        name = str(entry.get("name", "")).rstrip("/")
        if entry.get("type") == "directory" and name.startswith(root + "/"):
            names.append(name[len(root) + 1 :])
    return names


def list_files(
    fs: fsspec.AbstractFileSystem, source: Source, backoff: Backoff, *, folder: str = ""
) -> dict[str, int]:
    """Relative path -> size of every object under the source prefix (or one folder of it),
    directory markers dropped; the paths are relative to the source prefix."""
    root = root_path(source)
    top = f"{root}/{folder}" if folder else root

    def find() -> dict[str, Any]:
        # A bounded maxdepth makes fsspec walk one delimiter listing per folder instead of one flat
        # listing: a model has few folders, and S3-compatible stores disagree on flat listings
        # (s3fs sends an empty delimiter, which gofakes3 answers with a lone common prefix).
        # on_error="raise": fsspec would otherwise turn a refused listing into an empty one.
        found: dict[str, Any] = fs.find(top, maxdepth=_MAX_DEPTH, detail=True, on_error="raise")
        return found

    what = f"listing {source.uri}" + (f" version {folder}" if folder else "")
    found = retry(find, what=what, backoff=backoff)
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
    if not files and not folder:
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


class _Branching(Callback):  # type: ignore[misc]  # fsspec ships no type hints
    """fsspec's `get` hands each concurrent file transfer a child callback: count their bytes."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress
        self.children: list[_Counter] = []

    def branched(self, path_1: str, path_2: str, **kwargs: Any) -> _Counter:
        child = _Counter(self.progress)
        self.children.append(child)
        return child


# Concurrent transfers per `get`: enough to fill a link from object storage, few enough for 100m CPU.
CONCURRENCY = 8


def download_many(
    fs: fsspec.AbstractFileSystem,
    files: dict[str, int],
    *,
    remote_root: str,
    dest: Path,
    progress: Progress,
    backoff: Backoff,
) -> None:
    """Downloads relative paths `files` (path -> size) from remote_root into dest with fsspec's
    concurrent `get` (up to CONCURRENCY transfers at once). A retry fetches only the files that are
    not complete yet, so an interrupted multi-gigabyte version does not start over."""

    def pending() -> dict[str, int]:
        out = {}
        for rel, size in files.items():
            local = dest / rel
            if not (local.is_file() and local.stat().st_size == size):
                out[rel] = size
        return out

    def attempt() -> None:
        todo = pending()
        if not todo:
            return
        names = sorted(todo)
        for rel in names:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        counter = _Branching(progress)
        try:
            fs.get([f"{remote_root}/{r}" for r in names], [str(dest / r) for r in names],
                   callback=counter, batch_size=CONCURRENCY)
        except BaseException:
            progress.rewind(sum(c.count for c in counter.children))
            raise
        short = pending()
        if short:
            rel = sorted(short)[0]
            got = (dest / rel).stat().st_size if (dest / rel).exists() else 0
            raise FetchError(f"{remote_root}/{rel}: got {got} of {short[rel]} bytes", transient=True)

    retry(attempt, what=f"downloading {remote_root}", backoff=backoff)


def first_incomplete(files: dict[str, int], dest: Path) -> str | None:
    """The file of a failed `get` to name in the reason: one cut in the middle if any (transfers run
    concurrently, so the one that failed is among those begun), else the first not downloaded."""
    begun: list[str] = []
    missing: list[str] = []
    for rel, size in sorted(files.items()):
        local = dest / rel
        got = local.stat().st_size if local.is_file() else -1
        if got != size:
            (begun if got > 0 else missing).append(rel)
    found = begun or missing
    return found[0] if found else None


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
    download_many(fs, files, remote_root=root, dest=dest, progress=progress, backoff=backoff)
    progress.finish()
