"""kopf handlers of RagFlowCluster: a thin layer over model -> builders -> apply -> status.

- create/update/resume and the operator-wide resync pass (handlers/resync.py, every
  RAGFLOW_OPERATOR_RESYNC_SECONDS) run the same level-based `reconcile`, which
  checks references, builds every child, applies only what changed (apply.py), removes
  switched-off children, and writes the status only when it changed.
- Deployment/StatefulSet events of our children refresh the owner's status (fast Ready), and a
  deleted child triggers a full reconcile (repair); while a restore from backup is pending
  (restore.py) every child event, the restore Job's included, reconciles, and so does a
  standby's finished sync Job (handlers/cluster_standby.py).
Errors the user must fix (missing Secret, invalid combination, a child the API server refuses in
the dry run) set Ready=False with a specific reason and a Warning Event, write nothing, and are
retried by the resync pass, so the cluster recovers by itself; transient API errors back off
(handlers/outcome.py).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from ragflow_operator import (
    cluster_status,
    conditions,
    errors,
    metrics,
    names,
    observe,
    standby_status,
)
from ragflow_operator.apply import apply_children
from ragflow_operator.builders import cluster as cluster_builders
from ragflow_operator.builders.backup import LABEL_JOB_KIND
from ragflow_operator.builders.cluster import CLUSTER_CHILD_KINDS, skipped_children
from ragflow_operator.builders.dependencies import generated_secret_keys
from ragflow_operator.builders.standby import JOB_KIND as STANDBY_JOB_KIND
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.handlers import cluster_standby, outcome
from ragflow_operator.handlers.resync import ResyncPass
from ragflow_operator.k8s import KubeClient, ObjectRef
from ragflow_operator.model.cluster import ClusterModel
from ragflow_operator.references import require_secrets
from ragflow_operator.restore import plan_restore
from ragflow_operator.settings import OperatorSettings

Json = dict[str, Any]
logger = logging.getLogger(__name__)
RESOURCE = (names.GROUP, names.VERSION, names.PLURAL_CLUSTER)
CHILD_LABELS = {names.LABEL_MANAGED_BY: names.MANAGED_BY, names.LABEL_NAME: names.APP_NAME}

#: (namespace, name) -> the lock of a reconcile in progress. Weak values: an entry lives only
#: while a handler holds its lock, so the table never grows with the number of clusters.
_locks: weakref.WeakValueDictionary[tuple[str, str], threading.Lock] = weakref.WeakValueDictionary()
_locks_guard = threading.Lock()


def _lock(namespace: str, name: str) -> threading.Lock:
    """One reconcile at a time per cluster (CR handlers and child events run concurrently)."""
    with _locks_guard:
        lock = _locks.get((namespace, name))
        if lock is None:
            lock = _locks[(namespace, name)] = threading.Lock()
        return lock


@contextlib.contextmanager
def _exclusive(body: Mapping[str, Any], client: KubeClient) -> Iterator[Mapping[str, Any] | None]:
    """Hold the cluster's lock; yield the body to act on (None: the cluster is going away).

    A handler that had to wait for another one re-reads the cluster: the body it was given
    predates what that one saw, and acting on it would undo a newer spec (a promotion reverted
    by a reconcile queued behind it) until the next event put it right again.
    """
    meta = body["metadata"]
    lock = _lock(meta["namespace"], meta["name"])
    contended = not lock.acquire(blocking=False)
    if contended:
        lock.acquire()
    try:
        if not contended:
            yield body
        else:
            fresh = client.get(cluster_ref(meta["namespace"], meta["name"]))
            gone = fresh is None or bool(fresh["metadata"].get("deletionTimestamp"))
            yield None if gone else fresh
    finally:
        lock.release()


@dataclass
class ClusterMemory:
    """What this process remembers about one RagFlowCluster between its handler calls.

    Kept in kopf's per-object `memo` (see `_memory`), so kopf drops it with the object; the
    resync pass finds it through the operator-wide `ClusterMemories` (weak references). A
    reconcile without it (child events, tests) checks everything and trusts the body it got.
    """

    #: Kinds last applied for the cluster. A kind that was never desired since the process
    #: started cannot hold a child to remove, so it is not listed again; None (after a restart)
    #: checks every kind once.
    applied_kinds: frozenset[tuple[str, str]] | None = None
    #: time.monotonic() of the last completed full reconcile.
    last_reconcile: float = float("-inf")
    #: The resourceVersion our last status write started from, and the status it wrote.
    written_over: str | None = None
    written_status: Json | None = None


class ClusterMemories:
    """(namespace, name) -> the cluster's `ClusterMemory`, for the resync pass.

    One per operator, in kopf's operator-wide memo (`install_memories`). Its values are weak:
    the per-object memo owns each memory, so an entry goes when kopf forgets the object.
    """

    def __init__(self) -> None:
        self._table: weakref.WeakValueDictionary[tuple[str, str], ClusterMemory] = (
            weakref.WeakValueDictionary()
        )
        self._guard = threading.Lock()

    def add(self, namespace: str, name: str, memory: ClusterMemory) -> None:
        with self._guard:
            self._table[(namespace, name)] = memory

    def get(self, namespace: str, name: str) -> ClusterMemory | None:
        with self._guard:
            return self._table.get((namespace, name))

    def __len__(self) -> int:
        with self._guard:
            return len(self._table)


#: Key of the operator-wide `ClusterMemories` in kopf's memo.
MEMORIES = "cluster_memories"


def install_memories(memo: kopf.Memo, **_: Any) -> None:
    """Startup: the operator-wide table, before kopf copies the memo for each object."""
    memo[MEMORIES] = ClusterMemories()


def _memory(memo: kopf.Memo, body: Mapping[str, Any]) -> ClusterMemory:
    """The cluster's own memory inside kopf's per-object memo (created on first use)."""
    memory = memo.get("cluster_memory")
    if not isinstance(memory, ClusterMemory):
        memory = memo["cluster_memory"] = ClusterMemory()
        table = memo.get(MEMORIES)
        if isinstance(table, ClusterMemories):
            table.add(body["metadata"]["namespace"], body["metadata"]["name"], memory)
    return memory


def _recall(memo: kopf.Memo, namespace: str, name: str) -> ClusterMemory | None:
    """The cluster's memory from the operator-wide table (None: no handler ran for it yet)."""
    table = memo.get(MEMORIES)
    return table.get(namespace, name) if isinstance(table, ClusterMemories) else None


def cluster_ref(namespace: str, name: str) -> ObjectRef:
    return ObjectRef(names.API_VERSION, names.KIND_CLUSTER, namespace, name)


def check_references(client: KubeClient, model: ClusterModel) -> None:
    """Every Secret key the spec points at must exist before anything is created."""
    refs = [(ref.name, ref.key) for ref in model.referenced_secrets()]
    require_secrets(client, model.namespace, refs, referrer="referenced by the spec")
    # A Secret named in spec.apiKeySecret is generated when absent, but an existing one must
    # hold the key.
    if model.api_key.name != names.api_key_secret_name(model.name):
        secret = client.get(ObjectRef("v1", "Secret", model.namespace, model.api_key.name))
        if secret is not None and model.api_key.key not in (secret.get("data") or {}):
            raise errors.MissingReference(
                f"Secret {model.api_key.name} has no key {model.api_key.key}",
                reason="MissingSecretKey",
            )


def _random_values(keys: Mapping[str, list[str]]) -> dict[str, dict[str, str]]:
    """Fresh values for generated Secrets; used only if the Secret does not exist yet."""
    return {name: {key: secrets.token_urlsafe(24) for key in ks} for name, ks in keys.items()}


def _removable_kinds(capabilities: Capabilities) -> list[tuple[str, str]]:
    kinds = []
    for api_version, kind in CLUSTER_CHILD_KINDS:
        if kind == "ServiceMonitor" and not capabilities.service_monitor:
            continue
        if kind == "VerticalPodAutoscaler" and not capabilities.vertical_pod_autoscaler:
            continue
        kinds.append((api_version, kind))
    return kinds


def _kinds_to_check(
    memory: ClusterMemory | None, capabilities: Capabilities
) -> list[tuple[str, str]]:
    kinds = _removable_kinds(capabilities)
    if memory is None or memory.applied_kinds is None:
        return kinds
    return [kind for kind in kinds if kind in memory.applied_kinds]


def _workload_refs(model: ClusterModel) -> dict[str, ObjectRef]:
    refs = {
        "api": ObjectRef("apps/v1", "Deployment", model.namespace, names.api_name(model.name)),
        "worker": ObjectRef(
            "apps/v1", "Deployment", model.namespace, names.worker_name(model.name)
        ),
    }
    for dep in model.dependencies:
        if dep.is_managed:
            name = names.child_name(model.name, dep.component)
            refs[dep.component] = ObjectRef("apps/v1", "StatefulSet", model.namespace, name)
    return refs


def _facts(model: ClusterModel, live: Mapping[ObjectRef, Json]) -> cluster_status.ClusterFacts:
    refs = _workload_refs(model)
    facts = {key: observe.workload_facts(live.get(ref)) for key, ref in refs.items()}
    deps = {k: v for k, v in facts.items() if k not in ("api", "worker")}
    return cluster_status.ClusterFacts(api=facts["api"], worker=facts["worker"], dependencies=deps)


def _current_status(body: Mapping[str, Any], memory: ClusterMemory | None) -> Mapping[str, Any]:
    """The body's status, or the one we wrote last if the body predates that write.

    kopf hands handlers its latest watched body; right after our own status patch that body
    can still be the version the patch started from, and comparing against it would repeat
    the patch. resourceVersion is opaque, so it is only compared for equality: the very
    version our write started from is older than the write, any other one kopf hands us is
    newer (kopf's bodies only move forward), and then the remembered status is dropped.
    """
    status: Mapping[str, Any] = body.get("status") or {}
    if memory is None or memory.written_status is None:
        return status
    if str(body["metadata"].get("resourceVersion") or "") == memory.written_over:
        return memory.written_status
    memory.written_over = memory.written_status = None
    return status


def _write_status(
    client: KubeClient,
    body: Mapping[str, Any],
    current: Mapping[str, Any],
    desired: Json,
    memory: ClusterMemory | None,
) -> None:
    patch = conditions.status_patch(current, desired)
    if patch is None:
        return
    meta = body["metadata"]
    updated = client.patch_status(cluster_ref(meta["namespace"], meta["name"]), patch)
    if memory is not None:
        memory.written_over = str(meta.get("resourceVersion") or "")
        memory.written_status = dict(updated.get("status") or {})
    outcome.record_ready_transition(body, current, desired)


def reconcile(
    body: Mapping[str, Any],
    client: KubeClient,
    capabilities: Capabilities,
    memory: ClusterMemory | None = None,
) -> None:
    """Level-based reconcile of one RagFlowCluster (safe to repeat, safe to interrupt)."""
    with _exclusive(body, client) as latest:
        if latest is None:
            return
        body = latest
        meta = body["metadata"]
        generation = int(meta.get("generation") or 0)
        # Read under the lock: a reconcile that waited for another one must compare against
        # the status that one wrote (else it repeats its transitions and their Events).
        current = _current_status(body, memory)
        now = datetime.now(UTC)
        model: ClusterModel | None = None
        try:
            model = ClusterModel.from_body(dict(body))
            check_references(client, model)
            restore = plan_restore(client, model, current)
            standby = cluster_standby.plan_standby(client, model, current, now)
            built = cluster_builders.build(
                model,
                capabilities,
                generated=_random_values(generated_secret_keys(model)),
                hold_runtime=restore is not None and restore.progress.pending,
            )
            extra = restore.manifests if restore is not None else []
            desired = [*built.manifests, *extra]
            result = apply_children(
                client,
                desired,
                namespace=model.namespace,
                owner_uid=model.uid,
                selector=names.instance_labels(model.name),
                removable_kinds=_kinds_to_check(memory, capabilities),
            )
            if memory is not None:
                memory.applied_kinds = frozenset((m["apiVersion"], m["kind"]) for m in desired)
                memory.last_reconcile = time.monotonic()
            written = result.created + result.applied
            metrics.record_children_applied(names.KIND_CLUSTER, [{"kind": r.kind} for r in written])
        except Exception as exc:  # classified: transient ones retry, the rest are reported
            failure = outcome.classify(exc)
            if failure.transient:
                raise
            status = cluster_status.failed(
                model,
                generation,
                reason=failure.reason,
                message=failure.message,
                current=current,
                now=now,
            )
            _write_status(client, body, current, status, memory)
            return
        if result.created or result.removed:
            parts = [f"created {', '.join(map(str, result.created))}"] if result.created else []
            if result.removed:
                parts.append(f"removed {', '.join(map(str, result.removed))}")
            kopf.event(
                outcome.event_target(body),
                type="Normal",
                reason="ChildrenChanged",
                message="; ".join(parts)[:1000],
            )
        status = cluster_status.summarise(
            model,
            _facts(model, result.live),
            current=current,
            skipped=built.notes,
            now=now,
            restore=restore.progress if restore is not None else None,
        )
        if standby is not None:
            status = standby_status.fold(status, standby, generation=generation, now=now)
        _write_status(client, body, current, status, memory)
        cluster_standby.export_metrics(model, standby)
        for event in standby.events if standby is not None else []:
            kopf.event(
                outcome.event_target(body),
                type=event.type,
                reason=event.reason,
                message=event.message,
            )
        if cluster_standby.state_changed(current, model):
            cluster_standby.refresh_backup_policies(client, model.namespace, model.name)


def refresh_status(body: Mapping[str, Any], client: KubeClient, capabilities: Capabilities) -> None:
    """Status only, from fresh reads of the workloads (child events: `body` was just read)."""
    with _exclusive(body, client) as latest:
        if latest is None:
            return
        body = latest
        current: Mapping[str, Any] = body.get("status") or {}
        ready = conditions.find_condition(list(current.get("conditions") or []), "Ready") or {}
        if current.get("phase") == "Failed" or ready.get("reason") in (
            "ChildRejected",
            "Restoring",
        ):
            return  # an error status stays until the next full reconcile
        try:
            model = ClusterModel.from_body(dict(body))
        except errors.InvalidSpec:
            return
        live = observe.read_workloads(client, _workload_refs(model).values())
        skipped = skipped_children(model, capabilities)
        status = cluster_status.summarise(
            model, _facts(model, live), current=current, skipped=skipped, now=datetime.now(UTC)
        )
        _write_status(client, body, current, status, None)


def _run(body: kopf.Body, memo: kopf.Memo, retry: int) -> None:
    """One timed reconcile; a transient failure backs off, anything else was reported."""
    try:
        with metrics.reconcile_timer(names.KIND_CLUSTER):
            reconcile(body, memo.client, memo.capabilities, _memory(memo, body))
    except Exception as exc:
        failure = outcome.classify(exc)
        if failure.transient:
            raise outcome.temporary(failure, retry) from None
        # the status write itself failed: log it; the resync pass tries again
        logger.warning(
            "reconcile failed", extra={"reason": failure.reason, "error": failure.message}
        )


def on_spec(body: kopf.Body, memo: kopf.Memo, retry: int = 0, **_: Any) -> None:
    _run(body, memo, retry)


def resync_due(namespace: str, name: str, memo: kopf.Memo) -> bool:
    """False while a full reconcile of the cluster completed less than half an interval ago
    (it checked the same things), which keeps bursts of creations cheap."""
    memory = _recall(memo, namespace, name)
    settings: OperatorSettings = memo.settings
    if memory is None:
        return True
    return time.monotonic() - memory.last_reconcile >= settings.resync_seconds / 2


def resync(body: Mapping[str, Any], memo: kopf.Memo) -> None:
    """The resync pass's check (handlers/resync.py): repairs drift and retries reported errors;
    writes nothing when all is well. A transient failure propagates (the pass backs off)."""
    meta = body["metadata"]
    memory = _recall(memo, meta["namespace"], meta["name"])
    with metrics.reconcile_timer(names.KIND_CLUSTER):
        reconcile(body, memo.client, memo.capabilities, memory)


async def forget(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
    """A deleted cluster's standby series go with it (kopf drops its memo; its children go by
    garbage collection). A watch event, not an on-delete handler: no finalizer is needed."""
    if event.get("type") == "DELETED":
        meta = body["metadata"]
        metrics.forget_standby(namespace=meta["namespace"], cluster=meta["name"])


def _owner_name(body: Mapping[str, Any]) -> str | None:
    labels = body.get("metadata", {}).get("labels") or {}
    if labels.get(LABEL_JOB_KIND) == STANDBY_JOB_KIND:  # a sync Job (owned by its CronJob)
        return labels.get(names.LABEL_INSTANCE)
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == names.KIND_CLUSTER and ref.get("apiVersion", "").startswith(
            names.GROUP
        ):
            return str(ref.get("name"))
    return None


def _restore_pending(cluster: Mapping[str, Any]) -> bool:
    """A restore from backup has not finished: every child event drives the full reconcile."""
    restored = conditions.is_true(
        list((cluster.get("status") or {}).get("conditions") or []), "Restored"
    )
    return bool((cluster.get("spec") or {}).get("restoreFrom")) and not restored


def _sync_finished(body: Mapping[str, Any]) -> bool:
    """A standby's sync Job finished: its summary goes into status.standby right away."""
    labels = body.get("metadata", {}).get("labels") or {}
    if labels.get(LABEL_JOB_KIND) != STANDBY_JOB_KIND:
        return False
    done = observe.job_facts(dict(body))
    return bool(done.get("complete") or done.get("failedCondition"))


def on_child_event(event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A Deployment/StatefulSet of ours changed: refresh the owner (repair if deleted)."""
    owner = _owner_name(body)
    if owner is None:
        return
    namespace = body["metadata"]["namespace"]
    client: KubeClient = memo.client
    try:
        cluster = client.get(cluster_ref(namespace, owner))
        if cluster is None or cluster["metadata"].get("deletionTimestamp"):
            return
        if event.get("type") == "DELETED" or _restore_pending(cluster) or _sync_finished(body):
            reconcile(cluster, client, memo.capabilities)
        elif body.get("kind") != "Job":
            refresh_status(cluster, client, memo.capabilities)
    except errors.OperatorError as err:
        kopf.warn(outcome.event_target(body), reason="StatusRefreshFailed", message=str(err)[:500])


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """RagFlowCluster's handlers, its resync pass, and events of the children that report its
    health."""
    kopf.on.startup(registry=registry, id="cluster_memories")(install_memories)
    for on in (kopf.on.resume, kopf.on.create, kopf.on.update):
        on(*RESOURCE, registry=registry)(on_spec)
    ResyncPass(
        api_version=names.API_VERSION,
        kind=names.KIND_CLUSTER,
        check=resync,
        due=resync_due,
        interval=settings.resync_seconds,
        concurrency=settings.resync_concurrency,
    ).register(registry, RESOURCE)
    kopf.on.event(*RESOURCE, registry=registry)(forget)
    for group, plural in (("apps", "deployments"), ("apps", "statefulsets"), ("batch", "jobs")):
        kopf.on.event(group, "v1", plural, registry=registry, labels=CHILD_LABELS)(on_child_event)
