#!/usr/bin/env bash
# System packages: PostgreSQL 15 (integration tests), Redis, Prometheus' promtool, Node for Azurite.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v promtool >/dev/null || need+=(prometheus)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v npm >/dev/null || need+=(npm)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${need[*]} (run as root or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
  # The Debian packages start their own services; the tests start private instances instead.
  systemctl disable --now redis-server prometheus 2>/dev/null || true
  service redis-server stop 2>/dev/null || true
  service prometheus stop 2>/dev/null || true
fi
