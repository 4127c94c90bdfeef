#!/usr/bin/env bash
# `make e2e-kind`: the e2e suite against a real kind cluster, then the steps only real pods can do.
#
#   1. create a kind cluster (e2e/kind/cluster.yaml)
#   2. build both images (Dockerfile targets operator and runtime) and load them into kind
#   3. helm install charts/ragflow-operator with those images
#   4. start the in-cluster S3 emulator (e2e/kind/s3-emulator.yaml)
#   5. run the SAME pytest e2e suite as the local control plane, with RAGFLOW_E2E_KUBECONFIG
#   6. apply samples/, wait for Ready, query the runtime, run an on-demand backup to the emulator
#   7. delete the cluster (unless KEEP_CLUSTER=1)
#
# Needs docker, kind, kubectl and helm on PATH (helm: scripts/install.d/50-helm.sh puts one in
# ~/.cache/ragflow-operator/bin). Cannot run where no Docker engine runs. See docs/kind.md.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cluster_name="${KIND_CLUSTER_NAME:-ragflow-e2e}"
node_image="${KIND_NODE_IMAGE:-}"            # e.g. kindest/node:v1.34.0; empty: kind's default
# Images are tagged with the names the chart and the CRD default to, so nothing needs overriding
# and pods find them on the node (pull policy IfNotPresent) without any registry.
{ read -r operator_image; read -r runtime_image; } < <(python3 "$repo/scripts/images/names.py")
operator_ns="ragflow-system"
demo_ns="ragflow-demo"
ready_timeout="${READY_TIMEOUT:-900s}"       # first start pulls PostgreSQL, Redis and Milvus
work="$(mktemp -d)"
kubeconfig="$work/kubeconfig"
export PATH="${RAGFLOW_CACHE:-$HOME/.cache/ragflow-operator}/bin:$PATH"

log() { printf '==> %s\n' "$*"; }
kc() { kubectl --kubeconfig "$kubeconfig" "$@"; }

cleanup() {
  local rc=$?
  [ -n "${port_forward_pid:-}" ] && kill "$port_forward_pid" 2>/dev/null || true
  if [ "$rc" != 0 ] && [ -f "$kubeconfig" ]; then
    log "failed (exit $rc): operator log and events follow"
    kc -n "$operator_ns" logs deployment/ragflow-operator --tail=200 || true
    kc get events -A --sort-by=.lastTimestamp | tail -50 || true
  fi
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    log "KEEP_CLUSTER=1: cluster $cluster_name kept; kubeconfig at $kubeconfig"
  else
    log "deleting kind cluster $cluster_name"
    kind delete cluster --name "$cluster_name" >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
  exit "$rc"
}

require() {
  local missing=()
  for tool in docker kind kubectl helm python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "e2e-kind needs: ${missing[*]} (see docs/kind.md)" >&2
    exit 1
  fi
  docker info >/dev/null 2>&1 || { echo "the Docker engine is not running" >&2; exit 1; }
}

create_cluster() {
  log "creating kind cluster $cluster_name"
  local image_args=()
  [ -n "$node_image" ] && image_args=(--image "$node_image")
  kind create cluster --name "$cluster_name" --config "$repo/e2e/kind/cluster.yaml" \
    --kubeconfig "$kubeconfig" --wait 180s ${image_args[@]+"${image_args[@]}"}
  kc version
}

build_and_load_images() {
  log "building $operator_image and $runtime_image"
  DOCKER_BUILDKIT=1 docker build --target operator -t "$operator_image" "$repo"
  DOCKER_BUILDKIT=1 docker build --target runtime -t "$runtime_image" "$repo"
  log "loading images into kind"
  kind load docker-image "$operator_image" "$runtime_image" --name "$cluster_name"
}

install_chart() {
  log "helm install ragflow-operator"
  kc create namespace "$demo_ns" --dry-run=client -o yaml | kc apply -f -
  # The in-cluster operator serves the demo namespace only: the pytest suite starts its own
  # operator for its per-test namespaces, and two operators must never handle the same objects.
  helm --kubeconfig "$kubeconfig" upgrade --install ragflow-operator "$repo/charts/ragflow-operator" \
    --namespace "$operator_ns" --create-namespace \
    --set watch.allNamespaces=false --set "watch.namespaces={$demo_ns}" \
    --wait --timeout 5m
  kc -n "$operator_ns" rollout status deployment/ragflow-operator --timeout=2m
}

start_s3_emulator() {
  log "starting the S3 emulator"
  kc apply -f "$repo/e2e/kind/s3-emulator.yaml"
  kc -n ragflow-e2e-s3 rollout status deployment/s3-emulator --timeout=5m
  kc -n ragflow-e2e-s3 wait --for=condition=complete job/create-bucket --timeout=3m
}

run_e2e_suite() {
  log "running the e2e suite against kind"
  # The same tests as the local control plane; the fixtures use this cluster instead. The
  # real-node tier (e2e/node) starts its own control plane and node: it is not a test of kind.
  (cd "$repo" && RAGFLOW_E2E_KUBECONFIG="$kubeconfig" python3 -m pytest e2e -m cluster \
    --ignore=e2e/node -p no:cacheprovider)
}

apply_samples() {
  log "applying samples/ in namespace $demo_ns"
  kc -n "$demo_ns" create secret generic e2e-s3-credentials \
    --from-literal=AWS_ACCESS_KEY_ID=e2e --from-literal=AWS_SECRET_ACCESS_KEY=e2e-secret \
    --dry-run=client -o yaml | kc apply -f -
  # The namespace-free samples: one RagFlowCluster, its AlertPolicy and its BackupPolicy.
  local samples=(-f "$repo/samples/ragflowcluster-minimal.yaml" -f "$repo/samples/alertpolicy.yaml"
                 -f "$repo/samples/backuppolicy.yaml")
  # Secrets the samples name with a key (keyring, Alertmanager receivers), from the server-defaulted
  # specs; every value is a fresh base64 32-byte key (a valid keyring; nothing is paged).
  kc -n "$demo_ns" create --dry-run=server -o json "${samples[@]}" | python3 -c '
import json, sys
def refs(value, field=""):
    if isinstance(value, dict):
        if field.endswith("Secret") and value.get("name") and value.get("key"):
            yield value["name"], value["key"]
        for key, child in value.items():
            yield from refs(child, key)
    elif isinstance(value, list):
        for child in value:
            yield from refs(child, field)
wanted, text, decoder, position = {}, sys.stdin.read(), json.JSONDecoder(), 0
while text[position:].strip():  # kubectl prints one JSON document per object
    position += len(text[position:]) - len(text[position:].lstrip())
    item, position = decoder.raw_decode(text, position)
    for name, key in refs(item["spec"]):
        wanted.setdefault(name, set()).add(key)
for name, keys in sorted(wanted.items()):
    print(name, " ".join(sorted(keys)))
' | while read -r secret keys; do
    literals=()
    for key in $keys; do
      literals+=("--from-literal=$key=$(head -c 32 /dev/urandom | base64)")
    done
    kc -n "$demo_ns" create secret generic "$secret" "${literals[@]}" --dry-run=client -o yaml \
      | kc apply -f -
  done
  kc -n "$demo_ns" apply "${samples[@]}"
  # Every backup goes to the in-cluster emulator only.
  for policy in $(kc -n "$demo_ns" get backuppolicies -o name); do
    kc -n "$demo_ns" patch "$policy" --type merge -p '{"spec":{"minSuccessfulDestinations":1,
      "destinations":[{"name":"emulator","s3":{"bucket":"ragflow-backups","prefix":"e2e",
      "region":"us-east-1","endpoint":"http://s3-emulator.ragflow-e2e-s3.svc:5000",
      "credentialsSecret":{"name":"e2e-s3-credentials"}}}]}}'
  done
  log "waiting for Ready (timeout $ready_timeout)"
  kc -n "$demo_ns" wait --for=condition=Ready ragflowclusters --all --timeout="$ready_timeout"
  kc -n "$demo_ns" wait --for=condition=Ready backuppolicies,alertpolicies --all --timeout=5m
  kc -n "$demo_ns" get ragflow -o wide
}

query_runtime() {
  local rfc name api_key port=19380
  rfc="$(kc -n "$demo_ns" get ragflowclusters -o jsonpath='{.items[0].metadata.name}')"
  name="$rfc-api"
  log "querying the runtime of $rfc through service/$name"
  api_key="$(kc -n "$demo_ns" get secret "$rfc-api-key" -o jsonpath='{.data.api-key}' | base64 -d)"
  kc -n "$demo_ns" port-forward "service/$name" "$port:9380" >"$work/port-forward.log" 2>&1 &
  port_forward_pid=$!
  RAGFLOW_URL="http://127.0.0.1:$port" RAGFLOW_API_KEY="$api_key" python3 - <<'PY'
"""Ready probe, then the RAGFlow API: dataset, upload, parse, retrieval (same calls as clients)."""
import os
import time

import httpx

base, key = os.environ["RAGFLOW_URL"], os.environ["RAGFLOW_API_KEY"]
headers = {"Authorization": f"Bearer {key}"}
deadline = time.monotonic() + 60
while True:
    try:
        if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
            break
    except httpx.TransportError:
        pass
    if time.monotonic() > deadline:
        raise SystemExit("runtime never became ready through the port-forward")
    time.sleep(1)
with httpx.Client(base_url=base, headers=headers, timeout=120) as api:
    dataset = api.post("/api/v1/datasets", json={"name": "kind-e2e"}).json()["data"]
    text = b"Kubernetes operators reconcile custom resources into running workloads."
    files = {"file": ("operators.txt", text, "text/plain")}
    docs = api.post(f"/api/v1/datasets/{dataset['id']}/documents", files=files).json()["data"]
    ids = [doc["id"] for doc in docs]
    api.post(f"/api/v1/datasets/{dataset['id']}/chunks", json={"document_ids": ids})
    for _ in range(120):
        listed = api.get(f"/api/v1/datasets/{dataset['id']}/documents").json()["data"]
        if all(doc.get("run") == "DONE" for doc in listed["docs"]):
            break
        time.sleep(1)
    found = api.post(
        "/api/v1/retrieval",
        json={"question": "what do operators reconcile?", "dataset_ids": [dataset["id"]]},
    ).json()
    assert found["code"] == 0 and found["data"]["chunks"], found
    print("retrieval returned", len(found["data"]["chunks"]), "chunk(s)")
PY
  kill "$port_forward_pid" 2>/dev/null || true
  port_forward_pid=""
}

run_backup() {
  local policy
  policy="$(kc -n "$demo_ns" get backuppolicies -o jsonpath='{.items[0].metadata.name}')"
  log "on-demand backup of BackupPolicy $policy to the S3 emulator"
  kc -n "$demo_ns" annotate backuppolicy "$policy" --overwrite \
    "ragflow.operator.dev/backup-now=$(date +%s)"
  kc -n "$demo_ns" wait --for=condition=LastBackupSucceeded "backuppolicy/$policy" --timeout=10m
  kc -n "$demo_ns" get backuppolicy "$policy" -o jsonpath='{.status.lastBackup}'
  echo
}

trap cleanup EXIT
require
create_cluster
build_and_load_images
install_chart
start_s3_emulator
run_e2e_suite
apply_samples
query_runtime
run_backup
log "kind e2e passed"
