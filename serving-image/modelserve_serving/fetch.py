"""`modelserve-serving fetch`: one reconcile of the sync engine, then exit (the one-shot init
container of releases before `sync`; kept so pods of an older operator keep starting during an
upgrade, and for fetching by hand).

Only the versions the mounted policy serves are fetched (every version without a mounted config);
each lands in staging on the same volume and is renamed into place, so TF Serving never sees a
half-copied version, and leftovers of a killed attempt are removed at the next start.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .retry import Backoff
from .sync import Syncer, SyncSettings

log = logging.getLogger(__name__)


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


def fetch(settings: FetchSettings) -> Path:
    """Fetches and validates the served versions; returns the directory TF Serving should use."""
    syncer = Syncer(SyncSettings(
        uri=settings.uri, model_name=settings.model_name, model_root=settings.model_root,
        credentials_dir=settings.credentials_dir, config_dir=settings.config_dir,
        pvc_mount_dir=settings.pvc_mount_dir, sha256=settings.sha256, backoff=settings.backoff,
        poll_seconds=0,
    ))
    if syncer.source.kind == "local":
        syncer.reconcile(initial=True)
        assert syncer.source.path is not None
        return syncer.source.path
    syncer.clean_staging()
    try:
        outcome = syncer.reconcile(initial=True, remove_now=True)
    finally:
        shutil.rmtree(syncer.staging_root, ignore_errors=True)
    log.info("model %s versions %s ready in %s", settings.model_name,
             ", ".join(str(v) for v in outcome.served), syncer.target)
    return syncer.target
