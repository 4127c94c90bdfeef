"""AlertPolicy model and builders: a small literal CR, then assertions on the manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from ragflow_operator import names
from ragflow_operator.builders import alert_routing, alerts, dashboard
from ragflow_operator.model.alert_policy import AlertPolicyModel
from ragflow_operator.model.defaults import crd_schema


def policy(spec: dict[str, Any] | None = None) -> AlertPolicyModel:
    return AlertPolicyModel.from_body(
        {
            "apiVersion": names.API_VERSION,
            "kind": names.KIND_ALERT_POLICY,
            "metadata": {"name": "prod", "namespace": "shop", "uid": "uid-1", "generation": 3},
            "spec": {"clusterRef": {"name": "docs"}, **(spec or {})},
        }
    )


def rules_by_name(model: AlertPolicyModel) -> dict[str, dict[str, Any]]:
    (group,) = alerts.build_rule_groups(model)["groups"]
    return {rule["alert"]: rule for rule in group["rules"]}


def test_defaults_come_from_the_crd() -> None:
    model = policy()
    assert model.rate_window == "5m"
    assert model.rules.high_query_latency.p95_seconds == 3
    assert model.rules.high_error_rate.ratio == 0.05
    assert model.rules.high_memory.ratio == 0.9
    assert model.rules.backup_stale.max_age == "26h"
    assert model.dashboard.labels == {"grafana_dashboard": "1"}
    assert not model.alertmanager.enabled


def test_latency_rule_uses_histogram_quantile_scoped_to_the_cluster() -> None:
    rule = rules_by_name(policy())["RagFlowHighQueryLatency"]
    assert rule["expr"].startswith("histogram_quantile(0.95, sum by (namespace, le) (rate(")
    assert "ragflow_query_latency_seconds_bucket" in rule["expr"]
    assert 'namespace="shop",service=~"docs-api|docs-worker"' in rule["expr"]
    assert "quantile=" not in rule["expr"]
    assert rule["expr"].endswith("> 3")
    assert rule["for"] == "5m"
    assert rule["labels"] == {"severity": "warning", "ragflow_cluster": "docs"}


def test_thresholds_durations_and_severities_follow_the_spec() -> None:
    model = policy(
        {
            "rateWindow": "2m",
            "rules": {
                "highQueryLatency": {"p95Seconds": 1.5, "for": "10m", "severity": "critical"},
                "highErrorRate": {"ratio": 0.2, "for": "1m"},
                "highMemory": {"enabled": False},
                "podCrashLooping": {"restarts": 7, "window": "30m"},
                "ingestionBacklog": {"depth": 500},
                "backupStale": {"maxAge": "2h"},
            },
        }
    )
    rules = rules_by_name(model)
    assert "RagFlowHighMemory" not in rules
    latency = rules["RagFlowHighQueryLatency"]
    assert latency["expr"].endswith("> 1.5") and "[2m]" in latency["expr"]
    assert latency["for"] == "10m" and latency["labels"]["severity"] == "critical"
    assert rules["RagFlowHighErrorRate"]["expr"].endswith("> 0.2")
    assert "[30m])) > 7" in rules["RagFlowPodCrashLooping"]["expr"]
    assert "> 500 and" in rules["RagFlowIngestionBacklogGrowing"]["expr"]
    assert "> 7200 unless on (namespace, cluster)" in rules["RagFlowBackupStale"]["expr"]
    assert rules["RagFlowBackupMissing"]["for"] == "2h"
    assert "for" not in rules["RagFlowBackupFailed"]  # 0s: fires at once


def test_every_builtin_expression_parses() -> None:
    assert alerts.validate_rule_groups(alerts.build_rule_groups(policy())) == []


def test_custom_rules_are_added_with_their_labels() -> None:
    model = policy(
        {
            "customRules": [
                {
                    "name": "SlowEmbedding",
                    "expr": "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m]))) > 1",
                    "for": "2m",
                    "labels": {"team": "search"},
                    "summary": "slow",
                }
            ]
        }
    )
    rule = rules_by_name(model)["SlowEmbedding"]
    assert rule["for"] == "2m"
    assert rule["labels"] == {"team": "search", "severity": "warning", "ragflow_cluster": "docs"}
    assert rule["annotations"]["summary"] == "slow"
    assert alerts.validate_rule_groups(alerts.build_rule_groups(model)) == []


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("sum(rate(ragflow_query_total[5m])", "unclosed left parenthesis"),
        (
            "rate(ragflow_query_total)",
            "expected type matrix in call to function 'rate', got vector",
        ),
    ],
)
def test_invalid_custom_expression_is_reported_with_the_parser_message(
    expr: str, message: str
) -> None:
    model = policy({"customRules": [{"name": "Broken", "expr": expr}]})
    problems = alerts.validate_rule_groups(alerts.build_rule_groups(model))
    assert problems == [f"rule Broken: expr: {message}"]
    # The parser really rejects it (not a message of ours).
    with pytest.raises(ValueError) as raised:
        promql_parser.parse(expr)
    assert str(raised.value) == message


def test_prometheus_rule_and_configmap_hold_the_same_rules() -> None:
    model = policy({"ruleLabels": {"release": "kube-prometheus-stack"}})
    groups = alerts.build_rule_groups(model)
    rule = alerts.build_rules_object(model, alerts.TARGET_PROMETHEUS_RULE)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["name"] == "prod-rules"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["labels"][names.LABEL_INSTANCE] == "prod"
    assert rule["metadata"]["ownerReferences"] == model.owner_references
    assert rule["spec"] == groups

    configmap = alerts.build_rules_object(model, alerts.TARGET_CONFIGMAP)
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert yaml.safe_load(configmap["data"]["prod-rules.rules.yaml"]) == groups


def test_dashboard_has_the_required_panels_and_valid_queries() -> None:
    model = policy({"dashboard": {"folder": "RAG"}})
    configmap = dashboard.build_dashboard_configmap(model)
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "RAG"}
    board = json.loads(configmap["data"]["prod-dashboard.json"])
    titles = {panel["title"] for panel in board["panels"]}
    for needed in (
        "Query latency (p50 / p95 / p99)",
        "Throughput",
        "Error ratio",
        "Memory",
        "CPU",
        "Ingestion backlog",
        "Cache hit ratio",
        "Backup freshness",
    ):
        assert needed in titles
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    assert any(e.startswith("histogram_quantile(0.99,") for e in exprs)
    for expr in exprs:
        promql_parser.parse(expr.replace(dashboard.RATE, "5m"))
        assert 'namespace="shop"' in expr
    assert board["uid"] == dashboard.dashboard_uid(model)


def test_routing_matches_the_cluster_and_routes_by_severity() -> None:
    secret = {"name": "pd", "key": "routing-key"}
    model = policy(
        {
            "alertmanager": {
                "enabled": True,
                "receivers": [
                    {
                        "name": "pager",
                        "severities": ["critical"],
                        "pagerduty": {"routingKeySecret": secret},
                    },
                    {"name": "hook", "webhook": {"urlSecret": {"name": "hook", "key": "url"}}},
                ],
            }
        }
    )
    config = alert_routing.build_routing(model)
    assert config["kind"] == "AlertmanagerConfig"
    route = config["spec"]["route"]
    assert route["matchers"] == [{"name": "ragflow_cluster", "matchType": "=", "value": "docs"}]
    assert route["receiver"] == "prod-unrouted"
    assert route["routes"][0]["matchers"] == [
        {"name": "severity", "matchType": "=~", "value": "critical"}
    ]
    assert "matchers" not in route["routes"][1]
    receivers = {r["name"]: r for r in config["spec"]["receivers"]}
    assert receivers["pager"]["pagerdutyConfigs"][0]["routingKey"] == secret
    assert receivers["prod-unrouted"] == {"name": "prod-unrouted"}


def _walk(schema: dict[str, Any], path: str) -> list[str]:
    missing = []
    for key, prop in schema.get("properties", {}).items():
        if "description" not in prop and path != "" and key not in {"apiVersion", "kind"}:
            missing.append(f"{path}.{key}")
        missing += _walk(prop, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        missing += _walk(schema["items"], f"{path}[]")
    return missing


def test_crd_fields_all_have_descriptions_for_kubectl_explain() -> None:
    schema = crd_schema(names.PLURAL_ALERT_POLICY)
    assert _walk(schema["properties"]["spec"], ".spec") == []
    assert _walk(schema["properties"]["status"], ".status") == []


def test_sample_alertpolicy_builds_valid_rules_and_routing() -> None:
    sample = Path(__file__).resolve().parents[3] / "samples" / "alertpolicy.yaml"
    body = yaml.safe_load(sample.read_text())
    body["metadata"]["namespace"] = "default"
    model = AlertPolicyModel.from_body(body)
    groups = alerts.build_rule_groups(model)
    assert alerts.validate_rule_groups(groups) == []
    assert alerts.count_rules(groups) == 12
    routing = alert_routing.build_routing(model)
    assert [r["name"] for r in routing["spec"]["receivers"]] == [
        "docs-alerts-unrouted",
        "pager",
        "chat",
    ]
