"""The BackupPolicy model: a frozen, typed view of a BackupPolicy custom resource.

`BackupPolicyModel.from_body(body)` is called by handlers/backup_policy.py, the cluster handler
(spec.restoreFrom) and tests; builders/backup.py reads the result. Defaults come from
crds/backuppolicies.yaml through model/defaults.py; the rules the schema's CEL cannot express
(a parseable cron expression that fires at least once) raise InvalidSpec here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from croniter import CroniterError, croniter

from ragflow_operator import names
from ragflow_operator.errors import InvalidSpec
from ragflow_operator.model.defaults import defaulted_body

Json = dict[str, Any]
PROVIDERS = ("s3", "gcs", "azure")


@dataclass(frozen=True)
class Schedule:
    name: str
    cron: str
    type: str
    suspend: bool
    retention: Json


@dataclass(frozen=True)
class Destination:
    name: str
    provider: str  # s3 | gcs | azure
    settings: Json  # the provider block without the credentials reference
    credentials_secret: str | None


@dataclass(frozen=True)
class ImageOverride:
    """`spec.image`: another runtime image for the backup Jobs ("" fields: the cluster's)."""

    repository: str
    tag: str


@dataclass(frozen=True)
class Validation:
    enabled: bool
    cron: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class BackupPolicyModel:
    name: str
    namespace: str
    uid: str
    generation: int
    annotations: dict[str, str]
    cluster: str
    image: ImageOverride
    schedules: tuple[Schedule, ...]
    include: Json
    destinations: tuple[Destination, ...]
    min_successful: int
    destination_timeout_seconds: int
    key_secret: str
    key_secret_key: str
    key_rotation_days: int
    validation: Validation
    suspend: bool
    starting_deadline_seconds: int
    active_deadline_seconds: int
    backoff_limit: int
    successful_history: int
    failed_history: int
    scratch_size_limit: str
    resources: Json

    @classmethod
    def from_body(cls, body: Json) -> BackupPolicyModel:
        body = defaulted_body({**body, "spec": body.get("spec") or {}}, names.PLURAL_BACKUP_POLICY)
        meta = body.get("metadata") or {}
        spec: Json = body.get("spec") or {}
        if not meta.get("name"):
            raise InvalidSpec("metadata.name is required")
        schedules = tuple(_schedule(s) for s in spec.get("schedules") or [])
        destinations = tuple(parse_destination(d) for d in spec.get("destinations") or [])
        if not schedules or not destinations:
            raise InvalidSpec("at least one schedule and one destination are required")
        minimum = int(spec["minSuccessfulDestinations"])
        if not 1 <= minimum <= len(destinations):
            raise InvalidSpec("minSuccessfulDestinations must be between 1 and the destinations")
        encryption = spec.get("encryption") or {}
        key_secret = encryption.get("keySecret") or {}
        if not key_secret.get("name"):
            raise InvalidSpec("spec.encryption.keySecret.name is required", reason="NoKeySecret")
        validation = spec["validation"]
        image = spec.get("image") or {}
        validation_cron = str(validation["schedule"])
        check_cron(validation_cron, "validation")
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace") or "default",
            uid=meta.get("uid") or "",
            generation=int(meta.get("generation") or 0),
            annotations=dict(meta.get("annotations") or {}),
            cluster=str((spec.get("clusterRef") or {}).get("name") or ""),
            image=ImageOverride(str(image.get("repository") or ""), str(image.get("tag") or "")),
            schedules=schedules,
            include=dict(spec.get("include") or {}),
            destinations=destinations,
            min_successful=minimum,
            destination_timeout_seconds=int(spec["destinationTimeoutSeconds"]),
            key_secret=str(key_secret["name"]),
            key_secret_key=str(key_secret["key"] or "keyring"),  # "" is the default key too
            key_rotation_days=int(encryption["keyRotationDays"]),
            validation=Validation(
                enabled=bool(validation["enabled"]),
                cron=validation_cron,
                # `tests: []` runs every test, as the default list does
                tests=tuple(validation["tests"] or ("integrity", "restore", "performance")),
            ),
            suspend=bool(spec["suspend"]),
            starting_deadline_seconds=int(spec["startingDeadlineSeconds"]),
            active_deadline_seconds=int(spec["activeDeadlineSeconds"]),
            backoff_limit=int(spec["backoffLimit"]),
            successful_history=int(spec["successfulJobsHistoryLimit"]),
            failed_history=int(spec["failedJobsHistoryLimit"]),
            scratch_size_limit=str(spec["scratchSizeLimit"]),
            resources=dict(spec.get("resources") or {}),
        )

    @property
    def backup_now(self) -> str:
        """Value of the on-demand annotation ('' when absent)."""
        return self.annotations.get(names.ANNOTATION_BACKUP_NOW, "").strip()

    def schedule(self, name: str) -> Schedule | None:
        return next((s for s in self.schedules if s.name == name), None)

    def referenced_secrets(self) -> list[tuple[str, str | None]]:
        """(secret, key) pairs the Jobs mount; key None means the whole Secret."""
        refs: list[tuple[str, str | None]] = [(self.key_secret, self.key_secret_key)]
        refs += [(d.credentials_secret, None) for d in self.destinations if d.credentials_secret]
        return refs


#: A fixed start for the "can it ever fire" check, so the result never depends on the clock.
_CRON_PROBE_START = datetime(2001, 1, 1, tzinfo=UTC)


def check_cron(expression: str, what: str) -> None:
    """Parseable, and fires at least once (`0 0 31 2 *`, Feb 31st, never does)."""
    if not croniter.is_valid(expression):
        raise InvalidSpec(f"{what}: {expression!r} is not a valid cron expression", "InvalidCron")
    try:
        croniter(expression, _CRON_PROBE_START).get_next(datetime)
    except CroniterError:
        raise InvalidSpec(
            f"{what}: {expression!r} never fires (no such date)", "InvalidCron"
        ) from None


def _schedule(raw: Json) -> Schedule:
    name, cron = str(raw.get("name") or ""), str(raw.get("schedule") or "")
    if not name:
        raise InvalidSpec("every schedule needs a name")
    check_cron(cron, f"schedule {name}")
    return Schedule(
        name=name,
        cron=cron,
        type=str(raw["type"]),
        suspend=bool(raw["suspend"]),
        retention=dict(raw.get("retention") or {}),
    )


def parse_destination(raw: Json) -> Destination:
    providers = [p for p in PROVIDERS if raw.get(p)]
    if len(providers) != 1:
        raise InvalidSpec(f"destination {raw.get('name')!r} needs exactly one of s3, gcs, azure")
    provider = providers[0]
    block = dict(raw[provider])
    secret = (block.pop("credentialsSecret", None) or {}).get("name")
    return Destination(str(raw["name"]), provider, block, secret)
