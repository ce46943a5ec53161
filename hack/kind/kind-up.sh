#!/usr/bin/env bash
# `make kind-up`: for machines with a Docker engine. Creates a kind cluster, adds the same fake GPU
# nodes as hack/cluster (kwok, run locally against the kind API server) and prints how to run the
# test suite against it. kind itself is built from its Go module like the other tools.
#   hack/kind/kind-up.sh        create (idempotent)
#   hack/kind/kind-up.sh down   delete the cluster and stop kwok
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$repo/hack/cluster/versions.env"
source "$repo/hack/cluster/lib.sh"

KIND_VERSION=${KIND_VERSION:-v0.33.0}
kubeconfig="$(cache_root)/kubeconfig-kind"
kwok_pid="$(cache_root)/kind-kwok.pid"

"$repo/hack/cluster/build.sh" >/dev/null
export PATH="$(bin_dir):$PATH"

if [ "${1:-}" = down ]; then
  [ -f "$kwok_pid" ] && kill "$(cat "$kwok_pid")" 2>/dev/null || true
  rm -f "$kwok_pid"
  kind delete cluster --name modelserve --kubeconfig "$kubeconfig" || true
  exit 0
fi

command -v docker >/dev/null && docker info >/dev/null 2>&1 || {
  echo "kind needs a running Docker engine; use 'make cluster-up' (no Docker needed) instead" >&2
  exit 1
}
if ! command -v kind >/dev/null; then
  echo "building kind $KIND_VERSION from its Go module" >&2
  GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$(bin_dir)" go install "sigs.k8s.io/kind@$KIND_VERSION"
fi

if ! kind get clusters 2>/dev/null | grep -qx modelserve; then
  kind create cluster --config "$here/kind-config.yaml" --kubeconfig "$kubeconfig" \
    --image "${KIND_NODE_IMAGE:-kindest/node:$KUBE_VERSION}" --wait 120s
fi

# kwok runs on this machine and manages only the fake nodes (by annotation), so kind's real
# workers keep their kubelets.
if ! { [ -f "$kwok_pid" ] && kill -0 "$(cat "$kwok_pid")" 2>/dev/null; }; then
  nohup kwok --kubeconfig "$kubeconfig" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    >"$(cache_root)/kind-kwok.log" 2>&1 &
  echo $! >"$kwok_pid"
fi
kubectl --kubeconfig "$kubeconfig" apply --server-side -f "$repo/hack/cluster/nodes.yaml" >/dev/null
kubectl --kubeconfig "$kubeconfig" wait --for=condition=Ready node --all --timeout=120s >/dev/null
kubectl --kubeconfig "$kubeconfig" get nodes -L nvidia.com/gpu.product
cat <<TXT

kind cluster 'modelserve' is up with the fake GPU fleet. Run the suite against it:
  MODELSERVE_TEST_KUBECONFIG=$kubeconfig MODELSERVE_TEST_BIN_DIR=$(bin_dir) make test
TXT
