"""`modelserve-serving {fetch,serve,ready,drain}`: the serving image's single executable."""

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
    contract.CMD_FETCH: _fetch,
    contract.CMD_SERVE: _serve,
    contract.CMD_READY: _ready,
    contract.CMD_DRAIN: _drain,
}


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
        if args.command != contract.CMD_READY:
            report_failure(name, exc.reason, args.termination_message_path)
        else:
            print(f"not ready: {exc.reason}", flush=True)
            return contract.EXIT_NOT_READY
        return exc.exit_code
    except Exception as exc:
        from .retry import describe

        if args.command == contract.CMD_READY:
            print(f"not ready: {describe(exc)}", flush=True)
            return contract.EXIT_NOT_READY
        code = contract.EXIT_FETCH_FAILED if args.command == contract.CMD_FETCH else 1
        log.exception("unexpected error")
        report_failure(name, describe(exc), args.termination_message_path)
        return code


if __name__ == "__main__":
    sys.exit(main())
