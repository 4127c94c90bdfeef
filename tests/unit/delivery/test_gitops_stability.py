"""The operator never fights Argo CD: rendering is stable, byte for byte, for the same input.

`ragflow-operator render` runs in fresh processes with different hash seeds (set and dict order
must not leak into the output) for every sample, and the output must be identical and free of
fields that would change on their own (timestamps, generated names). Argo CD compares what Git
holds with what the cluster holds; children rendered differently on every reconcile would mean
endless writes and rollouts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ragflow_operator.builders.registry import RENDERERS

from conftest import REPO_ROOT

SAMPLES = sorted((REPO_ROOT / "samples").glob("*.yaml"))
#: Samples of the kinds `ragflow-operator render` supports (builders/registry.py); a kind added
#: there is covered here automatically.
RENDERABLE = [path for path in SAMPLES if yaml.safe_load(path.read_text())["kind"] in RENDERERS]
UNSTABLE_METADATA = {"creationTimestamp", "resourceVersion", "uid", "generateName", "managedFields"}


def render(sample: Path, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-m", "ragflow_operator", "render", "-f", str(sample)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_there_are_samples_of_every_kind_and_the_main_kinds_render() -> None:
    kinds = {yaml.safe_load(path.read_text())["kind"] for path in SAMPLES}
    assert {"RagFlowCluster", "BackupPolicy", "AlertPolicy"} <= kinds
    assert {"RagFlowCluster", "AlertPolicy"} <= RENDERERS.keys()


@pytest.mark.parametrize("sample", RENDERABLE, ids=lambda path: path.stem)
def test_render_is_byte_identical_across_processes(sample: Path) -> None:
    first, second = render(sample, "1"), render(sample, "4242")
    assert first, f"{sample.name} rendered nothing"
    assert first == second
    for child in yaml.safe_load_all(first):
        if not child:
            continue
        assert "status" not in child, f"{child['kind']} carries a status"
        assert not UNSTABLE_METADATA & child["metadata"].keys(), child["metadata"]
