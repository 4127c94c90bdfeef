#!/usr/bin/env bash
# A Debian bookworm base with Python 3.11 (python3, venv, pip) built from Debian's packages with
# debootstrap, imported into the engine at $DOCKER_HOST. It stands in for the official
# python:3.11-slim-bookworm where no registry is reachable; it has its own name and is passed to
# the Dockerfile through the PYTHON_IMAGE build argument.
#   scripts/images/base.sh            # prints the image name; builds it once (about 2 min)
#   REBUILD=1 scripts/images/base.sh  # a fresh debootstrap (security updates)
set -euo pipefail
image="${RAGFLOW_BASE_IMAGE:-ragflow-local/debian-python:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
docker="$(command -v /usr/bin/docker || command -v docker)"

if [ "${REBUILD:-0}" != 1 ] && "$docker" image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "base.sh: debootstrap is missing (apt-get install debootstrap, or make install)" >&2
  exit 2
}
root="$(mktemp -d /var/tmp/ragflow-bookworm.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "base.sh: debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
  bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -20 "$root.log" >&2
  exit 1
}
rm -f "$root.log"
# The same sources a container image carries: the release, its updates and security updates.
cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} bookworm-security main
SOURCES
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
tar --numeric-owner -C "$root" -c . | "$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=\"Debian bookworm (debootstrap minbase) with python3\" org.opencontainers.image.created=$created" \
  - "$image" >/dev/null
echo "$image"
