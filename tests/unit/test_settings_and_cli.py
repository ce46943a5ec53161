"""Operator settings from the environment and flags; `modelserve render`, `modelserve run` and --version."""

from __future__ import annotations

import importlib.metadata
import io
import os
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from modelserve import __version__
from modelserve.__main__ import main
from modelserve.settings import DEFAULT_CPU_IMAGE, DEFAULT_GPU_IMAGE, ENV_PREFIX, Settings, from_env

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MODELSERVE_* variable of the machine running the tests leaks in."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


# --- settings --------------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = from_env({})
    assert settings == Settings()
    assert settings.cpu_image == DEFAULT_CPU_IMAGE
    assert settings.gpu_image == DEFAULT_GPU_IMAGE
    assert settings.namespaces == ()
    assert (settings.workers, settings.resync_seconds, settings.retry_delay_seconds) == (8, 300.0, 2.0)
    assert (settings.metrics_port, settings.health_port) == (8080, 8081)


def test_from_env_reads_every_prefixed_variable() -> None:
    env = {
        "MODELSERVE_CPU_IMAGE": "reg.example/tfserving:cpu",
        "MODELSERVE_GPU_IMAGE": "reg.example/tfserving:gpu",
        "MODELSERVE_NAMESPACES": " ml, team-b,,serving ",
        "MODELSERVE_RESYNC_SECONDS": "30",
        "MODELSERVE_JSON_LOGS": "true",
        "MODELSERVE_METRICS_PORT": "0",
        "MODELSERVE_HEALTH_PORT": "9000",
        "MODELSERVE_WATCH_STALL_SECONDS": "120.5",
        "MODELSERVE_WORKERS": "4",
        "MODELSERVE_RETRY_DELAY_SECONDS": "0.5",
        "MODELSERVE_UNRELATED": "ignored",
        "WORKERS": "99",
    }
    assert from_env(env) == Settings(
        cpu_image="reg.example/tfserving:cpu",
        gpu_image="reg.example/tfserving:gpu",
        namespaces=("ml", "team-b", "serving"),
        resync_seconds=30.0,
        json_logs=True,
        metrics_port=0,
        health_port=9000,
        watch_stall_seconds=120.5,
        workers=4,
        retry_delay_seconds=0.5,
    )


def test_overrides_win_and_none_means_not_given() -> None:
    env = {"MODELSERVE_WORKERS": "4", "MODELSERVE_NAMESPACES": "a,b", "MODELSERVE_JSON_LOGS": "1"}
    settings = from_env(env, workers=16, namespaces=("c",), json_logs=None, cpu_image=None)
    assert settings.workers == 16
    assert settings.namespaces == ("c",)
    assert settings.json_logs is True
    assert settings.cpu_image == DEFAULT_CPU_IMAGE
    assert from_env({}, namespaces="x, y").namespaces == ("x", "y")


def test_from_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELSERVE_NAMESPACES", "ml")
    monkeypatch.setenv("MODELSERVE_WORKERS", "2")
    settings = from_env()
    assert (settings.namespaces, settings.workers) == (("ml",), 2)


def test_empty_namespace_list_means_every_namespace() -> None:
    assert from_env({"MODELSERVE_NAMESPACES": ""}).namespaces == ()
    assert from_env({"MODELSERVE_NAMESPACES": " , "}).namespaces == ()


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"MODELSERVE_WORKERS": "0"}, "workers"),
        ({"MODELSERVE_WORKERS": "65"}, "workers"),
        ({"MODELSERVE_WORKERS": "many"}, "workers"),
        ({"MODELSERVE_RESYNC_SECONDS": "0"}, "resync_seconds"),
        ({"MODELSERVE_RESYNC_SECONDS": "-5"}, "resync_seconds"),
        ({"MODELSERVE_METRICS_PORT": "70000"}, "metrics_port"),
        ({"MODELSERVE_HEALTH_PORT": "-1"}, "health_port"),
        ({"MODELSERVE_METRICS_ADDRESS": "localhost"}, "metrics_address"),
        ({"MODELSERVE_JSON_LOGS": "maybe"}, "json_logs"),
        ({"MODELSERVE_WATCH_STALL_SECONDS": "0"}, "watch_stall_seconds"),
        ({"MODELSERVE_RETRY_DELAY_SECONDS": "soon"}, "retry_delay_seconds"),
    ],
)
def test_invalid_values_raise_naming_the_field(env: dict[str, str], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        from_env(env)
    assert [e["loc"] for e in info.value.errors()] == [(field,)]


def test_unknown_overrides_are_refused_and_settings_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError, match="worker_count"):
        from_env({}, worker_count=3)
    settings = from_env({})
    with pytest.raises(pydantic.ValidationError):
        settings.workers = 3  # type: ignore[misc]


def test_run_refuses_invalid_settings_before_starting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import kopf

    def never(**_: object) -> None:
        raise AssertionError("the operator must not start with invalid settings")

    monkeypatch.setattr(kopf, "run", never)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # `run` exports its settings on success
    assert main(["run", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modelserve run: invalid settings:")
    assert "workers" in err


def test_run_passes_the_leader_election_flags_to_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    import kopf

    started: list[dict[str, object]] = []
    monkeypatch.setattr(kopf, "run", lambda **kwargs: started.append(kwargs))
    monkeypatch.setattr(os, "environ", dict(os.environ))
    args = ["run", "-n", "ml", "--no-leader-election", "--lease-name", "ha", "--lease-namespace", "ops"]
    args += ["--lease-duration-seconds", "30", "--renew-deadline-seconds", "20"]
    args += ["--retry-period-seconds", "4", "--identity", "replica-a"]
    assert main(args) == 0
    settings = from_env()
    assert settings.leader_election is False
    assert (settings.lease_name, settings.lease_namespace, settings.identity) == ("ha", "ops", "replica-a")
    assert (settings.lease_duration_seconds, settings.renew_deadline_seconds) == (30.0, 20.0)
    assert settings.retry_period_seconds == 4.0
    assert started and started[0]["standalone"] is True  # kopf's peering stays off either way
    assert main(["run", "--renew-deadline-seconds", "40"]) == 2  # not beyond the lease duration (30)


# --- modelserve render and --version ---------------------------------------------------------------


def render(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["render", *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return [doc for doc in yaml.safe_load_all(out) if doc is not None]


@pytest.mark.parametrize(
    ("example", "kinds"),
    [
        ("cpu.yaml", ["ConfigMap", "Service", "Deployment"]),
        ("gpu.yaml", ["ConfigMap", "Service", "Deployment", "PodDisruptionBudget"]),
        ("versions-labels.yaml", ["ConfigMap", "Service", "Deployment", "PodDisruptionBudget"]),
        (
            "autoscaling.yaml",
            ["ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler"],
        ),
        ("monitoring.yaml", ["ConfigMap", "Service", "Deployment", "ServiceMonitor"]),
    ],
)
def test_render_examples(capsys: pytest.CaptureFixture[str], example: str, kinds: list[str]) -> None:
    name = yaml.safe_load((EXAMPLES / example).read_text())["metadata"]["name"]
    docs = render(capsys, str(EXAMPLES / example))
    assert [d["kind"] for d in docs] == kinds
    assert [d["metadata"]["name"] for d in docs] == [f"{name}-tfserving"] + [name] * (len(kinds) - 1)
    assert {d["metadata"]["namespace"] for d in docs} == {"default"}
    for doc in docs:
        (ref,) = doc["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["controller"]) == ("ModelDeployment", name, True)


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == [
        "autoscaling.yaml",
        "cached.yaml",
        "cpu.yaml",
        "gpu.yaml",
        "monitoring.yaml",
        "versions-labels.yaml",
    ]


def test_render_picks_images_and_replicas(capsys: pytest.CaptureFixture[str]) -> None:
    def deployment(example: str, *args: str) -> dict[str, Any]:
        docs = render(capsys, str(EXAMPLES / example), *args)
        return next(d for d in docs if d["kind"] == "Deployment")

    cpu = deployment("cpu.yaml")
    assert cpu["spec"]["replicas"] == 1
    assert cpu["spec"]["template"]["spec"]["containers"][0]["image"] == DEFAULT_CPU_IMAGE
    gpu = deployment("gpu.yaml")
    assert gpu["spec"]["template"]["spec"]["containers"][0]["image"] == DEFAULT_GPU_IMAGE
    assert gpu["spec"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"] == (
        "NVIDIA-A100-SXM4-80GB"
    )
    assert "replicas" not in deployment("autoscaling.yaml")["spec"]  # the HPA owns it


def test_render_reads_settings_namespace_and_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELSERVE_CPU_IMAGE", "reg.example/tfserving:cpu")
    text = (EXAMPLES / "cpu.yaml").read_text() + "\n---\n" + (EXAMPLES / "autoscaling.yaml").read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(text + "---\n"))
    docs = render(capsys, "-", "-n", "ml")
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("ConfigMap", "half-plus-two-tfserving"),
        ("Service", "half-plus-two"),
        ("Deployment", "half-plus-two"),
        ("ConfigMap", "bert-autoscaled-tfserving"),
        ("Service", "bert-autoscaled"),
        ("Deployment", "bert-autoscaled"),
        ("PodDisruptionBudget", "bert-autoscaled"),
        ("HorizontalPodAutoscaler", "bert-autoscaled"),
    ]
    assert {d["metadata"]["namespace"] for d in docs} == {"ml"}
    images = {
        d["spec"]["template"]["spec"]["containers"][0]["image"] for d in docs if d["kind"] == "Deployment"
    }
    assert images == {"reg.example/tfserving:cpu"}


def test_render_keeps_the_manifest_namespace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    manifest = yaml.safe_load((EXAMPLES / "cpu.yaml").read_text())
    manifest["metadata"]["namespace"] = "team-a"
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(manifest))
    docs = render(capsys, str(path), "-n", "ignored")
    assert {d["metadata"]["namespace"] for d in docs} == {"team-a"}


def test_render_of_an_invalid_manifest_exits_1_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = yaml.safe_load((EXAMPLES / "cpu.yaml").read_text())
    manifest["spec"]["model"]["storageUri"] = "ftp://models.example.com/half_plus_two"
    manifest["metadata"]["name"] = "broken"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(manifest))
    assert main(["render", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("modelserve render: broken: ")
    assert "spec.model.storageUri" in err


def test_render_of_a_manifest_without_required_fields(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "empty-spec.yaml"
    path.write_text(
        "apiVersion: modelserve.dev/v1alpha1\nkind: ModelDeployment\nmetadata: {name: x}\nspec: {}\n"
    )
    assert main(["render", str(path)]) == 1
    assert "spec.model" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"modelserve-operator {__version__}\n"
    assert __version__ == importlib.metadata.version("modelserve-operator")


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err
