"""Operator-wide kopf wiring: startup settings, shared state in `memo`, health probes.

Registered first by handlers/__init__.py. At startup it tunes kopf (timeouts, worker pool, our
own annotation prefix for kopf's bookkeeping, no automatic "handler succeeded" Events), installs
the operator's settings (settings.py, read once by cli.py) and creates the one KubeClient and
discovers the cluster's Capabilities, all stored in kopf's `memo` so every handler
(RagFlowCluster, BackupPolicy, AlertPolicy) gets them as `memo.settings`, `memo.client` and
`memo.capabilities`. The liveness endpoint (`run --liveness http://0.0.0.0:8080/healthz`) serves
the probe results below.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ragflow_operator import names
from ragflow_operator.capabilities import GROUP_VERSIONS, Capabilities
from ragflow_operator.k8s import KubeClient
from ragflow_operator.settings import OperatorSettings


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """The startup handler (with `settings` bound) and the liveness probe."""

    def startup(memo: kopf.Memo, logger: Any, **kwargs: Any) -> None:
        configure(kwargs["settings"], memo, logger, settings)  # kopf's settings, then ours

    kopf.on.startup(registry=registry, id="configure")(startup)
    kopf.on.probe(registry=registry, id="api")(api_reachable)


def configure(
    kopf_settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    logger: Any,
    operator_settings: OperatorSettings,
) -> None:
    """kopf's settings first, then our settings, the shared client and the capabilities."""
    tune_kopf(kopf_settings, operator_settings)
    memo.settings = operator_settings
    memo.client = KubeClient.from_environment(pool_size=max(8, operator_settings.workers * 2))
    served = memo.client.served_kinds(GROUP_VERSIONS)
    memo.capabilities = Capabilities.from_resources(served)
    logger.info(f"capabilities discovered: {memo.capabilities}")


def tune_kopf(kopf_settings: kopf.OperatorSettings, operator_settings: OperatorSettings) -> None:
    """kopf's settings for this operator (bookkeeping, timeouts, threads, memory bounds)."""
    # Only our own Events (on meaningful transitions); kopf's per-handler success messages
    # would be a write on every resync.
    kopf_settings.posting.level = logging.WARNING
    # kopf's bookkeeping under our prefix, in annotations only: the status schema is ours.
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    kopf_settings.persistence.finalizer = f"{names.GROUP}/finalizer"
    # Watches are restarted server-side every 5 minutes; a dead connection is noticed in 60s
    # (kopf issues #698, #204 describe silent watch stalls without these).
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.client_timeout = 330
    kopf_settings.watching.connect_timeout = 30
    kopf_settings.networking.request_timeout = 60
    # No cluster-wide CRD/namespace watching: the Helm chart grants only namespaced rules (a
    # RoleBinding per watched namespace), and our CRDs are installed before the operator runs.
    kopf_settings.scanning.disabled = True
    kopf_settings.execution.max_workers = operator_settings.workers
    # Memory at scale: without a limit kopf starts a worker for every object with pending
    # events, and a burst of 1,000 creations keeps thousands of decoded bodies waiting for the
    # handler threads at once (the operator's peak RSS). With one, the watch is read only as
    # fast as objects are handled; an idle worker exits after 1 s instead of 5 s so that a
    # slot frees quickly (kopf no longer batches events by time, so nothing else changes).
    kopf_settings.queueing.worker_limit = operator_settings.object_workers
    kopf_settings.queueing.idle_timeout = 1.0


def api_reachable(memo: kopf.Memo, **_: Any) -> bool:
    """Liveness detail: the API server answers (a cheap discovery read)."""
    client: KubeClient = memo.client
    client.request("GET", "/version", what="probe")
    return True
