#!/usr/bin/env bash
# Build the real node's images (this folder's Dockerfile) into the engine at $DOCKER_HOST and
# print "<target> <image>" per line. The base is the debootstrapped bookworm of
# scripts/images/base.sh, so nothing comes from a registry. Called by e2e/node/images.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
scripts="$here/../../../scripts/images"
docker="$(command -v /usr/bin/docker || command -v docker)"
base="$(bash "$scripts/base.sh")"
bash "$scripts/frontend.sh" >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
secrets=()
ca="${PIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
if [ -s "$ca" ]; then
  printf '[global]\ncert = /run/secrets/pip-ca\n' >"$work/pip.conf"
  secrets=(--secret "id=pip-ca,src=$ca" --secret "id=pip.conf,src=$work/pip.conf")
fi
for target in ${TARGETS:-pause postgres redis milvus}; do
  image="ragflow-node/$target:local"
  DOCKER_BUILDKIT=1 "$docker" build --network host --quiet --target "$target" \
    --build-arg "BASE=$base" "${secrets[@]}" -t "$image" "$here" >&2
  echo "$target $image"
done
