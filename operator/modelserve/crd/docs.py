"""docs/api.md: the API reference, generated from the CRD rather than from the models.

Reading the CRD (not pydantic) means the reference documents exactly what the API server enforces:
the defaults it applies, the bounds it checks and the CEL rules with the messages users will see.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from modelserve import api
from modelserve.crd.resource import CRD_PATH, build_crd
from modelserve.crd.schema import JSON

DOCS_PATH: Final = "docs/api.md"


# Fields whose CRD schema may not carry a description (the API server documents ObjectMeta itself).
_IMPLICIT: Final = {"metadata": "Standard Kubernetes object metadata: name, namespace, labels, annotations."}


@dataclass(frozen=True)
class Row:
    path: str
    type: str
    default: str
    bounds: str
    description: str


@dataclass(frozen=True)
class Rule:
    path: str
    rule: str
    message: str
    field_path: str


def _type(node: JSON) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    kind = str(node.get("type", "any"))
    if kind == "array":
        return "[]" + _type(node.get("items", {}))
    if kind == "object" and "additionalProperties" in node:
        return "map[string]" + _type(node["additionalProperties"])
    if kind == "object" and node.get("x-kubernetes-preserve-unknown-fields"):
        return "object (free-form)"
    return kind


def _number(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _own_bounds(node: JSON) -> list[str]:
    out = []
    if "enum" in node:
        out.append("one of " + ", ".join(_code(str(v)) for v in node["enum"]))
    if "minimum" in node and "maximum" in node:
        out.append(f"{_number(node['minimum'])} to {_number(node['maximum'])}")
    elif "minimum" in node:
        out.append(f"≥ {_number(node['minimum'])}")
    elif "maximum" in node:
        out.append(f"≤ {_number(node['maximum'])}")
    for key, text in (
        ("minLength", "length ≥ {}"),
        ("maxLength", "length ≤ {}"),
        ("minItems", "items ≥ {}"),
        ("maxItems", "items ≤ {}"),
        ("minProperties", "entries ≥ {}"),
        ("maxProperties", "entries ≤ {}"),
    ):
        if key in node:
            out.append(text.format(node[key]))
    if "pattern" in node:
        out.append("pattern " + _code(str(node["pattern"])))
    return out


def _bounds(node: JSON, required: bool) -> str:
    out = ["**required**"] if required else []
    out += _own_bounds(node)
    if node.get("type") == "array" and node.get("items", {}).get("type") != "object":
        inner = _own_bounds(node.get("items", {}))
        if inner:
            out.append("each: " + ", ".join(inner))
    if "additionalProperties" in node:
        inner = _own_bounds(node["additionalProperties"])
        if inner:
            out.append("values: " + ", ".join(inner))
    return "; ".join(out)


def _walk(node: JSON, path: str, required: bool) -> Iterator[tuple[str, JSON, bool]]:
    yield path, node, required
    children: JSON = node
    suffix = ""
    if node.get("type") == "array" and node.get("items", {}).get("type") == "object":
        children, suffix = node["items"], "[]"
    elif "additionalProperties" in node and node["additionalProperties"].get("type") == "object":
        children, suffix = node["additionalProperties"], ".<key>"
    needed = set(children.get("required", []))
    for name, sub in children.get("properties", {}).items():
        yield from _walk(sub, f"{path}{suffix}.{name}" if path else name, name in needed)


def _escape(text: str) -> str:
    """Text for a Markdown table cell: pipes escaped, angle brackets kept literal, paragraphs kept."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("\n\n", "<br><br>")
    )


def _code(text: str) -> str:
    # Inside a table a code span still ends the cell at a bare pipe.
    return "`" + text.replace("|", "\\|") + "`"


def collect(schema: JSON) -> tuple[list[Row], list[Rule]]:
    """Every field (depth first, declaration order) and every CEL rule of a CRD schema."""
    rows: list[Row] = []
    rules: list[Rule] = []
    for path, node, required in _walk(schema, "", False):
        # Rules of list items and map values (EnvVar's, for example) live on the element schema,
        # which gets no row of its own.
        for where, holder in (
            (path or "(root)", node),
            (f"{path}[]", node.get("items", {})),
            (f"{path}.<key>", node.get("additionalProperties", {})),
        ):
            for entry in holder.get("x-kubernetes-validations", []):
                rules.append(Rule(where, entry["rule"], entry["message"], entry.get("fieldPath", "")))
        if not path:
            continue
        default = json.dumps(node["default"], sort_keys=True) if "default" in node else ""
        description = node.get("description") or _IMPLICIT.get(path, "")
        rows.append(Row(path, _type(node), default, _bounds(node, required), description))
    return rows, rules


def render_docs() -> str:
    """The Markdown API reference."""
    crd = build_crd()
    spec = crd["spec"]
    version = spec["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    rows, rules = collect(schema)
    scale = version["subresources"]["scale"]
    out = [
        "<!-- generated by `modelserve crd --docs` from the CRD; do not edit. "
        "Source: operator/modelserve/api/ -->",
        f"# {api.KIND} API reference ({api.API_VERSION})",
        "",
        _escape(schema["description"]),
        "",
        "| | |",
        "|---|---|",
        f"| API version | `{api.API_VERSION}` |",
        f"| Kind | `{spec['names']['kind']}` (list: `{spec['names']['listKind']}`) |",
        f"| Scope | {spec['scope']} |",
        f"| Short names | {', '.join(f'`{n}`' for n in spec['names']['shortNames'])} |",
        f"| Categories | {', '.join(f'`{n}`' for n in spec['names']['categories'])} |",
        f"| Subresources | `status`; `scale` (replicas `{scale['specReplicasPath']}`, "
        f"observed `{scale['statusReplicasPath']}`, selector `{scale['labelSelectorPath']}`) |",
        f"| CRD | [`{CRD_PATH}`](../{CRD_PATH}) |",
        "",
        "The API server enforces everything below at create and update time (there is no admission",
        "webhook): types, bounds, patterns and the CEL rules listed at the end. Unknown fields are",
        "refused when the client asks for strict field validation (`kubectl` does by default,",
        "`--validate=strict`); other clients see them dropped, with a warning. Defaults are applied by",
        "the API server, so `kubectl get -o yaml` and GitOps tools see them as server-side values.",
        "",
        "## `kubectl get mdep` columns",
        "",
        "| Column | JSONPath | Description |",
        "|---|---|---|",
    ]
    for column in version["additionalPrinterColumns"]:
        wide = " (with `-o wide`)" if column.get("priority", 0) else ""
        out.append(
            f"| {column['name']} | {_code(column['jsonPath'])} "
            f"| {_escape(column.get('description', ''))}{wide} |"
        )
    out += [
        "",
        "## Fields",
        "",
        "| Field | Type | Default | Validation | Description |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        default = _code(row.default) if row.default else ""
        out.append(
            f"| `{row.path}` | {_escape(row.type)} | {default} | {row.bounds} | {_escape(row.description)} |"
        )
    out += [
        "",
        "## Validation rules (CEL)",
        "",
        "Each rule is checked by the API server on the object at **On**; a failure is reported on",
        "**Field** (relative to it) with the message shown.",
        "",
        "| On | Field | Message | Rule |",
        "|---|---|---|---|",
    ]
    for rule in rules:
        field = f"`{rule.field_path}`" if rule.field_path else ""
        out.append(f"| `{rule.path}` | {field} | {_escape(rule.message)} | {_code(rule.rule)} |")
    return "\n".join(out) + "\n"
