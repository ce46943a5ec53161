"""Pure: the API models -> the ModelDeployment CustomResourceDefinition and its API reference.

- `schema`: pydantic JSON schema -> Kubernetes structural schema.
- `resource`: the CRD around that schema (names, subresources, printer columns) and its YAML.
- `docs`: docs/api.md, generated from the CRD so the reference shows what the API server enforces.

Imports neither kopf nor the Kubernetes client (an import-linter contract checks it).
"""

from modelserve.crd.docs import DOCS_PATH, render_docs
from modelserve.crd.resource import CRD_NAME, CRD_PATH, HEADER, build_crd, render_yaml

__all__ = ["CRD_NAME", "CRD_PATH", "DOCS_PATH", "HEADER", "build_crd", "render_docs", "render_yaml"]
