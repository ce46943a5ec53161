"""`modelserve-serving serve`: the exact `tensorflow_model_server` command line for a pod.

The flags the operator's contract depends on (ports, config files, poll interval) are set here and
cannot be overridden by `serving.extraArgs`; extra flags must be `--name=value`, so a value can never
be mistaken for another flag or positional argument.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelserve import contract

from .errors import UsageError

SERVER_BINARY = "tensorflow_model_server"
# Test and debugging hook: run another binary in place of tensorflow_model_server.
ENV_SERVER_BINARY = "MODELSERVE_SERVER_BINARY"

# Flags set by the entrypoint (or meaningless with a model config file): never from extraArgs.
RESERVED_FLAGS = frozenset(
    {
        "port",
        "rest_api_port",
        "model_config_file",
        "model_config_file_poll_wait_seconds",
        "monitoring_config_file",
        "enable_batching",
        "batching_parameters_file",
        "enable_model_warmup",
        "model_name",
        "model_base_path",
    }
)
_FLAG = re.compile(r"--(?P<name>[a-z][a-z0-9_]*)=(?P<value>.*)", re.DOTALL)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class ServeSettings:
    config_dir: Path
    enable_batching: bool
    enable_warmup: bool
    extra_args: tuple[str, ...] = ()
    binary: str = SERVER_BINARY


def env_flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"{name} must be true or false, not {environ[name]!r}")


def settings_from_env(environ: Mapping[str, str], extra_args: Sequence[str]) -> ServeSettings:
    return ServeSettings(
        config_dir=Path(environ.get(contract.ENV_CONFIG_DIR) or contract.CONFIG_DIR),
        enable_batching=env_flag(environ, contract.ENV_ENABLE_BATCHING),
        enable_warmup=env_flag(environ, contract.ENV_ENABLE_WARMUP),
        extra_args=tuple(extra_args),
        binary=environ.get(ENV_SERVER_BINARY) or SERVER_BINARY,
    )


def validate_extra_args(args: Sequence[str]) -> None:
    seen: set[str] = set()
    for arg in args:
        match = _FLAG.fullmatch(arg)
        if match is None:
            raise UsageError(f"extra argument {arg!r} must have the form --name=value (lower-case name)")
        name, value = match["name"], match["value"]
        if name in RESERVED_FLAGS:
            raise UsageError(f"extra argument --{name} is set by the serving image and cannot be overridden")
        if name in seen:
            raise UsageError(f"extra argument --{name} is given more than once")
        if not value or any(ch in value for ch in "\n\r\0"):
            raise UsageError(f"extra argument --{name} needs a one-line, non-empty value")
        seen.add(name)


def build_command(settings: ServeSettings) -> list[str]:
    """The argv to exec; checks that the files it points at are mounted."""
    validate_extra_args(settings.extra_args)
    model_config = settings.config_dir / contract.MODEL_CONFIG_FILE
    if not model_config.is_file():
        raise UsageError(f"model config {model_config} is missing (is the ConfigMap mounted?)")
    argv = [
        settings.binary,
        f"--port={contract.GRPC_PORT}",
        f"--rest_api_port={contract.REST_PORT}",
        f"--model_config_file={model_config}",
        f"--model_config_file_poll_wait_seconds={contract.MODEL_CONFIG_POLL_SECONDS}",
    ]
    monitoring = settings.config_dir / contract.MONITORING_CONFIG_FILE
    if monitoring.is_file():
        argv.append(f"--monitoring_config_file={monitoring}")
    if settings.enable_batching:
        batching = settings.config_dir / contract.BATCHING_CONFIG_FILE
        if not batching.is_file():
            raise UsageError(f"{contract.ENV_ENABLE_BATCHING} is true but {batching} is missing")
        argv += ["--enable_batching=true", f"--batching_parameters_file={batching}"]
    # TF Serving warms up by default whenever assets.extra/tf_serving_warmup_requests exists; say it
    # explicitly either way so the pod does what the spec says.
    argv.append(f"--enable_model_warmup={'true' if settings.enable_warmup else 'false'}")
    argv += settings.extra_args
    return argv
