"""The AlertPolicy model: a frozen, typed view of an AlertPolicy custom resource.

`AlertPolicyModel.from_body(body)` is called by handlers/alert_policy.py and by the `render`
command; builders/alerts.py and builders/dashboard.py read the result. Defaults are not
re-invented here: model/defaults.py fills the body from the defaults that crds/alertpolicies.yaml
declares (as the API server does), so a literal CR in a unit test and a CR read from the cluster
give the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragflow_operator import names
from ragflow_operator.model.cluster import SecretKeyRef
from ragflow_operator.model.defaults import defaulted_body


@dataclass(frozen=True)
class LatencyRule:
    enabled: bool
    p95_seconds: float
    for_: str
    severity: str


@dataclass(frozen=True)
class RatioRule:
    """A rule with a ratio threshold in (0, 1]: error ratio or memory-to-limit ratio."""

    enabled: bool
    ratio: float
    for_: str
    severity: str


@dataclass(frozen=True)
class BackupStaleRule:
    enabled: bool
    max_age: str
    severity: str


@dataclass(frozen=True)
class BackupFailedRule:
    enabled: bool
    for_: str
    severity: str


@dataclass(frozen=True)
class CrashLoopRule:
    enabled: bool
    restarts: int
    window: str
    for_: str
    severity: str


@dataclass(frozen=True)
class BacklogRule:
    enabled: bool
    depth: int
    for_: str
    severity: str


@dataclass(frozen=True)
class BuiltinRules:
    high_query_latency: LatencyRule
    high_error_rate: RatioRule
    high_memory: RatioRule
    backup_stale: BackupStaleRule
    backup_failed: BackupFailedRule
    pod_crash_looping: CrashLoopRule
    ingestion_backlog: BacklogRule
    #: RagFlowStandbyLagging and RagFlowStandbySyncFailing (a standby cluster only).
    standby_lagging: BackupFailedRule


@dataclass(frozen=True)
class CustomRule:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DashboardSpec:
    enabled: bool
    labels: dict[str, str]
    folder: str


@dataclass(frozen=True)
class Receiver:
    """One Alertmanager receiver; exactly one of webhook/slack/pagerduty is set (CRD CEL)."""

    name: str
    severities: tuple[str, ...]
    webhook_url: SecretKeyRef | None = None
    slack_api_url: SecretKeyRef | None = None
    slack_channel: str = ""
    pagerduty_routing_key: SecretKeyRef | None = None


@dataclass(frozen=True)
class AlertmanagerSpec:
    enabled: bool
    group_by: tuple[str, ...]
    group_wait: str
    group_interval: str
    repeat_interval: str
    receivers: tuple[Receiver, ...]


@dataclass(frozen=True)
class AlertPolicyModel:
    name: str
    namespace: str
    uid: str
    generation: int
    cluster: str
    rule_labels: dict[str, str]
    rate_window: str
    evaluation_interval: str
    rules: BuiltinRules
    custom_rules: tuple[CustomRule, ...]
    dashboard: DashboardSpec
    alertmanager: AlertmanagerSpec

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> AlertPolicyModel:
        """Parse an AlertPolicy body (dict as read from the API or a YAML file)."""
        body = defaulted_body(body, names.PLURAL_ALERT_POLICY)
        meta = body.get("metadata", {})
        spec = body["spec"]
        rules = spec["rules"]
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace", "default"),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation", 0)),
            cluster=spec["clusterRef"]["name"],
            rule_labels=dict(spec.get("ruleLabels", {})),
            rate_window=spec["rateWindow"],
            evaluation_interval=spec.get("evaluationInterval", ""),
            rules=_builtin_rules(rules),
            custom_rules=tuple(_custom_rule(raw) for raw in spec.get("customRules", [])),
            dashboard=DashboardSpec(
                enabled=spec["dashboard"]["enabled"],
                labels=dict(spec["dashboard"]["labels"]),
                folder=spec["dashboard"].get("folder", ""),
            ),
            alertmanager=_alertmanager(spec["alertmanager"]),
        )

    @property
    def owner_references(self) -> list[dict[str, Any]]:
        """The controller ownerReference children carry; none for a body without a uid
        (`render` of a file), so the output stays stable."""
        if not self.uid:
            return []
        return [
            {
                "apiVersion": names.API_VERSION,
                "kind": names.KIND_ALERT_POLICY,
                "name": self.name,
                "uid": self.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def _builtin_rules(rules: dict[str, Any]) -> BuiltinRules:
    latency = rules["highQueryLatency"]
    errors = rules["highErrorRate"]
    memory = rules["highMemory"]
    stale = rules["backupStale"]
    failed = rules["backupFailed"]
    crash = rules["podCrashLooping"]
    backlog = rules["ingestionBacklog"]
    standby = rules["standbyLagging"]
    return BuiltinRules(
        high_query_latency=LatencyRule(
            latency["enabled"], float(latency["p95Seconds"]), latency["for"], latency["severity"]
        ),
        high_error_rate=RatioRule(
            errors["enabled"], float(errors["ratio"]), errors["for"], errors["severity"]
        ),
        high_memory=RatioRule(
            memory["enabled"], float(memory["ratio"]), memory["for"], memory["severity"]
        ),
        backup_stale=BackupStaleRule(stale["enabled"], stale["maxAge"], stale["severity"]),
        backup_failed=BackupFailedRule(failed["enabled"], failed["for"], failed["severity"]),
        pod_crash_looping=CrashLoopRule(
            crash["enabled"],
            int(crash["restarts"]),
            crash["window"],
            crash["for"],
            crash["severity"],
        ),
        ingestion_backlog=BacklogRule(
            backlog["enabled"], int(backlog["depth"]), backlog["for"], backlog["severity"]
        ),
        standby_lagging=BackupFailedRule(standby["enabled"], standby["for"], standby["severity"]),
    )


def _custom_rule(raw: dict[str, Any]) -> CustomRule:
    return CustomRule(
        name=raw["name"],
        expr=raw["expr"],
        for_=raw["for"],
        severity=raw["severity"],
        summary=raw.get("summary", ""),
        description=raw.get("description", ""),
        labels=dict(raw.get("labels", {})),
    )


def _secret_ref(raw: dict[str, Any] | None) -> SecretKeyRef | None:
    return SecretKeyRef(raw["name"], raw["key"]) if raw else None


def _alertmanager(raw: dict[str, Any]) -> AlertmanagerSpec:
    receivers = tuple(
        Receiver(
            name=item["name"],
            severities=tuple(item.get("severities", [])),
            webhook_url=_secret_ref(item.get("webhook", {}).get("urlSecret")),
            slack_api_url=_secret_ref(item.get("slack", {}).get("apiURLSecret")),
            slack_channel=item.get("slack", {}).get("channel", ""),
            pagerduty_routing_key=_secret_ref(item.get("pagerduty", {}).get("routingKeySecret")),
        )
        for item in raw.get("receivers", [])
    )
    return AlertmanagerSpec(
        enabled=raw["enabled"],
        group_by=tuple(raw["groupBy"]),
        group_wait=raw["groupWait"],
        group_interval=raw["groupInterval"],
        repeat_interval=raw["repeatInterval"],
        receivers=receivers,
    )
