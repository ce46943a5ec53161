"""Parsing of `storageUri` into what the fetcher needs: scheme, bucket/host, key prefix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from modelserve import contract

from .errors import UsageError

ARCHIVE_SUFFIXES = contract.ARCHIVE_SUFFIXES


@dataclass(frozen=True)
class Source:
    """Where a model comes from.

    kind is "s3", "gs", "http" (http and https) or "local" (a mounted path: `pvc://`, `file://`, or
    an absolute path), uri the original text, and for object stores bucket and key (no leading or
    trailing slash; empty for a whole bucket). For "local", path is the directory to validate.
    """

    kind: str
    uri: str
    bucket: str = ""
    key: str = ""
    path: Path | None = None

    @property
    def is_archive(self) -> bool:
        name = urlsplit(self.uri).path.lower()
        return name.endswith(ARCHIVE_SUFFIXES)


def parse(uri: str, *, pvc_mount_dir: Path) -> Source:
    uri = uri.strip()
    if not uri:
        raise UsageError(f"{contract.ENV_STORAGE_URI} is empty")
    if uri.startswith("/"):
        return Source("local", uri, path=Path(uri))
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("s3", "gs"):
        if not parts.netloc:
            raise UsageError(f"storage URI {uri!r} names no bucket")
        return Source(scheme, uri, bucket=parts.netloc, key=parts.path.strip("/"))
    if scheme in ("http", "https"):
        if not parts.netloc:
            raise UsageError(f"storage URI {uri!r} names no host")
        return Source("http", uri)
    if scheme == "pvc":
        # The claim is mounted whole at pvc_mount_dir; the rest of the URI is a path inside it.
        sub = PurePosixPath(parts.path.lstrip("/"))
        if not parts.netloc or ".." in sub.parts:
            raise UsageError(f"storage URI {uri!r} must look like pvc://<claim>/<path inside the claim>")
        return Source("local", uri, path=pvc_mount_dir / sub)
    if scheme == "file":
        return Source("local", uri, path=Path(parts.path))
    raise UsageError(
        f"storage URI {uri!r} has unsupported scheme {scheme or '(none)'!r}; "
        f"use one of {', '.join(s + '://' for s in contract.STORAGE_SCHEMES)} or an absolute path"
    )
