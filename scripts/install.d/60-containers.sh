#!/usr/bin/env bash
# Container tooling for `make images` and the real-node tier (docs/images.md, docs/real-node.md):
#   Debian packages: docker.io (a private dockerd builds the images), debootstrap (the base
#   image), containerd, runc and containernetworking-plugins (the real node's runtime and CNI);
#   kubelet and kube-proxy, built with Go from e2e/controlplane/kube/go.mod like the control
#   plane, cached next to it in $RAGFLOW_CACHE/controlplane/k8s-<version>/.
# Optional: the test suite skips the tiers that need these (with the reason) when this step
# cannot install them, so a machine without apt or Go only prints why and goes on.
# Idempotent: nothing is installed or built when everything is there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${RAGFLOW_REPO:-$(cd "$here/../.." && pwd)}"
export RAGFLOW_CACHE="${RAGFLOW_CACHE:-$HOME/.cache/ragflow-operator}"

need=()
[ -x /usr/sbin/dockerd ] || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "    skipped: container tooling missing (${need[*]}) and no root apt-get to install it;" \
      "make images and the real-node tests will skip"
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" \
      >/dev/null
    # The packages enable their system services; the tiers start private instances instead.
    for service in docker.socket docker containerd; do
      systemctl disable --now "$service" >/dev/null 2>&1 || true
    done
    echo "    installed ${need[*]}"
  fi
else
  echo "    docker.io, debootstrap, containerd, runc, CNI plugins present"
fi

read -r k8s_version k8s_dir < <(cd "$repo" && python3 -c '
from e2e.controlplane import assets as a
print(a.KUBERNETES_VERSION, a.kubernetes_bin_dir())')
node_commands=(kubelet kube-proxy)
missing=()
for name in "${node_commands[@]}"; do
  [ -x "$k8s_dir/$name" ] || missing+=("$name")
done
if [ ${#missing[@]} = 0 ]; then
  echo "    kubelet and kube-proxy $k8s_version cached"
  exit 0
fi
go_bin="$(command -v go || echo /usr/local/go/bin/go)"
if [ ! -x "$go_bin" ]; then
  echo "    skipped: Go is needed to build ${missing[*]}; the real-node tests will skip"
  exit 0
fi
echo "    building ${missing[*]} $k8s_version (shares the control plane's Go build cache)"
minor="${k8s_version#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
mkdir -p "$k8s_dir"
staging="$(mktemp -d "${k8s_dir}.node.XXXXXX")"
(cd "$repo/e2e/controlplane/kube" && "$go_bin" build -trimpath -ldflags "$ldflags" \
  -o "$staging/" "${missing[@]/#/k8s.io/kubernetes/cmd/}")
for name in "${missing[@]}"; do
  mv -f "$staging/$name" "$k8s_dir/$name"
done
rmdir "$staging"
"$k8s_dir/kubelet" --version
