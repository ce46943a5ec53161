"""TF Serving's text-proto configuration files, rendered from a ModelDeployment (pure).

Three files land in the `<name>-tfserving` ConfigMap:
- the model config (`ModelServerConfig`), which TF Serving re-reads every few seconds, so version
  policy and label changes apply without restarting pods;
- the monitoring config (`MonitoringConfig`) and the batching parameters (`BatchingParameters`),
  which TF Serving reads only at start-up, so the Deployment's rollout hash covers them.

Output is deterministic (sorted labels, sorted versions, fixed layout) so an unchanged spec renders
byte-identical files and the apply is a no-op.
"""

from __future__ import annotations

from typing import Final

from modelserve import api, contract
from modelserve.builders.model_source import base_path

INDENT: Final = "  "

# Escaped the way protobuf's text format does with as_utf8=True (google.protobuf.text_encoding.
# CEscape): quotes, backslashes and control characters escaped, other text kept as UTF-8, which
# every text-proto parser (TF Serving's C++ one, the image's own) reads back unchanged.
_ESCAPES: Final = {
    "\\": "\\\\",
    '"': '\\"',
    "'": "\\'",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def quote(value: str) -> str:
    """A text-proto string literal; other control characters become octal escapes."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\{ord(char):03o}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def served_versions(policy: api.VersionPolicy) -> tuple[str, int | tuple[int, ...] | None]:
    """The effective policy as (kind, argument): ("latest", N), ("all", None) or ("specific", (1, 2)).

    Admission guarantees exactly one is set; if none is (a spec that slipped past validation) the
    API's default, the newest version, applies rather than failing the whole reconcile.
    """
    if policy.specific is not None:
        return "specific", tuple(sorted(set(policy.specific.versions)))
    if policy.all is not None:
        return "all", None
    count = policy.latest.count if policy.latest is not None else 1
    return "latest", count


def served_versions_summary(md: api.ModelDeployment) -> str:
    """Short human form for status and the VERSIONS printer column: 'latest 2', 'all' or '1,2'."""
    kind, arg = served_versions(md.spec.model.version_policy)
    if kind == "latest":
        return f"latest {arg}"
    if kind == "all":
        return "all"
    assert isinstance(arg, tuple)
    return ",".join(str(v) for v in arg)


def _version_policy_lines(policy: api.VersionPolicy) -> list[str]:
    kind, arg = served_versions(policy)
    if kind == "latest":
        return ["latest {", f"{INDENT}num_versions: {arg}", "}"]
    if kind == "all":
        return ["all {}"]
    assert isinstance(arg, tuple)
    return ["specific {", *(f"{INDENT}versions: {v}" for v in arg), "}"]


def _indent(lines: list[str], depth: int = 1) -> list[str]:
    return [INDENT * depth + line for line in lines]


def render_model_config(md: api.ModelDeployment) -> str:
    """TF Serving's `--model_config_file`: one model, its base path, version policy and labels."""
    config = [
        f"name: {quote(md.model_name)}",
        f"base_path: {quote(base_path(md))}",
        'model_platform: "tensorflow"',
        "model_version_policy {",
        *_indent(_version_policy_lines(md.spec.model.version_policy)),
        "}",
    ]
    for label, version in sorted((md.spec.model.version_labels or {}).items()):
        config += ["version_labels {", f"{INDENT}key: {quote(label)}", f"{INDENT}value: {version}", "}"]
    lines = ["model_config_list {", *_indent(["config {", *_indent(config), "}"]), "}"]
    return "\n".join(lines) + "\n"


def render_monitoring_config() -> str:
    """TF Serving's `--monitoring_config_file`: Prometheus metrics on the REST port."""
    return f"prometheus_config {{\n{INDENT}enable: true\n{INDENT}path: {quote(contract.METRICS_PATH)}\n}}\n"


def render_batching_config(batching: api.Batching) -> str:
    """TF Serving's `--batching_parameters_file` (BatchingParameters).

    The scalar knobs are google.protobuf wrapper messages (`max_batch_size { value: N }`), while
    allowed_batch_sizes and pad_variable_length_inputs are plain fields.
    """
    wrapped = {
        "max_batch_size": batching.max_batch_size,
        "batch_timeout_micros": batching.batch_timeout_micros,
        "max_enqueued_batches": batching.max_enqueued_batches,
        # Unset means TF Serving's default: one thread per CPU it sees.
        "num_batch_threads": batching.num_batch_threads,
    }
    lines = [f"{field} {{ value: {value} }}" for field, value in wrapped.items() if value is not None]
    lines += [f"allowed_batch_sizes: {size}" for size in batching.allowed_batch_sizes or ()]
    lines.append(f"pad_variable_length_inputs: {'true' if batching.pad_variable_length_inputs else 'false'}")
    return "\n".join(lines) + "\n"
