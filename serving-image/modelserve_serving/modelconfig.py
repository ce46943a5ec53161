"""What the image needs to know from TF Serving's `models.config`: each model's name, base path,
version policy and labels.

Parsed with protobuf's own text-format parser into TF Serving's generated `ModelServerConfig`
(`tensorflow-serving-api`, installed into the image with `--no-deps`: its config protos need only
`protobuf`, not TensorFlow), so the image reads exactly the text TF Serving reads, and refuses what
TF Serving would refuse (unknown fields, two members of the policy oneof, bad syntax).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from .errors import UsageError

log = logging.getLogger(__name__)

LATEST, ALL, SPECIFIC = "latest", "all", "specific"


class ModelConfigError(ValueError):
    """The text is not a ModelServerConfig the image can serve from."""


@dataclass(frozen=True)
class VersionPolicy:
    kind: str  # LATEST, ALL or SPECIFIC
    num_versions: int = 1  # LATEST only
    versions: tuple[int, ...] = ()  # SPECIFIC only

    def served(self, available: list[int]) -> list[int]:
        """The versions TF Serving aspires to serve, given the numeric folders it finds."""
        if self.kind == SPECIFIC:
            return sorted(self.versions)
        ordered = sorted(available)
        return ordered if self.kind == ALL else ordered[-self.num_versions :]


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    policy: VersionPolicy
    labels: dict[str, int] = field(default_factory=dict)


def _policy(config: Any) -> VersionPolicy:
    policy = config.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind is None or kind == LATEST:
        # An absent policy, or `latest {}`, is TF Serving's default: the single latest version
        # (num_versions 0 means 1 there).
        count = policy.latest.num_versions or 1
        if count < 1:
            raise ModelConfigError("latest.num_versions must be at least 1")
        return VersionPolicy(LATEST, count)
    if kind == SPECIFIC:
        versions = tuple(policy.specific.versions)
        if not versions:
            raise ModelConfigError("specific.versions must list at least one version")
        return VersionPolicy(SPECIFIC, versions=versions)
    return VersionPolicy(ALL)


def parse_models(text: str) -> list[ModelConfig]:
    """Raises ModelConfigError when the text is not a ModelServerConfig with a model_config_list."""
    try:
        message = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as exc:
        raise ModelConfigError(str(exc)) from None
    if message.WhichOneof("config") != "model_config_list":
        raise ModelConfigError("no model_config_list")
    models = []
    for config in message.model_config_list.config:
        if not config.name:
            raise ModelConfigError("a model config has no name")
        labels = {str(k): int(v) for k, v in config.version_labels.items()}
        models.append(ModelConfig(config.name, config.base_path, _policy(config), labels))
    return models


def load(path: Path) -> list[ModelConfig]:
    """Reads and parses the mounted model config file; any problem is a UsageError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read model config {path}: {exc.strerror or exc}") from None
    try:
        return parse_models(text)
    except ModelConfigError as exc:
        raise UsageError(f"model config {path} is not a valid ModelServerConfig: {exc}") from None


def select(policy: VersionPolicy, available: list[int], complete: Callable[[int], bool]) -> list[int]:
    """The versions to serve: `specific` as listed; `all` every complete folder; `latest N` the N
    highest complete folders of one listing (a folder still being uploaded, without its SavedModel,
    is passed over, as TF Serving would fail on it)."""
    if policy.kind == SPECIFIC:
        return sorted(set(policy.versions))
    ordered = sorted(available, reverse=True)
    if policy.kind == ALL:
        return sorted(v for v in ordered if complete(v))
    chosen: list[int] = []
    for version in ordered:
        if len(chosen) == policy.num_versions:
            break
        if complete(version):
            chosen.append(version)
        else:
            log.warning("version %d has no saved_model.pb yet (upload in progress?): skipped", version)
    return sorted(chosen)
