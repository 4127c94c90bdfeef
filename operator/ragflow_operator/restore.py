"""Reads behind `RagFlowCluster.spec.restoreFrom`: bootstrap a new cluster from a backup.

Called by handlers/cluster.py on each reconcile while the cluster has not been restored yet
(status condition `Restored` not True). Order: the managed dependencies start; once they are
ready the restore ConfigMap + Job from builders/backup.py:build_restore_job run
`ragruntime backup restore`; only after the Job completed are the API/worker Deployments
created. The `Restored` condition then records it for good, so a restore never runs twice
(and `ragruntime backup restore` refuses a non-empty target anyway). A failed Job stops the
bootstrap with `Ready=False, RestoreFailed`; deleting the Job `<cluster>-restore` retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ragflow_operator import conditions, errors, names, observe
from ragflow_operator.builders.backup import build_restore_job, restore_job_name
from ragflow_operator.builders.render import Manifest
from ragflow_operator.cluster_status import RESTORE_FAILED, RestoreProgress
from ragflow_operator.k8s import KubeClient, ObjectRef
from ragflow_operator.model.backup_policy import BackupPolicyModel
from ragflow_operator.model.cluster import ClusterModel
from ragflow_operator.references import require_secrets


@dataclass(frozen=True)
class RestorePlan:
    """What the reconcile must do for a pending restore."""

    progress: RestoreProgress
    #: Restore ConfigMap + Job to apply (empty while the dependencies are not ready).
    manifests: list[Manifest]


def _policy(client: KubeClient, model: ClusterModel, name: str) -> BackupPolicyModel:
    ref = ObjectRef(names.API_VERSION, names.KIND_BACKUP_POLICY, model.namespace, name)
    body = client.get(ref)
    if body is None:
        raise errors.MissingReference(
            f"BackupPolicy {name} (spec.restoreFrom.backupPolicy) does not exist",
            reason="MissingBackupPolicy",
        )
    policy = BackupPolicyModel.from_body(body)
    require_secrets(
        client,
        model.namespace,
        policy.referenced_secrets(),
        referrer=f"used by BackupPolicy {name}",
    )
    return policy


def _dependencies_ready(client: KubeClient, model: ClusterModel) -> bool:
    refs = [
        ObjectRef(
            "apps/v1", "StatefulSet", model.namespace, names.child_name(model.name, d.component)
        )
        for d in model.dependencies
        if d.is_managed
    ]
    live = observe.read_workloads(client, refs)
    return all(observe.workload_facts(live.get(ref)).is_ready for ref in refs)


def plan_restore(
    client: KubeClient, model: ClusterModel, current: Mapping[str, Any]
) -> RestorePlan | None:
    """None when there is nothing (more) to restore; raises for missing references/failure."""
    restore_from = model.restore_from
    if restore_from is None:
        return None
    if conditions.is_true(list(current.get("conditions") or []), "Restored"):
        return None
    policy = _policy(client, model, restore_from.backup_policy)
    backup_id = restore_from.backup_id
    what = f"backup {backup_id or 'latest'} of BackupPolicy {policy.name}"
    job_ref = ObjectRef("batch/v1", "Job", model.namespace, restore_job_name(model.name))
    job = observe.job_facts(client.get(job_ref))
    if job.get("complete"):
        return RestorePlan(RestoreProgress("succeeded", f"restored {what}"), [])
    if job.get("failedCondition"):
        raise errors.InvalidSpec(
            f"restore Job {job_ref.name} failed ({what}); see its logs, fix the cause, then "
            f"delete the Job to retry",
            reason=RESTORE_FAILED,
        )
    manifests = build_restore_job(model, policy, backup_id)
    if job.get("exists"):
        return RestorePlan(RestoreProgress("running", f"restore Job running: {what}"), manifests)
    if not _dependencies_ready(client, model):
        message = f"waiting for the managed dependencies before restoring {what}"
        return RestorePlan(RestoreProgress("waiting", message), [])
    return RestorePlan(RestoreProgress("running", f"restore Job started: {what}"), manifests)
