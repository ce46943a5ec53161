"""What the operator knows of its children without asking: the live objects as last seen (from
watch events and API responses), and how a desired manifest is compared with a live one (pure
helpers: the applied-hash annotation, the subset test, the slimmed copy)."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any, Final

from modelserve.builders import replicas

# Annotation on every child: hash of the manifest we last applied. A changed desired manifest
# (including a removed key, which a subset comparison cannot see) differs in hash.
APPLIED_HASH_ANNOTATION: Final = "modelserve.dev/applied-hash"


def manifest_hash(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[
        :16
    ]


def with_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    digest = manifest_hash(manifest)
    metadata = dict(manifest["metadata"])
    metadata["annotations"] = {**(metadata.get("annotations") or {}), APPLIED_HASH_ANNOTATION: digest}
    return {**manifest, "metadata": metadata}


def is_subset(desired: object, live: object) -> bool:
    """Whether every field we declare has our value in the live object (server defaults are extra)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and is_subset(v, live[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) and all(map(is_subset, desired, live))
    if (isinstance(desired, (int, float)) and isinstance(live, str)) or (
        isinstance(desired, str) and isinstance(live, (int, float))
    ):
        return str(desired) == str(live)
    return desired == live


def slim(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without metadata.managedFields: often its largest part, and never compared. A
    Deployment keeps the entries that own spec.replicas (only those, without their other fields):
    they say whether our apply still owns the count (builders/replicas.py)."""
    meta = obj.get("metadata")
    if not meta or "managedFields" not in meta:
        return obj
    kept = {k: v for k, v in meta.items() if k != "managedFields"}
    if obj.get("kind") == "Deployment":
        kept["managedFields"] = replicas.replica_owners(meta.get("managedFields") or [])
    return {**obj, "metadata": kept}


class ChildCache:
    """Live children as last seen through watch events or API responses, keyed by kind/namespace/name.

    Stored as compact JSON (without managedFields): thousands of Deployments as Python dicts cost
    several times their JSON size, and a reconcile reads only the few children of one object. An
    entry lives as long as its object: the watch's DELETED event forgets it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, str], tuple[int, bytes]] = {}

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))
        version = resource_version(obj)
        data = json.dumps(slim(obj), separators=(",", ":")).encode()
        with self._lock:
            current = self._objects.get(key)
            # Never replace a newer object with an older event (resourceVersions grow in etcd).
            if current is not None and current[0] > version:
                return
            self._objects[key] = (version, data)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._objects.pop((kind, namespace, name), None)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._objects.get((kind, namespace, name))
        return None if entry is None else dict(json.loads(entry[1]))

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)


def resource_version(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0
