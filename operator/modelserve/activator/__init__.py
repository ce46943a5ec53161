"""The activator: the wake path of models scaled to zero (`modelserve activator`).

While a model with `autoscaling.minReplicas: 0` has no ready pod, the operator points the model's
Service at the activator (an EndpointSlice of the activator's addresses, see
builders/activator_route.py). The activator then

1. holds each request in a bounded per-model queue (full: 503 at once),
2. asks KEDA for a replica: it is KEDA's external scaler for the model (the `activator` trigger of
   the ScaledObject), answering "active" while it holds requests, so KEDA, the single writer of
   replicas, scales 0 -> 1; another activator replica that holds requests says so through a Lease
   in the activator's namespace, which every replica watches (it never writes users' objects),
3. forwards the held requests to the first ready pod (its own address, never the Service, which may
   still point at the activator) and keeps forwarding until the operator hands the Service back,
4. answers 503 with Retry-After when no pod becomes ready within the hold timeout, naming the cause
   from the ModelDeployment's status (InsufficientGPU, ImagePullFailed, ...).

Modules: `state` (models, pods and waiting requests), `kubewatch` (the watches feeding it),
`scaler` (KEDA's external scaler service), `proxy` (REST and gRPC), `server` (wiring, metrics).
"""
