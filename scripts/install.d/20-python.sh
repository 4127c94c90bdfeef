#!/usr/bin/env bash
# Python dependencies of the operator, runtime, backup engine and test suite (editable install).
#
# Every version comes from constraints.txt (`make lock` writes it; see docs/images.md), so pip
# never backtracks. Skipped when pyproject.toml and constraints.txt are unchanged since the last
# install AND the installed packages are this checkout's (an editable install of another clone
# would run that clone's code).
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore
cd "$RAGFLOW_REPO"
stamp="$RAGFLOW_CACHE/pip-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-$(python3 -c 'import sys;print(sys.prefix.replace("/","_"))')"
installed_from() {
  python3 - <<'PY' 2>/dev/null
import pathlib, ragflow_operator, ragruntime
print(pathlib.Path(ragflow_operator.__file__).resolve().parents[2])
print(pathlib.Path(ragruntime.__file__).resolve().parents[1])
PY
}
here="$(pwd -P)"
if [ -f "$stamp" ] && [ "$(cd / && installed_from | sort -u)" = "$here" ]; then
  echo "    python deps unchanged since last install"
  exit 0
fi
# Old pips (23.x, the machine's default) crash resolving this dependency set: upgrade first.
python3 -m pip install --disable-pip-version-check -q --upgrade "pip>=24.3"
python3 -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[all,dev]'
touch "$stamp"
