"""Pure status computation of a RagFlowCluster from its children's facts.

`summarise` turns the model and the observed WorkloadFacts into the complete desired status
(conditions Ready, Progressing, Degraded, DatabaseReady, CacheReady, VectorStoreReady, plus
phase, replicas, readyReplicas, endpoint, version, selector, observedGeneration); `failed`
reports an error that stopped the reconcile. handlers/cluster.py then writes only the
difference (conditions.status_patch). `now` is passed in; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from ragflow_operator import names
from ragflow_operator.conditions import FALSE, TRUE, StatusEditor
from ragflow_operator.model.cluster import ClusterModel, Dependency
from ragflow_operator.observe import MISSING, WorkloadFacts

Json = dict[str, Any]

#: Ready/Restored reason of a restore Job that failed (raised by restore.py).
RESTORE_FAILED = "RestoreFailed"

DEPENDENCY_CONDITIONS = {
    names.COMPONENT_POSTGRES: ("DatabaseReady", "PostgreSQL"),
    names.COMPONENT_REDIS: ("CacheReady", "Redis"),
    names.COMPONENT_MILVUS: ("VectorStoreReady", "Milvus"),
}


@dataclass(frozen=True)
class RestoreProgress:
    """Where a `spec.restoreFrom` bootstrap stands (restore.py)."""

    #: "waiting" (dependencies not ready), "running" (restore Job) or "succeeded".
    state: str
    message: str

    @property
    def pending(self) -> bool:
        return self.state != "succeeded"


@dataclass(frozen=True)
class ClusterFacts:
    api: WorkloadFacts
    worker: WorkloadFacts
    #: component -> facts of its StatefulSet (managed dependencies only).
    dependencies: Mapping[str, WorkloadFacts]


class Verdict(NamedTuple):
    """One condition as this reconcile sees it (conditions.set_condition keeps its times)."""

    type: str
    status: str
    reason: str
    message: str


def _dependency_verdict(dep: Dependency[Any], facts: ClusterFacts) -> Verdict:
    type_, label = DEPENDENCY_CONDITIONS[dep.component]
    if not dep.is_managed:
        message = f"external {label} configured; the runtime's /ready checks it"
        return Verdict(type_, TRUE, "External", message)
    sts = facts.dependencies.get(dep.component, MISSING)
    if sts.is_ready:
        return Verdict(type_, TRUE, "StatefulSetReady", f"managed {label}: {sts.summary()}")
    return Verdict(type_, FALSE, "StatefulSetNotReady", f"managed {label}: {sts.summary()}")


def _runtime_workloads(facts: ClusterFacts) -> dict[str, WorkloadFacts]:
    return {"api": facts.api, "worker": facts.worker}


def _all_workloads(facts: ClusterFacts) -> dict[str, WorkloadFacts]:
    return {**_runtime_workloads(facts), **facts.dependencies}


def _stuck(facts: ClusterFacts) -> dict[str, str]:
    """Runtime workload -> why its rollout is stuck (only those that are)."""
    return {n: w.stuck_reason for n, w in _runtime_workloads(facts).items() if w.stuck_reason}


def _short(facts: ClusterFacts) -> list[str]:
    """Workloads that run the desired spec with fewer pods available than desired."""
    return [n for n, w in _all_workloads(facts).items() if w.rolled_out and not w.is_ready]


def _progressing(facts: ClusterFacts) -> Verdict:
    rolling = [name for name, w in _all_workloads(facts).items() if not w.rolled_out]
    if rolling:
        return Verdict(
            "Progressing", TRUE, "RollingOut", "waiting for: " + ", ".join(sorted(rolling))
        )
    return Verdict("Progressing", FALSE, "RolledOut", "every workload runs the desired spec")


def _degraded(facts: ClusterFacts) -> Verdict:
    stuck, short = _stuck(facts), _short(facts)
    if stuck:
        detail = ", ".join(f"{name}: {reason}" for name, reason in sorted(stuck.items()))
        return Verdict("Degraded", TRUE, "RolloutStuck", detail)
    if short:
        detail = "fewer pods available than desired: " + ", ".join(sorted(short))
        return Verdict("Degraded", TRUE, "PodsUnavailable", detail)
    return Verdict("Degraded", FALSE, "AsExpected", "no unavailable pods")


def _restored(restore: RestoreProgress) -> Verdict:
    if not restore.pending:
        return Verdict("Restored", TRUE, "RestoreSucceeded", restore.message)
    reasons = {"waiting": "WaitingForDependencies", "running": "Restoring"}
    return Verdict("Restored", FALSE, reasons[restore.state], restore.message)


def _ready(
    model: ClusterModel,
    facts: ClusterFacts,
    *,
    deps_ready: bool,
    notes: str,
    restore: RestoreProgress | None,
) -> tuple[Verdict, str]:
    """The Ready condition and the phase that goes with it."""
    if restore is not None and restore.pending:
        return Verdict("Ready", FALSE, "Restoring", restore.message + notes), "Provisioning"
    if deps_ready and all(w.is_ready for w in _all_workloads(facts).values()):
        message = f"serving at {model.endpoint()}{notes}"
        return Verdict("Ready", TRUE, "AllComponentsReady", message), "Running"
    waiting = [f"{n} {w.summary()}" for n, w in _runtime_workloads(facts).items() if not w.is_ready]
    if not deps_ready:
        waiting.insert(0, "dependencies not ready")
    phase = "Degraded" if _stuck(facts) or _short(facts) else "Provisioning"
    return Verdict("Ready", FALSE, "ComponentsNotReady", "; ".join(waiting) + notes), phase


def summarise(
    model: ClusterModel,
    facts: ClusterFacts,
    *,
    current: Mapping[str, Any],
    skipped: list[str],
    now: datetime,
    restore: RestoreProgress | None = None,
) -> Json:
    """The full status the operator wants, keeping transition times of unchanged conditions."""
    editor = StatusEditor(model.generation, current, now, keep_fields=False)
    dependencies = [_dependency_verdict(dep, facts) for dep in model.dependencies]
    deps_ready = all(verdict.status == TRUE for verdict in dependencies)
    notes = ("; " + "; ".join(skipped)) if skipped else ""
    ready, phase = _ready(model, facts, deps_ready=deps_ready, notes=notes, restore=restore)
    restored = [_restored(restore)] if restore is not None else []
    for verdict in (*dependencies, _progressing(facts), _degraded(facts), *restored, ready):
        editor.set(verdict.type, verdict.status, verdict.reason, verdict.message)
    editor.status.update(
        endpoint=model.endpoint(),
        version=model.version,
        selector=names.selector_string(names.selector_labels(model.name, names.COMPONENT_API)),
        phase=phase,
        replicas=facts.api.current,
        readyReplicas=facts.api.ready,
    )
    return editor.status


def failed(
    model: ClusterModel | None,
    generation: int,
    *,
    reason: str,
    message: str,
    current: Mapping[str, Any],
    now: datetime,
) -> Json:
    """Status when the reconcile stopped on an error (nothing new was applied).

    A failed restore also ends the `Restored` condition's progress (RestoreFailed), so nothing
    reading it (Argo CD's health check) waits for a restore that will not finish by itself.
    """
    editor = StatusEditor(generation, current, now, keep_fields=False)
    types = ["Ready", "Progressing"] + (["Restored"] if reason == RESTORE_FAILED else [])
    for type_ in types:
        editor.set(type_, FALSE, reason, message)
    editor.status["phase"] = "Failed"
    if model is not None:
        editor.status["endpoint"] = model.endpoint()
    return editor.status
