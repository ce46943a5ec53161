"""Which children the operator lists and watches, and with which label selector (pure).

The one table both the kopf watches (handlers.py) and the start-up listing (controller.py) read,
so the cache is primed with exactly what the watches will keep current.
"""

from __future__ import annotations

from typing import Final

from modelserve import builders, naming

# Lists come in pages of this many objects (kopf's and ours): start-up memory stays bounded.
LIST_CHUNK_SIZE: Final = 250
MANAGED_SELECTOR: Final = f"{naming.MANAGED_BY_LABEL}={naming.MANAGED_BY}"
# The EndpointSlice controller copies a Service's labels onto its slices; only the activator slices
# the operator itself manages are watched.
SELECTOR_OVERRIDES: Final = {
    ("discovery.k8s.io", "v1", "endpointslices"): "endpointslice.kubernetes.io/managed-by=modelserve-operator"
}
# Watched child resources: (group, version, plural) of every entry of the one table in builders.
# One watch per resource, though a kind may appear twice in the table (two Deployments).
CHILD_RESOURCES: Final = tuple(dict.fromkeys((k.group, k.version, k.plural) for k in builders.CHILD_KINDS))


def selector(group: str, version: str, plural: str) -> str:
    return SELECTOR_OVERRIDES.get((group, version, plural), MANAGED_SELECTOR)


# (kind, label selector) of every child kind, each once: what the start-up listing reads.
CHILD_KIND_SELECTORS: Final = tuple(
    dict.fromkeys((k.kind, selector(k.group, k.version, k.plural)) for k in builders.CHILD_KINDS)
)
