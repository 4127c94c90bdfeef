"""Fixtures for the delivery tests: the helm binary and a chart renderer.

Used by every test in tests/unit/delivery. helm is installed by scripts/install.d/50-helm.sh into
``$RAGFLOW_CACHE/bin``; a missing helm fails the tests loudly instead of skipping them.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART_DIR = REPO_ROOT / "charts" / "ragflow-operator"

RenderChart = Callable[..., list[dict[str, Any]]]


def find_helm() -> Path:
    """helm from $RAGFLOW_HELM, $RAGFLOW_CACHE/bin (the bootstrap step) or PATH."""
    explicit = os.environ.get("RAGFLOW_HELM")
    cache = Path(os.environ.get("RAGFLOW_CACHE", Path.home() / ".cache" / "ragflow-operator"))
    candidates = [Path(explicit)] if explicit else []
    candidates.append(cache / "bin" / "helm")
    on_path = shutil.which("helm")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        "helm not found: run `bash scripts/install.d/50-helm.sh` (or `make install`), "
        "or set RAGFLOW_HELM to a helm binary"
    )


def run_helm(helm: Path, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run helm with a private config/cache home so no user repositories or plugins leak in."""
    helm_home = Path(tempfile.gettempdir()) / "ragflow-operator-helm"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(helm_home),
        "HELM_CONFIG_HOME": str(helm_home / "config"),
        "HELM_CACHE_HOME": str(helm_home / "cache"),
        "HELM_DATA_HOME": str(helm_home / "data"),
    }
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def render(
    helm: Path, *, values: Sequence[str] = (), include_crds: bool = False
) -> list[dict[str, Any]]:
    """`helm template` the chart with --set style values; the parsed, non-empty documents."""
    args = ["template", "rfo", str(CHART_DIR), "--namespace", "ragflow-system"]
    if include_crds:
        args.append("--include-crds")
    for value in values:
        args += ["--set", value]
    result = run_helm(helm, args)
    if result.returncode != 0:
        raise AssertionError(f"helm template {' '.join(values)} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def helm() -> Path:
    """The helm binary (fails when it is missing: run make install)."""
    return find_helm()


@pytest.fixture(scope="session")
def render_chart(helm: Path) -> RenderChart:
    """A function rendering the chart: render_chart(values=[...], include_crds=False)."""

    rendered: dict[tuple[tuple[str, ...], bool], list[dict[str, Any]]] = {}

    def _render(*, values: Sequence[str] = (), include_crds: bool = False) -> list[dict[str, Any]]:
        key = (tuple(values), include_crds)
        if key not in rendered:
            rendered[key] = render(helm, values=values, include_crds=include_crds)
        return copy.deepcopy(rendered[key])

    return _render
