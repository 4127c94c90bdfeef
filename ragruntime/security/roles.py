"""Roles of API keys and the route -> permission table of ``/api/v1``.

Every route of the API has exactly one ``Rule`` here, keyed by method and full path template.
``ragruntime.api.auth`` enforces it before the route runs; a route without a rule is refused
for every key (fail closed), and tests/unit/runtime/test_access_matrix.py fails until the new
route gets a decision. Roles are ordered: ``viewer`` < ``editor`` < ``admin``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class AccessRole(StrEnum):
    """What a key may do: read and retrieve, change documents and chunks, or everything."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: AccessRole) -> bool:
        return self.rank >= needed.rank


_RANK = {AccessRole.VIEWER: 1, AccessRole.EDITOR: 2, AccessRole.ADMIN: 3}


class Category(StrEnum):
    """Audit category of an allowed request."""

    DATA_ACCESS = "data_access"
    CONFIGURATION = "configuration"


@dataclass(frozen=True)
class Rule:
    """The least role a route needs, how its use is audited, and where its ids are."""

    role: AccessRole
    category: Category
    action: str
    #: JSON body fields holding ids to audit (and, for ``dataset_ids``, to check the scope).
    body_ids: tuple[str, ...] = ()


V, E, A = AccessRole.VIEWER, AccessRole.EDITOR, AccessRole.ADMIN
DATA, CONFIG = Category.DATA_ACCESS, Category.CONFIGURATION
DOC = "/api/v1/datasets/{dataset_id}/documents/{document_id}"

RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/api/v1/datasets"): Rule(V, DATA, "list_datasets"),
    ("POST", "/api/v1/datasets"): Rule(A, CONFIG, "create_dataset"),
    ("PUT", "/api/v1/datasets/{dataset_id}"): Rule(A, CONFIG, "update_dataset"),
    ("DELETE", "/api/v1/datasets"): Rule(A, CONFIG, "delete_datasets", ("ids",)),
    ("POST", "/api/v1/datasets/{dataset_id}/documents"): Rule(E, DATA, "upload_documents"),
    ("GET", "/api/v1/datasets/{dataset_id}/documents"): Rule(V, DATA, "list_documents"),
    ("DELETE", "/api/v1/datasets/{dataset_id}/documents"): Rule(
        E, DATA, "delete_documents", ("ids",)
    ),
    ("GET", DOC): Rule(V, DATA, "download_document"),
    ("PUT", DOC): Rule(E, DATA, "update_document"),
    ("POST", "/api/v1/datasets/{dataset_id}/chunks"): Rule(
        E, DATA, "parse_documents", ("document_ids",)
    ),
    ("DELETE", "/api/v1/datasets/{dataset_id}/chunks"): Rule(
        E, DATA, "stop_parsing", ("document_ids",)
    ),
    ("GET", DOC + "/chunks"): Rule(V, DATA, "list_chunks"),
    ("POST", DOC + "/chunks"): Rule(E, DATA, "add_chunk"),
    ("DELETE", DOC + "/chunks"): Rule(E, DATA, "delete_chunks", ("chunk_ids",)),
    ("PUT", DOC + "/chunks/{chunk_id}"): Rule(E, DATA, "update_chunk"),
    ("POST", "/api/v1/retrieval"): Rule(V, DATA, "retrieve", ("dataset_ids", "document_ids")),
    ("POST", "/api/v1/system/new_token"): Rule(A, CONFIG, "create_key"),
    ("GET", "/api/v1/system/token_list"): Rule(A, CONFIG, "list_keys"),
    ("DELETE", "/api/v1/system/token/{key_id}"): Rule(A, CONFIG, "revoke_key"),
    ("POST", "/api/v1/system/token/{key_id}/rotate"): Rule(A, CONFIG, "rotate_key"),
    ("GET", "/api/v1/standby"): Rule(V, CONFIG, "standby_status"),
}

#: Actions that read although their method is not GET (refused nowhere on a standby).
READS_BY_POST = frozenset({"retrieve"})


def writes(method: str, rule: Rule) -> bool:
    """Whether a route changes state (what a read-only standby refuses)."""
    return method not in ("GET", "HEAD") and rule.action not in READS_BY_POST


#: Routes under /api/v1 that answer without a key (RAGFlow's probes).
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {("GET", "/api/v1/system/ping"), ("GET", "/api/v1/system/healthz")}
)

_PARAM = re.compile(r"\{([a-z_]+)\}")


def _compile(template: str) -> re.Pattern[str]:
    """``/a/{x}/b`` -> ``^/a/(?P<x>[^/]+)/b$`` (one path segment per parameter)."""
    parts = _PARAM.split(template)
    pattern = "".join(
        f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part) for index, part in enumerate(parts)
    )
    return re.compile(f"^{pattern}$")


_COMPILED = [(method, template, _compile(template)) for method, template in RULES]


@dataclass(frozen=True)
class Match:
    template: str
    rule: Rule
    params: dict[str, str]


def match(method: str, path: str) -> Match | None:
    """The rule of the request ``method path`` (``HEAD`` counts as ``GET``), or None."""
    method = "GET" if method == "HEAD" else method
    for rule_method, template, pattern in _COMPILED:
        found = pattern.match(path) if rule_method == method else None
        if found:
            return Match(template, RULES[(rule_method, template)], found.groupdict())
    return None
