#!/usr/bin/env bash
# Python dependencies of the operator, runtime, backup engine and test suite (editable install).
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore
cd "$RAGFLOW_REPO"
stamp="$RAGFLOW_CACHE/pip-$(sha256sum pyproject.toml | cut -c1-16)-$(python3 -c 'import sys;print(sys.prefix.replace("/","_"))')"
if [ -f "$stamp" ] && python3 -c 'import ragflow_operator, ragruntime' 2>/dev/null; then
  echo "    python deps unchanged since last install"
  exit 0
fi
# Old pips (23.x, the machine's default) crash resolving this dependency set: upgrade first.
python3 -m pip install --disable-pip-version-check -q --upgrade "pip>=24.3"
python3 -m pip install --disable-pip-version-check -q -e '.[all,dev]'
touch "$stamp"
