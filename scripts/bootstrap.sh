#!/usr/bin/env bash
# Installs everything the test suite and the demo need, idempotently, on a fresh Debian 12
# machine (as root) or on a developer machine that already has most of it.
#
# Each step lives in scripts/install.d/NN-name.sh and is run in order; a step must be safe to
# re-run and fast when there is nothing to do. Heavy artefacts (Go builds, npm packages, helm)
# are cached outside the repository, under $RAGFLOW_CACHE (default ~/.cache/ragflow-operator).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export RAGFLOW_REPO="$(cd "$here/.." && pwd)"
export RAGFLOW_CACHE="${RAGFLOW_CACHE:-$HOME/.cache/ragflow-operator}"
mkdir -p "$RAGFLOW_CACHE"
for step in "$here"/install.d/*.sh; do
  name="$(basename "$step" .sh)"
  start=$(date +%s)
  echo "==> bootstrap: $name"
  bash "$step"
  echo "    $name done in $(( $(date +%s) - start ))s"
done
