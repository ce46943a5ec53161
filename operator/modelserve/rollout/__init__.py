"""Progressive rollouts: a metric-gated canary Deployment behind the ModelDeployment's Service.

- `revision`: which part of the spec rolls pods, its hash, and a ModelDeployment as either track sees it.
- `machine`: the pure state machine (step, replica split within the GPU budget, promote, roll back).
- `children`: pure builders of the canary's and the stable's children, from the ordinary builders.
- `analysis`: pure PromQL for TF Serving's metrics and the verdict over one step's window.
- `prometheus`: the HTTP client of the Prometheus query API (the only I/O here besides `driver`).
- `driver`: reads what the machine needs from the cluster and Prometheus, for the reconciler.

All state lives in status.rollout and in the children, so any operator replica resumes a rollout
where it stood. The operator never writes the spec. See docs/rollouts.md.
"""
