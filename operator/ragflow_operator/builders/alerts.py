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
from typing import Any

import promql_parser
import yaml

from ragflow_operator import names
from ragflow_operator.builders.render import Manifest, render_manifest
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


def _builtin_rules(model: AlertPolicyModel) -> list[dict[str, Any]]:
    rules = model.rules
    window = model.rate_window
    runtime = runtime_matchers(model)
    pods = pod_matchers(model)
    backups = backup_matchers(model)
    where = f"RagFlowCluster {model.namespace}/{model.cluster}"
    result: list[dict[str, Any]] = []

    latency = rules.high_query_latency
    p95 = _number(latency.p95_seconds)
    if latency.enabled:
        result.append(
            _rule(
                model,
                alert="RagFlowHighQueryLatency",
                for_=latency.for_,
                severity=latency.severity,
                expr=(
                    "histogram_quantile(0.95, sum by (namespace, le) "
                    f"(rate({LATENCY_BUCKETS}{{{runtime}}}[{window}]))) > {p95}"
                ),
                summary=f"p95 query latency of {where} is above {p95}s",
                description="The 95th percentile of retrieval latency is "
                "{{ $value | humanizeDuration }} (threshold " + p95 + "s). Check the api pods' CPU,"
                " the vector store and the autoscaler.",
            )
        )
    errors = rules.high_error_rate
    if errors.enabled:
        result.append(
            _rule(
                model,
                alert="RagFlowHighErrorRate",
                for_=errors.for_,
                severity=errors.severity,
                expr=(
                    f'sum by (namespace) (rate({QUERIES}{{{runtime},status="{QUERY_ERROR_STATUS}"}}'
                    f"[{window}])) / sum by (namespace) (rate({QUERIES}{{{runtime}}}[{window}]))"
                    f" > {_number(errors.ratio)}"
                ),
                summary=f"More than {_number(errors.ratio * 100)}% of queries to {where} fail",
                description="{{ $value | humanizePercentage }} of queries failed over the last "
                f"{window}. Check the api logs and the database, vector store and cache.",
            )
        )
    memory = rules.high_memory
    if memory.enabled:
        result.append(
            _rule(
                model,
                alert="RagFlowHighMemory",
                for_=memory.for_,
                severity=memory.severity,
                expr=(
                    f'max by (namespace, pod, container) ({WORKING_SET}{{{pods},container!="",'
                    f'container!="POD"}}) / on (namespace, pod, container) max by (namespace, pod, '
                    f'container) ({CONTAINER_LIMITS}{{{pods},resource="memory"}}) '
                    f"> {_number(memory.ratio)}"
                ),
                summary=f"A runtime container of {where} is near its memory limit",
                description="{{ $labels.pod }}/{{ $labels.container }} uses {{ $value | "
                "humanizePercentage }} of its memory limit; it will be OOM-killed at 100%.",
            )
        )
    crash = rules.pod_crash_looping
    if crash.enabled:
        result.append(
            _rule(
                model,
                alert="RagFlowPodCrashLooping",
                for_=crash.for_,
                severity=crash.severity,
                expr=(
                    f"max by (namespace, pod, container) (increase({RESTARTS}{{{pods}}}"
                    f"[{crash.window}])) > {crash.restarts} or max by (namespace, pod, container) "
                    f'({WAITING_REASON}{{{pods},reason="CrashLoopBackOff"}}) == 1'
                ),
                summary=f"A runtime pod of {where} is crash-looping",
                description="{{ $labels.pod }}/{{ $labels.container }} restarts repeatedly or "
                "waits in CrashLoopBackOff. Check `kubectl logs --previous` and the pod's events.",
            )
        )
    backlog = rules.ingestion_backlog
    depth = f"{INGEST_QUEUE_DEPTH}{{{runtime}}}"
    if backlog.enabled:
        result.append(
            _rule(
                model,
                alert="RagFlowIngestionBacklogGrowing",
                for_=backlog.for_,
                severity=backlog.severity,
                expr=(
                    f"sum by (namespace) (max by (namespace, state) ({depth}))"
                    f" > {backlog.depth} and sum by (namespace) (max by (namespace, state) "
                    f"(deriv({depth}[{window}]))) > 0"
                ),
                summary=f"The ingestion backlog of {where} keeps growing",
                description="{{ $value }} documents wait for parsing and embedding and the queue "
                "is growing: add workers or check the worker logs.",
            )
        )
    refused = (
        f'{AUDIT_EVENTS}{{{runtime},category=~"authentication|authorization",'
        'outcome=~"failure|denied"}'
    )
    result.append(
        _rule(
            model,
            alert="RagFlowAccessDenied",
            for_=DENIALS_FOR,
            severity="warning",
            expr=f"sum by (namespace) (rate({refused}[{window}])) > {_number(DENIALS_PER_SECOND)}",
            summary=f"A burst of refused API requests at {where}",
            description="{{ $value | humanize }} requests per second fail authentication or are "
            "denied by role or dataset scope. Check the audit trail (category authentication/"
            "authorization) for the key ids and clients.",
        )
    )
    stale = rules.backup_stale
    # A following standby does not back up (its BackupPolicy is suspended until promotion):
    # its standby gauges exist only while it follows, and silence the freshness alerts.
    not_standby = f" unless on (namespace, cluster) {STANDBY_MAX_LAG}{{{backups}}}"
    if stale.enabled:
        max_age = _seconds(stale.max_age)
        result.append(
            _rule(
                model,
                alert="RagFlowBackupStale",
                for_="0s",
                severity=stale.severity,
                expr=(
                    f"time() - max by (namespace, cluster) ({BACKUP_LAST_SUCCESS}{{{backups}}})"
                    f" > {max_age}{not_standby}"
                ),
                summary=f"The newest backup of {where} is older than {stale.max_age}",
                description="The last successful backup finished {{ $value | humanizeDuration }} "
                "ago. Check the BackupPolicy status and its Jobs.",
            )
        )
        result.append(
            _rule(
                model,
                alert="RagFlowBackupMissing",
                for_=stale.max_age,
                severity=stale.severity,
                expr=f"absent({BACKUP_LAST_SUCCESS}{{{backups}}}){not_standby}",
                summary=f"No successful backup of {where} is known for {stale.max_age}",
                description="The operator reports no successful backup for this cluster: is there "
                "a BackupPolicy, and is the operator's metrics endpoint scraped?",
            )
        )
    failed = rules.backup_failed
    if failed.enabled:
        last_failure = f"max by (namespace, cluster) ({BACKUP_LAST_FAILURE}{{{backups}}})"
        last_success = f"max by (namespace, cluster) ({BACKUP_LAST_SUCCESS}{{{backups}}})"
        result.append(
            _rule(
                model,
                alert="RagFlowBackupFailed",
                for_=failed.for_,
                severity=failed.severity,
                expr=f"{last_failure} > {last_success} or {last_failure} unless {last_success}",
                summary=f"The latest backup of {where} failed",
                description="The newest finished backup failed; the alert resolves with the next "
                "successful one. See the BackupPolicy status for the failing destination.",
            )
        )
    result += _standby_rules(model, where)
    return result


def _standby_rules(model: AlertPolicyModel, where: str) -> list[dict[str, Any]]:
    """A standby falling behind its primary, or failing to sync (series exist only while the
    cluster is a standby, so a primary never matches)."""
    rule = model.rules.standby_lagging
    if not rule.enabled:
        return []
    series = backup_matchers(model)
    lag = f"max by (namespace, cluster) ({STANDBY_LAG}{{{series}}})"
    limit = f"max by (namespace, cluster) ({STANDBY_MAX_LAG}{{{series}}})"
    return [
        _rule(
            model,
            alert="RagFlowStandbyLagging",
            for_=rule.for_,
            severity=rule.severity,
            expr=f"{lag} > {limit}",
            summary=f"Standby {where} is behind its primary by more than maxLagSeconds",
            description="The backup this standby serves is {{ $value | humanizeDuration }} old: "
            "a failover now loses that much. Check the primary's BackupPolicy and the standby's "
            "status.standby (skipped backups, sync errors).",
        ),
        _rule(
            model,
            alert="RagFlowStandbySyncFailing",
            for_=rule.for_,
            severity=rule.severity,
            expr=f"max by (namespace, cluster) ({STANDBY_SYNC_FAILED}{{{series}}}) == 1",
            summary=f"Standby {where} cannot sync from its primary's backups",
            description="The newest sync Job failed (unreachable destination, missing key, no "
            "readable backup); the standby keeps serving its last good backup. See "
            "status.standby.lastError and the StandbyReady condition.",
        ),
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
    context = {
        "name": rules_object_name(model),
        "namespace": model.namespace,
        "labels": labels,
        "owners": model.owner_references,
    }
    if target == TARGET_PROMETHEUS_RULE:
        return render_manifest("prometheusrule.yaml.j2", groups=groups["groups"], **context)
    if target == TARGET_CONFIGMAP:
        return render_manifest(
            "rules-configmap.yaml.j2",
            key=rules_file_key(model),
            rules_file=yaml.safe_dump(groups, sort_keys=False, width=1000),
            **context,
        )
    raise ValueError(f"unknown rules target {target!r}")
