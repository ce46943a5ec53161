"""What the image needs to know from TF Serving's `models.config`: each model's name, base path,
version policy and labels. Read with the stdlib parser in `textproto` (see there for why)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .textproto import Message, TextProtoError, parse

LATEST, ALL, SPECIFIC = "latest", "all", "specific"


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


def _policy(config: Message) -> VersionPolicy:
    policy = config.message("model_version_policy")
    if policy is None:
        # TF Serving's default: the single latest version.
        return VersionPolicy(LATEST, 1)
    given = [k for k in (LATEST, ALL, SPECIFIC) if k in policy.fields]
    if len(given) != 1 or len(policy.fields) != 1:
        raise TextProtoError("model_version_policy must hold exactly one of latest, all, specific")
    kind = given[0]
    body = policy.message(kind) or Message()
    if kind == LATEST:
        count = body.integer("num_versions", 1)
        if count < 1:
            raise TextProtoError("latest.num_versions must be at least 1")
        return VersionPolicy(LATEST, count)
    if kind == SPECIFIC:
        versions = tuple(body.integers("versions"))
        if not versions:
            raise TextProtoError("specific.versions must list at least one version")
        return VersionPolicy(SPECIFIC, versions=versions)
    return VersionPolicy(ALL)


def parse_models(text: str) -> list[ModelConfig]:
    """Raises TextProtoError when the text is not a ModelServerConfig with a model_config_list."""
    root = parse(text)
    unknown = set(root.fields) - {"model_config_list"}
    if unknown:
        raise TextProtoError(f"unexpected top-level field(s): {', '.join(sorted(unknown))}")
    lst = root.message("model_config_list")
    if lst is None:
        raise TextProtoError("no model_config_list")
    models = []
    for config in lst.messages("config"):
        name = config.string("name")
        if not name:
            raise TextProtoError("a model config has no name")
        labels = {}
        for entry in config.messages("version_labels"):
            labels[entry.string("key")] = entry.integer("value")
        models.append(ModelConfig(name, config.string("base_path"), _policy(config), labels))
    return models


def load(path: Path) -> list[ModelConfig]:
    """Reads and parses the mounted model config file; any problem is a UsageError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read model config {path}: {exc.strerror or exc}") from None
    try:
        return parse_models(text)
    except TextProtoError as exc:
        raise UsageError(f"model config {path} is not a valid ModelServerConfig: {exc}") from None
