"""`RagFlowCluster.spec.standby`: the typed view of a standby's source and sync settings.

`parse_standby` is called by `ClusterModel.from_body` (model/cluster.py), which holds the
result as `ClusterModel.standby`; handlers/cluster.py (and its standby helpers),
handlers/backup_policy.py (a standby's BackupPolicy is suspended) and builders/standby.py read
it there. The destinations and the keyring reference have the same shape as a BackupPolicy's
and are parsed by the same functions (model/backup_policy.py), so a standby reads exactly what
the primary's policy writes. A section with `enabled: false` is a promoted cluster: no standby.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ragflow_operator.errors import InvalidSpec
from ragflow_operator.model.backup_policy import Destination, check_cron, parse_destination

Json = dict[str, Any]

#: The CRD's default, also used for an empty `schedule: ""`.
DEFAULT_SCHEDULE = "* * * * *"


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


def parse_standby(section: Mapping[str, Any] | None, cluster: str) -> StandbyModel | None:
    """`spec.standby` of cluster `cluster` (defaulted), None for a primary or a promoted standby.

    Raises InvalidSpec for what the schema cannot check (the CRD's CEL covers the rest on a
    live cluster; `render` of a file relies on these checks).
    """
    if not section or not section["enabled"]:
        return None
    source = section.get("source") or {}
    source_cluster = str(source.get("cluster") or "")
    if not source_cluster:
        raise InvalidSpec("spec.standby.source.cluster is required", reason="InvalidStandby")
    if source_cluster == cluster:
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
    schedule = str(section["schedule"] or DEFAULT_SCHEDULE)
    check_cron(schedule, "spec.standby.schedule")
    return StandbyModel(
        source_cluster=source_cluster,
        destinations=destinations,
        key_secret=str(key_secret["name"]),
        key_secret_key=str(key_secret["key"] or "keyring"),  # "" is the default key too
        schedule=schedule,
        max_lag_seconds=int(section["maxLagSeconds"]),
        resources=dict(section.get("resources") or {}),
    )
