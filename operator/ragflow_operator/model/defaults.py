"""Structural defaulting from the CRDs in `crds/`, as the API server does it.

The defaults are declared once, in the CRD schemas; this module applies them to a CR body read
from a file (the `render` command, unit tests) so the models never re-invent them. Called by
`model.*.from_body` callers and cli.py. Pure apart from reading the CRD file once.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

import yaml

from ragflow_operator import assets

Schema = dict[str, Any]


@lru_cache(maxsize=8)
def crd_schema(plural: str) -> Schema:
    """openAPIV3Schema of the storage version of `crds/<plural>.yaml`."""
    path = assets.crds_dir() / f"{plural}.yaml"
    with path.open(encoding="utf-8") as handle:
        crd = yaml.safe_load(handle)
    for version in crd["spec"]["versions"]:
        if version.get("storage"):
            return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]
    raise ValueError(f"{path} has no storage version")


def apply_defaults(value: Any, schema: Schema) -> Any:
    """Return a copy of `value` with every missing property that has a default filled in.

    Like the API server: a default applies when the property is absent, and defaulted values are
    themselves defaulted further. Unknown fields are left untouched.
    """
    if isinstance(value, dict):
        result = {key: copy.deepcopy(item) for key, item in value.items()}
        properties: dict[str, Schema] = schema.get("properties", {})
        for key, prop in properties.items():
            if key not in result and "default" in prop:
                result[key] = copy.deepcopy(prop["default"])
            if key in result:
                result[key] = apply_defaults(result[key], prop)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in result:
                if key not in properties:
                    result[key] = apply_defaults(result[key], extra)
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def defaulted_body(body: dict[str, Any], plural: str) -> dict[str, Any]:
    """`body` with the defaults of `crds/<plural>.yaml` applied (a new dict)."""
    return apply_defaults(body, crd_schema(plural))  # type: ignore[no-any-return]
