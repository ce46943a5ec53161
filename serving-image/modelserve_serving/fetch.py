"""`modelserve-serving fetch`: the init container that puts the model where TF Serving reads it.

Downloads go into a staging directory on the same volume as the target and are renamed into place
only after the layout checks out, so TF Serving never sees a half-copied version, and a retried or
restarted init container starts from a clean state.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from modelserve import contract

from . import archive, layout, modelconfig, objectstore
from .credentials import Credentials, http_headers
from .errors import FetchError, LayoutError, ServingError, UsageError
from .progress import Progress
from .retry import Backoff, describe
from .uri import Source, parse

log = logging.getLogger(__name__)

_STAGING_PREFIX = ".fetch-"
_OLD_PREFIX = ".old-"


@dataclass(frozen=True)
class FetchSettings:
    uri: str
    model_name: str
    model_root: Path
    credentials_dir: Path
    config_dir: Path
    pvc_mount_dir: Path
    sha256: str | None = None
    backoff: Backoff = field(default_factory=Backoff)


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or name.startswith("."):
        raise UsageError(f"{contract.ENV_MODEL_NAME} must be a plain folder name, not {name!r}")


def fetch(settings: FetchSettings) -> Path:
    """Fetches and validates the model; returns the directory TF Serving should use as base path."""
    _check_name(settings.model_name)
    source = parse(settings.uri, pvc_mount_dir=settings.pvc_mount_dir)
    if settings.sha256 and not (source.kind == "http" or source.is_archive):
        raise UsageError(f"{contract.ENV_STORAGE_CHECKSUM} applies to archives only, not {source.uri}")
    if source.kind == "local":
        return _check_local(source, settings)

    target = settings.model_root / settings.model_name
    settings.model_root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(settings.model_root, settings.model_name)
    staging = Path(
        tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{settings.model_name}-", dir=settings.model_root)
    )
    try:
        creds = Credentials(settings.credentials_dir)
        try:
            if source.kind == "http" or source.is_archive:
                model = _fetch_archive(source, staging, creds, settings)
            else:
                model = _fetch_tree(source, staging / "model", creds, settings)
        except FileNotFoundError as exc:
            raise FetchError(f"{source.uri}: not found: {describe(exc)}") from exc
        except PermissionError as exc:
            raise FetchError(f"{source.uri}: access denied, check the credentials: {describe(exc)}") from exc
        except (ServingError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise FetchError(f"{source.uri}: {describe(exc)}") from exc
        versions = layout.validate_dir(model, where=source.uri)
        _check_policy(versions, settings, source.uri)
        _publish(model, target, settings)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("model %s versions %s ready in %s", settings.model_name, _join(versions), target)
    return target


def _check_local(source: Source, settings: FetchSettings) -> Path:
    assert source.path is not None
    if not source.path.exists():
        raise FetchError(f"{source.uri}: {source.path} does not exist (is the volume mounted?)")
    versions = layout.validate_dir(source.path, where=source.uri)
    _check_policy(versions, settings, source.uri)
    log.info("model %s versions %s found in %s (mounted, not copied)", settings.model_name,
             _join(versions), source.path)
    return source.path


def _fetch_tree(source: Source, dest: Path, creds: Credentials, settings: FetchSettings) -> Path:
    fs = objectstore.filesystem(source, creds)
    files = objectstore.list_files(fs, source, settings.backoff)
    # Check the layout from the listing first: a wrong prefix fails in a second, not after gigabytes.
    layout.validate_files(files, source.uri)
    objectstore.download_tree(fs, source, files, dest, backoff=settings.backoff)
    return dest


def _fetch_archive(source: Source, staging: Path, creds: Credentials, settings: FetchSettings) -> Path:
    file = staging / "archive"
    if source.kind == "http":
        archive.download_http(source.uri, file, headers=http_headers(creds), backoff=settings.backoff)
    else:
        fs = objectstore.filesystem(source, creds)
        size = objectstore.object_size(fs, source, settings.backoff)
        progress = Progress(size, label=source.uri)
        objectstore.download(
            fs, objectstore.root_path(source), file, size, progress=progress, backoff=settings.backoff
        )
        progress.finish()
    if settings.sha256:
        archive.verify_sha256(file, settings.sha256, source.uri)
    extracted = staging / "extracted"
    archive.extract(file, extracted, source.uri)
    file.unlink()
    return archive.model_dir(extracted)


def _check_policy(versions: list[int], settings: FetchSettings, where: str) -> None:
    """When the model config is mounted, a `specific` policy naming a version the store lacks is
    caught here with a clear reason instead of a readiness probe that never passes."""
    config_file = settings.config_dir / contract.MODEL_CONFIG_FILE
    if not config_file.is_file():
        return
    for model in modelconfig.load(config_file):
        if model.name != settings.model_name:
            continue
        missing = sorted(set(model.policy.served(versions)) - set(versions))
        if missing:
            raise LayoutError(
                f"{where}: the version policy serves version(s) {_join(missing)}, "
                f"but only {_join(versions)} exist"
            )


def _publish(model: Path, target: Path, settings: FetchSettings) -> None:
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{_OLD_PREFIX}{settings.model_name}-", dir=settings.model_root))
        target.rename(old / "model")
    model.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(root: Path, name: str) -> None:
    # A killed earlier attempt cannot clean up after itself; its staging dirs would eat the volume.
    for prefix in (_STAGING_PREFIX, _OLD_PREFIX):
        for path in root.glob(f"{prefix}{name}-*"):
            log.info("removing leftover %s from an earlier attempt", path)
            shutil.rmtree(path, ignore_errors=True)


def _join(versions: list[int]) -> str:
    return ", ".join(str(v) for v in versions)
