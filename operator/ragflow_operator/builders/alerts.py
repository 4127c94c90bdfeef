"""Alerting rules of an AlertPolicy: model -> Prometheus rule groups -> PrometheusRule/ConfigMap.

`build_rule_groups(model)` is a pure function returning the rules file content
(`{"groups": [...]}`); `build_rules_object` wraps the same groups into a PrometheusRule
(monitoring.coreos.com/v1) or, without that API, into a ConfigMap holding `<name>.rules.yaml`.
`validate_rule_groups` parses every expression and duration with a real PromQL parser (the
promql-parser package, Rust bindings of the parser GreptimeDB uses) so that an invalid custom rule
is reported with the parser's own message before anything reaches the cluster. Called by
handlers/alert_policy.py, the `render` command, and the promtool rule tests (tests/unit/alerts).

Series selection. The runtime's ServiceMonitor (builders/monitoring.py) scrapes the
`<cluster>-api` and `<cluster>-worker` Services, so their series carry `namespace` and `service`
target labels; cAdvisor and kube-state-metrics series are matched by namespace and by the pod
names of the two Deployments. Every api/worker pod reports the same database-wide ingest queue
depth per task state, hence `max` across pods before the states are summed. The operator's own
backup and standby metrics carry `namespace` and
`cluster` labels (its ServiceMonitor uses honorLabels so they are kept).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import promql_parser
import yaml

from ragflow_operator import names
from ragflow_operator.builders.common import object_meta
from ragflow_operator.builders.render import Manifest, render_manifest
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.alert_policy import AlertPolicyModel

TARGET_PROMETHEUS_RULE = "PrometheusRule"
TARGET_CONFIGMAP = "ConfigMap"

# Metric names: runtime (ragruntime/metrics.py), operator (ragflow_operator/metrics.py),
# cAdvisor (kubelet) and kube-state-metrics.
LATENCY_BUCKETS = "ragflow_query_latency_seconds_bucket"
QUERIES = "ragflow_query_total"
QUERY_ERROR_STATUS = "error"
INGEST_QUEUE_DEPTH = "ragflow_ingest_queue_depth"
BACKUP_LAST_SUCCESS = "ragflow_operator_backup_last_success_timestamp_seconds"
BACKUP_LAST_FAILURE = "ragflow_operator_backup_last_failure_timestamp_seconds"
WORKING_SET = "container_memory_working_set_bytes"
CONTAINER_LIMITS = "kube_pod_container_resource_limits"
RESTARTS = "kube_pod_container_status_restarts_total"
WAITING_REASON = "kube_pod_container_status_waiting_reason"
AUDIT_EVENTS = "ragflow_audit_events_total"
STANDBY_LAG = "ragflow_operator_standby_lag_seconds"
STANDBY_MAX_LAG = "ragflow_operator_standby_max_lag_seconds"
STANDBY_SYNC_FAILED = "ragflow_operator_standby_sync_failed"
#: Refused requests (unknown keys and role/scope denials) per second, summed over the API pods,
#: above which someone is guessing keys or a client lost its permissions (RagFlowAccessDenied).
DENIALS_PER_SECOND = 0.5
DENIALS_FOR = "5m"

#: Label every alert of a policy carries: Alertmanager routes and inhibitions match on it.
CLUSTER_LABEL = "ragflow_cluster"


def rules_target(capabilities: Capabilities) -> str:
    """Which kind holds the rules: a PrometheusRule when that API is served, else a ConfigMap."""
    return TARGET_PROMETHEUS_RULE if capabilities.prometheus_rule else TARGET_CONFIGMAP


def rules_object_name(model: AlertPolicyModel) -> str:
    return names.child_name(model.name, "rules")


def rules_file_key(model: AlertPolicyModel) -> str:
    """Key of the rules file inside the fallback ConfigMap."""
    return f"{rules_object_name(model)}.rules.yaml"


def runtime_matchers(model: AlertPolicyModel) -> str:
    """Label matchers selecting the runtime's own series (scraped through its Services)."""
    services = f"{names.api_name(model.cluster)}|{names.worker_name(model.cluster)}"
    return f'namespace="{model.namespace}",service=~"{services}"'


def pod_matchers(model: AlertPolicyModel) -> str:
    """Label matchers selecting the runtime pods in cAdvisor/kube-state-metrics series.

    Deployment pods are named `<deployment>-<template hash>-<suffix>`; the two dash-free
    segments keep a cluster named `docs` from matching the pods of a cluster named `docs-api`.
    """
    deployments = f"{names.api_name(model.cluster)}|{names.worker_name(model.cluster)}"
    return f'namespace="{model.namespace}",pod=~"({deployments})-[a-z0-9]+-[a-z0-9]+"'


def backup_matchers(model: AlertPolicyModel) -> str:
    """Label matchers selecting the operator's backup metrics of this cluster."""
    return f'namespace="{model.namespace}",cluster="{model.cluster}"'


def _number(value: float) -> str:
    """A PromQL number literal without a trailing `.0` (3.0 -> 3, 0.05 -> 0.05)."""
    return f"{value:g}"


_DURATION = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(duration: str) -> float:
    """Seconds in a Prometheus duration string (`26h` -> 93600, `1h30m` -> 5400, `0s` -> 0)."""
    if not _DURATION.match(duration):
        raise ValueError(f"not a valid duration string: {duration!r}")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(duration))


def _seconds(duration: str) -> int:
    return int(duration_seconds(duration))


def _rule(
    model: AlertPolicyModel,
    *,
    alert: str,
    expr: str,
    for_: str,
    severity: str,
    summary: str,
    description: str,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    labels = {**(extra_labels or {}), "severity": severity, CLUSTER_LABEL: model.cluster}
    rule: dict[str, Any] = {"alert": alert, "expr": expr}
    if _seconds(for_) > 0:
        rule["for"] = for_
    rule["labels"] = labels
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


class _Builtin(NamedTuple):
    """One row of the built-in rule table: a rule and whether the policy switched it on."""

    alert: str
    enabled: bool
    for_: str
    severity: str
    expr: str
    summary: str
    description: str


def _builtin_table(model: AlertPolicyModel) -> list[_Builtin]:
    """Every built-in rule, in the order of the rules file."""
    rules, window = model.rules, model.rate_window
    runtime, pods, backups = runtime_matchers(model), pod_matchers(model), backup_matchers(model)
    where = f"RagFlowCluster {model.namespace}/{model.cluster}"
    latency, errors, memory = rules.high_query_latency, rules.high_error_rate, rules.high_memory
    crash, backlog, stale, failed = (
        rules.pod_crash_looping,
        rules.ingestion_backlog,
        rules.backup_stale,
        rules.backup_failed,
    )
    p95 = _number(latency.p95_seconds)
    depth = f"{INGEST_QUEUE_DEPTH}{{{runtime}}}"
    refused = (
        f'{AUDIT_EVENTS}{{{runtime},category=~"authentication|authorization",'
        'outcome=~"failure|denied"}'
    )
    last_success = f"max by (namespace, cluster) ({BACKUP_LAST_SUCCESS}{{{backups}}})"
    last_failure = f"max by (namespace, cluster) ({BACKUP_LAST_FAILURE}{{{backups}}})"
    # A following standby does not back up (its BackupPolicy is suspended until promotion):
    # its standby gauges exist only while it follows, and silence the freshness alerts.
    not_standby = f" unless on (namespace, cluster) {STANDBY_MAX_LAG}{{{backups}}}"
    standby = rules.standby_lagging
    lag = f"max by (namespace, cluster) ({STANDBY_LAG}{{{backups}}})"
    max_lag = f"max by (namespace, cluster) ({STANDBY_MAX_LAG}{{{backups}}})"
    return [
        _Builtin(
            "RagFlowHighQueryLatency",
            latency.enabled,
            latency.for_,
            latency.severity,
            "histogram_quantile(0.95, sum by (namespace, le) "
            f"(rate({LATENCY_BUCKETS}{{{runtime}}}[{window}]))) > {p95}",
            f"p95 query latency of {where} is above {p95}s",
            "The 95th percentile of retrieval latency is {{ $value | humanizeDuration }} "
            f"(threshold {p95}s). Check the api pods' CPU, the vector store and the autoscaler.",
        ),
        _Builtin(
            "RagFlowHighErrorRate",
            errors.enabled,
            errors.for_,
            errors.severity,
            f'sum by (namespace) (rate({QUERIES}{{{runtime},status="{QUERY_ERROR_STATUS}"}}'
            f"[{window}])) / sum by (namespace) (rate({QUERIES}{{{runtime}}}[{window}]))"
            f" > {_number(errors.ratio)}",
            f"More than {_number(errors.ratio * 100)}% of queries to {where} fail",
            "{{ $value | humanizePercentage }} of queries failed over the last "
            f"{window}. Check the api logs and the database, vector store and cache.",
        ),
        _Builtin(
            "RagFlowHighMemory",
            memory.enabled,
            memory.for_,
            memory.severity,
            f'max by (namespace, pod, container) ({WORKING_SET}{{{pods},container!="",'
            f'container!="POD"}}) / on (namespace, pod, container) max by (namespace, pod, '
            f'container) ({CONTAINER_LIMITS}{{{pods},resource="memory"}}) '
            f"> {_number(memory.ratio)}",
            f"A runtime container of {where} is near its memory limit",
            "{{ $labels.pod }}/{{ $labels.container }} uses {{ $value | "
            "humanizePercentage }} of its memory limit; it will be OOM-killed at 100%.",
        ),
        _Builtin(
            "RagFlowPodCrashLooping",
            crash.enabled,
            crash.for_,
            crash.severity,
            f"max by (namespace, pod, container) (increase({RESTARTS}{{{pods}}}"
            f"[{crash.window}])) > {crash.restarts} or max by (namespace, pod, container) "
            f'({WAITING_REASON}{{{pods},reason="CrashLoopBackOff"}}) == 1',
            f"A runtime pod of {where} is crash-looping",
            "{{ $labels.pod }}/{{ $labels.container }} restarts repeatedly or "
            "waits in CrashLoopBackOff. Check `kubectl logs --previous` and the pod's events.",
        ),
        _Builtin(
            "RagFlowIngestionBacklogGrowing",
            backlog.enabled,
            backlog.for_,
            backlog.severity,
            f"sum by (namespace) (max by (namespace, state) ({depth}))"
            f" > {backlog.depth} and sum by (namespace) (max by (namespace, state) "
            f"(deriv({depth}[{window}]))) > 0",
            f"The ingestion backlog of {where} keeps growing",
            "{{ $value }} documents wait for parsing and embedding and the queue "
            "is growing: add workers or check the worker logs.",
        ),
        _Builtin(
            "RagFlowAccessDenied",
            True,
            DENIALS_FOR,
            "warning",
            f"sum by (namespace) (rate({refused}[{window}])) > {_number(DENIALS_PER_SECOND)}",
            f"A burst of refused API requests at {where}",
            "{{ $value | humanize }} requests per second fail authentication or are "
            "denied by role or dataset scope. Check the audit trail (category authentication/"
            "authorization) for the key ids and clients.",
        ),
        _Builtin(
            "RagFlowBackupStale",
            stale.enabled,
            "0s",
            stale.severity,
            f"time() - {last_success} > {_seconds(stale.max_age)}{not_standby}",
            f"The newest backup of {where} is older than {stale.max_age}",
            "The last successful backup finished {{ $value | humanizeDuration }} "
            "ago. Check the BackupPolicy status and its Jobs.",
        ),
        _Builtin(
            "RagFlowBackupMissing",
            stale.enabled,
            stale.max_age,
            stale.severity,
            f"absent({BACKUP_LAST_SUCCESS}{{{backups}}}){not_standby}",
            f"No successful backup of {where} is known for {stale.max_age}",
            "The operator reports no successful backup for this cluster: is there "
            "a BackupPolicy, and is the operator's metrics endpoint scraped?",
        ),
        _Builtin(
            "RagFlowBackupFailed",
            failed.enabled,
            failed.for_,
            failed.severity,
            f"{last_failure} > {last_success} or {last_failure} unless {last_success}",
            f"The latest backup of {where} failed",
            "The newest finished backup failed; the alert resolves with the next "
            "successful one. See the BackupPolicy status for the failing destination.",
        ),
        # Standby series exist only while the cluster is a standby: a primary never matches.
        _Builtin(
            "RagFlowStandbyLagging",
            standby.enabled,
            standby.for_,
            standby.severity,
            f"{lag} > {max_lag}",
            f"Standby {where} is behind its primary by more than maxLagSeconds",
            "The backup this standby serves is {{ $value | humanizeDuration }} old: "
            "a failover now loses that much. Check the primary's BackupPolicy and the standby's "
            "status.standby (skipped backups, sync errors).",
        ),
        _Builtin(
            "RagFlowStandbySyncFailing",
            standby.enabled,
            standby.for_,
            standby.severity,
            f"max by (namespace, cluster) ({STANDBY_SYNC_FAILED}{{{backups}}}) == 1",
            f"Standby {where} cannot sync from its primary's backups",
            "The newest sync Job failed (unreachable destination, missing key, no "
            "readable backup); the standby keeps serving its last good backup. See "
            "status.standby.lastError and the StandbyReady condition.",
        ),
    ]


def _builtin_rules(model: AlertPolicyModel) -> list[dict[str, Any]]:
    return [
        _rule(
            model,
            alert=row.alert,
            expr=row.expr,
            for_=row.for_,
            severity=row.severity,
            summary=row.summary,
            description=row.description,
        )
        for row in _builtin_table(model)
        if row.enabled
    ]


def _custom_rules(model: AlertPolicyModel) -> list[dict[str, Any]]:
    return [
        _rule(
            model,
            alert=rule.name,
            expr=rule.expr,
            for_=rule.for_,
            severity=rule.severity,
            summary=rule.summary or rule.name,
            description=rule.description,
            extra_labels=rule.labels,
        )
        for rule in model.custom_rules
    ]


def build_rule_groups(model: AlertPolicyModel) -> dict[str, Any]:
    """The rules file of the policy: one group of built-in and custom alerting rules."""
    group: dict[str, Any] = {"name": f"ragflow.{model.namespace}.{model.name}"}
    if model.evaluation_interval:
        group["interval"] = model.evaluation_interval
    group["rules"] = _builtin_rules(model) + _custom_rules(model)
    return {"groups": [group]}


def count_rules(groups: dict[str, Any]) -> int:
    return sum(len(group["rules"]) for group in groups["groups"])


def validate_rule_groups(groups: dict[str, Any]) -> list[str]:
    """Problems found by parsing every rule's expression and `for`; empty when all are valid.

    Each problem names the rule and quotes the parser's message, e.g.
    `rule HighQueueWait: expr: unclosed left parenthesis`; annotation templates must close every
    `{{` (an unterminated action makes Prometheus reject the whole rule file).
    """
    problems: list[str] = []
    for group in groups["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record", "?")
            try:
                promql_parser.parse(rule["expr"])
            except ValueError as err:
                problems.append(f"rule {name}: expr: {err}")
            if "for" in rule:
                try:
                    duration_seconds(rule["for"])
                except ValueError as err:
                    problems.append(f"rule {name}: for: {err}")
            for key, text in sorted((rule.get("annotations") or {}).items()):
                problem = template_problem(str(text))
                if problem:
                    problems.append(f"rule {name}: {key}: {problem}")
    return problems


def template_problem(text: str) -> str:
    """Why a Prometheus annotation template cannot render ('' when every `{{` is closed)."""
    start = text.find("{{")
    while start >= 0:
        end = text.find("}}", start + 2)
        if end < 0:
            return f"template action opened at character {start} is not closed with '}}}}'"
        start = text.find("{{", end + 2)
    return ""


def common_labels(model: AlertPolicyModel) -> dict[str, str]:
    """Our label set for the policy's children (instance = the AlertPolicy, their owner)."""
    return names.component_labels(model.name, names.COMPONENT_ALERTS)


def build_rules_object(model: AlertPolicyModel, target: str) -> Manifest:
    """The policy's rules as a PrometheusRule (target PrometheusRule) or a ConfigMap."""
    groups = build_rule_groups(model)
    labels = {**model.rule_labels, **common_labels(model)}
    meta = object_meta(
        name=rules_object_name(model),
        namespace=model.namespace,
        labels=labels,
        owner_references=model.owner_references,
    )
    if target == TARGET_PROMETHEUS_RULE:
        return render_manifest("prometheusrule.yaml.j2", meta=meta, groups=groups["groups"])
    if target == TARGET_CONFIGMAP:
        return render_manifest(
            "rules-configmap.yaml.j2",
            meta=meta,
            key=rules_file_key(model),
            rules_file=yaml.safe_dump(groups, sort_keys=False, width=1000),
        )
    raise ValueError(f"unknown rules target {target!r}")
