"""`ragflow-operator render` of the samples: golden files, stability, strict schema validation.

Set RAGFLOW_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change (then review
the diff). Built-in kinds are validated with kubernetes-validate --strict for every Kubernetes
minor the README claims (1.30-1.34); CRD-backed kinds (ServiceMonitor, VPA) have no schema
there and are checked field by field in the builder tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from ragflow_operator.cli import main

ROOT = Path(__file__).resolve().parents[3]
TESTDATA = Path(__file__).parent / "testdata"
SAMPLES = ["ragflowcluster-minimal", "ragflowcluster-production", "ragflowcluster-standby"]
KUBERNETES_VERSIONS = ["1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0"]
CRD_KINDS = {"ServiceMonitor", "VerticalPodAutoscaler"}


def render(sample: str, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["render", "-f", str(ROOT / "samples" / f"{sample}.yaml"), *extra]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("sample", SAMPLES)
def test_render_matches_the_golden_file(sample, capsys):
    output = render(sample, capsys)
    golden = TESTDATA / f"{sample}.rendered.yaml"
    if os.environ.get("RAGFLOW_UPDATE_GOLDEN"):
        golden.write_text(output)
    assert output == golden.read_text()


@pytest.mark.parametrize("sample", SAMPLES)
def test_render_is_byte_identical_across_processes(sample):
    command = [sys.executable, "-m", "ragflow_operator", "render", "-f", f"samples/{sample}.yaml"]
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    outputs = {
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True).stdout
        for _ in range(2)
    }
    assert len(outputs) == 1


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("sample", SAMPLES)
def test_rendered_children_are_valid_for_each_supported_kubernetes(sample, version, capsys):
    documents = list(yaml.safe_load_all(render(sample, capsys)))
    validated = 0
    for document in documents:
        if document["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(document, version, strict=True)
        validated += 1
    assert validated >= 17


def test_production_sample_turns_every_feature_on(capsys):
    kinds = {d["kind"] for d in yaml.safe_load_all(render("ragflowcluster-production", capsys))}
    assert kinds >= {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "StatefulSet",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
        "ServiceMonitor",
        "VerticalPodAutoscaler",
    }


def test_render_without_optional_apis_says_what_was_skipped(capsys):
    output = render("ragflowcluster-production", capsys, "--capabilities", "none")
    assert "kind: ServiceMonitor" not in output
    assert "kind: VerticalPodAutoscaler" not in output
    # the note went to stderr (captured separately by render(): re-run to read it)
    assert (
        main(
            [
                "render",
                "-f",
                str(ROOT / "samples/ragflowcluster-production.yaml"),
                "--capabilities",
                "none",
            ]
        )
        == 0
    )
    assert "VerticalPodAutoscaler skipped" in capsys.readouterr().err


def test_render_refuses_unknown_kinds(tmp_path, capsys):
    path = tmp_path / "cr.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n")
    assert main(["render", "-f", str(path)]) == 2
    assert "cannot render kind 'Pod'" in capsys.readouterr().err


def test_render_reports_invalid_specs(tmp_path, capsys):
    path = tmp_path / "cr.yaml"
    path.write_text(
        "apiVersion: ragflow.operator.dev/v1alpha1\nkind: RagFlowCluster\nmetadata: {name: x}\n"
        "spec: {database: {managed: {}, external: {host: h, credentialsSecret: {name: s}}}}\n"
    )
    assert main(["render", "-f", str(path)]) == 1
    assert "exactly one of spec.database" in capsys.readouterr().err
