"""Operator-wide kopf wiring: startup settings, shared state in `memo`, health probes.

Registered by handlers/__init__.py. At startup it tunes kopf (timeouts, worker pool, our own
annotation prefix for kopf's bookkeeping, no automatic "handler succeeded" Events), creates the
one KubeClient and discovers the cluster's Capabilities, both stored in kopf's `memo` so every
handler (RagFlowCluster, BackupPolicy, AlertPolicy) gets them as `memo.client` and
`memo.capabilities`. The liveness endpoint (`run --liveness http://0.0.0.0:8080/healthz`) serves
the probe results below.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import kopf

from ragflow_operator import names
from ragflow_operator.capabilities import MONITORING_GROUP_VERSION, VPA_GROUP_VERSION, Capabilities
from ragflow_operator.k8s import KubeClient

ENV_RESYNC = "RAGFLOW_OPERATOR_RESYNC_SECONDS"
ENV_WORKERS = "RAGFLOW_OPERATOR_WORKERS"


@dataclass(frozen=True)
class OperatorTuning:
    """Knobs read from the environment at startup (each documented in docs/operator.md)."""

    #: Seconds between level-based checks of every object (drift repair, missing references).
    #: 60s keeps a few hundred clusters cheap; tests lower it.
    resync_seconds: float = 60.0
    #: Threads running sync handlers; each reconcile is a few dozen short API calls.
    workers: int = 16

    @classmethod
    def from_environment(cls) -> OperatorTuning:
        return cls(
            resync_seconds=float(os.environ.get(ENV_RESYNC, cls.resync_seconds)),
            workers=int(os.environ.get(ENV_WORKERS, cls.workers)),
        )


TUNING = OperatorTuning.from_environment()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: Any, **_: Any) -> None:
    """Settings first, then the shared client and the discovered capabilities."""
    # Only our own Events (on meaningful transitions); kopf's per-handler success messages
    # would be a write on every timer tick.
    settings.posting.level = logging.WARNING
    # kopf's bookkeeping under our prefix, in annotations only: the status schema is ours.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{names.GROUP}/finalizer"
    # Watches are restarted server-side every 5 minutes; a dead connection is noticed in 60s
    # (kopf issues #698, #204 describe silent watch stalls without these).
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    # No cluster-wide CRD/namespace watching: the Helm chart grants only namespaced rules (a
    # RoleBinding per watched namespace), and our CRDs are installed before the operator runs.
    settings.scanning.disabled = True
    settings.execution.max_workers = TUNING.workers
    memo.client = KubeClient.from_environment(pool_size=max(8, TUNING.workers * 2))
    served = memo.client.served_kinds([MONITORING_GROUP_VERSION, VPA_GROUP_VERSION])
    memo.capabilities = Capabilities.from_resources(served)
    logger.info(f"capabilities discovered: {memo.capabilities}")


@kopf.on.probe(id="api")
def api_reachable(memo: kopf.Memo, **_: Any) -> bool:
    """Liveness detail: the API server answers (a cheap discovery read)."""
    client: KubeClient = memo.client
    client.request("GET", "/version", what="probe")
    return True
