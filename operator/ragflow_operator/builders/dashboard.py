"""Grafana dashboard of an AlertPolicy's RagFlowCluster, as a ConfigMap for the Grafana sidecar.

`build_dashboard(model)` returns the dashboard JSON model (a dict): query latency p50/p95/p99,
throughput, error ratio, memory and CPU, ingestion backlog, cache hit ratio, backup freshness
(and a standby's lag) and the policy's firing alerts. Every query is scoped to the cluster with
the same label matchers as the alerting rules (builders/alerts.py). `build_dashboard_configmap`
wraps it into a ConfigMap carrying the sidecar's label (spec.dashboard.labels, default
`grafana_dashboard: "1"`). Called by handlers/alert_policy.py and the `render` command; the
PromQL of every panel is parsed in tests/unit/alerts.
"""

from __future__ import annotations

import json
from typing import Any

from ragflow_operator import names
from ragflow_operator.builders import alerts
from ragflow_operator.builders.common import object_meta
from ragflow_operator.builders.render import Manifest, render_manifest
from ragflow_operator.model.alert_policy import AlertPolicyModel

#: Grafana's own range for rate(): at least four scrape intervals of the data source.
RATE = "$__rate_interval"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PANEL_WIDTH = 12
PANEL_HEIGHT = 8
FOLDER_ANNOTATION = "grafana_folder"


def dashboard_name(model: AlertPolicyModel) -> str:
    return names.child_name(model.name, "dashboard")


def dashboard_uid(model: AlertPolicyModel) -> str:
    """Stable uid (Grafana allows 40 characters): the same policy keeps the same URL."""
    return f"ragflow-{model.namespace}-{model.name}"[:40]


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}


def _panel(
    title: str,
    targets: list[tuple[str, str]],
    unit: str,
    *,
    kind: str = "timeseries",
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
) -> dict[str, Any]:
    steps = [{"value": value, "color": color} for value, color in thresholds or [(None, "green")]]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            _target(expr, legend, chr(ord("A") + index))
            for index, (expr, legend) in enumerate(targets)
        ],
    }


Panel = dict[str, Any]


def _query_panels(model: AlertPolicyModel, runtime: str) -> list[Panel]:
    """Latency quantiles, throughput and error ratio, with the alerting rules' thresholds."""
    buckets = f"rate({alerts.LATENCY_BUCKETS}{{{runtime}}}[{RATE}])"
    queries = f"{alerts.QUERIES}{{{runtime}}}"
    errors = f'{alerts.QUERIES}{{{runtime},status="{alerts.QUERY_ERROR_STATUS}"}}'
    latency = [
        (f"histogram_quantile({q}, sum by (le) ({buckets}))", f"p{round(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    ]
    return [
        _panel(
            "Query latency (p50 / p95 / p99)",
            latency,
            "s",
            description="From the ragflow_query_latency_seconds histogram of all api pods.",
            thresholds=[(None, "green"), (model.rules.high_query_latency.p95_seconds, "red")],
        ),
        _panel(
            "Throughput",
            [(f"sum by (status) (rate({queries}[{RATE}]))", "{{status}}")],
            "reqps",
            description="Queries per second by status.",
        ),
        _panel(
            "Error ratio",
            [(f"sum(rate({errors}[{RATE}])) / sum(rate({queries}[{RATE}]))", "errors")],
            "percentunit",
            thresholds=[(None, "green"), (model.rules.high_error_rate.ratio, "red")],
        ),
    ]


def _resource_panels(runtime: str, pods: str) -> list[Panel]:
    """Memory (as the runtime and the kubelet see it, and the limit) and CPU."""
    containers = f'{pods},container!="",container!="POD"'
    memory = [
        (f"sum by (pod) (ragflow_memory_usage_bytes{{{runtime}}})", "{{pod}} (runtime)"),
        (f"sum by (pod) ({alerts.WORKING_SET}{{{containers}}})", "{{pod}} (working set)"),
        (
            f'sum by (pod) ({alerts.CONTAINER_LIMITS}{{{pods},resource="memory"}})',
            "{{pod}} (limit)",
        ),
    ]
    return [
        _panel("Memory", memory, "bytes"),
        _panel("CPU", [(f"ragflow_cpu_usage_percent{{{runtime}}}", "{{pod}}")], "percent"),
    ]


def _ingestion_panel(runtime: str) -> Panel:
    processed = f"sum(rate(ragflow_documents_processed_total{{{runtime}}}[{RATE}])) * 60"
    return _panel(
        "Ingestion backlog",
        [
            (f"max by (state) ({alerts.INGEST_QUEUE_DEPTH}{{{runtime}}})", "{{state}}"),
            (processed, "documents processed / min"),
        ],
        "short",
    )


def _cache_panel(runtime: str) -> Panel:
    cache = f"ragflow_cache_requests_total{{{runtime}}}"
    hits = f'ragflow_cache_requests_total{{{runtime},result="hit"}}'
    ratio = f"sum by (layer) (rate({hits}[{RATE}])) / sum by (layer) (rate({cache}[{RATE}]))"
    return _panel("Cache hit ratio", [(ratio, "{{layer}}")], "percentunit")


def _backup_panel(model: AlertPolicyModel) -> Panel:
    backups = alerts.backup_matchers(model)
    newest = f"max by (policy) ({alerts.BACKUP_LAST_SUCCESS}{{{backups}}})"
    return _panel(
        "Backup freshness",
        [
            (f"time() - {newest}", "{{policy}}"),
            (f"max({alerts.STANDBY_LAG}{{{backups}}})", "standby lag"),
        ],
        "s",
        kind="stat",
        description="Age of the newest successful backup, per BackupPolicy; for a standby "
        "cluster, the age of the backup it serves (its RPO).",
        thresholds=[
            (None, "green"),
            (alerts.duration_seconds(model.rules.backup_stale.max_age), "red"),
        ],
    )


def _alerts_panel(model: AlertPolicyModel) -> Panel:
    firing = (
        f'ALERTS{{{alerts.CLUSTER_LABEL}="{model.cluster}",'
        f'namespace="{model.namespace}",alertstate="firing"}}'
    )
    return _panel(
        "Firing alerts", [(firing, "{{alertname}} ({{severity}})")], "short", kind="table"
    )


def _panels(model: AlertPolicyModel) -> list[Panel]:
    runtime = alerts.runtime_matchers(model)
    connections = f"sum(ragflow_active_connections{{{runtime}}})"
    return [
        *_query_panels(model, runtime),
        *_resource_panels(runtime, alerts.pod_matchers(model)),
        _ingestion_panel(runtime),
        _cache_panel(runtime),
        _backup_panel(model),
        _panel("Active connections", [(connections, "connections")], "short"),
        _alerts_panel(model),
    ]


def build_dashboard(model: AlertPolicyModel) -> dict[str, Any]:
    """The Grafana dashboard JSON model for the policy's cluster."""
    panels = _panels(model)
    for index, panel in enumerate(panels):
        panel["id"] = index + 1
        panel["gridPos"] = {
            "x": (index % 2) * PANEL_WIDTH,
            "y": (index // 2) * PANEL_HEIGHT,
            "w": PANEL_WIDTH,
            "h": PANEL_HEIGHT,
        }
    return {
        "uid": dashboard_uid(model),
        "title": f"RAGFlow {model.namespace}/{model.cluster}",
        "tags": ["ragflow", model.cluster],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def build_dashboard_configmap(model: AlertPolicyModel) -> Manifest:
    """The dashboard ConfigMap (labelled for the Grafana sidecar)."""
    labels = {**model.dashboard.labels, **alerts.common_labels(model)}
    annotations = {FOLDER_ANNOTATION: model.dashboard.folder} if model.dashboard.folder else {}
    return render_manifest(
        "dashboard-configmap.yaml.j2",
        meta=object_meta(
            name=dashboard_name(model),
            namespace=model.namespace,
            labels=labels,
            annotations=annotations,
            owner_references=model.owner_references,
        ),
        key=f"{dashboard_name(model)}.json",
        dashboard=json.dumps(build_dashboard(model), indent=2, sort_keys=True),
    )
