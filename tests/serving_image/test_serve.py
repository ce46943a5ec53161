"""`serve`: the exact tensorflow_model_server command line, flag validation, and signal handling
(with a stand-in binary, since TF Serving itself cannot run here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelserve import contract
from modelserve_serving.errors import UsageError
from modelserve_serving.serve import ServeSettings, build_command, settings_from_env

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    d = tmp_path / "etc"
    d.mkdir()
    (d / contract.MODEL_CONFIG_FILE).write_text('model_config_list { config { name: "m" } }\n')
    (d / contract.MONITORING_CONFIG_FILE).write_text('prometheus_config { enable: true path: "/x" }\n')
    return d


def test_default_command_line(config_dir: Path) -> None:
    argv = build_command(ServeSettings(config_dir, enable_batching=False, enable_warmup=False))
    assert argv == [
        "tensorflow_model_server",
        "--port=8500",
        "--rest_api_port=8501",
        f"--model_config_file={config_dir}/models.config",
        "--model_config_file_poll_wait_seconds=10",
        f"--monitoring_config_file={config_dir}/monitoring.config",
        "--enable_model_warmup=false",
    ]


def test_batching_warmup_and_extra_args(config_dir: Path) -> None:
    (config_dir / contract.BATCHING_CONFIG_FILE).write_text("max_batch_size { value: 8 }\n")
    extra = (
        "--tensorflow_intra_op_parallelism=2",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=60000",
    )
    argv = build_command(
        ServeSettings(config_dir, enable_batching=True, enable_warmup=True, extra_args=extra)
    )
    assert argv == [
        "tensorflow_model_server",
        "--port=8500",
        "--rest_api_port=8501",
        f"--model_config_file={config_dir}/models.config",
        "--model_config_file_poll_wait_seconds=10",
        f"--monitoring_config_file={config_dir}/monitoring.config",
        "--enable_batching=true",
        f"--batching_parameters_file={config_dir}/batching.config",
        "--enable_model_warmup=true",
        "--tensorflow_intra_op_parallelism=2",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=60000",
    ]


def test_command_uses_the_contract_ports() -> None:
    # The Service and probes are rendered from the same constants.
    assert (contract.GRPC_PORT, contract.REST_PORT) == (8500, 8501)


def test_monitoring_flag_is_left_out_when_no_monitoring_config_is_mounted(config_dir: Path) -> None:
    (config_dir / contract.MONITORING_CONFIG_FILE).unlink()
    argv = build_command(ServeSettings(config_dir, enable_batching=False, enable_warmup=True))
    assert not any(a.startswith("--monitoring_config_file") for a in argv)


def test_settings_from_env(config_dir: Path) -> None:
    env = {
        contract.ENV_CONFIG_DIR: str(config_dir),
        contract.ENV_ENABLE_BATCHING: "false",
        contract.ENV_ENABLE_WARMUP: "True",
    }
    settings = settings_from_env(env, ["--file_system_poll_wait_seconds=5"])
    assert settings == ServeSettings(config_dir, False, True, ("--file_system_poll_wait_seconds=5",))
    with pytest.raises(UsageError, match="must be true or false"):
        settings_from_env({contract.ENV_ENABLE_BATCHING: "maybe"}, [])


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("--port=9000", "cannot be overridden"),
        ("--rest_api_port=1", "cannot be overridden"),
        ("--model_config_file=/tmp/x", "cannot be overridden"),
        ("--model_config_file_poll_wait_seconds=1", "cannot be overridden"),
        ("--monitoring_config_file=/x", "cannot be overridden"),
        ("--batching_parameters_file=/x", "cannot be overridden"),
        ("--enable_batching=true", "cannot be overridden"),
        ("--enable_model_warmup=false", "cannot be overridden"),
        ("--model_base_path=/x", "cannot be overridden"),
        ("--enable_batching", "--name=value"),
        ("-v=1", "--name=value"),
        ("positional", "--name=value"),
        ("--Upper=1", "--name=value"),
        ("--flag", "--name=value"),
        ("--flag=", "non-empty"),
        ("--flag=a\nb", "one-line"),
    ],
)
def test_invalid_extra_args_are_refused(config_dir: Path, arg: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build_command(ServeSettings(config_dir, False, False, (arg,)))


def test_duplicate_extra_flag_is_refused(config_dir: Path) -> None:
    with pytest.raises(UsageError, match="more than once"):
        build_command(ServeSettings(config_dir, False, False, ("--a=1", "--a=2")))


def test_batching_without_its_config_file_is_refused(config_dir: Path) -> None:
    with pytest.raises(UsageError, match=r"batching\.config is missing"):
        build_command(ServeSettings(config_dir, enable_batching=True, enable_warmup=False))


def test_missing_model_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is the ConfigMap mounted"):
        build_command(ServeSettings(tmp_path, False, False))


FAKE_SERVER = """\
import json, signal, sys
with open(sys.argv[0] + ".args", "w") as f:
    json.dump(sys.argv[1:], f)
def stop(signum, frame):
    print("fake server got", signal.Signals(signum).name, flush=True)
    sys.exit(42)
signal.signal(signal.SIGTERM, stop)
print("fake server up", flush=True)
while True:
    signal.pause()  # until SIGTERM
"""


def _serve(tmp_path: Path, config_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], Path, Path]:
    fake = tmp_path / "fake_model_server"
    fake.write_text(f"#!{sys.executable}\n{FAKE_SERVER}")
    fake.chmod(0o755)
    termination = tmp_path / "termination-log"
    env = {
        **os.environ,
        contract.ENV_CONFIG_DIR: str(config_dir),
        "MODELSERVE_SERVER_BINARY": str(fake),
        contract.ENV_ENABLE_BATCHING: "false",
        contract.ENV_ENABLE_WARMUP: "false",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelserve_serving",
            "--termination-message-path",
            str(termination),
            "serve",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, fake, termination


def test_sigterm_is_forwarded_and_the_exit_code_passed_on(tmp_path: Path, config_dir: Path) -> None:
    proc, fake, _ = _serve(tmp_path, config_dir, "--tensorflow_session_parallelism=1")
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while "fake server up" not in proc.stdout.readline():
        assert time.monotonic() < deadline, "fake server did not start"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 42
    assert "fake server got SIGTERM" in out
    args = Path(str(fake) + ".args").read_text()
    assert '"--tensorflow_session_parallelism=1"' in args and '"--port=8500"' in args


def test_bad_extra_arg_exits_with_usage_and_termination_message(tmp_path: Path, config_dir: Path) -> None:
    proc, _, termination = _serve(tmp_path, config_dir, "--port=1")
    proc.communicate(timeout=30)
    assert proc.returncode == contract.EXIT_USAGE
    assert termination.read_text() == (
        "extra argument --port is set by the serving image and cannot be overridden\n"
    )
