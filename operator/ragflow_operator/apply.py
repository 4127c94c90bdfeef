"""Write a set of desired children to the cluster, and nothing when nothing changed.

`apply_children` is the framework entry point used by every kind's handler (RagFlowCluster,
BackupPolicy, AlertPolicy). It reads the live children with one LIST per kind (by the owner's
label selector), then, for each desired manifest (built by a pure builder, owner reference
and labels already set) it:
- skips the write when the live object exists, carries the hash of this exact desired manifest
  (annotation `ragflow.operator.dev/applied-hash`) and still semantically contains it (no drift);
- otherwise server-side applies it (field manager `ragflow-operator`, force);
- for create-only objects (annotation `ragflow.operator.dev/create-only`, used for generated
  Secrets) creates it when absent and never touches it afterwards: no rotation on reconcile;
- hands `spec.replicas` over before an HPA takes it (see `_hand_over_replicas`).
All or nothing: before the first write every pending write is dry-run by the API server
(`dryRun=All`) and checked for a name another owner controls; one refusal and nothing is
written (errors.ChildrenRejected carries the server's messages).
Then it deletes children of switched-off features: objects of the given kinds that match the
owner's label selector, are controlled by the owner, and are no longer desired.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragflow_operator import errors, names
from ragflow_operator.compare import is_semantic_subset
from ragflow_operator.k8s import KubeClient, ObjectRef

Json = dict[str, Any]
logger = logging.getLogger(__name__)

#: Annotation marking a manifest that is created once and never updated (generated Secrets).
ANNOTATION_CREATE_ONLY = names.ANNOTATION_CREATE_ONLY


@dataclass
class ApplyResult:
    """What `apply_children` did, and the live objects after it (keyed by ref)."""

    created: list[ObjectRef] = field(default_factory=list)
    applied: list[ObjectRef] = field(default_factory=list)
    unchanged: list[ObjectRef] = field(default_factory=list)
    removed: list[ObjectRef] = field(default_factory=list)
    live: dict[ObjectRef, Json] = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.applied) + len(self.removed)


def manifest_hash(manifest: Json) -> str:
    """Stable hash of a desired manifest (sorted-key JSON), without our own hash annotation."""
    clean = copy.deepcopy(manifest)
    metadata = clean.get("metadata", {})
    annotations = metadata.get("annotations") or {}
    annotations.pop(names.ANNOTATION_APPLIED_HASH, None)
    if not annotations:
        metadata.pop("annotations", None)
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def with_hash(manifest: Json) -> Json:
    """Copy of `manifest` carrying its own hash annotation."""
    stamped = copy.deepcopy(manifest)
    digest = manifest_hash(manifest)
    stamped.setdefault("metadata", {}).setdefault("annotations", {})[
        names.ANNOTATION_APPLIED_HASH
    ] = digest
    return stamped


def is_create_only(manifest: Json) -> bool:
    annotations = manifest.get("metadata", {}).get("annotations") or {}
    return annotations.get(ANNOTATION_CREATE_ONLY) == "true"


def is_up_to_date(stamped: Json, live: Json | None) -> bool:
    """True when `live` exists, was applied from this desired manifest and has not drifted."""
    if live is None:
        return False
    live_annotations = live.get("metadata", {}).get("annotations") or {}
    desired_annotations = stamped["metadata"]["annotations"]
    if live_annotations.get(names.ANNOTATION_APPLIED_HASH) != desired_annotations.get(
        names.ANNOTATION_APPLIED_HASH
    ):
        return False
    return is_semantic_subset(stamped, live)


def _owns_replicas(live: Json, manager: str) -> bool:
    for entry in live.get("metadata", {}).get("managedFields") or []:
        spec_fields = (entry.get("fieldsV1") or {}).get("f:spec", {})
        owner = entry.get("manager") == manager and entry.get("operation") == "Apply"
        if owner and "f:replicas" in spec_fields:
            return True
    return False


def _hand_over_replicas(client: KubeClient, stamped: Json, live: Json | None) -> None:
    """Keep the current replica count when our manifest stops setting `spec.replicas`.

    Without this, dropping the field from our apply would reset the Deployment to 1 replica
    before the HPA scales it back (Kubernetes docs, "Transferring ownership"): a second field
    manager applies the live value first, so the field stays owned and keeps its value until
    the HPA controller takes it over.
    """
    if live is None or "replicas" in stamped.get("spec", {}):
        return
    replicas = live.get("spec", {}).get("replicas")
    if replicas is None or not _owns_replicas(live, names.FIELD_MANAGER):
        return
    handover = {
        "apiVersion": stamped["apiVersion"],
        "kind": stamped["kind"],
        "metadata": {
            "name": stamped["metadata"]["name"],
            "namespace": live["metadata"]["namespace"],
        },
        "spec": {"replicas": replicas},
    }
    client.apply(handover, field_manager=names.HANDOVER_FIELD_MANAGER)


def _needs_write(manifest: Json, live: Json | None) -> bool:
    """False when the live object already is what `manifest` asks for (or is create-only)."""
    if is_create_only(manifest):
        return live is None
    return not is_up_to_date(with_hash(manifest), live)


def _controller_of(obj: Json) -> Json | None:
    for reference in obj.get("metadata", {}).get("ownerReferences") or []:
        if reference.get("controller"):
            return dict(reference)
    return None


def _check_children(
    client: KubeClient, pending: list[tuple[Json, Json | None]], owner_uid: str
) -> None:
    """Dry-run every pending write; raise ChildrenRejected listing every refusal, if any.

    A child whose name is taken by an object that another owner controls (e.g. two kinds
    deriving the same ConfigMap name) is refused here too: applying it would steal the object.
    """
    taken: list[str] = []
    refused: list[str] = []
    for manifest, live in pending:
        ref = ObjectRef.of(manifest)
        controller = _controller_of(live) if live is not None else None
        if controller is not None and controller.get("uid") != owner_uid:
            taken.append(
                f"{ref} already exists and belongs to {controller.get('kind')} "
                f"{controller.get('name')}: rename this resource"
            )
            continue
        try:
            if is_create_only(manifest):
                client.create(manifest, dry_run=True)
            else:
                client.apply(with_hash(manifest), dry_run=True)
        except errors.ApiInvalid as err:
            refused.append(str(err))
        except errors.ApiConflict:  # create-only object created meanwhile: nothing to write
            continue
    if taken:
        raise errors.ChildrenRejected(taken, reason="NameConflict")
    if refused:
        raise errors.ChildrenRejected(refused)


def _apply_one(client: KubeClient, manifest: Json, live: Json | None, result: ApplyResult) -> None:
    ref = ObjectRef.of(manifest)
    if is_create_only(manifest):
        if live is not None:
            result.unchanged.append(ref)
            result.live[ref] = live
            return
        try:
            result.live[ref] = client.create(manifest)
            result.created.append(ref)
        except errors.ApiConflict:  # created concurrently: keep the first one
            result.unchanged.append(ref)
            result.live[ref] = client.get(ref) or {}
        return
    stamped = with_hash(manifest)
    if is_up_to_date(stamped, live):
        result.unchanged.append(ref)
        result.live[ref] = live or {}
        return
    _hand_over_replicas(client, stamped, live)
    result.live[ref] = client.apply(stamped)
    (result.applied if live is not None else result.created).append(ref)


def _is_controlled_by(obj: Json, owner_uid: str) -> bool:
    for reference in obj.get("metadata", {}).get("ownerReferences") or []:
        if reference.get("uid") == owner_uid and reference.get("controller"):
            return True
    return False


def list_children(
    client: KubeClient,
    *,
    namespace: str,
    selector: dict[str, str],
    kinds: Iterable[tuple[str, str]],
) -> dict[ObjectRef, Json]:
    """Live objects of `kinds` matching `selector`: one LIST per kind (absent kinds: none)."""
    found: dict[ObjectRef, Json] = {}
    for api_version, kind in kinds:
        for obj in client.list(api_version, kind, namespace, selector):
            found[ObjectRef(api_version, kind, namespace, obj["metadata"]["name"])] = obj
    return found


def apply_children(
    client: KubeClient,
    desired: Sequence[Json],
    *,
    namespace: str,
    owner_uid: str,
    selector: dict[str, str],
    removable_kinds: Iterable[tuple[str, str]] = (),
) -> ApplyResult:
    """Bring the owner's children to `desired` (in order), then remove switched-off ones.

    The live state is read with one LIST per kind (desired kinds plus `removable_kinds`,
    filtered by `selector`), so a reconcile costs a handful of reads whatever the number of
    children. `removable_kinds` lists (apiVersion, kind) pairs the owner may ever create; only
    objects of those kinds that match `selector`, are controlled by `owner_uid` and are not
    desired are deleted. Kinds absent from the server (e.g. no VPA CRD) are skipped silently.
    A desired child missing from those lists is read with a GET (it may exist unlabelled, or
    belong to another owner).

    All or nothing: every child that needs a write is first checked by the API server with a
    dry run (`dryRun=All`); if any is refused, or its name is taken by an object another owner
    controls, errors.ChildrenRejected is raised before the first real write, so the live
    children stay exactly as they were.
    """
    result = ApplyResult()
    manifests = []
    for manifest in desired:
        manifest = copy.deepcopy(manifest)
        manifest["metadata"]["namespace"] = namespace
        manifests.append(manifest)
    kinds = list(
        dict.fromkeys([*((m["apiVersion"], m["kind"]) for m in manifests), *removable_kinds])
    )
    live = list_children(client, namespace=namespace, selector=selector, kinds=kinds)
    planned: list[tuple[Json, Json | None]] = []
    for manifest in manifests:
        current = live.get(ObjectRef.of(manifest))
        if current is None:  # not ours by label: it may still exist (another owner, a user)
            current = client.get(ObjectRef.of(manifest))
        planned.append((manifest, current))
    _check_children(client, [(m, c) for m, c in planned if _needs_write(m, c)], owner_uid)
    for manifest, current in planned:
        try:
            _apply_one(client, manifest, current, result)
        except errors.ApiInvalid as err:  # refused although the dry run passed (a race)
            raise errors.ChildrenRejected([str(err)]) from None
    keep = {ObjectRef.of(m) for m in manifests}
    removable = set(removable_kinds)
    for ref, obj in live.items():
        if ref in keep or (ref.api_version, ref.kind) not in removable:
            continue
        if not _is_controlled_by(obj, owner_uid):
            continue
        if client.delete(ref, uid=obj["metadata"].get("uid")):
            result.removed.append(ref)
    if result.writes:
        logger.info(
            "children applied",
            extra={
                "namespace": namespace,
                # not "created": that is a LogRecord attribute and logging refuses to overwrite it
                "created_children": [str(r) for r in result.created],
                "applied": [str(r) for r in result.applied],
                "removed": [str(r) for r in result.removed],
            },
        )
    return result
