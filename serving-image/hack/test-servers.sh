#!/usr/bin/env bash
# Builds (or reuses from the cache) the storage servers the serving image's tests talk to:
#   s3server        rclone's gofakes3 (S3 with Signature V4 checks) behind a tiny main in s3server/
#   fake-gcs-server github.com/fsouza/fake-gcs-server (GCS JSON/XML API emulator)
# Both come from the Go module proxy and build with CGO_ENABLED=0 and the machine's own Go.
# Binaries are cached outside the repo by version, like hack/cluster does:
#   ${MODELSERVE_CACHE:-~/.cache/modelserve-operator}/bin/<name>-<version>/<name>
# Prints the directory holding both binaries on stdout (the tests put it first on their lookup).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FAKE_GCS_VERSION=v1.56.1
GOFAKES3_VERSION=$(awk '{for (i = 1; i < NF; i++) if ($i == "github.com/rclone/gofakes3") print $(i + 1)}' "$here/s3server/go.mod")
cache=${MODELSERVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelserve-operator}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

# Builds into <dir>.tmp and renames, so an interrupted build is never taken as a cache hit.
build() {
  local name=$1 version=$2 dir=$cache/bin/$1-$2
  shift 2
  if [ -x "$dir/$name" ] && [ -f "$dir/.complete" ]; then return; fi
  echo "building $name $version (cached in $dir afterwards)" >&2
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  "$@" "$dir.tmp/$name" >&2
  touch "$dir.tmp/.complete"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

build_s3server() {
  (cd "$here/s3server" && go build -trimpath -o "$1" .)
}

build_fake_gcs() {
  local gobin
  gobin=$(mktemp -d)
  GOBIN=$gobin go install -trimpath "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
  mv "$gobin/fake-gcs-server" "$1"
  rm -rf "$gobin"
}

command -v go >/dev/null || { echo "go is required to build the test storage servers" >&2; exit 1; }
# The s3server main is ours, so its cache key includes a hash of its sources besides gofakes3's version.
s3hash=$(cat "$here/s3server/go.mod" "$here/s3server/go.sum" "$here/s3server/main.go" | sha1sum | cut -c1-8)
build s3server "$GOFAKES3_VERSION-$s3hash" build_s3server
build fake-gcs-server "$FAKE_GCS_VERSION" build_fake_gcs

links=$cache/bin/serving-test-servers
mkdir -p "$links"
ln -sfn "$cache/bin/s3server-$GOFAKES3_VERSION-$s3hash/s3server" "$links/s3server"
ln -sfn "$cache/bin/fake-gcs-server-$FAKE_GCS_VERSION/fake-gcs-server" "$links/fake-gcs-server"
echo "$links"
