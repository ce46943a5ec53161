"""Model archives: download over HTTP(S), checksum, and safe extraction of .tar(.gz) and .zip."""

from __future__ import annotations

import hashlib
import logging
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import requests

from .errors import FetchError, UsageError
from .layout import is_version_name
from .progress import Progress
from .retry import Backoff, retry

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# (connect, read) timeouts: a stalled read is retried rather than hanging the init container forever.
_TIMEOUT = (10, 60)


def download_http(url: str, dest: Path, *, headers: dict[str, str], backoff: Backoff) -> None:
    """Streams url to dest; permanent HTTP errors fail at once, 5xx/429 and broken streams retry."""

    def attempt() -> None:
        progress: Progress | None = None
        try:
            with requests.get(url, headers=headers, stream=True, timeout=_TIMEOUT) as resp:
                _check_status(url, resp)
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                progress = Progress(total, label=url)
                written = 0
                with dest.open("wb") as out:
                    for chunk in resp.iter_content(_CHUNK):
                        out.write(chunk)
                        written += len(chunk)
                        progress.add(len(chunk))
                if total is not None and written != total:
                    raise FetchError(
                        f"{url}: connection closed after {written} of {total} bytes", transient=True
                    )
                progress.finish()
        except requests.exceptions.InvalidURL as exc:
            raise UsageError(f"invalid URL {url}: {exc}") from None

    retry(attempt, what=f"downloading {url}", backoff=backoff)


def _check_status(url: str, resp: requests.Response) -> None:
    code = resp.status_code
    if code == 200:
        return
    if code in (401, 403):
        raise FetchError(f"{url}: access denied (HTTP {code}); check the credentials secret")
    if code == 404:
        raise FetchError(f"{url}: not found (HTTP 404)")
    transient = code >= 500 or code in (408, 429)
    raise FetchError(f"{url}: HTTP {code} {resp.reason}", transient=transient)


def verify_sha256(path: Path, expected: str, what: str) -> None:
    want = expected.strip().lower()
    if len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
        raise UsageError(f"checksum {expected!r} is not a hex SHA-256 digest")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    got = digest.hexdigest()
    if got != want:
        raise FetchError(f"{what}: SHA-256 mismatch: expected {want}, got {got}")
    log.info("%s: SHA-256 verified", what)


def _kind(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4)
    if head[:2] == b"PK":
        return "zip"
    if head[:2] == b"\x1f\x8b" or tarfile.is_tarfile(path):
        return "tar"
    return "unknown"


def extract(archive: Path, dest: Path, what: str) -> None:
    """Extracts into dest, refusing members that would land outside it (absolute paths, '..', links
    pointing out): an archive from the internet must not write over the container's files."""
    kind = _kind(archive)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    parts = PurePosixPath(name).parts
                    if name.startswith("/") or ".." in parts:
                        raise FetchError(f"{what}: unsafe path in archive: {name}")
                zf.extractall(dest)
        elif kind == "tar":
            with tarfile.open(archive, "r:*") as tf:
                tf.extractall(dest, filter="data")
        else:
            raise FetchError(f"{what}: corrupt archive: not a .tar.gz, .tar or .zip file")
    except tarfile.FilterError as exc:
        raise FetchError(f"{what}: unsafe path in archive: {exc}") from None
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise FetchError(f"{what}: corrupt archive: {exc}") from None
    except OSError as exc:
        # gzip.BadGzipFile and truncated streams surface as OSError.
        raise FetchError(f"{what}: corrupt archive or unwritable target: {exc}") from None


def model_dir(extracted: Path) -> Path:
    """Archives often wrap the versions in one top folder (`resnet/1/...`): descend through such
    single wrappers until version folders appear."""
    current = extracted
    for _ in range(3):
        entries = [p for p in current.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if any(p.is_dir() and is_version_name(p.name) for p in entries):
            return current
        if len(entries) == 1 and entries[0].is_dir():
            current = entries[0]
            continue
        break
    return current

