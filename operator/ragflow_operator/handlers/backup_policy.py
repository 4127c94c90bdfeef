"""kopf handlers of BackupPolicy: model → CronJobs (+ on-demand Job) → apply → Jobs' results.

`reconcile_backup_policy(client, body, now)` does one level-based reconcile and returns the
desired status; the kopf handlers (create/update/resume, Job events) and the operator-wide
resync pass (handlers/resync.py) call it
and write the status only when it changed. The backup and validation Jobs report through their
container's termination message (the JSON summary of `ragruntime backup run|verify`): the newest
finished ones become `status.lastBackup` / `lastValidation` (the pure folding is in
backup_status.py), with conditions and a Warning Event when a new result is a failure.
On-demand: the annotation `ragflow.operator.dev/backup-now: <value>` creates one Job whose name
derives from the value. While the policy's cluster is a standby (spec.standby), every CronJob
is suspended and Ready says why (`SuspendedForStandby`); they resume when the cluster is
promoted. `register` adds the handlers to kopf's registry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from ragflow_operator import conditions, errors, metrics, names
from ragflow_operator.apply import apply_children
from ragflow_operator.backup_status import (
    iso,
    job_condition,
    job_result,
    key_rotation,
    next_runs,
    record_results,
)
from ragflow_operator.builders import backup
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.conditions import StatusEditor
from ragflow_operator.handlers import outcome
from ragflow_operator.handlers.resync import ResyncPass
from ragflow_operator.k8s import KubeClient, ObjectRef
from ragflow_operator.model.backup_policy import BackupPolicyModel
from ragflow_operator.model.cluster import ClusterModel
from ragflow_operator.references import require_secrets
from ragflow_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)
Json = dict[str, Any]
RESOURCE = (names.GROUP, names.VERSION, names.PLURAL_BACKUP_POLICY)
REMOVABLE_KINDS = (("batch/v1", "CronJob"), ("v1", "ConfigMap"))
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
#: Ready reason while the policy's cluster is a standby (its CronJobs are suspended).
SUSPENDED_FOR_STANDBY = "SuspendedForStandby"
#: A BackupPolicy's children need no optional API (builders/backup.py): callers without the
#: discovered capabilities at hand pass none.
NO_OPTIONAL_APIS = Capabilities()


def finished_results(
    client: KubeClient, namespace: str, selector: Mapping[str, str]
) -> list[tuple[str, Json]]:
    """(job kind, result) of every finished Job matching `selector`, oldest first.

    Shared by the BackupPolicy status and the standby status (handlers/cluster_standby.py):
    one reader of the runtime's termination-message summaries.
    """
    jobs = client.list("batch/v1", "Job", namespace, dict(selector))
    results = []
    for job in jobs:
        kind = (job["metadata"].get("labels") or {}).get(backup.LABEL_JOB_KIND, "")
        if not (job_condition(job, "Complete") or job_condition(job, "Failed")):
            continue
        pods = client.list("v1", "Pod", namespace, {JOB_NAME_LABEL: job["metadata"]["name"]})
        result = job_result(job, pods)
        if result is not None:
            results.append((kind, result))
    return sorted(results, key=lambda item: (item[1]["finishedAt"], item[1]["job"]))


def _finished(client: KubeClient, model: BackupPolicyModel) -> list[tuple[str, Json]]:
    """(job kind, result) of every finished Job of the policy, oldest first."""
    return finished_results(client, model.namespace, {backup.LABEL_POLICY: model.name})


def _on_demand_job(
    client: KubeClient, model: BackupPolicyModel, target: backup.RuntimeTarget, editor: StatusEditor
) -> Json | None:
    """The on-demand Job a new annotation value asks for, checked by a dry run (else None)."""
    value = model.backup_now
    if not value or (editor.status.get("onDemand") or {}).get("value") == value:
        return None
    job = backup.build_on_demand_job(model, target, value)
    if client.get(ObjectRef.of(job)) is not None:
        return job
    try:
        client.create(job, dry_run=True)
    except errors.ApiInvalid as err:
        raise errors.ChildrenRejected([str(err)]) from None
    except errors.ApiConflict:  # created meanwhile: nothing to check
        pass
    return job


def _start_on_demand(
    client: KubeClient, model: BackupPolicyModel, job: Json, editor: StatusEditor
) -> None:
    ref = ObjectRef.of(job)
    if client.get(ref) is None:
        # a conflict: an earlier reconcile created it and died before writing the status
        with contextlib.suppress(errors.ApiConflict):
            client.create(job)
    editor.status["onDemand"] = {
        "value": model.backup_now,
        "job": ref.name,
        "requestedAt": iso(editor.now),
    }


def reconcile_backup_policy(
    client: KubeClient, body: Json, *, now: datetime, capabilities: Capabilities
) -> tuple[Json, list[Json]]:
    """Bring CronJobs to the spec, start a requested on-demand backup, fold in Job results."""
    model = BackupPolicyModel.from_body(body)
    editor = StatusEditor(model.generation, dict(body.get("status") or {}), now)
    cluster_body = client.get(
        ObjectRef(names.API_VERSION, names.KIND_CLUSTER, model.namespace, model.cluster)
    )
    if cluster_body is None:
        raise errors.MissingReference(
            f"RagFlowCluster {model.cluster} does not exist", reason="ClusterNotFound"
        )
    require_secrets(
        client, model.namespace, model.referenced_secrets(), referrer="referenced by the spec"
    )
    cluster = ClusterModel.from_body(cluster_body)
    # A standby's data is the primary's: its schedules wait (suspended) until it is promoted,
    # and so does an on-demand request (it runs after the promotion).
    standby = cluster.standby
    effective = dataclasses.replace(model, suspend=True) if standby is not None else model
    target = backup.runtime_target(cluster, model)
    children = backup.build(effective, capabilities, target=target).manifests
    # checked before any write
    on_demand = None if standby is not None else _on_demand_job(client, model, target, editor)
    apply_children(
        client,
        children,
        namespace=model.namespace,
        owner_uid=model.uid,
        selector=backup.policy_selector(model.name),
        removable_kinds=REMOVABLE_KINDS,
    )
    if on_demand is not None:
        _start_on_demand(client, model, on_demand, editor)
    editor.status["cronJobs"] = sorted(
        c["metadata"]["name"] for c in children if c["kind"] == "CronJob"
    )
    editor.status["nextScheduled"] = next_runs(effective, now)
    failures = record_results(editor, _finished(client, model))
    key_rotation(editor, model.key_rotation_days)
    state = "suspended" if model.suspend else "scheduled"
    if standby is not None:
        editor.set(
            "Ready",
            conditions.TRUE,
            SUSPENDED_FOR_STANDBY,
            f"RagFlowCluster {model.cluster} is a standby of {standby.source_cluster}: its "
            f"{len(model.schedules)} schedules are suspended until it is promoted",
        )
    else:
        editor.set(
            "Ready",
            conditions.TRUE,
            "Suspended" if model.suspend else "Scheduled",
            f"{len(model.schedules)} schedules {state} to {len(model.destinations)} destinations",
        )
    return editor.status, failures


def _warn(body: Json, failure: Json) -> None:
    if "details" in failure:
        message = f"validation {failure['job']} failed: " + "; ".join(
            p for d in failure.get("details") or [] for p in d.get("problems") or []
        )
        kopf.warn(outcome.event_target(body), reason="ValidationFailed", message=message[:1000])
        return
    failed = [
        f"{d.get('name')}: {d.get('error')}"
        for d in failure.get("destinations") or []
        if d.get("state") == "failed"
    ]
    reason = "BackupFailed" if not failure.get("succeeded") else "DestinationFailed"
    detail = failure.get("error") or "; ".join(failed)
    kopf.warn(
        outcome.event_target(body), reason=reason, message=f"{failure['job']}: {detail}"[:1000]
    )


def run_reconcile(
    client: KubeClient, body: Json, capabilities: Capabilities = NO_OPTIONAL_APIS
) -> None:
    """One reconcile and its status write; transient failures propagate (the caller retries).

    Every other failure (invalid spec, a child refused by the API server's dry run, a missing
    Secret or cluster, an unexpected error) becomes `Ready=False` with its reason and a Warning
    Event; nothing new is applied.
    """
    current = dict(body.get("status") or {})
    now = datetime.now(UTC)
    try:
        status, failures = reconcile_backup_policy(client, body, now=now, capabilities=capabilities)
    except Exception as exc:
        failure = outcome.classify(exc)
        if failure.transient:
            raise
        generation = int((body.get("metadata") or {}).get("generation") or 0)
        editor = StatusEditor(generation, current, now)
        editor.set("Ready", conditions.FALSE, failure.reason, failure.message)
        status, failures = editor.status, []
    for failure_result in failures:
        _warn(body, failure_result)
    meta, spec = body["metadata"], body.get("spec") or {}
    metrics.observe_backup_policy(
        namespace=meta["namespace"],
        cluster=(spec.get("clusterRef") or {}).get("name", ""),
        policy=meta["name"],
        previous=current,
        status=status,
    )
    patch = conditions.status_patch(current, status)
    if patch:
        ref = ObjectRef(
            names.API_VERSION, names.KIND_BACKUP_POLICY, meta["namespace"], meta["name"]
        )
        client.patch_status(ref, patch)
        outcome.record_ready_transition(body, current, status)


def _run(body: kopf.Body, memo: kopf.Memo, retry: int) -> None:
    try:
        with metrics.reconcile_timer(names.KIND_BACKUP_POLICY):
            run_reconcile(memo.client, dict(body), memo.capabilities)
    except Exception as exc:
        failure = outcome.classify(exc)
        if failure.transient:
            raise outcome.temporary(failure, retry) from None
        # only the status write itself can get here: the resync pass tries again
        logger.warning("backup policy reconcile failed", extra={"error": failure.message})


#: kopf splits a dotted string field path at every dot; the annotation key has dots of its own,
#: so the path is given as a tuple.
BACKUP_NOW_FIELD = ("metadata", "annotations", names.ANNOTATION_BACKUP_NOW)


def on_change(body: kopf.Body, memo: kopf.Memo, retry: int = 0, **_: Any) -> None:
    _run(body, memo, retry)


def resync(body: Mapping[str, Any], memo: kopf.Memo) -> None:
    """The resync pass's check (handlers/resync.py): repairs drift and picks up finished Jobs
    even if an event was missed. A transient failure propagates (the pass backs off)."""
    with metrics.reconcile_timer(names.KIND_BACKUP_POLICY):
        run_reconcile(memo.client, dict(body))


def on_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
    """A deleted policy's backup metrics go with it, so its alerts stop (children go by GC).

    A watch event rather than an on-delete handler: it needs no finalizer and fires however
    the object went away.
    """
    if event.get("type") != "DELETED":
        return
    forget(body)


def forget(body: Mapping[str, Any]) -> None:
    """Drop the backup metrics of a deleted BackupPolicy."""
    meta, spec = body["metadata"], body.get("spec") or {}
    metrics.forget_backup_policy(
        namespace=meta["namespace"],
        cluster=(spec.get("clusterRef") or {}).get("name", ""),
        policy=meta["name"],
    )


def on_job(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A backup/validation Job changed: refresh its policy's status right away."""
    policy = (body.get("metadata", {}).get("labels") or {}).get(backup.LABEL_POLICY)
    namespace = body.get("metadata", {}).get("namespace")
    if not policy or not namespace:
        return
    client: KubeClient = memo.client
    try:
        owner = client.get(
            ObjectRef(names.API_VERSION, names.KIND_BACKUP_POLICY, namespace, policy)
        )
        if owner is not None and not owner["metadata"].get("deletionTimestamp"):
            run_reconcile(client, owner, memo.capabilities)
    except Exception as exc:  # reported in the status by run_reconcile where it can be
        err = outcome.classify(exc).message
        logger.warning("backup policy refresh failed", extra={"policy": policy, "error": err})


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """BackupPolicy's handlers: spec and backup-now changes, the resync pass, deletion, Job
    events."""
    kopf.on.resume(*RESOURCE, registry=registry)(on_change)
    kopf.on.create(*RESOURCE, registry=registry)(on_change)
    kopf.on.update(*RESOURCE, registry=registry, field="spec")(on_change)
    kopf.on.update(*RESOURCE, registry=registry, field=BACKUP_NOW_FIELD)(on_change)
    ResyncPass(
        api_version=names.API_VERSION,
        kind=names.KIND_BACKUP_POLICY,
        check=resync,
        interval=settings.resync_seconds,
        concurrency=settings.resync_concurrency,
    ).register(registry, RESOURCE)
    kopf.on.event(*RESOURCE, registry=registry)(on_event)
    jobs = {backup.LABEL_POLICY: kopf.PRESENT}
    kopf.on.event("batch", "v1", "jobs", registry=registry, labels=jobs)(on_job)
