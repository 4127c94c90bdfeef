"""AlertPolicy on a real API server: ConfigMap or PrometheusRule, spec changes, invalid rules.

The operator's AlertPolicy handlers run in kopf (KopfRunner) against the local control plane.
Without the PrometheusRule CRD the rules land in a ConfigMap; once the CRD
(e2e/fixtures/prometheusrule-crd.yaml, a structural stand-in for the Prometheus Operator's) is
installed, the next reconcile writes a PrometheusRule and removes the ConfigMap. An invalid custom
rule makes the policy Ready=False with the PromQL parser's message and leaves the rules as they
were.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.controlplane.cluster import Cluster
from e2e.support import eventually, get, install_crd, kopf_handlers

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_RULE_CRD = ROOT / "e2e" / "fixtures" / "prometheusrule-crd.yaml"
PROMETHEUS_RULE_CRD_NAME = "prometheusrules.monitoring.coreos.com"
HANDLERS = "ragflow_operator.handlers.alert_policy"


def crd_installed(cluster: Cluster) -> bool:
    return cluster.kubectl("get", "crd", PROMETHEUS_RULE_CRD_NAME, check=False).returncode == 0


@pytest.fixture
def operator(cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The operator's AlertPolicy handlers (with lifecycle's startup) in kopf, for one namespace."""
    install_crd(cluster, ROOT / "crds" / "alertpolicies.yaml", force_conflicts=False)
    with kopf_handlers(cluster, namespace, HANDLERS, monkeypatch):
        yield


def policy_status(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return (get(cluster, namespace, "alertpolicy", "prod") or {}).get("status", {})


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    for item in status.get("conditions", []):
        if item["type"] == type_:
            return dict(item)
    return {}


def patch_spec(cluster: Cluster, namespace: str, spec: dict[str, Any]) -> None:
    cluster.kubectl(
        "patch",
        "alertpolicy",
        "prod",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": spec}),
    )


def latency_expr(groups: list[dict[str, Any]]) -> str:
    (rule,) = [r for r in groups[0]["rules"] if r["alert"] == "RagFlowHighQueryLatency"]
    return str(rule["expr"])


def rule_count(groups: list[dict[str, Any]]) -> int:
    return sum(len(group["rules"]) for group in groups)


def test_alertpolicy_switches_configmap_to_prometheusrule_and_rejects_invalid_rules(
    cluster: Cluster, namespace: str, operator: None
) -> None:
    had_crd = crd_installed(cluster)
    if had_crd:  # start from a cluster without the Prometheus Operator
        cluster.kubectl("delete", "crd", PROMETHEUS_RULE_CRD_NAME, "--wait=true")
    try:
        policy = {
            "apiVersion": "ragflow.operator.dev/v1alpha1",
            "kind": "AlertPolicy",
            "metadata": {"name": "prod", "namespace": namespace},
            "spec": {"clusterRef": {"name": "docs"}, "ruleLabels": {"release": "kps"}},
        }
        cluster.kubectl("apply", "-f", "-", stdin=json.dumps(policy))

        # 1. No PrometheusRule API: a ConfigMap holds the same rules file.
        configmap = eventually(
            "the rules ConfigMap exists", lambda: get(cluster, namespace, "configmap", "prod-rules")
        )
        groups = yaml.safe_load(configmap["data"]["prod-rules.rules.yaml"])["groups"]
        assert latency_expr(groups).endswith("> 3")
        assert configmap["metadata"]["labels"]["release"] == "kps"
        assert configmap["metadata"]["ownerReferences"][0]["kind"] == "AlertPolicy"
        status = eventually("status is written", lambda: policy_status(cluster, namespace))
        builtin = rule_count(groups)  # what the status counts is what was applied
        assert status["target"] == "ConfigMap" and status["rules"] == builtin
        assert condition(status, "RulesValid")["status"] == "True"
        assert condition(status, "Ready")["reason"] == "ClusterNotFound"  # no RagFlowCluster
        board = get(cluster, namespace, "configmap", "prod-dashboard")
        assert board and board["metadata"]["labels"]["grafana_dashboard"] == "1"

        # 2. The CRD appears, then the spec changes: a PrometheusRule replaces the ConfigMap.
        install_crd(cluster, PROMETHEUS_RULE_CRD, force_conflicts=False)
        patch_spec(
            cluster,
            namespace,
            {"rules": {"highQueryLatency": {"p95Seconds": 2}}, "dashboard": {"enabled": False}},
        )
        rule = eventually(
            "a PrometheusRule with the new threshold",
            lambda: (
                (r := get(cluster, namespace, "prometheusrule", "prod-rules"))
                and latency_expr(r["spec"]["groups"]).endswith("> 2")
                and r
            ),
        )
        assert rule["metadata"]["labels"]["release"] == "kps"
        eventually(
            "the ConfigMaps are removed",
            lambda: (
                get(cluster, namespace, "configmap", "prod-rules") is None
                and get(cluster, namespace, "configmap", "prod-dashboard") is None
            ),
        )
        status = eventually(
            "status shows the PrometheusRule",
            lambda: (
                (s := policy_status(cluster, namespace)).get("target") == "PrometheusRule" and s
            ),
        )
        assert status["rules"] == rule_count(rule["spec"]["groups"]) == builtin

        # 3. An invalid custom rule is reported, not applied.
        patch_spec(
            cluster,
            namespace,
            {"customRules": [{"name": "Broken", "expr": "sum(rate(ragflow_query_total[5m])"}]},
        )
        generation = get(cluster, namespace, "alertpolicy", "prod")["metadata"]["generation"]
        ready = eventually(
            "Ready=False with the parser's message",
            lambda: (
                (c := condition(policy_status(cluster, namespace), "Ready"))
                and c["reason"] == "InvalidRule"
                and c
            ),
        )
        assert ready["status"] == "False"
        assert ready["message"] == "rule Broken: expr: unclosed left parenthesis"
        assert ready["observedGeneration"] == generation
        applied = get(cluster, namespace, "prometheusrule", "prod-rules")
        assert applied is not None
        assert "Broken" not in {r["alert"] for r in applied["spec"]["groups"][0]["rules"]}

        # 4. Fixing the rule applies it.
        patch_spec(
            cluster,
            namespace,
            {"customRules": [{"name": "Broken", "expr": "sum(rate(ragflow_query_total[5m])) > 1"}]},
        )
        eventually(
            "the fixed custom rule is applied",
            lambda: (
                (r := get(cluster, namespace, "prometheusrule", "prod-rules"))
                and "Broken" in {x["alert"] for x in r["spec"]["groups"][0]["rules"]}
            ),
        )
        status = eventually(
            "status counts the custom rule",
            lambda: (s := policy_status(cluster, namespace)).get("rules") == builtin + 1 and s,
        )
        assert condition(status, "RulesValid")["status"] == "True"
    finally:
        if not had_crd:
            cluster.kubectl("delete", "crd", PROMETHEUS_RULE_CRD_NAME, "--wait=false", check=False)


def test_alertpolicy_crd_rejects_bad_ratio_and_duplicate_rules_and_accepts_the_sample(
    cluster: Cluster, namespace: str
) -> None:
    install_crd(cluster, ROOT / "crds" / "alertpolicies.yaml", force_conflicts=False)
    base = {
        "apiVersion": "ragflow.operator.dev/v1alpha1",
        "kind": "AlertPolicy",
        "metadata": {"name": "bad", "namespace": namespace},
    }
    for spec, message in (
        (
            {"clusterRef": {"name": "docs"}, "rules": {"highErrorRate": {"ratio": 1.5}}},
            "ratio must be in (0, 1]",
        ),
        (
            {
                "clusterRef": {"name": "docs"},
                "customRules": [{"name": "A", "expr": "up == 0"}, {"name": "A", "expr": "up == 1"}],
            },
            "custom rule names must be unique",
        ),
    ):
        with pytest.raises(subprocess.CalledProcessError) as rejected:
            cluster.kubectl("apply", "-f", "-", stdin=json.dumps({**base, "spec": spec}))
        assert message in rejected.value.stderr
    sample = ROOT / "samples" / "alertpolicy.yaml"
    cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(sample))
