"""`RagFlowCluster.spec.standby`: the typed view of a standby's source and sync settings.

`standby_of(model)` is called by handlers/cluster.py (and its standby helpers),
handlers/backup_policy.py (a standby's BackupPolicy is suspended) and builders/standby.py.
The destinations and the keyring reference have the same shape as a BackupPolicy's and are
parsed by the same functions (model/backup_policy.py), so a standby reads exactly what the
primary's policy writes. A section with `enabled: false` is a promoted cluster: no standby.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ragflow_operator.errors import InvalidSpec
from ragflow_operator.model.backup_policy import Destination, check_cron, parse_destination
from ragflow_operator.model.cluster import ClusterModel

Json = dict[str, Any]

DEFAULT_SCHEDULE = "* * * * *"
DEFAULT_MAX_LAG_SECONDS = 900


@dataclass(frozen=True)
class StandbyModel:
    """What the sync CronJob and the standby status need."""

    #: The primary cluster whose backups are followed (backups live under its name).
    source_cluster: str
    destinations: tuple[Destination, ...]
    key_secret: str
    key_secret_key: str
    schedule: str
    max_lag_seconds: int
    resources: Json

    def referenced_secrets(self) -> list[tuple[str, str | None]]:
        """(secret, key) pairs the sync Job mounts; key None means the whole Secret."""
        refs: list[tuple[str, str | None]] = [(self.key_secret, self.key_secret_key)]
        refs += [(d.credentials_secret, None) for d in self.destinations if d.credentials_secret]
        return refs


def is_standby(spec: Mapping[str, Any]) -> bool:
    """True while `spec.standby` is present and enabled (the CRD defaults enabled to true)."""
    section = spec.get("standby")
    return isinstance(section, Mapping) and bool(section.get("enabled", True))


def standby_of(model: ClusterModel) -> StandbyModel | None:
    """The standby settings of a cluster, or None for a primary (or a promoted standby)."""
    if not is_standby(model.spec):
        return None
    section = model.section("standby")
    source = section.get("source") or {}
    cluster = str(source.get("cluster") or "")
    if not cluster:
        raise InvalidSpec("spec.standby.source.cluster is required", reason="InvalidStandby")
    if cluster == model.name:
        raise InvalidSpec(
            "spec.standby.source.cluster names this cluster itself: a standby follows another one",
            reason="InvalidStandby",
        )
    destinations = tuple(parse_destination(d) for d in source.get("destinations") or [])
    if not destinations:
        raise InvalidSpec("spec.standby.source needs a destination", reason="InvalidStandby")
    key_secret = ((source.get("encryption") or {}).get("keySecret")) or {}
    if not key_secret.get("name"):
        raise InvalidSpec(
            "spec.standby.source.encryption.keySecret.name is required", reason="NoKeySecret"
        )
    schedule = str(section.get("schedule") or DEFAULT_SCHEDULE)
    check_cron(schedule, "spec.standby.schedule")
    return StandbyModel(
        source_cluster=cluster,
        destinations=destinations,
        key_secret=str(key_secret["name"]),
        key_secret_key=str(key_secret.get("key") or "keyring"),
        schedule=schedule,
        max_lag_seconds=int(section.get("maxLagSeconds", DEFAULT_MAX_LAG_SECONDS)),
        resources=dict(section.get("resources") or {}),
    )
