"""docs/reference/crds.md is generated from crds/*.yaml and must be up to date.

Runs scripts/gen_crd_reference.py --check (what CI sees), and renders a small literal CRD to pin
how fields, defaults, constraints, printer columns and CEL rules appear in the reference.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from types import ModuleType

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "gen_crd_reference.py"


@functools.cache
def generator() -> ModuleType:
    """scripts/gen_crd_reference.py imported as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_crd_reference", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_reference_matches_the_crds() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_reference_documents_every_kind_in_crds() -> None:
    reference = (REPO_ROOT / "docs" / "reference" / "crds.md").read_text()
    for path in sorted((REPO_ROOT / "crds").glob("*.yaml")):
        kind = generator().load_crds(path.parent)[0]["spec"]["names"]["kind"]
        assert f"## {kind} (ragflow.operator.dev/v1alpha1)" in reference


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.dev"},
    "spec": {
        "group": "example.dev",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Why", "type": "string", "priority": 1, "jsonPath": ".status.why"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "description": "A widget.",
                        "required": ["spec"],
                        "properties": {
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "x-kubernetes-validations": [
                                    {"rule": "self.size < 10 || self.big", "message": "a|b"}
                                ],
                                "properties": {
                                    "size": {
                                        "type": "integer",
                                        "minimum": 1,
                                        "default": 3,
                                        "description": "How\n  big.",
                                    },
                                    "mode": {"type": "string", "enum": ["a", "b"]},
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "parts": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {"name": {"type": "string"}},
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def test_fields_defaults_constraints_and_rules_are_rendered() -> None:
    text = generator().render_reference([WIDGET_CRD])
    assert "| [Widget](#widget-exampledevv1) | example.dev/v1 | wd |" in text
    assert "| `spec` | object | yes |  |  |  |" in text
    assert "| `spec.size` | integer | yes | `3` | min 1 | How big. |" in text
    assert "| `spec.mode` | string |  |  | one of `a`, `b` |  |" in text
    assert "| `spec.labels` | map[string]string |" in text
    assert "| `spec.parts[].name` | string |" in text
    assert "| Why (wide) | string | `.status.why` |" in text
    assert "| `spec` | `self.size < 10 \\|\\| self.big` | a\\|b |" in text
    assert "`metadata`" not in text
    assert "- Subresources: status" in text
