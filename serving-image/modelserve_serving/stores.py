"""Where versions come from, as `sync` sees it: list the version folders, tell whether one is
complete, download chosen versions into staging. Two kinds: a tree of objects in S3/GCS (one
delimiter listing per poll, one listing per version fetched) and an archive (downloaded whole,
only the served versions extracted).

A fresh store is made for every poll, so rotated credentials (a re-mounted Secret) and changed
endpoints apply at the next poll without a restart.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

import requests

from . import archive, layout, objectstore
from .credentials import Credentials, http_headers
from .errors import FetchError, ServingError, UsageError
from .progress import Progress
from .retry import Backoff, describe
from .uri import Source

log = logging.getLogger(__name__)


class Store(Protocol):
    uri: str

    def versions(self) -> dict[int, str]:
        """Version number -> folder name of every numeric folder."""

    def complete(self, version: int) -> bool:
        """Whether the version's folder holds a SavedModel (saved_model.pb or .pbtxt)."""

    def fetch(self, version: int, dest: Path) -> None:
        """Downloads one version's files into dest (which becomes the version folder)."""

    def settled(self, version: int) -> bool:
        """After a fetch: whether the version still lists what was downloaded (no upload running)."""


def storage_error(uri: str, exc: BaseException, key: str | None = None) -> ServingError:
    """One reason per failure a person acts on; names the object key when one is known."""
    where = f"{uri} ({key})" if key else uri
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return FetchError(f"{where}: not found: {describe(exc)}")
    if isinstance(exc, PermissionError):
        return FetchError(f"{where}: access denied, check the credentials: {describe(exc)}")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return FetchError(f"{where}: disk full: no space left on the model volume: {describe(exc)}")
    return FetchError(f"{where}: {describe(exc)}", transient=True)


@dataclass
class TreeStore:
    """Numbered version folders under an S3/GCS prefix."""

    source: Source
    creds: Credentials
    backoff: Backoff
    _files: dict[int, dict[str, int]] = field(default_factory=dict)
    _names: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.uri = self.source.uri
        self.fs = objectstore.filesystem(self.source, self.creds)

    def versions(self) -> dict[int, str]:
        folders = objectstore.list_folders(self.fs, self.source, self.backoff)
        named: dict[int, str] = {}
        for name in folders:
            if layout.is_version_name(name):
                if int(name) in named:
                    raise FetchError(
                        f"{self.uri}: version folders name version {int(name)} twice (leading zeros?)"
                    )
                named[int(name)] = name
        self._names = named
        return dict(named)

    def _list(self, version: int) -> dict[str, int]:
        if version not in self._files:
            name = self._names.get(version, str(version))
            listed = objectstore.list_files(self.fs, self.source, self.backoff, folder=name)
            self._files[version] = {rel[len(name) + 1 :]: size for rel, size in listed.items()}
        return self._files[version]

    def complete(self, version: int) -> bool:
        return any(rel in layout.SAVED_MODEL_FILES for rel in self._list(version))

    def fetch(self, version: int, dest: Path) -> None:
        files = self._list(version)
        name = self._names.get(version, str(version))
        root = f"{objectstore.root_path(self.source)}/{name}"
        progress = Progress(sum(files.values()), label=f"{self.uri} version {version}")
        log.info("fetching version %d: %d object(s) from %s/%s", version, len(files), self.uri, name)
        try:
            objectstore.download_many(self.fs, files, remote_root=root, dest=dest, progress=progress,
                                      backoff=self.backoff)
        except Exception as exc:
            missing = objectstore.first_incomplete(files, dest)
            raise storage_error(self.uri, exc, f"{name}/{missing}" if missing else name) from exc
        progress.finish()

    def settled(self, version: int) -> bool:
        before = self._files.pop(version, None)
        return before == self._list(version)


@dataclass
class ArchiveStore:
    """A .tar(.gz)/.zip archive over HTTP(S) or as one S3/GCS object: downloaded whole (there is no
    other way to read it), but only the served versions are extracted."""

    source: Source
    creds: Credentials
    backoff: Backoff
    workdir: Path
    sha256: str | None = None
    _file: Path | None = None
    _names: dict[str, str] = field(default_factory=dict)  # member name -> version-relative path

    def __post_init__(self) -> None:
        self.uri = self.source.uri
        self._members: list[str] = []
        self._prefix = ""

    def fingerprint(self) -> str:
        """What identifies this archive's content without downloading it (ETag, size, date)."""
        try:
            if self.source.kind == "http":
                resp = requests.head(self.uri, headers=http_headers(self.creds), timeout=(10, 30),
                                     allow_redirects=True)
                if resp.status_code >= 400:
                    return ""  # HEAD refused or unsupported: download and find out
                h = resp.headers
                return "|".join(h.get(k, "") for k in ("ETag", "Last-Modified", "Content-Length"))
            fs = objectstore.filesystem(self.source, self.creds)
            info = fs.info(objectstore.root_path(self.source))
            return "|".join(str(info.get(k, "")) for k in ("ETag", "etag", "md5Hash", "size", "LastModified",
                                                          "updated"))
        except Exception as exc:
            raise storage_error(self.uri, exc) from exc

    def _download(self) -> Path:
        if self._file is not None:
            return self._file
        file = self.workdir / "archive"
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            if self.source.kind == "http":
                archive.download_http(self.uri, file, headers=http_headers(self.creds), backoff=self.backoff)
            else:
                fs = objectstore.filesystem(self.source, self.creds)
                size = objectstore.object_size(fs, self.source, self.backoff)
                progress = Progress(size, label=self.uri)
                objectstore.download(fs, objectstore.root_path(self.source), file, size, progress=progress,
                                     backoff=self.backoff)
                progress.finish()
        except ServingError:
            raise
        except Exception as exc:
            raise storage_error(self.uri, exc) from exc
        if self.sha256:
            archive.verify_sha256(file, self.sha256, self.uri)
        self._members = archive.members(file, self.uri)
        self._prefix = archive.base_prefix(self._members)
        self._file = file
        return file

    def versions(self) -> dict[int, str]:
        self._download()
        named: dict[int, str] = {}
        for name in self._members:
            if not name.startswith(self._prefix):
                continue
            parts = PurePosixPath(name[len(self._prefix):]).parts
            if len(parts) >= 2 and layout.is_version_name(parts[0]):
                if int(parts[0]) in named and named[int(parts[0])] != parts[0]:
                    raise FetchError(f"{self.uri}: version folders name version {int(parts[0])} twice")
                named[int(parts[0])] = parts[0]
        self._version_names = named
        return dict(named)

    def complete(self, version: int) -> bool:
        folder = self._prefix + self._version_names[version] + "/"
        return any(n[len(folder):] in layout.SAVED_MODEL_FILES for n in self._members if n.startswith(folder))

    def fetch(self, version: int, dest: Path) -> None:
        file = self._download()
        folder = self._prefix + self._version_names[version] + "/"
        extracted = dest.parent / f"extract-{version}"
        archive.extract(file, extracted, self.uri, keep=lambda n: n.startswith(folder))
        inner = extracted / folder
        if not inner.is_dir():
            raise FetchError(f"{self.uri}: version {version} extracted to nothing")
        inner.rename(dest)

    def settled(self, version: int) -> bool:
        return True  # one object: downloaded whole or not at all

    def close(self) -> None:
        if self._file is not None:
            self._file.unlink(missing_ok=True)
            self._file = None


def make_store(source: Source, creds: Credentials, backoff: Backoff, workdir: Path,
               sha256: str | None) -> TreeStore | ArchiveStore:
    if source.kind == "http" or source.is_archive:
        return ArchiveStore(source, creds, backoff, workdir, sha256)
    if sha256:
        raise UsageError(f"a checksum applies to archives only, not {source.uri}")
    return TreeStore(source, creds, backoff)
