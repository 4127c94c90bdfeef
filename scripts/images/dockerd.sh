#!/usr/bin/env bash
# A private Docker engine for image builds (Debian's docker.io, scripts/install.d/60-containers.sh):
#   scripts/images/dockerd.sh start   # idempotent; prints DOCKER_HOST=...
#   scripts/images/dockerd.sh stop    # stops the engine this script started (by its pid file)
#   scripts/images/dockerd.sh status
#
# Its own socket, data root, exec root and pid file, so it never touches a system Docker:
# no bridge and no iptables rules (build steps and containers use the host network), overlay2.
# The images stay in the data root ($RAGFLOW_CACHE/docker) between starts.
set -euo pipefail
cache="${RAGFLOW_CACHE:-$HOME/.cache/ragflow-operator}"
data_root="${RAGFLOW_DOCKER_DATA:-$cache/docker}"
run_dir="${RAGFLOW_DOCKER_RUN:-/run/ragflow-docker}"    # short: containerd socket paths live here
socket="$run_dir/docker.sock"
pid_file="$run_dir/dockerd.pid"
log_file="$run_dir/dockerd.log"
export DOCKER_HOST="unix://$socket"
client="$(command -v /usr/bin/docker || command -v docker || true)"

responding() { [ -n "$client" ] && "$client" version >/dev/null 2>&1; }

unusable() {  # why no engine can run here, or nothing
  if [ "$(id -u)" != 0 ]; then echo "the private Docker engine needs root"; return; fi
  if [ ! -x /usr/sbin/dockerd ]; then
    echo "/usr/sbin/dockerd is missing (apt-get install docker.io, or make install)"; return
  fi
  grep -qw overlay /proc/filesystems || echo "the kernel has no overlay filesystem"
}

case "${1:-}" in
  start)
    if responding; then echo "DOCKER_HOST=$DOCKER_HOST"; exit 0; fi
    reason="$(unusable)"
    if [ -n "$reason" ]; then echo "dockerd.sh: cannot start: $reason" >&2; exit 2; fi
    mkdir -p "$data_root" "$run_dir"
    /usr/sbin/dockerd --data-root "$data_root" --exec-root "$run_dir/exec" \
      --pidfile "$pid_file" --host "$DOCKER_HOST" --bridge=none --iptables=false \
      --ip-masq=false --storage-driver=overlay2 >"$log_file" 2>&1 &
    for _ in $(seq 60); do
      if responding; then echo "DOCKER_HOST=$DOCKER_HOST"; exit 0; fi
      kill -0 $! 2>/dev/null || break
      sleep 1
    done
    echo "dockerd.sh: the engine did not come up; its log ($log_file) ends with:" >&2
    tail -20 "$log_file" >&2
    exit 1
    ;;
  stop)
    [ -f "$pid_file" ] || { echo "dockerd.sh: not running (no $pid_file)"; exit 0; }
    pid="$(cat "$pid_file")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done
    echo "dockerd.sh: dockerd $pid did not stop within 60 s" >&2
    exit 1
    ;;
  status)
    if responding; then echo "running: DOCKER_HOST=$DOCKER_HOST"; else echo "not running"; fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 64
    ;;
esac
