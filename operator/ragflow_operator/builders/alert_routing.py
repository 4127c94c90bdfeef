"""Alertmanager routing of an AlertPolicy: an AlertmanagerConfig (monitoring.coreos.com/v1alpha1).

Built only when `spec.alertmanager.enabled` and the AlertmanagerConfig API exists (the handler
checks the capability). The top route matches the `ragflow_cluster` label that every rule of the
policy carries; one child route per receiver selects the severities it wants, in order, and
alerts that no receiver wants end in an empty receiver (dropped) rather than paging someone by
accident. Secrets are referenced, never copied. Called by handlers/alert_policy.py and `render`.
"""

from __future__ import annotations

from typing import Any

from ragflow_operator import names
from ragflow_operator.builders import alerts
from ragflow_operator.builders.common import object_meta
from ragflow_operator.builders.render import Manifest, render_manifest
from ragflow_operator.model.alert_policy import AlertPolicyModel, Receiver
from ragflow_operator.model.cluster import SecretKeyRef


def routing_name(model: AlertPolicyModel) -> str:
    return names.child_name(model.name, "routing")


def _secret(ref: SecretKeyRef) -> dict[str, str]:
    return {"name": ref.name, "key": ref.key}


def _receiver(receiver: Receiver) -> dict[str, Any]:
    result: dict[str, Any] = {"name": receiver.name}
    if receiver.webhook_url:
        result["webhookConfigs"] = [
            {"urlSecret": _secret(receiver.webhook_url), "sendResolved": True}
        ]
    if receiver.slack_api_url:
        result["slackConfigs"] = [
            {
                "apiURL": _secret(receiver.slack_api_url),
                "channel": receiver.slack_channel,
                "sendResolved": True,
            }
        ]
    if receiver.pagerduty_routing_key:
        result["pagerdutyConfigs"] = [
            {"routingKey": _secret(receiver.pagerduty_routing_key), "sendResolved": True}
        ]
    return result


def _route(receiver: Receiver) -> dict[str, Any]:
    route: dict[str, Any] = {"receiver": receiver.name, "continue": False}
    if receiver.severities:
        pattern = "|".join(receiver.severities)
        route["matchers"] = [{"name": "severity", "matchType": "=~", "value": pattern}]
    return route


def drop_receiver_name(model: AlertPolicyModel) -> str:
    """The empty receiver catching alerts that no configured receiver asked for."""
    return f"{model.name}-unrouted"


def build_routing(model: AlertPolicyModel) -> Manifest:
    """The policy's AlertmanagerConfig."""
    spec = model.alertmanager
    route = {
        "receiver": drop_receiver_name(model),
        "groupBy": list(spec.group_by),
        "groupWait": spec.group_wait,
        "groupInterval": spec.group_interval,
        "repeatInterval": spec.repeat_interval,
        "matchers": [
            {"name": alerts.CLUSTER_LABEL, "matchType": "=", "value": model.cluster},
        ],
        "routes": [_route(receiver) for receiver in spec.receivers],
    }
    receivers = [{"name": drop_receiver_name(model)}] + [
        _receiver(receiver) for receiver in spec.receivers
    ]
    return render_manifest(
        "alertmanagerconfig.yaml.j2",
        meta=object_meta(
            name=routing_name(model),
            namespace=model.namespace,
            labels={**model.rule_labels, **alerts.common_labels(model)},
            owner_references=model.owner_references,
        ),
        route=route,
        receivers=receivers,
    )
