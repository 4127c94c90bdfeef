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
from typing import Any

from ragflow_operator import conditions, names
from ragflow_operator.conditions import FALSE, TRUE
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


def _dependency_condition(dep: Dependency, facts: ClusterFacts) -> tuple[str, str, str]:
    """(status, reason, message) of one dependency condition."""
    label = DEPENDENCY_CONDITIONS[dep.component][1]
    if not dep.is_managed:
        return TRUE, "External", f"external {label} configured; the runtime's /ready checks it"
    sts = facts.dependencies.get(dep.component, MISSING)
    if sts.is_ready:
        return TRUE, "StatefulSetReady", f"managed {label}: {sts.summary()}"
    return FALSE, "StatefulSetNotReady", f"managed {label}: {sts.summary()}"


def _base(model: ClusterModel, current: Mapping[str, Any]) -> tuple[Json, list[dict[str, Any]]]:
    status: Json = {
        "observedGeneration": model.generation,
        "endpoint": model.endpoint(),
        "version": model.version,
        "selector": names.selector_string(names.selector_labels(model.name, names.COMPONENT_API)),
    }
    return status, [dict(c) for c in current.get("conditions") or []]


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
    status, conds = _base(model, current)
    gen = model.generation

    def put(type_: str, value: str, reason: str, message: str) -> None:
        nonlocal conds
        conds = conditions.set_condition(
            conds,
            type_=type_,
            status=value,
            reason=reason,
            message=message,
            generation=gen,
            now=now,
        )

    deps_ready = True
    for dep in model.dependencies:
        value, reason, message = _dependency_condition(dep, facts)
        put(DEPENDENCY_CONDITIONS[dep.component][0], value, reason, message)
        deps_ready = deps_ready and value == TRUE

    workloads = {"api": facts.api, "worker": facts.worker}
    all_workloads = [*workloads.values(), *facts.dependencies.values()]
    rolling = [name for name, w in {**workloads, **facts.dependencies}.items() if not w.rolled_out]
    stuck = {name: w.stuck_reason for name, w in workloads.items() if w.stuck_reason}
    if rolling:
        put("Progressing", TRUE, "RollingOut", "waiting for: " + ", ".join(sorted(rolling)))
    else:
        put("Progressing", FALSE, "RolledOut", "every workload runs the desired spec")

    short = [
        n for n, w in {**workloads, **facts.dependencies}.items() if w.rolled_out and not w.is_ready
    ]
    if stuck:
        detail = ", ".join(f"{name}: {reason}" for name, reason in sorted(stuck.items()))
        put("Degraded", TRUE, "RolloutStuck", detail)
    elif short:
        put(
            "Degraded",
            TRUE,
            "PodsUnavailable",
            "fewer pods available than desired: " + ", ".join(sorted(short)),
        )
    else:
        put("Degraded", FALSE, "AsExpected", "no unavailable pods")

    ready = deps_ready and all(w.is_ready for w in all_workloads)
    notes = ("; " + "; ".join(skipped)) if skipped else ""
    if restore is not None:
        reasons = {"waiting": "WaitingForDependencies", "running": "Restoring"}
        if restore.pending:
            put("Restored", FALSE, reasons[restore.state], restore.message)
        else:
            put("Restored", TRUE, "RestoreSucceeded", restore.message)
    if restore is not None and restore.pending:
        put("Ready", FALSE, "Restoring", restore.message + notes)
        phase = "Provisioning"
    elif ready:
        put("Ready", TRUE, "AllComponentsReady", f"serving at {model.endpoint()}{notes}")
        phase = "Running"
    else:
        waiting = [f"{name} {w.summary()}" for name, w in workloads.items() if not w.is_ready]
        if not deps_ready:
            waiting.insert(0, "dependencies not ready")
        put("Ready", FALSE, "ComponentsNotReady", "; ".join(waiting) + notes)
        phase = "Degraded" if stuck or short else "Provisioning"

    status.update(
        phase=phase,
        replicas=facts.api.current,
        readyReplicas=facts.api.ready,
        conditions=conds,
    )
    return status


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
    conds = [dict(c) for c in current.get("conditions") or []]
    types = [("Ready", FALSE), ("Progressing", FALSE)]
    if reason == RESTORE_FAILED:
        types.append(("Restored", FALSE))
    for type_, value in types:
        conds = conditions.set_condition(
            conds,
            type_=type_,
            status=value,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )
    status: Json = {"observedGeneration": generation, "phase": "Failed", "conditions": conds}
    if model is not None:
        status["endpoint"] = model.endpoint()
    return status
