"""Read the workloads behind a custom resource and reduce them to plain facts.

`workload_facts(obj)` is pure (Deployment or StatefulSet dict -> WorkloadFacts);
`read_workloads(client, refs)` fetches them. Used by handlers/cluster.py after an apply (from the
objects apply.py already holds) and on child events (fresh reads), and by
restore.py (the managed dependencies before a restore, the restore Job through
`job_facts`). BackupPolicy Jobs are read by handlers/backup_policy.py itself, for their
termination messages. Never writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ragflow_operator.k8s import KubeClient, ObjectRef

Json = dict[str, Any]


@dataclass(frozen=True)
class WorkloadFacts:
    """What a Deployment/StatefulSet reports about itself."""

    exists: bool
    desired: int = 0
    current: int = 0
    ready: int = 0
    available: int = 0
    updated: int = 0
    #: The controller has seen the newest spec (status.observedGeneration >= generation).
    observed: bool = False
    #: A rollout is stuck (Deployment ProgressDeadlineExceeded or ReplicaFailure).
    stuck_reason: str = ""

    @property
    def rolled_out(self) -> bool:
        return self.exists and self.observed and self.updated >= self.desired

    @property
    def is_ready(self) -> bool:
        return self.rolled_out and self.available >= self.desired

    def summary(self) -> str:
        if not self.exists:
            return "not created yet"
        return f"{self.available}/{self.desired} pods available"


MISSING = WorkloadFacts(exists=False)


def _condition(obj: Json, type_: str) -> Json:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == type_:
            return condition  # type: ignore[no-any-return]
    return {}


def workload_facts(obj: Json | None) -> WorkloadFacts:
    """Facts of a live Deployment or StatefulSet (None → not created)."""
    if not obj:
        return MISSING
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    generation = obj.get("metadata", {}).get("generation") or 0
    desired = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    if obj.get("kind") == "StatefulSet":
        available = int(status.get("availableReplicas", ready) or 0)
        revisions_match = status.get("updateRevision") in (None, status.get("currentRevision"))
        updated = int(status.get("updatedReplicas") or 0) if not revisions_match else desired
        stuck = ""
    else:
        available = int(status.get("availableReplicas") or 0)
        updated = int(status.get("updatedReplicas") or 0)
        progressing = _condition(obj, "Progressing")
        failure = _condition(obj, "ReplicaFailure")
        stuck = ""
        if progressing.get("reason") == "ProgressDeadlineExceeded":
            stuck = "ProgressDeadlineExceeded"
        elif failure.get("status") == "True":
            stuck = str(failure.get("reason") or "ReplicaFailure")
    return WorkloadFacts(
        exists=True,
        desired=desired,
        current=int(status.get("replicas") or 0),
        ready=ready,
        available=available,
        updated=updated,
        observed=int(status.get("observedGeneration") or 0) >= int(generation),
        stuck_reason=stuck,
    )


def job_facts(obj: Json | None) -> dict[str, Any]:
    """Plain facts of a batch/v1 Job: active/succeeded/failed counts and completion."""
    if not obj:
        return {"exists": False}
    status = obj.get("status") or {}
    return {
        "exists": True,
        "active": int(status.get("active") or 0),
        "succeeded": int(status.get("succeeded") or 0),
        "failed": int(status.get("failed") or 0),
        "complete": _condition(obj, "Complete").get("status") == "True",
        "failedCondition": _condition(obj, "Failed").get("status") == "True",
    }


def read_workloads(client: KubeClient, refs: Iterable[ObjectRef]) -> dict[ObjectRef, Json]:
    """Fresh reads of the given objects (absent ones are left out)."""
    found: dict[ObjectRef, Json] = {}
    for ref in refs:
        obj = client.get(ref)
        if obj is not None:
            found[ref] = obj
    return found
