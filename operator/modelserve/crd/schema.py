"""Pydantic JSON schema -> Kubernetes structural OpenAPI v3 schema.

Pydantic writes JSON Schema for general consumers: `$defs`/`$ref`, `anyOf [X, {type: null}]` for
optional fields, `title` everywhere, `additionalProperties: false` for `extra="forbid"`,
`propertyNames` for constrained map keys and `const` for one-value literals. The API server accepts
none of that in a CRD (see the "structural schema" rules in the Kubernetes docs), so this module
rewrites the schema into the structural subset, failing loudly on anything it does not understand
rather than emitting a CRD the API server would refuse or, worse, silently accept with less
validation than the models promise.
"""

from __future__ import annotations

import re
from typing import Any

JSON = dict[str, Any]

# Keys a node may carry after conversion. Anything else pydantic emits (uniqueItems, const, oneOf,
# format "uri", ...) is refused: the CRD would be rejected or would mean something else.
_ALLOWED_KEYS = frozenset(
    {
        "type",
        "description",
        "default",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "enum",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "anyOf",
        "format",
        "nullable",
        "x-kubernetes-validations",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-embedded-resource",
    }
)

# The only anyOf a structural schema may carry without `type` on the node itself.
INT_OR_STRING_ANY_OF: list[JSON] = [{"type": "integer"}, {"type": "string"}]

_NULL = {"type": "null"}


class SchemaError(ValueError):
    """The pydantic schema contains something the generator cannot express in a CRD."""


def normalize_description(text: str) -> str:
    """Joins the hard-wrapped lines of a docstring into paragraphs.

    Docstrings are wrapped for the source file's line length; `kubectl explain` and the API reference
    wrap text themselves, so only paragraph breaks (blank lines) are meaningful.
    """
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def combine_descriptions(field_doc: str | None, model_doc: str | None) -> str | None:
    """A field's own docstring, followed by its model's docstring when that adds something.

    The field docstring says what the field means in its parent ("Which versions to serve"); the
    model docstring states the model's own rules ("Set exactly one of latest, all or specific").
    `kubectl explain` shows only one description per field, so both are kept, unless the model's
    text merely repeats the field's.
    """
    field_doc = normalize_description(field_doc) if field_doc else None
    model_doc = normalize_description(model_doc) if model_doc else None
    if not field_doc or not model_doc:
        return field_doc or model_doc
    stem = field_doc.rstrip(".").lower()
    if model_doc.lower().startswith(stem) or stem in model_doc.lower():
        return model_doc
    if field_doc.lower() in model_doc.lower() or model_doc.lower() in field_doc.lower():
        return field_doc if len(field_doc) >= len(model_doc) else model_doc
    return f"{field_doc}\n\n{model_doc}"


def strip_nulls(value: Any) -> Any:
    """A default without its null members: pydantic serializes unset optionals as null, but a
    structural schema has no nullable fields, so a null inside a default would fail validation."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


class Converter:
    """Converts one pydantic JSON schema (with its `$defs`) into a structural schema."""

    def __init__(self, root: JSON) -> None:
        self._defs: dict[str, JSON] = root.get("$defs", {})

    # --- flattening: $ref, allOf, optional anyOf, const ----------------------------------------------

    def _deref(self, ref: str) -> JSON:
        prefix = "#/$defs/"
        if not ref.startswith(prefix) or ref[len(prefix) :] not in self._defs:
            raise SchemaError(f"unresolvable $ref {ref!r}")
        return self._defs[ref[len(prefix) :]]

    def _flatten(self, node: JSON, where: str) -> JSON:
        """The node with its reference or optional wrapper merged into one plain schema.

        The wrapper's own keys (the field's description, default, field-level CEL rules) are laid over
        the target's keys (the model's description, type, properties, model-level CEL rules).
        """
        node = dict(node)
        target: JSON | None = None
        if "$ref" in node:
            target = self._deref(node.pop("$ref"))
        elif "allOf" in node:
            parts = node.pop("allOf")
            if len(parts) != 1:
                raise SchemaError(f"{where}: allOf with {len(parts)} members is not supported")
            target = parts[0]
        elif "anyOf" in node:
            branches = [b for b in node["anyOf"] if b != _NULL]
            if len(branches) < len(node["anyOf"]) and len(branches) == 1:
                # An optional field: absent in the CRD means None in pydantic, so no nullable.
                node.pop("anyOf")
                if node.get("default", ...) is None:
                    node.pop("default")
                target = branches[0]
            elif sorted(b.get("type", "") for b in branches) == ["integer", "string"]:
                node.pop("anyOf")
                node["x-kubernetes-int-or-string"] = True
                for branch in branches:
                    node.update({k: v for k, v in branch.items() if k != "type"})
            else:
                raise SchemaError(
                    f"{where}: a union other than an optional or int-or-string: {node['anyOf']}"
                )
        if "const" in node:
            node["enum"] = [node.pop("const")]
        if target is None:
            return node
        base = self._flatten(target, where)
        merged = {**base, **{k: v for k, v in node.items() if k != "description"}}
        description = combine_descriptions(node.get("description"), base.get("description"))
        if description:
            merged["description"] = description
        rules = base.get("x-kubernetes-validations", []) + node.get("x-kubernetes-validations", [])
        if rules:
            merged["x-kubernetes-validations"] = rules
        return merged

    # --- conversion ----------------------------------------------------------------------------------

    def convert(self, node: JSON, where: str = "") -> JSON:
        """One node and everything below it, in structural form."""
        node = self._flatten(node, where or "<root>")
        node.pop("title", None)
        node.pop("$defs", None)
        out: JSON = {}
        for key, value in node.items():
            if key == "properties":
                if value:
                    out["properties"] = {
                        name: self._property(name, sub, f"{where}.{name}") for name, sub in value.items()
                    }
            elif key == "items":
                out["items"] = self.convert(value, f"{where}[]")
            elif key == "additionalProperties":
                # `false` (extra="forbid") and `true` (free-form dicts) have no structural meaning:
                # unknown fields are pruned or refused by strict field validation, and free-form
                # objects are marked x-kubernetes-preserve-unknown-fields.
                if isinstance(value, dict) and value:
                    out["additionalProperties"] = self.convert(value, f"{where}.*")
            elif key == "propertyNames":
                out.setdefault("x-kubernetes-validations", []).extend(_key_rules(value, where))
            elif key == "default":
                if value is not None:
                    out["default"] = strip_nulls(value)
            elif key == "description":
                out["description"] = normalize_description(value)
            elif key == "x-kubernetes-validations":
                out.setdefault("x-kubernetes-validations", [])[:0] = value
            else:
                out[key] = value
        if "properties" in out and "additionalProperties" in out:
            raise SchemaError(f"{where}: properties and additionalProperties on one node")
        if out.get("x-kubernetes-int-or-string"):
            # The one anyOf shape the API server allows; `type` must then be absent.
            out.pop("type", None)
            out["anyOf"] = [dict(b) for b in INT_OR_STRING_ANY_OF]
        if (
            out.get("type") == "object"
            and "properties" not in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
            and not _is_empty_model(node)
        ):
            raise SchemaError(f"{where}: a free-form object must be x-kubernetes-preserve-unknown-fields")
        unknown = set(out) - _ALLOWED_KEYS
        if unknown:
            raise SchemaError(f"{where or '<root>'}: keys a CRD schema cannot carry: {sorted(unknown)}")
        return out

    def _property(self, name: str, node: JSON, where: str) -> JSON:
        converted = self.convert(node, where)
        if not converted.get("description"):
            raise SchemaError(f"{where}: no description; add an attribute docstring to the model field")
        return converted


def _is_empty_model(node: JSON) -> bool:
    # A model without fields (AllPolicy): pydantic writes `properties: {}`; it is an empty object.
    return node.get("properties") == {}


def _key_rules(names: JSON, where: str) -> list[dict[str, str]]:
    """CEL rules standing in for JSON Schema's `propertyNames`, which CRDs do not support."""
    rules = []
    if "maxLength" in names:
        limit = int(names["maxLength"])
        rules.append(
            {
                "rule": f"self.all(k, k.size() <= {limit})",
                "message": f"keys may be at most {limit} characters",
            }
        )
    if "pattern" in names:
        pattern = str(names["pattern"]).replace("\\", "\\\\").replace("'", "\\'")
        rules.append(
            {"rule": f"self.all(k, k.matches('{pattern}'))", "message": f"keys must match {names['pattern']}"}
        )
    unknown = set(names) - {"maxLength", "pattern", "type"}
    if unknown:
        raise SchemaError(f"{where}: unsupported key constraints {sorted(unknown)}")
    return rules


def structural_schema(pydantic_schema: JSON) -> JSON:
    """The structural form of a model's JSON schema (as from `model_json_schema(by_alias=True)`)."""
    return Converter(pydantic_schema).convert(pydantic_schema)
