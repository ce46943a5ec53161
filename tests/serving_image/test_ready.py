"""`ready` against a loopback stand-in for TF Serving's REST model status API.

The stand-in (serving_kit.StatusStub) answers with the JSON shape TF Serving documents for
`GET /v1/models/<name>`; it is not TF Serving, which cannot run on these machines. What is proven is
our reading of that document and of the policy, not TF Serving's own behaviour."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_kit import StatusStub, free_port

from modelserve import contract
from modelserve_serving.ready import ReadySettings, check

pytestmark = pytest.mark.unit


@pytest.fixture
def stub() -> Iterator[StatusStub]:
    with StatusStub().running() as server:
        yield server


def setup(tmp_path: Path, policy: str, versions: list[int], name: str = "resnet") -> Path:
    base = tmp_path / "models" / name
    for v in versions:
        (base / str(v)).mkdir(parents=True)
    (base / "not-a-version").mkdir(parents=True)
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    (config_dir / contract.MODEL_CONFIG_FILE).write_text(
        f'model_config_list {{\n  config {{\n    name: "{name}"\n    base_path: "{base}"\n'
        f'    model_platform: "tensorflow"\n    model_version_policy {{ {policy} }}\n  }}\n}}\n'
    )
    return config_dir


def verdict(config_dir: Path, stub: StatusStub) -> tuple[bool, str]:
    v = check(ReadySettings(config_dir, port=stub.port))
    return v.ready, "\n".join(v.lines)


def test_latest_two_available(tmp_path: Path, stub: StatusStub) -> None:
    config = setup(tmp_path, "latest { num_versions: 2 }", [1, 2, 3])
    stub.set("resnet", (3, "AVAILABLE"), (2, "AVAILABLE"), (1, "END"))
    assert verdict(config, stub) == (True, "model resnet: version(s) 2, 3 AVAILABLE")


def test_latest_one_still_loading(tmp_path: Path, stub: StatusStub) -> None:
    config = setup(tmp_path, "latest { num_versions: 2 }", [1, 2, 3])
    stub.set("resnet", (3, "LOADING"), (2, "AVAILABLE"))
    assert verdict(config, stub) == (False, "model resnet: not ready: version 3: LOADING")


def test_default_latest_policy_is_one_version(tmp_path: Path, stub: StatusStub) -> None:
    config = setup(tmp_path, "latest {}", [4, 7])
    stub.set("resnet", (7, "AVAILABLE"))
    assert verdict(config, stub)[0] is True


def test_failed_load_reports_the_error(tmp_path: Path, stub: StatusStub) -> None:
    config = setup(tmp_path, "all {}", [1, 2])
    error = "Could not find SavedModel .pb or .pbtxt at supplied export directory"
    stub.set("resnet", (1, "AVAILABLE"), (2, "END", "INVALID_ARGUMENT", error))
    ready, text = verdict(config, stub)
    assert not ready
    assert text == f"model resnet: not ready: version 2: END (INVALID_ARGUMENT: {error})"


def test_specific_versions_must_all_be_available(tmp_path: Path, stub: StatusStub) -> None:
    config = setup(tmp_path, "specific { versions: 1 versions: 3 }", [1, 2, 3])
    stub.set("resnet", (1, "AVAILABLE"))
    expected = "model resnet: not ready: version 3: not reported by TF Serving yet"
    assert verdict(config, stub) == (False, expected)
    stub.set("resnet", (1, "AVAILABLE"), (3, "AVAILABLE"))
    assert verdict(config, stub)[0] is True


def test_model_not_yet_known_to_tf_serving(tmp_path: Path, stub: StatusStub) -> None:
    config = setup(tmp_path, "all {}", [1])
    ready, text = verdict(config, stub)
    assert not ready
    assert "TF Serving answered HTTP 404: Servable not found for request: Latest(resnet)" in text


def test_no_version_folders(tmp_path: Path, stub: StatusStub) -> None:
    config = setup(tmp_path, "latest { num_versions: 1 }", [])
    stub.set("resnet", (1, "AVAILABLE"))
    ready, text = verdict(config, stub)
    assert not ready and "no version folders under" in text


def test_server_not_listening(tmp_path: Path) -> None:
    config = setup(tmp_path, "all {}", [1])
    v = check(ReadySettings(config, port=free_port(), timeout_seconds=0.5))
    assert not v.ready and "not reachable" in v.lines[0]


def test_cli_exit_codes_and_output(tmp_path: Path, stub: StatusStub) -> None:
    config = setup(tmp_path, "latest { num_versions: 1 }", [5])
    stub.set("resnet", (5, "LOADING"))

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "modelserve_serving", "ready", "--port", str(stub.port)],
            env={"MODELSERVE_CONFIG_DIR": str(config), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    not_ready = run()
    assert (not_ready.returncode, not_ready.stdout) == (
        contract.EXIT_NOT_READY,
        "model resnet: not ready: version 5: LOADING\n",
    )
    stub.set("resnet", (5, "AVAILABLE"))
    ready = run()
    assert (ready.returncode, ready.stdout) == (contract.EXIT_OK, "model resnet: version(s) 5 AVAILABLE\n")


def test_unreadable_model_config_is_not_ready(tmp_path: Path, stub: StatusStub) -> None:
    (tmp_path / contract.MODEL_CONFIG_FILE).write_text("model_config_list { config { name: ")
    result = subprocess.run(
        [sys.executable, "-m", "modelserve_serving", "ready", "--port", str(stub.port)],
        env={"MODELSERVE_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == contract.EXIT_NOT_READY
    assert result.stdout.startswith("not ready: model config")
