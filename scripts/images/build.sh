#!/usr/bin/env bash
# `make images`: build the operator and runtime images from the Dockerfile, under the names the
# chart and the CRD default to (scripts/images/names.py). See docs/images.md.
#
#   IMAGE_SOURCES=local (default): no registry needed. The base is debootstrapped from Debian
#     (base.sh, passed as PYTHON_IMAGE), the dockerfile frontend is built with Go (frontend.sh),
#     torch comes from PyPI (TORCH_INDEX_URL; PyPI's Linux torch is the CUDA build) and the
#     PostgreSQL client from Debian (PG_CLIENT_SOURCE=debian, PG_MAJOR=15).
#   IMAGE_SOURCES=registry: the Dockerfile's defaults (python:3.11.11-slim-bookworm, the PyTorch
#     CPU index, PostgreSQL's apt repository), as in any CI with registry access.
#   TARGETS="operator runtime" (default): which targets to build.
#
# The engine: $DOCKER_HOST when it answers, otherwise a private dockerd (dockerd.sh) started for
# the build and stopped afterwards (KEEP_DOCKERD=1 keeps it). pip inside the build trusts the CA
# bundle in PIP_CA_BUNDLE (default: the system bundle), given as a build secret only.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
sources="${IMAGE_SOURCES:-local}"
targets="${TARGETS:-operator runtime}"
docker="$(command -v /usr/bin/docker || command -v docker || true)"
[ -n "$docker" ] || { echo "build.sh: no docker client (apt-get install docker.io)" >&2; exit 2; }

started=0
if [ -z "${DOCKER_HOST:-}" ] || ! "$docker" version >/dev/null 2>&1; then
  unset DOCKER_HOST
  if ! "$docker" version >/dev/null 2>&1; then
    eval "export $(bash "$here/dockerd.sh" start)"
    started=1
  fi
fi
work="$(mktemp -d)"
cleanup() {
  rm -rf "$work"
  if [ "$started" = 1 ] && [ "${KEEP_DOCKERD:-0}" != 1 ]; then bash "$here/dockerd.sh" stop; fi
}
trap cleanup EXIT

build_args=()
case "$sources" in
  local)
    build_args+=(--build-arg "PYTHON_IMAGE=$(bash "$here/base.sh")")
    bash "$here/frontend.sh" >/dev/null
    build_args+=(--build-arg "TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://pypi.org/simple}")
    build_args+=(--build-arg "PG_CLIENT_SOURCE=${PG_CLIENT_SOURCE:-debian}")
    build_args+=(--build-arg "PG_MAJOR=${PG_MAJOR:-15}")
    ;;
  registry)
    [ -n "${PYTHON_IMAGE:-}" ] && build_args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")
    for name in TORCH_INDEX_URL PG_CLIENT_SOURCE PG_MAJOR; do
      [ -n "${!name:-}" ] && build_args+=(--build-arg "$name=${!name}")
    done
    ;;
  *)
    echo "build.sh: IMAGE_SOURCES must be local or registry, not $sources" >&2
    exit 64
    ;;
esac

ca="${PIP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
if [ -s "$ca" ]; then
  printf '[global]\ncert = /run/secrets/pip-ca\n' >"$work/pip.conf"
  build_args+=(--secret "id=pip-ca,src=$ca" --secret "id=pip.conf,src=$work/pip.conf")
fi

{ read -r operator_image; read -r runtime_image; } < <(python3 "$here/names.py")
for target in $targets; do
  case "$target" in
    operator) tag="$operator_image" ;;
    runtime) tag="$runtime_image" ;;
    *) echo "build.sh: unknown target $target (operator, runtime)" >&2; exit 64 ;;
  esac
  echo "==> images: $target -> $tag ($sources sources)"
  start=$(date +%s)
  DOCKER_BUILDKIT=1 "$docker" build --network host --progress plain --target "$target" \
    "${build_args[@]}" -t "$tag" "$repo"
  size="$("$docker" image inspect -f '{{.Size}}' "$tag")"
  echo "==> images: $tag built in $(( $(date +%s) - start ))s, $(( size / 1000000 )) MB"
done
