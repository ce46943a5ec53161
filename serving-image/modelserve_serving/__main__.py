"""`modelserve-serving {sync,sync-status,fetch,serve,ready,drain}`: the serving image's single executable."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from modelserve import contract

from .errors import ServingError, UsageError
from .retry import Backoff
from .termination import report_failure

log = logging.getLogger("modelserve_serving")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=contract.EXECUTABLE, description=__doc__, allow_abbrev=False)
    parser.add_argument(
        "--termination-message-path",
        type=Path,
        default=Path(contract.TERMINATION_MESSAGE_PATH),
        help="where a failure's one-line reason is written (default: %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser(contract.CMD_FETCH, help="fetch the model into the model root (init container)")
    fetch.add_argument("--attempts", type=int, default=5, help="attempts per transient failure")
    fetch.add_argument("--backoff-seconds", type=float, default=1.0, help="first retry delay, doubling")
    fetch.add_argument("--max-backoff-seconds", type=float, default=30.0)
    fetch.add_argument("--pvc-mount-dir", type=Path, default=Path(contract.PVC_MOUNT_DIR))

    sync = sub.add_parser(contract.CMD_SYNC, help="keep the served versions on the model volume (sidecar)")
    sync.add_argument("--attempts", type=int, default=5, help="attempts per transient failure in one poll")
    sync.add_argument("--backoff-seconds", type=float, default=1.0, help="first retry delay, doubling")
    sync.add_argument("--max-backoff-seconds", type=float, default=30.0)
    sync.add_argument("--pvc-mount-dir", type=Path, default=Path(contract.PVC_MOUNT_DIR))
    sync.add_argument("--tfserving-port", type=int, default=contract.REST_PORT,
                      help="TF Serving's REST port on localhost, asked before a version is removed")
    sync.add_argument("--unload-grace-seconds", type=float, default=None,
                      help="keep an unserved version this long where TF Serving cannot be asked "
                      "(default: one poll cycle, at least 30 s)")

    status = sub.add_parser(contract.CMD_SYNC_STATUS, help="probe of `sync`: first fetch done (--ready: all)")
    status.add_argument("--ready", action="store_true",
                        help="also require every served version on disk and the last poll to have succeeded")

    # Every argument after `serve` is an extra TF Serving flag: no options of its own (not even
    # --help), so none can swallow or abbreviate-match one of them.
    sub.add_parser(
        contract.CMD_SERVE, add_help=False, allow_abbrev=False,
        help="run tensorflow_model_server (main container); extra TF Serving flags as --name=value",
    )

    ready = sub.add_parser(contract.CMD_READY, help="readiness probe: every served version AVAILABLE")
    ready.add_argument("--host", default="127.0.0.1")
    ready.add_argument("--port", type=int, default=contract.REST_PORT)
    ready.add_argument("--timeout-seconds", type=float, default=2.0)
    drain = sub.add_parser(
        contract.CMD_DRAIN,
        help="preStop hook: keep serving this long while the pod leaves the Service's endpoints",
    )
    drain.add_argument("--seconds", type=float, default=10.0, help="how long (default: %(default)s)")
    return parser


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _config_dir() -> Path:
    return Path(_env(contract.ENV_CONFIG_DIR, contract.CONFIG_DIR))


def _fetch(args: argparse.Namespace) -> int:
    from .fetch import FetchSettings, fetch

    uri, name = _env(contract.ENV_STORAGE_URI), _env(contract.ENV_MODEL_NAME)
    if not uri or not name:
        raise UsageError(f"{contract.ENV_STORAGE_URI} and {contract.ENV_MODEL_NAME} must be set")
    if args.attempts < 1:
        raise UsageError("--attempts must be at least 1")
    fetch(
        FetchSettings(
            uri=uri,
            model_name=name,
            model_root=Path(_env(contract.ENV_MODEL_ROOT, contract.MODEL_ROOT)),
            credentials_dir=Path(_env(contract.ENV_CREDENTIALS_DIR, contract.CREDENTIALS_DIR)),
            config_dir=_config_dir(),
            pvc_mount_dir=args.pvc_mount_dir,
            sha256=_env(contract.ENV_STORAGE_CHECKSUM) or None,
            backoff=Backoff(args.attempts, args.backoff_seconds, args.max_backoff_seconds),
        )
    )
    return contract.EXIT_OK


def _poll_seconds() -> float:
    text = _env(contract.ENV_POLL_SECONDS, str(contract.DEFAULT_POLL_SECONDS))
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{contract.ENV_POLL_SECONDS} must be a number of seconds, not {text!r}") from None
    if value < 0:
        raise UsageError(f"{contract.ENV_POLL_SECONDS} must not be negative")
    return value


def _metrics_port() -> int:
    text = _env(contract.ENV_SYNC_METRICS_PORT, "0")
    if not text.isdigit() or int(text) > 65535:
        raise UsageError(f"{contract.ENV_SYNC_METRICS_PORT} must be a port number (0: off), not {text!r}")
    return int(text)


def _state_file() -> Path:
    return Path(_env(contract.ENV_SYNC_STATE_FILE, contract.SYNC_STATE_FILE))


def _sync(args: argparse.Namespace) -> int:
    import signal

    from .sync import Syncer, SyncSettings
    from .syncmetrics import SyncMetrics

    uri, name = _env(contract.ENV_STORAGE_URI), _env(contract.ENV_MODEL_NAME)
    if not uri or not name:
        raise UsageError(f"{contract.ENV_STORAGE_URI} and {contract.ENV_MODEL_NAME} must be set")
    if args.attempts < 1:
        raise UsageError("--attempts must be at least 1")
    mode = _env(contract.ENV_SYNC_MODE, contract.SYNC_MODE_SIDECAR)
    if mode not in (contract.SYNC_MODE_SIDECAR, contract.SYNC_MODE_CACHE):
        raise UsageError(
            f"{contract.ENV_SYNC_MODE} must be {contract.SYNC_MODE_SIDECAR} or {contract.SYNC_MODE_CACHE}"
        )
    metrics_port = _metrics_port()
    metrics = SyncMetrics(name, mode) if metrics_port else None
    syncer = Syncer(SyncSettings(
        uri=uri,
        model_name=name,
        model_root=Path(_env(contract.ENV_MODEL_ROOT, contract.MODEL_ROOT)),
        credentials_dir=Path(_env(contract.ENV_CREDENTIALS_DIR, contract.CREDENTIALS_DIR)),
        config_dir=_config_dir(),
        pvc_mount_dir=args.pvc_mount_dir,
        sha256=_env(contract.ENV_STORAGE_CHECKSUM) or None,
        backoff=Backoff(args.attempts, args.backoff_seconds, args.max_backoff_seconds),
        poll_seconds=_poll_seconds(),
        mode=mode,
        state_file=_state_file(),
        tfserving_port=args.tfserving_port,
        grace_seconds=args.unload_grace_seconds,
    ), metrics=metrics)
    if metrics is not None:
        metrics.serve(metrics_port)  # up before the first fetch: a slow one shows as not complete
    # PID 1 ignores SIGTERM without a handler: stop between polls (a download in flight is simply
    # abandoned; its staging folder is never published and is removed at the next start).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: syncer.stop.set())
    return syncer.run()


def _sync_status(args: argparse.Namespace) -> int:
    from . import syncstate

    ok, line = syncstate.verdict(syncstate.read(_state_file()), ready=args.ready)
    print(line, flush=True)
    return contract.EXIT_OK if ok else contract.EXIT_NOT_READY


def _serve(args: argparse.Namespace) -> int:
    from . import supervise
    from .serve import build_command, settings_from_env

    argv = build_command(settings_from_env(os.environ, args.extra_args))
    try:
        return supervise.run(argv)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None


def _ready(args: argparse.Namespace) -> int:
    from .ready import ReadySettings, check

    verdict = check(ReadySettings(_config_dir(), args.host, args.port, args.timeout_seconds))
    # kubelet keeps a failed probe's output in the pod's events: say which version and why.
    for line in verdict.lines:
        print(line, flush=True)
    return contract.EXIT_OK if verdict.ready else contract.EXIT_NOT_READY


def _drain(args: argparse.Namespace) -> int:
    # Kubelet runs this before it signals the container: the pod is already out of the endpoints, but
    # proxies notice late and requests may be in flight. The image has no shell, hence no `sleep`.
    if args.seconds < 0:
        raise UsageError("--seconds must not be negative")
    log.info("draining for %.0fs before TF Serving is stopped", args.seconds)
    time.sleep(args.seconds)
    return contract.EXIT_OK


_COMMANDS = {
    contract.CMD_SYNC: _sync,
    contract.CMD_SYNC_STATUS: _sync_status,
    contract.CMD_FETCH: _fetch,
    contract.CMD_SERVE: _serve,
    contract.CMD_READY: _ready,
    contract.CMD_DRAIN: _drain,
}
# Probes never write the termination message: a failed probe must not hide a crash's reason.
_PROBES = (contract.CMD_READY, contract.CMD_SYNC_STATUS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command != contract.CMD_SERVE and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra_args = extra
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    name = f"{contract.EXECUTABLE} {args.command}"
    try:
        return _COMMANDS[args.command](args)
    except ServingError as exc:
        # A failed probe must not overwrite the reason a crashed container left behind.
        if args.command not in _PROBES:
            report_failure(name, exc.reason, args.termination_message_path)
        else:
            print(f"not ready: {exc.reason}", flush=True)
            return contract.EXIT_NOT_READY
        return exc.exit_code
    except Exception as exc:
        from .retry import describe

        if args.command in _PROBES:
            print(f"not ready: {describe(exc)}", flush=True)
            return contract.EXIT_NOT_READY
        code = contract.EXIT_FETCH_FAILED if args.command in (contract.CMD_FETCH, contract.CMD_SYNC) else 1
        log.exception("unexpected error")
        report_failure(name, describe(exc), args.termination_message_path)
        return code


if __name__ == "__main__":
    sys.exit(main())
