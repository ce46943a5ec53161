#!/usr/bin/env bash
# Builds the local control plane's binaries from their published Go modules, one wrapper module per
# tool family, and caches them outside the repo keyed by version. A warm cache returns in
# milliseconds; a miss rebuilds only the missing family.
#
#   hack/cluster/build.sh            build (or reuse) everything, print the bin directory
#   hack/cluster/build.sh kube etcd  only the named families
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=lib.sh
source "$here/lib.sh"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod"
export GOPROXY=${GOPROXY:-https://proxy.golang.org,direct}

log() { printf '[build] %s\n' "$*" >&2; }

# Writes a wrapper module into $1 with go.mod text $2 (the go line and godebug are added by callers).
wrapper() {
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir"
  printf '%s\n' "$2" >"$dir/go.mod"
}

# Prints the replace block pinning every k8s.io staging module at the published v0.X.Y that matches
# KUBE_VERSION, derived from that tag's own go.mod rather than a hard-coded list.
kube_staging_replaces() {
  local gomod staging_version="v0.${KUBE_VERSION#v1.}"
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  [ -f "$gomod" ] || { log "cannot download k8s.io/kubernetes@$KUBE_VERSION"; return 1; }
  echo "replace ("
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"$staging_version"'#p' "$gomod"
  echo ")"
  sed -n 's/^godebug .*/&/p' "$gomod"
}

build_kube() {
  local out src minor build_date ldf pkg
  out=$(family_dir kube "$KUBE_VERSION")
  if family_ready kube "$KUBE_VERSION"; then return 0; fi
  src="$(cache_root)/src/kube-$KUBE_VERSION"
  wrapper "$src" "module modelserve.dev/hack/kube

go 1.26.0

require k8s.io/kubernetes $KUBE_VERSION

$(cd /tmp && kube_staging_replaces)"
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  ldf="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldf+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=module-$KUBE_VERSION -X $pkg.buildDate=$build_date"
  done
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl $KUBE_VERSION (cold: tens of minutes)"
  mkdir -p "$out.tmp"
  (cd "$src" && go build -trimpath -ldflags "$ldf" -o "$out.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  publish_family "$out"
}

build_etcd() {
  local out src
  out=$(family_dir etcd "$ETCD_VERSION")
  if family_ready etcd "$ETCD_VERSION"; then return 0; fi
  src="$(cache_root)/src/etcd-$ETCD_VERSION"
  wrapper "$src" "module modelserve.dev/hack/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  log "building etcd $ETCD_VERSION"
  mkdir -p "$out.tmp"
  (cd "$src" && go build -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$ETCD_VERSION" \
    -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3 \
    && go build -trimpath -o "$out.tmp/etcdctl" go.etcd.io/etcd/etcdctl/v3 2>/dev/null || true)
  [ -x "$out.tmp/etcd" ] || { log "etcd build failed"; return 1; }
  publish_family "$out"
}

build_kwok() {
  local out src
  out=$(family_dir kwok "$KWOK_VERSION")
  if family_ready kwok "$KWOK_VERSION"; then return 0; fi
  src="$(cache_root)/src/kwok-$KWOK_VERSION"
  wrapper "$src" "module modelserve.dev/hack/kwok

go 1.26.0

require sigs.k8s.io/kwok $KWOK_VERSION"
  log "building kwok, kwokctl $KWOK_VERSION"
  mkdir -p "$out.tmp"
  (cd "$src" && go build -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBE_VERSION" \
    -o "$out.tmp/" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl)
  publish_family "$out"
}

build_helm() {
  local out src gomod client_go k8s_minor ldf
  out=$(family_dir helm "$HELM_VERSION")
  if family_ready helm "$HELM_VERSION"; then return 0; fi
  src="$(cache_root)/src/helm-$HELM_VERSION"
  wrapper "$src" "module modelserve.dev/hack/helm

go 1.26.0

require helm.sh/helm/v3 $HELM_VERSION"
  # Helm stamps the Kubernetes version its client libraries target; take it from its own go.mod.
  gomod=$(cd /tmp && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  client_go=$(sed -n 's#^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$gomod" | head -1)
  k8s_minor=${client_go:-${KUBE_VERSION#v1.}}; k8s_minor=${k8s_minor%%.*}
  ldf="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldf+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  log "building helm $HELM_VERSION"
  mkdir -p "$out.tmp"
  (cd "$src" && go build -trimpath -ldflags "$ldf" -o "$out.tmp/" helm.sh/helm/v3/cmd/helm)
  publish_family "$out"
}

# Prometheus (the server and promtool) from its Go module. The module's v0.3XY.Z tags are releases
# v3.XY.Z; the release string is read from the module's own VERSION file. Service discovery is cut
# to file, http and kubernetes (remove_all_sd + enable_kubernetes_sd): the cloud SDs are most of the
# build and nothing here uses them. No builtinassets: the web UI is not needed, the API is.
build_prometheus() {
  local out src dir release ldf pkg=github.com/prometheus/common/version
  out=$(family_dir prometheus "$PROMETHEUS_VERSION")
  if family_ready prometheus "$PROMETHEUS_VERSION"; then return 0; fi
  src="$(cache_root)/src/prometheus-$PROMETHEUS_VERSION"
  wrapper "$src" "module modelserve.dev/hack/prometheus

go 1.26.0

require github.com/prometheus/prometheus $PROMETHEUS_VERSION"
  dir=$(cd /tmp && go mod download -json "github.com/prometheus/prometheus@$PROMETHEUS_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  [ -f "$dir/VERSION" ] || { log "cannot download github.com/prometheus/prometheus@$PROMETHEUS_VERSION"; return 1; }
  release=$(tr -d '[:space:]' <"$dir/VERSION")
  ldf="-s -w -X $pkg.Version=$release -X $pkg.Revision=module-$PROMETHEUS_VERSION -X $pkg.Branch=HEAD"
  ldf+=" -X $pkg.BuildUser=modelserve-operator@build.sh -X $pkg.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
  log "building prometheus, promtool $release ($PROMETHEUS_VERSION; cold: ~5 min)"
  mkdir -p "$out.tmp"
  (cd "$src" && go build -trimpath -tags netgo,remove_all_sd,enable_kubernetes_sd -ldflags "$ldf" \
    -o "$out.tmp/" github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool)
  publish_family "$out"
}

# The ServiceMonitor and PrometheusRule CRDs published by the Prometheus Operator project, read from
# its module's files.
PROMETHEUS_OPERATOR_CRDS=(servicemonitors prometheusrules)
fetch_servicemonitor_crd() {
  local out dir crd missing=0
  out="$(cache_root)/crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
  for crd in "${PROMETHEUS_OPERATOR_CRDS[@]}"; do
    [ -s "$out/monitoring.coreos.com_$crd.yaml" ] || missing=1
  done
  [ $missing = 0 ] && return 0
  dir=$(cd /tmp && go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  [ -d "$dir" ] || { log "cannot download github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION"; return 1; }
  mkdir -p "$out"
  for crd in "${PROMETHEUS_OPERATOR_CRDS[@]}"; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$crd.yaml" "$out/"
  done
}

# The Gateway API's standard-channel CRDs (Gateway, HTTPRoute, ...), read from its module's files.
fetch_gateway_api_crds() {
  local out dir
  out="$(cache_root)/crds/gateway-api-$GATEWAY_API_VERSION"
  [ -s "$out/gateway.networking.k8s.io_httproutes.yaml" ] && return 0
  dir=$(cd /tmp && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  [ -d "$dir/config/crd/standard" ] || { log "cannot download sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION"; return 1; }
  mkdir -p "$out.tmp"
  cp "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$out.tmp/"
  rm -f "$out.tmp"/*vap*  # a ValidatingAdmissionPolicy shipped beside the CRDs: not a CRD
  chmod -R u+w "$out.tmp"  # module files are read-only
  rm -rf "$out"
  mv "$out.tmp" "$out"
}

# actionlint, the GitHub Actions workflow linter (with shellcheck-free defaults: no shellcheck binary).
build_actionlint() {
  local out src
  out=$(family_dir actionlint "$ACTIONLINT_VERSION")
  if family_ready actionlint "$ACTIONLINT_VERSION"; then return 0; fi
  src="$(cache_root)/src/actionlint-$ACTIONLINT_VERSION"
  wrapper "$src" "module modelserve.dev/hack/actionlint

go 1.26.0

require github.com/rhysd/actionlint $ACTIONLINT_VERSION"
  log "building actionlint $ACTIONLINT_VERSION"
  mkdir -p "$out.tmp"
  (cd "$src" && go build -trimpath -ldflags "-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" \
    -o "$out.tmp/" github.com/rhysd/actionlint/cmd/actionlint)
  publish_family "$out"
}

# KEDA, the autoscaler behind load targets and scale to zero: its operator and its external metrics
# API server (the adapter), plus its CRDs from the module's config/crd files. The wrapper copies the
# module's own replace/exclude directives, which a requiring module would otherwise ignore.
build_keda() {
  local out src dir ldf
  out=$(family_dir keda "$KEDA_VERSION")
  if family_ready keda "$KEDA_VERSION"; then return 0; fi
  dir=$(cd /tmp && go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  [ -d "$dir" ] || { log "cannot download github.com/kedacore/keda/v2@$KEDA_VERSION"; return 1; }
  src="$(cache_root)/src/keda-$KEDA_VERSION"
  wrapper "$src" "module modelserve.dev/hack/keda

go 1.26.0

require github.com/kedacore/keda/v2 $KEDA_VERSION

$(sed -n 's/^\(replace\|exclude\) .*/&/p' "$dir/go.mod")"
  ldf="-s -w -X github.com/kedacore/keda/v2/version.Version=${KEDA_VERSION#v} -X github.com/kedacore/keda/v2/version.GitCommit=module-$KEDA_VERSION"
  log "building keda operator and adapter $KEDA_VERSION (cold: about 6 min)"
  mkdir -p "$out.tmp/crds"
  (cd "$src" && go build -trimpath -ldflags "$ldf" -o "$out.tmp/keda-operator" github.com/kedacore/keda/v2/cmd/operator \
    && go build -trimpath -ldflags "$ldf" -o "$out.tmp/keda-adapter" github.com/kedacore/keda/v2/cmd/adapter)
  cp "$dir"/config/crd/bases/keda.sh_*.yaml "$out.tmp/crds/"
  chmod u+w "$out.tmp"/crds/*.yaml
  publish_family "$out"
}

# metrics-server, which serves the resource metrics API from kwok's simulated kubelet metrics, so a
# CPU-target HPA is seen to scale.
build_metrics_server() {
  local out src dir ldf pkg=k8s.io/client-go/pkg/version
  out=$(family_dir metrics-server "$METRICS_SERVER_VERSION")
  if family_ready metrics-server "$METRICS_SERVER_VERSION"; then return 0; fi
  src="$(cache_root)/src/metrics-server-$METRICS_SERVER_VERSION"
  wrapper "$src" "module modelserve.dev/hack/metrics-server

go 1.26.0

require sigs.k8s.io/metrics-server $METRICS_SERVER_VERSION"
  ldf="-s -w -X $pkg.gitVersion=$METRICS_SERVER_VERSION -X $pkg.gitCommit=module-$METRICS_SERVER_VERSION"
  ldf+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  log "building metrics-server $METRICS_SERVER_VERSION"
  mkdir -p "$out.tmp"
  (cd "$src" && go build -trimpath -ldflags "$ldf" -o "$out.tmp/" sigs.k8s.io/metrics-server/cmd/metrics-server)
  # kwokctl registers metrics-server's APIService and RBAC from these manifests (a local kustomize
  # directory, so it downloads nothing) and drops the Deployment: the binary runs as a process.
  dir=$(cd /tmp && go mod download -json "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  mkdir -p "$out.tmp/manifests"
  cp "$dir"/manifests/base/*.yaml "$out.tmp/manifests/"
  chmod u+w "$out.tmp"/manifests/*.yaml
  publish_family "$out"
}

families=("$@")
[ ${#families[@]} -gt 0 ] || families=(kube etcd kwok helm prometheus actionlint crds keda metrics-server)
mkdir -p "$(cache_root)/bin"
for f in "${families[@]}"; do
  start=$SECONDS
  # One build of a family at a time across processes (two would share its .tmp directory): a second
  # caller waits here and then finds the family ready.
  exec 9>"$(cache_root)/bin/.build-$f.lock"
  flock 9
  case $f in
    kube) build_kube ;; etcd) build_etcd ;; kwok) build_kwok ;; helm) build_helm ;;
    prometheus) build_prometheus ;; actionlint) build_actionlint ;;
    crds) fetch_servicemonitor_crd && fetch_gateway_api_crds ;;
    keda) build_keda ;;
    metrics-server) build_metrics_server ;;
    *) log "unknown family $f"; exit 2 ;;
  esac
  exec 9>&-
  [ $((SECONDS - start)) -gt 1 ] && log "$f ready in $((SECONDS - start)) s"
done
link_bin_dir
bin_dir
