# Shared paths of the local control plane's cache; sourced by build.sh and cluster.sh.
# Binaries live outside the repo, keyed by tool family and version:
#   $MODELSERVE_CACHE/bin/<family>-<version>/   one directory per family, complete or absent
#   $MODELSERVE_CACHE/bin/current/              symlinks to the pinned versions (put on PATH)

cache_root() { echo "${MODELSERVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelserve-operator}"; }
bin_dir() { echo "$(cache_root)/bin/current"; }
family_dir() { echo "$(cache_root)/bin/$1-$2"; }
family_ready() { [ -f "$(family_dir "$1" "$2")/.complete" ]; }

# Moves a finished build into place atomically, so an interrupted build is never taken as a cache hit.
publish_family() {
  local out=$1
  touch "$out.tmp/.complete"
  rm -rf "$out"
  mv "$out.tmp" "$out"
}

link_bin_dir() {
  local cur f
  cur=$(bin_dir)
  mkdir -p "$cur"
  for f in "kube $KUBE_VERSION" "etcd $ETCD_VERSION" "kwok $KWOK_VERSION" "helm $HELM_VERSION" \
    "prometheus $PROMETHEUS_VERSION" "actionlint $ACTIONLINT_VERSION" "keda ${KEDA_VERSION:-}" \
    "metrics-server ${METRICS_SERVER_VERSION:-}"; do
    # shellcheck disable=SC2086
    set -- $f
    family_ready "$1" "$2" || continue
    for b in "$(family_dir "$1" "$2")"/*; do [ -f "$b" ] || continue; ln -sfn "$b" "$cur/$(basename "$b")"; done
  done
}
