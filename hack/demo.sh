#!/usr/bin/env bash
# `make demo`: the CRDs and the real ServiceMonitor CRD, the operator (in the background), every
# example in a namespace enforcing the restricted Pod Security Standard, then their status.
#   hack/demo.sh        run the demo (the cluster must be up: `make cluster-up`)
#   hack/demo.sh stop   stop the operator it started
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo/hack/cluster/versions.env"
source "$repo/hack/cluster/lib.sh"
eval "$("$repo/hack/cluster/cluster.sh" env)"

state="$(cache_root)/demo"
mkdir -p "$state"
pidfile="$state/operator.pid"
ns=modelserve-demo

stop_operator() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")" && echo "stopped the operator (pid $(cat "$pidfile"))"
  fi
  rm -f "$pidfile"
}

if [ "${1:-}" = stop ]; then stop_operator; exit 0; fi

echo "== CRDs"
kubectl apply --server-side -f "$repo/crds/"
kubectl apply --server-side -f "$(cache_root)/crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION/"
kubectl wait --for=condition=Established --timeout=60s crd --all >/dev/null

echo "== operator (log: $state/operator.log)"
stop_operator
nohup "$repo/.venv/bin/modelserve" run --all-namespaces --metrics-port 18080 --health-port 18081 \
  >"$state/operator.log" 2>&1 &
echo $! >"$pidfile"

echo "== examples in namespace $ns (Pod Security: restricted)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
kubectl -n "$ns" create secret generic model-store-credentials --from-literal=AWS_ACCESS_KEY_ID=demo \
  --from-literal=AWS_SECRET_ACCESS_KEY=demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# examples/cached.yaml asks for a cache claim of class modelserve-demo-static: no provisioner runs
# here, so a statically provisioned volume is made for it; the PV controller binds the claim to it.
kubectl apply -f - >/dev/null <<'PV'
apiVersion: v1
kind: PersistentVolume
metadata: {name: modelserve-demo-cache, labels: {app.kubernetes.io/part-of: modelserve-demo}}
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteMany]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: modelserve-demo-static
  hostPath: {path: /tmp/modelserve-demo-cache, type: DirectoryOrCreate}
PV
kubectl -n "$ns" apply -f "$repo/examples/"

# Ready at the current generation: a Ready condition left from an older spec does not count.
not_ready() {
  kubectl -n "$ns" get modeldeployments -o json | python3 -c '
import json, sys
for md in json.load(sys.stdin)["items"]:
    status = md.get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    if status.get("observedGeneration") != md["metadata"]["generation"] or not ready:
        print(md["metadata"]["name"])'
}
wait_ready() {
  local deadline=$((SECONDS + 180)) pending
  while :; do
    pending=$(not_ready)
    [ -z "$pending" ] && return 0
    [ $SECONDS -ge $deadline ] && { echo "not Ready after 180 s: $pending" >&2; return 1; }
    sleep 1
  done
}

echo "== waiting for every ModelDeployment to be Ready"
if ! wait_ready; then
  echo "not all Ready; operator log tail:" >&2
  tail -n 40 "$state/operator.log" >&2
  kubectl get mdep -A >&2
  exit 1
fi

echo
kubectl get mdep -A
echo
echo "== serving pods and their nodes (GPU models land on nodes of their product)"
kubectl -n "$ns" get pods -o custom-columns='POD:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,NODE:.spec.nodeName' --sort-by=.spec.nodeName
echo
echo "The operator keeps running in the background: 'make demo-stop' stops it."
echo "Try: export KUBECONFIG=$KUBECONFIG PATH=$(dirname "$(command -v kubectl)"):\$PATH"
echo "     kubectl -n $ns describe mdep ranker;  kubectl explain mdep.spec.gpu"
echo "     kubectl -n $ns get mdep llm -o wide;  kubectl -n $ns get pvc,deploy llm-model-cache llm-model-sync"
