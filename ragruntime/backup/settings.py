"""The backup configuration file read by ``ragruntime backup ...`` (JSON or YAML).

The operator renders it into a ConfigMap from the BackupPolicy spec; by hand it is a small file.
Field names follow the CRD (camelCase). Secrets are never in it: the keyring and each
destination's credentials are files where the Secrets are mounted (``keyringFile``,
``credentialsDir``). ``RAGFLOW_BACKUP_KEYRING_FILE`` overrides ``keyringFile``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ragflow_contract import environment
from ragruntime.backup.destinations.deadline import DEFAULT_BUDGET_S, DEFAULT_CALL_TIMEOUT_S
from ragruntime.backup.destinations.factory import destination_kind
from ragruntime.backup.destinations.retry import DEFAULT_BACKOFF
from ragruntime.backup.retention import RetentionPolicy

DEFAULT_INCLUDE = {"database": True, "vectors": True, "documents": True, "configuration": True}


def _positive(raw: Mapping[str, Any], key: str, default: float) -> float:
    try:
        value = float(raw.get(key, default))
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number of seconds, not {raw.get(key)!r}") from None
    if value <= 0:
        raise ValueError(f"{key} must be positive, not {value:g}")
    return value


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    name: str
    type: str = "full"
    retention: RetentionPolicy = dataclasses.field(default_factory=RetentionPolicy)


@dataclasses.dataclass(frozen=True)
class BackupConfig:
    cluster: str
    destinations: Sequence[Mapping[str, Any]]
    keyring_file: str
    min_successful: int = 1
    include: Mapping[str, bool] = dataclasses.field(default_factory=lambda: dict(DEFAULT_INCLUDE))
    schedules: Sequence[ScheduleConfig] = ()
    retry_backoff: Sequence[float] = DEFAULT_BACKOFF  # seconds between tries of one operation
    destination_timeout: float = DEFAULT_BUDGET_S  # seconds: one destination's share of a run
    call_timeout: float = DEFAULT_CALL_TIMEOUT_S  # seconds: one operation, retries included

    def schedule(self, name: str) -> ScheduleConfig:
        for schedule in self.schedules:
            if schedule.name == name:
                return schedule
        return ScheduleConfig(name)

    def policies(self) -> dict[str, RetentionPolicy]:
        return {s.name: s.retention for s in self.schedules}

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> BackupConfig:
        destinations = list(raw.get("destinations") or [])
        if not destinations:
            raise ValueError("the backup configuration needs at least one destination")
        for destination in destinations:
            destination_kind(destination)
        minimum = int(raw.get("minSuccessfulDestinations", 1))
        if not 1 <= minimum <= len(destinations):
            raise ValueError("minSuccessfulDestinations must be between 1 and the destinations")
        keyring = os.environ.get("RAGFLOW_BACKUP_KEYRING_FILE") or raw.get("keyringFile")
        if not keyring:
            raise ValueError("no keyring: set keyringFile or RAGFLOW_BACKUP_KEYRING_FILE")
        schedules = [
            ScheduleConfig(
                name=str(s["name"]),
                type=str(s.get("type", "full")),
                retention=RetentionPolicy.from_raw(s.get("retention")),
            )
            for s in raw.get("schedules") or []
        ]
        return cls(
            cluster=str(raw.get("cluster") or os.environ.get(environment.CLUSTER_NAME, "local")),
            destinations=destinations,
            keyring_file=str(keyring),
            min_successful=minimum,
            include={**DEFAULT_INCLUDE, **(raw.get("include") or {})},
            schedules=schedules,
            retry_backoff=tuple(float(x) for x in raw.get("retryBackoffSeconds", DEFAULT_BACKOFF)),
            destination_timeout=_positive(raw, "destinationTimeoutSeconds", DEFAULT_BUDGET_S),
            call_timeout=_positive(raw, "callTimeoutSeconds", DEFAULT_CALL_TIMEOUT_S),
        )

    @classmethod
    def load(cls, path: str | Path) -> BackupConfig:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ValueError(
                f"cannot read the backup configuration {path}: {exc.strerror}"
            ) from None
        raw = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        if not isinstance(raw, dict):
            raise ValueError(f"{path} does not hold a mapping")
        return cls.from_raw(raw)
