"""What the runtime's Job commands share: their configuration, their repositories, their result.

Used by ``ragruntime backup ...`` (``ragruntime.backup.cli``) and ``ragruntime standby ...``
(``ragruntime.standby.cli``), which read the same backup configuration file (``--config`` or
``RAGFLOW_BACKUP_CONFIG``: a cluster, its destinations, its keyring) and report the same way: one
JSON summary on stdout, also written where Kubernetes reads a container's termination message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ragflow_contract import backup_result
from ragruntime.backup.destinations.factory import build_destinations
from ragruntime.backup.repository import Repository
from ragruntime.backup.settings import BackupConfig

CONFIG_VARIABLE = "RAGFLOW_BACKUP_CONFIG"


def load_config(path: str | None) -> BackupConfig:
    """The backup configuration at ``path``, else at ``$RAGFLOW_BACKUP_CONFIG``."""
    path = path or os.environ.get(CONFIG_VARIABLE)
    if not path:
        raise ValueError(f"no backup configuration: pass --config or set {CONFIG_VARIABLE}")
    return BackupConfig.load(path)


def repositories(config: BackupConfig, only: str | None = None) -> list[Repository]:
    """The cluster's repository on each destination (only the one named ``only``, if given)."""
    raws = [d for d in config.destinations if only in (None, d["name"])]
    if not raws:
        raise ValueError(f"no destination named {only!r}")
    built = build_destinations(
        raws,
        config.cluster,
        backoff=config.retry_backoff,
        budget_s=config.destination_timeout,
        call_timeout_s=config.call_timeout,
    )
    return [Repository(d, config.cluster) for d in built]


def emit(summary: dict[str, Any], termination_log: str | None) -> None:
    """Print ``summary``; also write it to ``termination_log``, cut to fit a termination message.

    ``details`` entries are dropped from the end until it fits, then the text is cut.
    """
    print(json.dumps(summary, sort_keys=True))  # noqa: T201 - the command's result, on stdout
    if termination_log:
        compact = summary
        while len(json.dumps(compact)) > backup_result.TERMINATION_LIMIT and compact.get("details"):
            compact = {**compact, "details": compact["details"][:-1]}
        Path(termination_log).write_text(
            json.dumps(compact, sort_keys=True)[: backup_result.TERMINATION_LIMIT]
        )
