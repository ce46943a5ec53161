#!/usr/bin/env bash
# Checks the toolchains `make demo` and `make test` need and installs missing Debian packages.
# Go builds only the test infrastructure (hack/cluster); the product is Python.
set -euo pipefail

need_apt=()
python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null \
  || { echo "Python >= 3.11 is required (found: $(python3 --version 2>&1))" >&2; exit 1; }
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v git >/dev/null || need_apt+=(git)
command -v make >/dev/null || need_apt+=(make)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  echo "installing Debian packages: ${need_apt[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The virtualenv takes about 2.5 GiB and a first Go build of the control plane about 12 GiB of Go
# build cache: say so up front instead of letting pip fail half-way with "No space left on device".
free_gib=$(df -Pk . | awk 'NR == 2 {printf "%d", $4 / 1048576}')
if [ "${free_gib:-0}" -lt 4 ]; then
  echo "warning: only ${free_gib} GiB free on the filesystem of $(pwd): the virtualenv needs about" \
    "2.5 GiB, a first build of the control plane about 12 GiB more" >&2
fi

if ! command -v go >/dev/null; then
  echo "Go >= 1.26 is required to build the local control plane (hack/cluster)." >&2
  echo "Install it from your distribution or go.dev; Debian's golang package is too old." >&2
  exit 1
fi
go_minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [ "${go_minor:-0}" -lt 26 ]; then
  echo "Go >= 1.26 is required (found $(go env GOVERSION))" >&2
  exit 1
fi
