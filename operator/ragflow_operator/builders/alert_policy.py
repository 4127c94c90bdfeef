"""Every child of an AlertPolicy, from the model and the APIs the cluster serves.

`build_alert_policy_children` validates the rules first (an invalid expression raises
errors.InvalidSpec with reason InvalidRule and the parser's message, so nothing half-built is
ever applied), then returns the rules object (PrometheusRule, or the ConfigMap fallback), the
dashboard ConfigMap and the AlertmanagerConfig. Called by handlers/alert_policy.py and by
`render_alert_policy`, the `ragflow-operator render` entry registered in builders/registry.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragflow_operator import errors
from ragflow_operator.builders import alert_routing, alerts, dashboard
from ragflow_operator.builders.render import Manifest
from ragflow_operator.model.alert_policy import AlertPolicyModel

REASON_INVALID_RULE = "InvalidRule"


@dataclass(frozen=True)
class AlertPolicyChildren:
    manifests: list[Manifest]
    #: PrometheusRule or ConfigMap: which kind holds the rules.
    target: str
    rule_count: int
    #: Remarks for the user (an optional child skipped for lack of an API).
    notes: list[str] = field(default_factory=list)


def build_alert_policy_children(
    model: AlertPolicyModel, *, prometheus_rule: bool, alertmanager_config: bool
) -> AlertPolicyChildren:
    """The children to apply; raises errors.InvalidSpec when a rule does not parse."""
    groups = alerts.build_rule_groups(model)
    problems = alerts.validate_rule_groups(groups)
    if problems:
        raise errors.InvalidSpec("; ".join(problems), reason=REASON_INVALID_RULE)
    target = alerts.TARGET_PROMETHEUS_RULE if prometheus_rule else alerts.TARGET_CONFIGMAP
    manifests = [alerts.build_rules_object(model, target)]
    notes: list[str] = []
    if model.dashboard.enabled:
        manifests.append(dashboard.build_dashboard_configmap(model))
    if model.alertmanager.enabled:
        if alertmanager_config:
            manifests.append(alert_routing.build_routing(model))
        else:
            notes.append(
                "alertmanager routing skipped: monitoring.coreos.com/v1alpha1 "
                "AlertmanagerConfig is not served by this cluster"
            )
    return AlertPolicyChildren(manifests, target, alerts.count_rules(groups), notes)


def render_alert_policy(body: dict[str, Any], prometheus_operator: bool) -> AlertPolicyChildren:
    """`render`: the children for a cluster with (or without) the Prometheus Operator's APIs."""
    model = AlertPolicyModel.from_body(body)
    return build_alert_policy_children(
        model, prometheus_rule=prometheus_operator, alertmanager_config=prometheus_operator
    )
