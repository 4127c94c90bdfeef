"""Reads behind `RagFlowCluster.spec.standby`: the sync Jobs' results and the referenced Secrets.

Called by handlers/cluster.py on every full reconcile, before anything is written:
- a following standby: its keyring and credential Secrets must exist (the same check as a
  BackupPolicy's), then the finished sync Jobs' summaries (read by the BackupPolicy code,
  `finished_results`) become `status.standby` and `StandbyReady` (standby_status.py);
- a standby that was just promoted (spec.standby.enabled false or the section removed):
  `status.standby.promotedAt` and a `Promoted` Event; the sync CronJob is simply no longer
  built, so apply.py removes it, and the API/worker pods roll without RAGFLOW_STANDBY.
`refresh_backup_policies` tells the cluster's own BackupPolicies that the standby state changed
(they suspend while it follows and resume on promotion) without waiting for their resync.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ragflow_operator import metrics, names, standby_status
from ragflow_operator.builders import standby as standby_builders
from ragflow_operator.handlers import backup_policy, outcome
from ragflow_operator.k8s import KubeClient
from ragflow_operator.model.cluster import ClusterModel
from ragflow_operator.references import require_secrets
from ragflow_operator.standby_status import StandbyView

logger = logging.getLogger(__name__)


def plan_standby(
    client: KubeClient, model: ClusterModel, current: Mapping[str, Any], now: datetime
) -> StandbyView | None:
    """The standby part of the status (None: the cluster is not and was not a standby)."""
    standby = model.standby
    previous: Mapping[str, Any] = current.get("standby") or {}
    if standby is None:
        return standby_status.promoted(previous, now)
    require_secrets(client, model.namespace, standby.referenced_secrets(), referrer="spec.standby")
    selector = standby_builders.job_selector(model.name)
    results = [r for _, r in backup_policy.finished_results(client, model.namespace, selector)]
    return standby_status.following(
        standby,
        results,
        previous,
        now,
        cronjob=standby_builders.cronjob_name(model.name),
    )


def state_changed(current: Mapping[str, Any], model: ClusterModel) -> bool:
    """The spec starts or stops following compared with what the status last recorded."""
    return bool((current.get("standby") or {}).get("enabled")) != model.is_standby


def export_metrics(model: ClusterModel, view: StandbyView | None) -> None:
    """Lag gauges while following; forgotten once promoted (or never a standby)."""
    standby = model.standby
    if view is None or standby is None or not view.status.get("enabled"):
        metrics.forget_standby(namespace=model.namespace, cluster=model.name)
        return
    metrics.observe_standby(
        namespace=model.namespace,
        cluster=model.name,
        lag_seconds=view.lag_seconds,
        max_lag_seconds=standby.max_lag_seconds,
        sync_failed=view.sync_failed,
    )


def refresh_backup_policies(client: KubeClient, namespace: str, cluster: str) -> None:
    """Reconcile every BackupPolicy of `cluster` now (suspend or resume its CronJobs).

    Best effort: a failure is logged and the policies' own resync picks the change up.
    """
    try:
        policies = client.list(names.API_VERSION, names.KIND_BACKUP_POLICY, namespace, {})
        for policy in policies:
            if (policy.get("spec") or {}).get("clusterRef", {}).get("name") != cluster:
                continue
            if not policy["metadata"].get("deletionTimestamp"):
                backup_policy.run_reconcile(client, policy)
    except Exception as exc:  # reported by the policies themselves on their next resync
        message = outcome.classify(exc).message
        logger.warning("backup policy refresh failed", extra={"cluster": cluster, "error": message})
