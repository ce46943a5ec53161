"""Model archives: download over HTTP(S), checksum, and safe extraction of .tar(.gz) and .zip."""

from __future__ import annotations

import hashlib
import logging
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
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


def _wanted(name: str, keep: Callable[[str], bool] | None) -> bool:
    return keep is None or keep(name.lstrip("./"))


def members(archive: Path, what: str) -> list[str]:
    """The regular files in the archive (relative POSIX names), without extracting anything."""
    names: list[str] = []
    extract(archive, None, what, on_name=names.append)
    return names


def extract(
    archive: Path,
    dest: Path | None,
    what: str,
    *,
    keep: Callable[[str], bool] | None = None,
    on_name: Callable[[str], None] | None = None,
) -> None:
    """Extracts into dest the members `keep` accepts (all by default), refusing members that would
    land outside it (absolute paths, '..', links pointing out): an archive from the internet must
    not write over the container's files. With dest None, only names the files (`on_name`)."""
    kind = _kind(archive)
    if dest is not None:
        dest.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                chosen = []
                for info in zf.infolist():
                    name = info.filename
                    parts = PurePosixPath(name).parts
                    if name.startswith("/") or ".." in parts:
                        raise FetchError(f"{what}: unsafe path in archive: {name}")
                    if not info.is_dir() and _wanted(name, keep):
                        chosen.append(info)
                        if on_name:
                            on_name(name.lstrip("./"))
                if dest is not None:
                    zf.extractall(dest, members=chosen)
                else:
                    zf.testzip()  # reads every member: a corrupt archive fails now, not later
        elif kind == "tar":
            with tarfile.open(archive, "r:*") as tf:
                chosen_tar = []
                for member in tf:
                    if member.isfile() and _wanted(member.name, keep):
                        chosen_tar.append(member)
                        if on_name:
                            on_name(member.name.lstrip("./"))
                    elif member.isdir() and dest is not None and _wanted(member.name + "/x", keep):
                        chosen_tar.append(member)
                if dest is not None:
                    tf.extractall(dest, members=chosen_tar, filter="data")
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



def base_prefix(names: Iterable[str]) -> str:
    """The folder inside the archive holding the version folders ('' or e.g. 'resnet/'): archives
    often wrap the versions in one top folder; descend through such single wrappers (3 at most)."""
    paths = [PurePosixPath(n).parts for n in names]
    paths = [p for p in paths if p and p[0] != "__MACOSX" and not p[0].startswith(".")]
    prefix: tuple[str, ...] = ()
    for _ in range(3):
        below = [p[len(prefix):] for p in paths if p[: len(prefix)] == prefix and len(p) > len(prefix)]
        if any(len(p) >= 2 and is_version_name(p[0]) for p in below):
            break
        tops = {p[0] for p in below if len(p) >= 2}
        if len(tops) == 1 and all(len(p) >= 2 for p in below):
            prefix = (*prefix, tops.pop())
            continue
        break
    return "".join(part + "/" for part in prefix)
