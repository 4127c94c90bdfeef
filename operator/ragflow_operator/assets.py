"""Where the operator finds its non-Python assets: the `templates/` and `crds/` directories.

In a source checkout they live at the repository root (two levels above this package's parent);
an image or another layout sets `RAGFLOW_OPERATOR_ASSETS` to the directory holding both.
Used by builders/render.py (templates) and model/defaults.py (CRD schemas).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_ASSETS = "RAGFLOW_OPERATOR_ASSETS"


def assets_root() -> Path:
    """Directory containing `templates/` and `crds/`."""
    override = os.environ.get(ENV_ASSETS)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2]


def templates_dir() -> Path:
    return assets_root() / "templates"


def crds_dir() -> Path:
    return assets_root() / "crds"
