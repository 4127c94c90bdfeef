"""Print the two image references the chart and the CRD default to, one per line.

operator: the chart's image.repository and image.tag (empty: the chart's appVersion);
runtime: the RagFlowCluster CRD's spec.image repository and tag defaults. Images built under
these names run without any override (`make images`, e2e/kind/run.sh, the real-node tier).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def operator_image(repo: Path = REPO_ROOT) -> str:
    chart = repo / "charts" / "ragflow-operator"
    values = yaml.safe_load((chart / "values.yaml").read_text())["image"]
    app_version = yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"]
    return f"{values['repository']}:{values['tag'] or app_version}"


def runtime_image(repo: Path = REPO_ROOT) -> str:
    crd = yaml.safe_load((repo / "crds" / "ragflowclusters.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    image = spec["properties"]["image"]["properties"]
    return f"{image['repository']['default']}:{image['tag']['default']}"


if __name__ == "__main__":
    sys.stdout.write(f"{operator_image()}\n{runtime_image()}\n")
