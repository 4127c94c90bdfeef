"""Every child of an AlertPolicy, from the model and the APIs the cluster serves.

`build(model, capabilities)` (the shape of every kind's builder, builders/children.py)
validates the rules first (an invalid expression raises errors.InvalidSpec with reason
InvalidRule and the parser's message, so nothing half-built is ever applied), then returns the
rules object (PrometheusRule, or the ConfigMap fallback), the dashboard ConfigMap and the
AlertmanagerConfig. Called by handlers/alert_policy.py and by `ragflow-operator render`
(builders/registry.py).
"""

from __future__ import annotations

from ragflow_operator import errors
from ragflow_operator.builders import alert_routing, alerts, dashboard
from ragflow_operator.builders.children import Children
from ragflow_operator.capabilities import Capabilities
from ragflow_operator.model.alert_policy import AlertPolicyModel

REASON_INVALID_RULE = "InvalidRule"
SKIPPED_ROUTING = (
    "alertmanager routing skipped: monitoring.coreos.com/v1alpha1 "
    "AlertmanagerConfig is not served by this cluster"
)


def build(model: AlertPolicyModel, capabilities: Capabilities) -> Children:
    """The children to apply; raises errors.InvalidSpec when a rule does not parse."""
    groups = alerts.build_rule_groups(model)
    problems = alerts.validate_rule_groups(groups)
    if problems:
        raise errors.InvalidSpec("; ".join(problems), reason=REASON_INVALID_RULE)
    manifests = [alerts.build_rules_object(model, alerts.rules_target(capabilities))]
    notes: list[str] = []
    if model.dashboard.enabled:
        manifests.append(dashboard.build_dashboard_configmap(model))
    if model.alertmanager.enabled:
        if capabilities.alertmanager_config:
            manifests.append(alert_routing.build_routing(model))
        else:
            notes.append(SKIPPED_ROUTING)
    return Children(manifests=manifests, notes=notes)
