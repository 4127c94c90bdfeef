"""Jinja2 rendering of the child manifests in the repository's `templates/` directory.

Every builder calls `render_manifest(template_name, **context)`: one template per child kind,
`StrictUndefined` so a missing variable fails loudly, and the `tojson` filter for values so any
string (annotations, hosts, user-provided maps) is quoted safely. The output is parsed back to a
dict, so callers and tests work with data, not text. `dump_manifests` produces the stable,
byte-identical YAML that `ragflow-operator render` prints.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jinja2
import yaml

from ragflow_operator import assets

Manifest = dict[str, Any]
#: libyaml's safe loader when available: parsing is most of a build's CPU time.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _to_json(value: Any) -> str:
    """JSON is valid YAML flow syntax: safe quoting for any value placed in a template."""
    return json.dumps(value, sort_keys=True)


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(assets.templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["j"] = _to_json
    return env


def render_manifest(template: str, **context: Any) -> Manifest:
    """Render `templates/<template>` with `context` and parse the YAML into one manifest dict."""
    text = _environment().get_template(template).render(**context)
    manifest = yaml.load(text, Loader=_LOADER)
    if not isinstance(manifest, dict) or "kind" not in manifest:
        raise ValueError(f"template {template} did not render a Kubernetes object")
    return manifest


class _ReviewDumper(yaml.SafeDumper):
    """Writes multi-line strings (rules files, JSON configs) as `|` blocks, readable in diffs."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(c in value for c in "\t\r") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReviewDumper.add_representer(str, _represent_str)


def dump_manifests(manifests: list[Manifest]) -> str:
    """Multi-document YAML with sorted keys: same input, byte-identical output."""
    return "".join(
        "---\n" + yaml.dump(m, Dumper=_ReviewDumper, sort_keys=True, default_flow_style=False)
        for m in manifests
    )
