"""The operator's own Prometheus metrics and the HTTP endpoint that serves them.

`cli.py` calls `start_metrics_server(port)` when `ragflow-operator run --metrics-port` is set.
Handlers call `reconcile_timer(kind)` around a reconcile and `record_children_applied` after an
apply; handlers/backup_policy.py calls `observe_backup_policy` after every reconcile with the status
before and after it (gauges re-exported idempotently, so a restarted operator re-exports the
newest success and failure times; a finished backup counted once). The
AlertPolicy rules RagFlowBackupStale/Missing/Failed read those gauges (builders/alerts.py).
handlers/cluster.py calls `observe_standby` / `forget_standby` for standby clusters (the lag
gauges behind RagFlowStandbyLagging and RagFlowStandbySyncFailing).

All metrics live in `REGISTRY` (not prometheus_client's global one) together with the process
and platform collectors, so tests can read them and nothing else leaks in.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
prometheus_client.ProcessCollector(registry=REGISTRY)
prometheus_client.PlatformCollector(registry=REGISTRY)

RESULT_SUCCESS = "success"
RESULT_ERROR = "error"
BACKUP_SUCCEEDED = "succeeded"
BACKUP_FAILED = "failed"

RECONCILES = Counter(
    "ragflow_operator_reconcile",
    "Reconciles run by the operator, by custom resource kind and result (success, error).",
    ["kind", "result"],
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "ragflow_operator_reconcile_errors",
    "Failed reconciles by kind and error reason (InvalidSpec, ApiThrottled, ...).",
    ["kind", "reason"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "ragflow_operator_reconcile_duration_seconds",
    "Wall-clock duration of one reconcile, by kind.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
CHILDREN_APPLIED = Counter(
    "ragflow_operator_children_applied",
    "Child objects written with server-side apply, by owner kind and child kind.",
    ["kind", "child_kind"],
    registry=REGISTRY,
)
BACKUP_OUTCOMES = Counter(
    "ragflow_operator_backup_outcomes",
    "Finished backups seen by the operator, by BackupPolicy and result (succeeded, failed).",
    ["namespace", "cluster", "policy", "result"],
    registry=REGISTRY,
)
BACKUP_LAST_SUCCESS = Gauge(
    "ragflow_operator_backup_last_success_timestamp_seconds",
    "Unix time at which the newest successful backup of a BackupPolicy finished.",
    ["namespace", "cluster", "policy"],
    registry=REGISTRY,
)
BACKUP_LAST_FAILURE = Gauge(
    "ragflow_operator_backup_last_failure_timestamp_seconds",
    "Unix time at which the newest failed backup of a BackupPolicy finished.",
    ["namespace", "cluster", "policy"],
    registry=REGISTRY,
)

STANDBY_LAG = Gauge(
    "ragflow_operator_standby_lag_seconds",
    "Age of the backup a standby RagFlowCluster serves (its RPO now), from its status.",
    ["namespace", "cluster"],
    registry=REGISTRY,
)
STANDBY_MAX_LAG = Gauge(
    "ragflow_operator_standby_max_lag_seconds",
    "spec.standby.maxLagSeconds of a standby RagFlowCluster (threshold of RagFlowStandbyLagging).",
    ["namespace", "cluster"],
    registry=REGISTRY,
)
STANDBY_SYNC_FAILED = Gauge(
    "ragflow_operator_standby_sync_failed",
    "1 while the newest finished sync Job of a standby RagFlowCluster failed, else 0.",
    ["namespace", "cluster"],
    registry=REGISTRY,
)


def error_reason(err: BaseException) -> str:
    """The CamelCase reason of our errors (errors.OperatorError.reason), else the class name."""
    reason = getattr(err, "reason", None)
    return reason if isinstance(reason, str) and reason else type(err).__name__


@contextmanager
def reconcile_timer(kind: str) -> Iterator[None]:
    """Time a reconcile of `kind` and count it as success, or as error when it raises."""
    started = time.perf_counter()
    try:
        yield
    except BaseException as err:
        RECONCILES.labels(kind=kind, result=RESULT_ERROR).inc()
        RECONCILE_ERRORS.labels(kind=kind, reason=error_reason(err)).inc()
        raise
    else:
        RECONCILES.labels(kind=kind, result=RESULT_SUCCESS).inc()
    finally:
        RECONCILE_DURATION.labels(kind=kind).observe(time.perf_counter() - started)


def record_children_applied(kind: str, manifests: Iterable[dict[str, Any]]) -> None:
    """Count the child manifests a reconcile of `kind` really wrote (one per manifest)."""
    for manifest in manifests:
        CHILDREN_APPLIED.labels(kind=kind, child_kind=manifest.get("kind", "Unknown")).inc()


def _export_backup_times(
    *,
    namespace: str,
    cluster: str,
    policy: str,
    last_success: float | None,
    last_failure: float | None,
) -> None:
    """Export the newest success/failure times (Unix seconds) of a BackupPolicy (idempotent)."""
    labels = {"namespace": namespace, "cluster": cluster, "policy": policy}
    if last_success is not None:
        BACKUP_LAST_SUCCESS.labels(**labels).set(last_success)
    if last_failure is not None:
        BACKUP_LAST_FAILURE.labels(**labels).set(last_failure)


def _parse_time(value: object) -> float | None:
    """Unix time of an RFC 3339 status timestamp, None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def observe_backup_policy(
    *,
    namespace: str,
    cluster: str,
    policy: str,
    previous: Mapping[str, Any],
    status: Mapping[str, Any],
) -> None:
    """Export a BackupPolicy's status (`lastBackup`, `lastSuccessfulBackup`) as metrics.

    Called by handlers/backup_policy.py after every reconcile with the status before and after
    it: the timestamp gauges are set from the status (idempotent, so a restarted operator
    re-exports them), and a finished backup is counted once, when `lastBackup.job` changes.
    """
    last = status.get("lastBackup") or {}
    success = _parse_time((status.get("lastSuccessfulBackup") or {}).get("finishedAt"))
    failure = None if last.get("succeeded") else _parse_time(last.get("finishedAt"))
    _export_backup_times(
        namespace=namespace,
        cluster=cluster,
        policy=policy,
        last_success=success,
        last_failure=failure,
    )
    if last.get("job") and last.get("job") != (previous.get("lastBackup") or {}).get("job"):
        result = BACKUP_SUCCEEDED if last.get("succeeded") else BACKUP_FAILED
        labels = {"namespace": namespace, "cluster": cluster, "policy": policy, "result": result}
        BACKUP_OUTCOMES.labels(**labels).inc()


def forget_backup_policy(*, namespace: str, cluster: str, policy: str) -> None:
    """Drop the series of a deleted BackupPolicy so its alerts do not outlive it."""
    for metric, extra in (
        (BACKUP_LAST_SUCCESS, ()),
        (BACKUP_LAST_FAILURE, ()),
        (BACKUP_OUTCOMES, (BACKUP_SUCCEEDED,)),
        (BACKUP_OUTCOMES, (BACKUP_FAILED,)),
    ):
        with contextlib.suppress(KeyError):  # that series was never set
            metric.remove(namespace, cluster, policy, *extra)


def observe_standby(
    *,
    namespace: str,
    cluster: str,
    lag_seconds: int | None,
    max_lag_seconds: int,
    sync_failed: bool,
) -> None:
    """Export a following standby's status (called by handlers/cluster.py on each reconcile).

    No lag series until the standby serves a backup; RagFlowStandbySyncFailing covers that.
    """
    labels = {"namespace": namespace, "cluster": cluster}
    if lag_seconds is None:
        with contextlib.suppress(KeyError):
            STANDBY_LAG.remove(namespace, cluster)
    else:
        STANDBY_LAG.labels(**labels).set(lag_seconds)
    STANDBY_MAX_LAG.labels(**labels).set(max_lag_seconds)
    STANDBY_SYNC_FAILED.labels(**labels).set(1 if sync_failed else 0)


def forget_standby(*, namespace: str, cluster: str) -> None:
    """Drop a standby's series: it was promoted or deleted, so its lag alerts must stop."""
    for metric in (STANDBY_LAG, STANDBY_MAX_LAG, STANDBY_SYNC_FAILED):
        with contextlib.suppress(KeyError):  # never set for this cluster
            metric.remove(namespace, cluster)


def start_metrics_server(port: int, address: str = "0.0.0.0") -> WSGIServer:
    """Serve `REGISTRY` on http://<address>:<port>/metrics from a daemon thread.

    Returns the server; `shutdown()` stops it (tests do, the operator keeps it to the end).
    """
    server, _thread = prometheus_client.start_http_server(port, addr=address, registry=REGISTRY)
    return server
