"""A pod reserves exactly spec.gpu.count GPUs, whatever else the spec says.

The scheduler reserves a pod's effective request: max(the largest init container, counting the
sidecars started before it; the sum of the app containers plus every sidecar). A GPU resource on any
container but the server, or a second GPU count in spec.resources, would reserve more than asked.
"""

from __future__ import annotations

import copy
import itertools
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelserve import api, naming
from modelserve.builders import deployment, gpu
from modelserve.settings import Settings

pytestmark = pytest.mark.unit

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))

GPUS: list[dict[str, Any] | None] = [
    None,
    {"count": 1},
    {"count": 2, "product": "NVIDIA-A100-SXM4-80GB"},
    {"count": 3, "migProfile": "1g.10gb"},
    {"count": 1, "resourceName": "amd.com/gpu"},
    {"count": 4, "resourceName": "example.com/tpu"},
]
RESOURCES: list[dict[str, Any] | None] = [
    None,
    {},
    {"requests": {"cpu": "2", "memory": "4Gi"}},
    {"limits": {"memory": "8Gi"}},
    {"requests": {"cpu": "2"}, "limits": {"cpu": "4", "memory": "8Gi"}},
    # What the CRD refuses, as a spec stored under an older CRD could still say it.
    {"limits": {"nvidia.com/gpu": "2"}},
    {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "3", "cpu": "1"}},
    {"limits": {"amd.com/gpu": "2", "nvidia.com/mig-1g.10gb": "7", "nvidia.com/gpu.shared": "1"}},
    {"requests": {"example.com/tpu": "5"}, "limits": {"example.com/tpu": "5"}},
    {"requests": {"gpu.intel.com/i915": "1", "example.com/fpga": "1"}},
]
# The device plugins' GPU resources the combinations mention: each must be reserved exactly as
# spec.gpu says (example.com/tpu is a GPU resource only where spec.gpu.resourceName names it).
GPU_NAMES = (
    "nvidia.com/gpu",
    "nvidia.com/gpu.shared",
    "nvidia.com/mig-1g.10gb",
    "amd.com/gpu",
    "gpu.intel.com/i915",
)


def _request(container: dict[str, Any], resource: str) -> Fraction:
    res = container.get("resources") or {}
    # A limit without a request is also the request (the API server defaults it so).
    value = (res.get("requests") or {}).get(resource, (res.get("limits") or {}).get(resource, "0"))
    return Fraction(str(value))


def effective_request(pod: dict[str, Any], resource: str) -> Fraction:
    """Kubernetes' effective pod request (KEP-753 with sidecars, restartPolicy: Always)."""
    sidecars = Fraction(0)
    init = Fraction(0)
    for container in pod.get("initContainers") or []:
        if container.get("restartPolicy") == "Always":
            sidecars += _request(container, resource)
            init = max(init, sidecars)
        else:
            init = max(init, _request(container, resource) + sidecars)
    app = sum((_request(c, resource) for c in pod["containers"]), Fraction(0)) + sidecars
    return max(init, app)


def _example_specs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == api.KIND:
                out.append((f"{path.stem}/{doc['metadata']['name']}", doc))
    return out


CASES = [
    pytest.param(example, g, r, id=f"{name}-gpu{i}-res{j}")
    for (name, example), (i, g), (j, r) in itertools.product(
        _example_specs(), enumerate(GPUS), enumerate(RESOURCES)
    )
]


def test_examples_are_found() -> None:
    assert len(_example_specs()) >= len(EXAMPLES) >= 5


@pytest.mark.parametrize(("example", "gpu_spec", "resources"), CASES)
def test_pod_reserves_exactly_the_gpu_count(
    example: dict[str, Any], gpu_spec: dict[str, Any] | None, resources: dict[str, Any] | None
) -> None:
    body = copy.deepcopy(example)
    body["spec"].pop("gpu", None)
    body["spec"].pop("resources", None)
    if gpu_spec is not None:
        body["spec"]["gpu"] = gpu_spec
    if resources is not None:
        body["spec"]["resources"] = resources
    md = api.parse(body)
    pod = deployment.build_deployment(md, Settings())["spec"]["template"]["spec"]

    wanted = gpu.gpu_resources(md)
    for name in (*GPU_NAMES, *wanted):
        assert effective_request(pod, name) == Fraction(wanted.get(name, "0")), name
    # Only the serving container carries GPUs, with requests equal to limits.
    serving = next(c for c in pod["containers"] if c["name"] == naming.SERVING_CONTAINER)
    for container in (*(pod.get("initContainers") or []), *pod["containers"]):
        res = container.get("resources") or {}
        for section in ("requests", "limits"):
            gpus = {k: v for k, v in (res.get(section) or {}).items() if gpu.is_gpu_resource(md, k)}
            assert gpus == (wanted if container is serving else {}), (container["name"], section)
    # Other extended resources still reach the server.
    if resources and "example.com/fpga" in (resources.get("requests") or {}):
        assert effective_request(pod, "example.com/fpga") == 1


def test_effective_request_counts_sidecars_and_the_largest_init_container() -> None:
    def c(gpus: int, **extra: Any) -> dict[str, Any]:
        return {"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}, **extra}

    assert effective_request({"initContainers": [c(2)], "containers": [c(1)]}, "nvidia.com/gpu") == 2
    assert effective_request({"initContainers": [c(1)], "containers": [c(1), c(1)]}, "nvidia.com/gpu") == 2
    pod = {"initContainers": [c(1, restartPolicy="Always"), c(1)], "containers": [c(1)]}
    assert effective_request(pod, "nvidia.com/gpu") == 2
