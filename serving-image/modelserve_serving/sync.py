"""`modelserve-serving sync`: keeps exactly the versions the policy serves on the model volume.

One poll: read the policy from the mounted models.config (so a policy change in the ConfigMap
applies without a restart), list the store once, fetch each newly served version into staging on
the same volume and rename it into `<root>/<model>/<version>` (atomic: TF Serving, which watches
that folder, sees a version complete or not at all), then remove versions no longer served once
TF Serving has unloaded them (asked over REST on localhost) or, where it cannot be asked (the
shared cache), once they have been unserved for a whole poll cycle.

Runs as a native sidecar per pod (mode "sidecar") or as the single `<name>-model-sync` Deployment
that fills the shared cache claim (mode "cache"). `fetch` is one reconcile of the same engine.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modelserve import contract

from . import layout, modelconfig, syncstate
from .credentials import Credentials
from .errors import FetchError, LayoutError, ServingError, SyncDegradedError, UsageError
from .modelconfig import VersionPolicy
from .ready import ReadySettings, _status
from .retry import Backoff
from .stores import ArchiveStore, Store, make_store, storage_error
from .syncmetrics import SyncMetrics
from .termination import one_line
from .uri import Source, parse

log = logging.getLogger(__name__)

# TF Serving states of a version it still holds (or is about to): its files must stay.
_LOADED_STATES = ("START", "LOADING", "AVAILABLE", "UNLOADING")
# Backoff after failed polls: the poll interval doubles per failure, up to this many times.
_MAX_BACKOFF_FACTOR = 8
# Unserved versions are kept at least this long where TF Serving cannot be asked.
_MIN_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class SyncSettings:
    uri: str
    model_name: str
    model_root: Path
    credentials_dir: Path
    config_dir: Path
    pvc_mount_dir: Path
    sha256: str | None = None
    backoff: Backoff = field(default_factory=Backoff)
    poll_seconds: float = contract.DEFAULT_POLL_SECONDS
    mode: str = contract.SYNC_MODE_SIDECAR
    state_file: Path = Path(contract.SYNC_STATE_FILE)
    tfserving_host: str = "127.0.0.1"
    tfserving_port: int = contract.REST_PORT
    # How long a version no longer served stays where TF Serving cannot be asked (None: one poll
    # cycle, at least 30 s).
    grace_seconds: float | None = None


@dataclass(frozen=True)
class Outcome:
    served: list[int]
    present: list[int]
    fetched: list[int]
    removed: list[int]

    @property
    def complete(self) -> bool:
        return set(self.served) <= set(self.present)


def check_name(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or name.startswith("."):
        raise UsageError(f"{contract.ENV_MODEL_NAME} must be a plain folder name, not {name!r}")


def _join(versions: list[int] | set[int]) -> str:
    return ", ".join(str(v) for v in sorted(versions)) or "none"


class Syncer:
    def __init__(
        self,
        settings: SyncSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        metrics: SyncMetrics | None = None,
    ) -> None:
        check_name(settings.model_name)
        self.settings = settings
        self.source: Source = parse(settings.uri, pvc_mount_dir=settings.pvc_mount_dir)
        if settings.sha256 and not (self.source.kind == "http" or self.source.is_archive):
            raise UsageError(
                f"{contract.ENV_STORAGE_CHECKSUM} applies to archives only, not {self.source.uri}"
            )
        self.target = settings.model_root / settings.model_name
        self.staging_root = settings.model_root / f"{contract.STAGING_PREFIX}{settings.model_name}"
        self._clock = clock
        self._unserved_since: dict[int, float] = {}
        self.metrics = metrics
        self._last_success: float | None = None
        self._archive_seen: tuple[str, VersionPolicy] | None = None
        self.stop = threading.Event()

    # --- one poll ------------------------------------------------------------------------------

    def policy(self) -> VersionPolicy:
        config = self.settings.config_dir / contract.MODEL_CONFIG_FILE
        if not config.is_file():
            # No mounted config (the one-shot fetch run by hand): every version, as before.
            return VersionPolicy(modelconfig.ALL)
        for model in modelconfig.load(config):
            if model.name == self.settings.model_name:
                return model.policy
        raise UsageError(f"model config {config} has no model named {self.settings.model_name!r}")

    def present(self) -> dict[int, str]:
        return {int(p.name): p.name for p in self._version_paths()}

    def _version_paths(self) -> list[Path]:
        try:
            return [p for p in self.target.iterdir() if p.is_dir() and layout.is_version_name(p.name)]
        except FileNotFoundError:
            return []

    def clean_staging(self) -> None:
        """Leftovers of a killed fetch are never visible (they were never renamed into place); they
        are removed at start so they do not fill the volume."""
        if self.staging_root.exists():
            log.info("removing leftover staging %s from an earlier run", self.staging_root)
            shutil.rmtree(self.staging_root, ignore_errors=True)
        # The one-shot fetcher of earlier releases staged beside the target under these names.
        for prefix in (".fetch-", ".old-"):
            for path in self.settings.model_root.glob(f"{prefix}{self.settings.model_name}-*"):
                shutil.rmtree(path, ignore_errors=True)

    def reconcile(self, *, initial: bool, remove_now: bool = False) -> Outcome:
        if self.source.kind == "local":
            return self._check_local()
        policy = self.policy()
        self.settings.model_root.mkdir(parents=True, exist_ok=True)
        self.staging_root.mkdir(exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="poll-", dir=self.staging_root))
        store = make_store(self.source, Credentials(self.settings.credentials_dir), self.settings.backoff,
                           work, self.settings.sha256)
        try:
            return self._reconcile(store, policy, work, initial=initial, remove_now=remove_now)
        finally:
            if isinstance(store, ArchiveStore):
                store.close()
            shutil.rmtree(work, ignore_errors=True)

    def _reconcile(self, store: Store, policy: VersionPolicy, work: Path, *, initial: bool,
                   remove_now: bool) -> Outcome:
        local = self.present()
        if isinstance(store, ArchiveStore) and not initial and self._archive_seen is not None:
            # An archive changes as a whole: unchanged fingerprint and policy, nothing to do.
            token = store.fingerprint()
            if token and self._archive_seen == (token, policy):
                return Outcome(sorted(local), sorted(local), [], [])
        try:
            available = store.versions()
        except Exception as exc:
            raise storage_error(store.uri, exc) from exc
        if not available:
            raise LayoutError(f"{store.uri} has no numeric version folders: expected "
                              "<version>/saved_model.pb, e.g. 1/saved_model.pb")
        incomplete: list[int] = []

        def complete(v: int) -> bool:
            ok = v in local or store.complete(v)
            if not ok:
                incomplete.append(v)
            return ok

        served = modelconfig.select(policy, list(available), complete)
        missing = [v for v in served if v not in available]
        if missing:
            raise LayoutError(f"{store.uri}: the version policy serves version(s) {_join(missing)}, "
                              f"but only {_join(list(available))} exist")
        if initial and incomplete and policy.kind != modelconfig.LATEST:
            raise LayoutError(f"{store.uri}: version folder(s) {_join(incomplete)} hold no saved_model.pb "
                              "or saved_model.pbtxt")
        if not served:
            raise LayoutError(f"{store.uri}: no version folder holds a saved_model.pb or saved_model.pbtxt")
        fetched = []
        for version in served:
            if version in local:
                continue
            if not store.complete(version):
                if initial:
                    raise LayoutError(f"{store.uri}: version {version} holds no saved_model.pb or "
                                      "saved_model.pbtxt")
                log.warning("version %d has no saved_model.pb yet (upload in progress?): not fetched",
                            version)
                continue
            self._fetch_one(store, version, available[version], work)
            fetched.append(version)
        if isinstance(store, ArchiveStore):
            self._archive_seen = (store.fingerprint(), policy)
        removed = self._remove_unserved(set(served), initial=initial, remove_now=remove_now)
        return Outcome(served, sorted(self.present()), fetched, removed)

    def _fetch_one(self, store: Store, version: int, folder: str, work: Path) -> None:
        staged = work / f"v-{folder}"
        started = self._clock()
        store.fetch(version, staged)
        if not store.settled(version):
            # The folder changed while we copied it (an upload still running): publish nothing now,
            # the next poll copies the finished upload.
            raise FetchError(f"{store.uri}: version {version} changed during the download (upload in "
                             "progress?); retrying at the next poll", transient=True)
        layout.validate_files([f"{folder}/{rel}" for rel in layout.list_relative_files(staged)],
                              f"{store.uri} version {version}")
        # The rename is the publication: same volume, one syscall, never a partial folder.
        self.target.mkdir(exist_ok=True)
        staged.rename(self.target / folder)
        log.info("version %d of %s published in %s after %.1fs", version, store.uri, self.target / folder,
                 self._clock() - started)

    def _loaded_versions(self) -> set[int] | None:
        """Versions TF Serving on localhost still holds, or None when it cannot be asked."""
        if self.settings.mode != contract.SYNC_MODE_SIDECAR:
            return None
        body, _ = _status(ReadySettings(self.settings.config_dir, self.settings.tfserving_host,
                                        self.settings.tfserving_port, 2.0), self.settings.model_name)
        if body is None:
            return None
        return {int(e["version"]) for e in body.get("model_version_status") or []
                if isinstance(e, dict) and str(e.get("version", "")).isdigit()
                and e.get("state") in _LOADED_STATES}

    def _remove_unserved(self, served: set[int], *, initial: bool, remove_now: bool) -> list[int]:
        now = self._clock()
        local = self.present()
        extra = set(local) - served
        for version in list(self._unserved_since):
            if version not in extra:
                del self._unserved_since[version]
        if not extra:
            return []
        loaded = None if remove_now else self._loaded_versions()
        grace = self.settings.grace_seconds
        if grace is None:
            grace = max(self.settings.poll_seconds, _MIN_GRACE_SECONDS)
        removed = []
        for version in sorted(extra):
            since = self._unserved_since.setdefault(version, now)
            if not served <= set(local):
                continue  # never take a version away before its replacement is complete
            unloaded = loaded is not None and version not in loaded
            # At the very first poll of a sidecar TF Serving has not started: nothing to wait for.
            first = initial and loaded is None and self.settings.mode == contract.SYNC_MODE_SIDECAR
            if remove_now or unloaded or first or now - since >= grace:
                self._remove(local[version])
                removed.append(version)
                self._unserved_since.pop(version, None)
        return removed

    def _remove(self, folder: str) -> None:
        # Renamed out of the base path first, so TF Serving never sees a half-deleted folder.
        doomed = Path(tempfile.mkdtemp(prefix="remove-", dir=self.staging_root))
        (self.target / folder).rename(doomed / folder)
        shutil.rmtree(doomed, ignore_errors=True)
        log.info("version %s is no longer served: removed from %s", folder, self.target)

    def _check_local(self) -> Outcome:
        assert self.source.path is not None
        path = self.source.path
        if not path.exists():
            raise FetchError(f"{self.source.uri}: {path} does not exist (is the volume mounted?)")
        versions = layout.validate_dir(path, where=self.source.uri)
        served = self.policy().served(versions)
        missing = sorted(set(served) - set(versions))
        if missing:
            raise LayoutError(f"{self.source.uri}: the version policy serves version(s) {_join(missing)}, "
                              f"but only {_join(versions)} exist")
        log.info("model %s versions %s found in %s (mounted, not copied)", self.settings.model_name,
                 _join(versions), path)
        return Outcome(served, versions, [], [])

    # --- the long-running loop ------------------------------------------------------------------

    def _satisfied_locally(self) -> bool:
        """Whether what is on disk already serves the policy, as far as can be known offline."""
        try:
            policy = self.policy()
        except ServingError:
            return False
        local = sorted(self.present())
        if policy.kind == modelconfig.SPECIFIC:
            return set(policy.versions) <= set(local)
        if policy.kind == modelconfig.LATEST:
            return len(local) >= policy.num_versions
        return bool(local)

    def _record(self, outcome: Outcome | None, *, started: bool, error: str | None, degraded: bool,
                failures: int) -> None:
        if self.source.kind == "local":
            present = outcome.present if outcome else []
        else:
            present = sorted(self.present())
        last_success = time.time() if outcome else self._last_success
        self._last_success = last_success
        state = syncstate.State(
            started=started,
            complete=outcome.complete if outcome else False,
            degraded=degraded,
            served=outcome.served if outcome else [],
            present=present,
            last_error=error,
            consecutive_failures=failures,
            last_success=last_success,
        )
        syncstate.write(self.settings.state_file, state)
        if self.metrics is not None:
            self.metrics.observe(state)

    def run(self) -> int:
        """Runs until stopped; returns an exit code. Raises the first fetch's failure."""
        self.clean_staging()
        syncstate.remove(self.settings.state_file)
        cache = self.settings.mode == contract.SYNC_MODE_CACHE
        try:
            outcome = self.reconcile(initial=True)
            self._record(outcome, started=True, error=None, degraded=False, failures=0)
            log.info("first sync done: serving version(s) %s of %s", _join(outcome.served), self.settings.uri)
        except ServingError as exc:
            # A restarted sync whose versions are on disk keeps them served while the store is out.
            if not self._satisfied_locally():
                raise
            log.warning("first poll failed; serving the versions on disk: %s", one_line(exc.reason))
            self._record(None, started=True, error=one_line(exc.reason), degraded=True, failures=1)
            if cache:
                return self._exit_degraded(exc)
        if self.settings.poll_seconds <= 0:
            # A native sidecar that exits is restarted: with polling off it just stays up.
            self.stop.wait()
            return contract.EXIT_OK
        failures = 0
        while not self.stop.wait(self._delay(failures)):
            try:
                outcome = self.reconcile(initial=False)
            except ServingError as exc:
                failures += 1
                log.warning("poll %s failed (%d in a row); keeping version(s) %s: %s", self.settings.uri,
                            failures, _join(set(self.present())), one_line(exc.reason))
                self._record(None, started=True, error=one_line(exc.reason), degraded=True, failures=failures)
                if cache:
                    return self._exit_degraded(exc)
                continue
            failures = 0
            if outcome.fetched or outcome.removed:
                log.info("poll: fetched %s, removed %s; serving %s", _join(outcome.fetched),
                         _join(outcome.removed), _join(outcome.served))
            self._record(outcome, started=True, error=None, degraded=False, failures=0)
        return contract.EXIT_OK

    def _exit_degraded(self, exc: ServingError) -> int:
        """The cache's sync pod serves nothing itself: exiting hands the backoff to kubelet and the
        reason (termination message) to the operator; the cache keeps what it holds."""
        if isinstance(exc, FetchError) and exc.transient:
            raise SyncDegradedError(exc.reason) from exc
        raise exc

    def _delay(self, failures: int) -> float:
        return float(self.settings.poll_seconds * min(2**failures, _MAX_BACKOFF_FACTOR))
