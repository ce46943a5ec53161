"""Whether a spec carries Kubernetes structs passed through unchecked (pure).

The CRD cannot validate them (`x-kubernetes-preserve-unknown-fields`); only the API server's apply
of the child that carries them does. The reconciler dry-runs such a spec's children before applying
any, so a refusal (InvalidSpec) never leaves half of a spec applied: a new ModelDeployment gets no
workload, and a running one keeps its last accepted spec, HPA included.
"""

from __future__ import annotations

from modelserve import api


def carries_pass_through(md: api.ModelDeployment) -> bool:
    spec = md.spec
    scheduling = spec.scheduling
    autoscaling = spec.autoscaling
    return bool(
        (autoscaling is not None and (autoscaling.metrics or autoscaling.behavior))
        or (scheduling is not None and (scheduling.affinity or scheduling.topology_spread_constraints))
        or any(var.value_from is not None for var in spec.serving.env or ())
    )
