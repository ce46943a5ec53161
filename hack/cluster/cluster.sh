#!/usr/bin/env bash
# The local control plane: genuine etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
# plus kwok for fake nodes and pods, run by kwokctl's binary runtime from binaries we build ourselves.
#
#   hack/cluster/cluster.sh up        create (or reuse a healthy) cluster and its fake GPU fleet
#   hack/cluster/cluster.sh down      delete it
#   hack/cluster/cluster.sh env       print `export KUBECONFIG=...; export PATH=...`
#   hack/cluster/cluster.sh status    exit 0 when the cluster answers /readyz
#
# Nothing is downloaded at run time: every binary path is set, kubectl is first on PATH, and the
# cluster keeps its own work dir and kubeconfig under the cache (never ~/.kube/config).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

name=${MODELSERVE_CLUSTER_NAME:-modelserve}
export KWOK_WORKDIR="$(cache_root)/kwok"
cluster_dir="$KWOK_WORKDIR/clusters/$name"
kubeconfig="$(cache_root)/kubeconfig-$name"
bin=$(bin_dir)
export PATH="$bin:$PATH"

log() { printf '[cluster] %s\n' "$*" >&2; }

kc() { kubectl --kubeconfig "$kubeconfig" "$@"; }

healthy() { [ -f "$kubeconfig" ] && kc get --raw /readyz >/dev/null 2>&1; }

# Optional settings for special-purpose clusters (benchmarks): an audit log of every request, and
# no client-side QPS limits in the control-plane components.
extra_options() {
  if [ -n "${MODELSERVE_CLUSTER_AUDIT_POLICY:-}" ]; then
    echo "  kubeAuditPolicy: $MODELSERVE_CLUSTER_AUDIT_POLICY"
  fi
  if [ "${MODELSERVE_CLUSTER_NO_QPS_LIMITS:-}" = 1 ]; then
    echo "  disableQPSLimits: true"
  fi
}

# Fault-injection clusters (tests/reliability_kit.py): kwok manages only nodes annotated
# kwok.x-k8s.io/node=fake (every node we create is), so a test can take one node away from it and
# report it NotReady, as a dead kubelet would, without kwok putting it right again.
kwok_patches() {
  if [ "${MODELSERVE_CLUSTER_KWOK_ANNOTATED_NODES:-}" = 1 ]; then
    cat <<'YAML'
- name: kwok-controller
  extraArgs:
  - {key: manage-all-nodes, value: "false"}
  - {key: manage-nodes-with-annotation-selector, value: kwok.x-k8s.io/node=fake}
YAML
  fi
}

write_config() {
  cat >"$(cache_root)/kwokctl-$name.yaml" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  kubeVersion: $KUBE_VERSION
  etcdVersion: ${ETCD_VERSION#v}
  securePort: true
  kubeAuthorization: true
  kubeAdmission: true
  kubeApiserverBinary: $bin/kube-apiserver
  kubeControllerManagerBinary: $bin/kube-controller-manager
  kubeSchedulerBinary: $bin/kube-scheduler
  kubectlBinary: $bin/kubectl
  kwokControllerBinary: $bin/kwok
  etcdBinary: $bin/etcd
  etcdctlBinary: $bin/etcdctl
  # metrics-server serves the resource metrics API from kwok's simulated kubelet metrics (pod
  # annotations kwok.x-k8s.io/usage-cpu|memory), so CPU-target HPAs make real decisions.
  enableMetricsServer: true
  metricsServerBinary: $bin/metrics-server
  metricsServerManifests: [$(family_dir metrics-server "$METRICS_SERVER_VERSION")/manifests]
$(extra_options)
componentsPatches:
- name: etcd
  extraArgs:
  # Test data is disposable; fsync dominates etcd latency on small VMs.
  - {key: unsafe-no-fsync, value: "true"}
- name: kube-apiserver
  extraArgs:
  # The default /24 holds 256 Services; benchmarks create thousands.
  - {key: service-cluster-ip-range, value: 10.96.0.0/16}
$(kwok_patches)
YAML
  echo "$(cache_root)/kwokctl-$name.yaml"
}

wait_for() {  # wait_for <seconds> <description> <command...>
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "timed out waiting for $what"; return 1; fi
    sleep 1
  done
}

# kwokctl starts its components but does not supervise them: one that exits stays dead. metrics-server
# exits at once when the API server is not listening yet (a loaded CI host showed it: the resource
# metrics API then never came up, HPAs never scaled and no namespace could be deleted, its
# discovery failing). So after creating or reusing a cluster, each dead component is started
# again from the binary and arguments kwokctl recorded for it in the cluster's kwok.yaml.
component_command() {  # component_command <name>: its binary, then its arguments, one per line
  awk -v want="$1" '
    function flush() { if (name == want) { print binary; for (i = 1; i <= n; i++) print args[i] } n = 0; name = ""; binary = ""; inargs = 0 }
    /^components:/ { incomponents = 1; next }
    !incomponents { next }
    /^[^ -]/ { flush(); incomponents = 0; next }
    /^- / { flush() }
    /^(- |  )args:/ { inargs = 1; next }
    inargs && /^  - / { v = substr($0, 5); gsub(/^"|"$/, "", v); args[++n] = v; next }
    /^(- |  )[a-z]/ { inargs = 0 }
    /^(- |  )binary: / { binary = substr($0, 11) }
    /^(- |  )name: / { name = substr($0, 9) }
    END { flush() }
  ' "$cluster_dir/kwok.yaml"
}

revive_dead_components() {
  local pidfile comp pid
  local -a cmd
  for pidfile in "$cluster_dir"/pids/*.pid; do
    [ -f "$pidfile" ] || continue
    comp=$(basename "$pidfile" .pid)
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then continue; fi
    mapfile -t cmd < <(component_command "$comp")
    [ ${#cmd[@]} -gt 0 ] && [ -x "${cmd[0]}" ] || { log "$comp is not running and kwok.yaml has no command for it"; return 1; }
    log "$comp (pid $pid) is not running: starting it again"
    (cd "$cluster_dir" && exec setsid "${cmd[@]}" >>"$cluster_dir/logs/$comp.log" 2>&1 </dev/null) &
    # kwokctl stops, and `down` deletes, the cluster by these pid files (a bare number: no newline)
    printf '%s' "$!" >"$pidfile"
  done
}

# Answered by metrics-server itself (the API server proxies it), not the APIService's cached status.
metrics_api_ready() { kc get --raw /apis/metrics.k8s.io/v1beta1/pods >/dev/null 2>&1; }

# The resource metrics API answers once metrics-server runs; a component that died is started again
# on each poll (a restart can race the API server once more on a loaded host).
wait_metrics_api() {  # wait_metrics_api <seconds>
  local deadline=$((SECONDS + $1))
  until revive_dead_components && metrics_api_ready; do
    if [ $SECONDS -ge $deadline ]; then
      log "metrics-server never served the resource metrics API; its log: $cluster_dir/logs/metrics-server.log"
      tail -20 "$cluster_dir/logs/metrics-server.log" >&2 || true
      return 1
    fi
    sleep 1
  done
}

create() {
  local config
  [ -d "$cluster_dir" ] && { log "removing stale cluster '$name'"; kwokctl --name "$name" delete cluster >/dev/null 2>&1 || rm -rf "$cluster_dir"; }
  config=$(write_config)
  log "creating cluster '$name' (Kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
  kwokctl --name "$name" --config "$config" create cluster --kubeconfig "$kubeconfig" --wait 120s \
    >"$(cache_root)/kwokctl-$name.log" 2>&1 || { cat "$(cache_root)/kwokctl-$name.log" >&2; exit 1; }
}

up() {
  local start=$SECONDS
  # The cluster's own components; KEDA is built by the tests that run it (tests/keda_kit.py) or by
  # `make binaries`, so bringing a cluster up never waits for its cold build.
  "$here/build.sh" kube etcd kwok helm prometheus actionlint crds metrics-server >/dev/null
  if healthy; then
    log "cluster '$name' already running"
    # A reused cluster whose metrics API stays down (left broken by an earlier run) is made anew.
    if ! wait_metrics_api 30; then log "cluster '$name' has no working metrics API: creating it again"; create; fi
  else
    create
  fi
  kc apply --server-side --force-conflicts --field-manager=modelserve-cluster -f "$here/nodes.yaml" >/dev/null
  wait_for 60 "nodes Ready" kc wait --for=condition=Ready node --all --timeout=5s
  wait_for 60 "default ServiceAccount" kc get serviceaccount default -n default
  wait_metrics_api 120
  log "ready in $((SECONDS - start)) s"
  kc get nodes -L nvidia.com/gpu.product -o wide >&2
  log "use it with:  export KUBECONFIG=$kubeconfig PATH=$bin:\$PATH"
}

down() {
  if [ -d "$cluster_dir" ]; then
    kwokctl --name "$name" delete cluster >&2 || rm -rf "$cluster_dir"
  fi
  rm -f "$kubeconfig"
  log "cluster '$name' deleted"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  env) printf 'export KUBECONFIG=%s\nexport PATH=%s:$PATH\n' "$kubeconfig" "$bin" ;;
  status) healthy ;;
  kubeconfig) echo "$kubeconfig" ;;
  workdir) echo "$cluster_dir" ;;
  *) echo "usage: $0 up|down|env|status|kubeconfig|workdir" >&2; exit 2 ;;
esac
