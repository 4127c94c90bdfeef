#!/usr/bin/env bash
# The Dockerfile frontend that the Dockerfile's `# syntax=docker/dockerfile:1.7` line names, built
# with Go from the BuildKit module (Go module proxy, checked against the Go checksum database) and
# imported into the engine at $DOCKER_HOST under that name, so BuildKit finds it locally instead
# of pulling it from Docker Hub. It is the same program as the published image: BuildKit
# v0.13.2 is the release that carries dockerfile 1.7.
set -euo pipefail
buildkit_version="v0.13.2"
cache="${RAGFLOW_CACHE:-$HOME/.cache/ragflow-operator}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
docker="$(command -v /usr/bin/docker || command -v docker)"
image="$(sed -n '1s/^# syntax=//p' "$repo/Dockerfile")"
[ -n "$image" ] || { echo "frontend.sh: the Dockerfile has no # syntax= line" >&2; exit 1; }
label="dev.ragflow-operator.frontend-module"
wanted="github.com/moby/buildkit@$buildkit_version"

if [ "$("$docker" image inspect -f "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null)" \
     = "$wanted" ]; then
  echo "$image"
  exit 0
fi
go_bin="$(command -v go || echo /usr/local/go/bin/go)"
[ -x "$go_bin" ] || { echo "frontend.sh: Go is needed to build $image" >&2; exit 2; }
bin_dir="$cache/frontend-$buildkit_version"
if [ ! -x "$bin_dir/dockerfile-frontend" ]; then
  echo "frontend.sh: building the dockerfile frontend from $wanted" >&2
  staging="$(mktemp -d "$cache/frontend.partial.XXXXXX")"
  GOBIN="$staging" CGO_ENABLED=0 "$go_bin" install -trimpath -ldflags "-s -w" \
    "github.com/moby/buildkit/frontend/dockerfile/cmd/dockerfile-frontend@$buildkit_version"
  mkdir -p "$bin_dir"
  mv -f "$staging/dockerfile-frontend" "$bin_dir/"
  rmdir "$staging"
fi
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
install -D -m 0755 "$bin_dir/dockerfile-frontend" "$root/bin/dockerfile-frontend"
tar --numeric-owner --owner=0 --group=0 -C "$root" -c . | "$docker" import \
  --change 'ENTRYPOINT ["/bin/dockerfile-frontend"]' \
  --change 'LABEL moby.buildkit.frontend.network.none="true"' \
  --change 'LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"' \
  --change "LABEL $label=$wanted" \
  - "$image" >/dev/null
echo "$image"
