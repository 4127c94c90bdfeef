"""An in-memory stand-in for KubeClient, for tests of apply.py and the handlers' failure paths.

It keeps objects by ObjectRef, records every real write and every dry run, and refuses a
manifest (HTTP 422, as errors.ApiInvalid) when `reject(manifest)` returns a message, in dry
runs and real writes alike, like an API server's validation. Only the methods apply.py and the
handlers call are implemented.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ragflow_operator import errors
from ragflow_operator.k8s import ObjectRef

Json = dict[str, Any]


class FakeKube:
    def __init__(self, reject: Callable[[Json], str | None] = lambda _: None) -> None:
        self.objects: dict[ObjectRef, Json] = {}
        self.reject = reject
        self.writes: list[tuple[str, str]] = []  # (verb, "Kind/name") of real writes
        self.dry_runs: list[str] = []
        self.status_patches: list[tuple[ObjectRef, Json]] = []

    # --- reads ---------------------------------------------------------------------------------
    def get(self, ref: ObjectRef) -> Json | None:
        found = self.objects.get(ref)
        return copy.deepcopy(found) if found is not None else None

    def list(self, api_version: str, kind: str, namespace: str, labels: dict[str, str]) -> list:
        return [
            copy.deepcopy(obj)
            for ref, obj in self.objects.items()
            if (ref.api_version, ref.kind, ref.namespace) == (api_version, kind, namespace)
            and all((obj["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
        ]

    def served_kinds(self, group_versions: Any) -> dict[str, set[str]]:
        return {}

    # --- writes --------------------------------------------------------------------------------
    def _check(self, manifest: Json) -> None:
        problem = self.reject(manifest)
        if problem:
            raise errors.ApiInvalid(f"apply {ObjectRef.of(manifest)}: {problem}", 422)

    def apply(self, manifest: Json, *, field_manager: str = "", dry_run: bool = False) -> Json:
        self._check(manifest)
        ref = ObjectRef.of(manifest)
        if dry_run:
            self.dry_runs.append(str(ref))
            return copy.deepcopy(manifest)
        self.writes.append(("apply", str(ref)))
        self.objects[ref] = copy.deepcopy(manifest)
        return copy.deepcopy(manifest)

    def create(self, manifest: Json, *, dry_run: bool = False) -> Json:
        self._check(manifest)
        ref = ObjectRef.of(manifest)
        if ref in self.objects:
            raise errors.ApiConflict(f"create {ref}: already exists", 409)
        if dry_run:
            self.dry_runs.append(str(ref))
            return copy.deepcopy(manifest)
        self.writes.append(("create", str(ref)))
        self.objects[ref] = copy.deepcopy(manifest)
        return copy.deepcopy(manifest)

    def delete(self, ref: ObjectRef, *, uid: str | None = None) -> bool:
        self.writes.append(("delete", str(ref)))
        return self.objects.pop(ref, None) is not None

    def patch_status(self, ref: ObjectRef, patch: Json) -> Json:
        self.status_patches.append((ref, copy.deepcopy(patch)))
        return {"metadata": {}, "status": patch}

    def put(self, manifest: Json) -> None:
        """Seed an existing object (no write recorded)."""
        self.objects[ObjectRef.of(manifest)] = copy.deepcopy(manifest)
