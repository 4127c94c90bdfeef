"""Build ready-to-use destinations (wrapped in retries) from the backup configuration.

Called by the CLI. Each destination config has a ``name`` and exactly one of ``s3``, ``gcs``,
``azure`` or ``local``; credentials are read from ``credentialsDir``, a directory where the
operator mounts the destination's Secret (one file per key), so no secret travels in the config.
The repository root on every destination is ``<prefix>/<cluster>``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ragruntime.backup.destinations.base import Destination, DestinationError, join
from ragruntime.backup.destinations.deadline import (
    DEFAULT_BUDGET_S,
    DEFAULT_CALL_TIMEOUT_S,
    DeadlineDestination,
)
from ragruntime.backup.destinations.retry import DEFAULT_BACKOFF, RetryingDestination

KINDS = ("s3", "gcs", "azure", "local")
GCS_CREDENTIALS_FILE = "service-account.json"


def read_credentials(directory: str | None) -> dict[str, str]:
    """Files of a mounted Secret → {key: value}; hidden files (``..data`` links) skipped."""
    if not directory:
        return {}
    root = Path(directory)
    if not root.is_dir():
        raise DestinationError(f"credentials directory {directory} does not exist", permanent=True)
    return {
        p.name: p.read_text().strip()
        for p in sorted(root.iterdir())
        if p.is_file() and not p.name.startswith(".")
    }


def destination_kind(raw: Mapping[str, Any]) -> str:
    kinds = [k for k in KINDS if raw.get(k)]
    if len(kinds) != 1:
        raise ValueError(f"destination {raw.get('name')!r} needs exactly one of {', '.join(KINDS)}")
    return kinds[0]


def build_destination(raw: Mapping[str, Any], cluster: str) -> Destination:
    """One provider destination, not yet wrapped in retries."""
    name = str(raw["name"])
    kind = destination_kind(raw)
    spec: Mapping[str, Any] = raw[kind]
    prefix = join(str(spec.get("prefix", "")), cluster)
    creds_dir = spec.get("credentialsDir")
    if kind == "s3":
        from ragruntime.backup.destinations.s3 import S3Destination

        return S3Destination(
            name,
            bucket=str(spec["bucket"]),
            prefix=prefix,
            region=str(spec.get("region", "")),
            endpoint=str(spec.get("endpoint", "")),
            credentials=read_credentials(creds_dir),
        )
    if kind == "gcs":
        from ragruntime.backup.destinations.gcs import GCSDestination

        account = Path(creds_dir, GCS_CREDENTIALS_FILE) if creds_dir else None
        return GCSDestination(
            name,
            bucket=str(spec["bucket"]),
            prefix=prefix,
            endpoint=str(spec.get("endpoint", "")),
            project=str(spec.get("project", "")),
            service_account_file=account if account and account.is_file() else None,
        )
    if kind == "azure":
        from ragruntime.backup.destinations.azure import AzureDestination

        return AzureDestination(
            name,
            container=str(spec["container"]),
            prefix=prefix,
            endpoint=str(spec.get("endpoint", "")),
            credentials=read_credentials(creds_dir),
        )
    from ragruntime.backup.destinations.local import LocalDestination

    return LocalDestination(name, Path(str(spec["path"])) / prefix)


def build_destinations(
    raws: Sequence[Mapping[str, Any]],
    cluster: str,
    *,
    backoff: Sequence[float] = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
) -> list[Destination]:
    """Provider destinations, each retried (``retry``) under deadlines (``deadline``)."""
    names = [str(r.get("name", "")) for r in raws]
    if len(set(names)) != len(names) or not all(names):
        raise ValueError("destination names must be present and unique")
    built: list[Destination] = []
    for raw in raws:
        inner = build_destination(raw, cluster)
        stop = threading.Event()
        retrying = RetryingDestination(inner, backoff, sleep or time.sleep, stop)
        built.append(
            DeadlineDestination(
                retrying, budget_s=budget_s, call_timeout_s=call_timeout_s, on_abandon=stop.set
            )
        )
    return built
