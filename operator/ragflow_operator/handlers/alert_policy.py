"""kopf handlers of AlertPolicy: model -> rules, dashboard, routing -> apply -> status.

`reconcile_alert_policy(client, body, now)` does one reconcile and returns the desired status; the
kopf handlers (create/update/resume, added by `register` through handlers/__init__.py, client
from lifecycle's `memo`) and the operator-wide resync pass (handlers/resync.py) call it inside
`metrics.reconcile_timer` and write the status only when it changed.

Each reconcile discovers whether the cluster serves PrometheusRule and AlertmanagerConfig (two
discovery GETs, into a Capabilities value for `builders.alert_policy.build`), so installing or
removing the Prometheus Operator's CRDs switches the rules between a PrometheusRule and the
fallback ConfigMap at the next reconcile; the object of the other kind is removed by apply.py.
Every rule is parsed (builders/alert_policy.py) before anything is written: an invalid custom
rule sets `Ready=False` (reason InvalidRule, the parser's message) and leaves what is in the
cluster untouched, so a typo never replaces working alerts with a broken rule group.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from ragflow_operator import conditions, errors, metrics, names
from ragflow_operator.apply import apply_children
from ragflow_operator.builders import alert_policy, alert_routing, alerts, dashboard
from ragflow_operator.capabilities import (
    ALERTMANAGER_CONFIG_GROUP_VERSION,
    MONITORING_GROUP_VERSION,
    Capabilities,
)
from ragflow_operator.conditions import StatusEditor
from ragflow_operator.handlers import outcome
from ragflow_operator.handlers.resync import ResyncPass
from ragflow_operator.k8s import KubeClient, ObjectRef
from ragflow_operator.model.alert_policy import AlertPolicyModel
from ragflow_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)
Json = dict[str, Any]

#: Every kind an AlertPolicy may own; the ones not desired any more are deleted.
REMOVABLE_KINDS = (
    ("v1", "ConfigMap"),
    (MONITORING_GROUP_VERSION, "PrometheusRule"),
    (ALERTMANAGER_CONFIG_GROUP_VERSION, "AlertmanagerConfig"),
)
RESOURCE = (names.GROUP, names.VERSION, names.PLURAL_ALERT_POLICY)

READY = "Ready"
RULES_VALID = "RulesValid"
ROUTING = "RoutingReady"


def reconcile_alert_policy(client: KubeClient, body: Json, *, now: datetime) -> Json:
    """Bring the policy's children to its spec; return the desired status."""
    model = AlertPolicyModel.from_body(body)
    editor = StatusEditor(model.generation, body.get("status") or {}, now, keep_fields=False)
    status = editor.status
    holder = _policy_in_charge(client, model)
    if holder != model.name:
        message = (
            f"AlertPolicy {holder} already defines the alerts of RagFlowCluster {model.cluster}; "
            "one policy per cluster: merge the rules into it or delete one"
        )
        editor.set(READY, conditions.FALSE, "DuplicatePolicy", message)
        return status
    capabilities = Capabilities.from_resources(
        client.served_kinds([MONITORING_GROUP_VERSION, ALERTMANAGER_CONFIG_GROUP_VERSION])
    )
    try:
        children = alert_policy.build(model, capabilities)
    except errors.InvalidSpec as invalid:
        logger.warning(
            "invalid alerting rules, nothing applied",
            extra={"namespace": model.namespace, "policy": model.name, "problems": str(invalid)},
        )
        editor.set(RULES_VALID, conditions.FALSE, invalid.reason, str(invalid))
        editor.set(READY, conditions.FALSE, invalid.reason, str(invalid))
        return status

    result = apply_children(
        client,
        children.manifests,
        namespace=model.namespace,
        owner_uid=model.uid,
        selector=names.instance_labels(model.name),
        removable_kinds=REMOVABLE_KINDS,
    )
    written = [result.live.get(ref, {"kind": ref.kind}) for ref in result.created + result.applied]
    metrics.record_children_applied(names.KIND_ALERT_POLICY, written)

    target = alerts.rules_target(capabilities)
    rule_count = alerts.count_rules(alerts.build_rule_groups(model))
    status.update(rules=rule_count, target=target, ruleObject=alerts.rules_object_name(model))
    if model.dashboard.enabled:
        status["dashboard"] = dashboard.dashboard_name(model)
    editor.set(RULES_VALID, conditions.TRUE, "Parsed", f"{status['rules']} rules parsed")
    if not model.alertmanager.enabled:
        editor.set(ROUTING, conditions.TRUE, "Disabled", "alertmanager routing is not enabled")
    elif capabilities.alertmanager_config:
        routing = alert_routing.routing_name(model)
        editor.set(ROUTING, conditions.TRUE, "Applied", f"AlertmanagerConfig {routing}")
    else:
        api = f"{ALERTMANAGER_CONFIG_GROUP_VERSION} AlertmanagerConfig"
        missing = f"{api} is not served by this cluster"
        editor.set(ROUTING, conditions.FALSE, "AlertmanagerConfigUnavailable", missing)
    cluster_ref = ObjectRef(names.API_VERSION, names.KIND_CLUSTER, model.namespace, model.cluster)
    if client.get(cluster_ref) is None:
        editor.set(
            READY,
            conditions.FALSE,
            "ClusterNotFound",
            f"{target} {alerts.rules_object_name(model)} applied; RagFlowCluster "
            f"{model.cluster} does not exist (yet)",
        )
    else:
        applied = f"{status['rules']} rules in {target} {alerts.rules_object_name(model)}"
        editor.set(READY, conditions.TRUE, "RulesApplied", applied)
    return status


def _policy_in_charge(client: KubeClient, model: AlertPolicyModel) -> str:
    """Name of the one AlertPolicy that defines the alerts of `model.cluster`: the oldest.

    Two policies for one cluster would define every built-in alert twice; the later ones are
    reported (DuplicatePolicy) instead of silently overlapping.
    """
    policies = client.list(names.API_VERSION, names.KIND_ALERT_POLICY, model.namespace, {})
    same = [
        p
        for p in policies
        if ((p.get("spec") or {}).get("clusterRef") or {}).get("name") == model.cluster
        and not p["metadata"].get("deletionTimestamp")
    ]
    if not same:
        return model.name
    first = min(
        same, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"])
    )
    return str(first["metadata"]["name"])


def _failed_status(body: Json, failure: outcome.Failure, now: datetime) -> Json:
    """Ready=False with the failure's reason after a failed reconcile (other conditions kept)."""
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    editor = StatusEditor(generation, body.get("status") or {}, now, keep_fields=False)
    editor.set(READY, conditions.FALSE, failure.reason, failure.message)
    return editor.status


def run_reconcile(client: KubeClient, body: kopf.Body | Json) -> None:
    """One timed reconcile; writes the status subresource only when it changed.

    Transient failures propagate (the caller retries with backoff); any other failure becomes
    `Ready=False` with its reason and a Warning Event, with nothing new applied.
    """
    raw: Json = dict(body)
    now = datetime.now(UTC)
    with metrics.reconcile_timer(names.KIND_ALERT_POLICY):
        try:
            status = reconcile_alert_policy(client, raw, now=now)
        except Exception as exc:
            failure = outcome.classify(exc)
            if failure.transient:
                raise
            status = _failed_status(raw, failure, now)
        current = raw.get("status") or {}
        patch = conditions.status_patch(current, status)
        if patch:
            meta = raw["metadata"]
            ref = ObjectRef(
                names.API_VERSION, names.KIND_ALERT_POLICY, meta["namespace"], meta["name"]
            )
            client.patch_status(ref, patch)
            outcome.record_ready_transition(raw, current, status)


def _run(body: kopf.Body, memo: kopf.Memo, retry: int) -> None:
    try:
        run_reconcile(memo.client, body)
    except Exception as exc:
        failure = outcome.classify(exc)
        if failure.transient:  # throttled, conflict, server down: back off and try again
            raise outcome.temporary(failure, retry) from None
        # only the status write itself can get here: the resync pass tries again
        logger.warning("alert policy reconcile failed", extra={"error": failure.message})


def on_spec(body: kopf.Body, memo: kopf.Memo, retry: int = 0, **_: Any) -> None:
    _run(body, memo, retry)


def resync(body: Mapping[str, Any], memo: kopf.Memo) -> None:
    """The resync pass's check (handlers/resync.py): repairs drift, follows CRDs installed
    later; writes nothing when all is well. A transient failure propagates (the pass backs off)."""
    run_reconcile(memo.client, dict(body))


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    """AlertPolicy's handlers: spec changes and the drift-repair resync pass."""
    kopf.on.resume(*RESOURCE, registry=registry)(on_spec)
    kopf.on.create(*RESOURCE, registry=registry)(on_spec)
    kopf.on.update(*RESOURCE, registry=registry, field="spec")(on_spec)
    ResyncPass(
        api_version=names.API_VERSION,
        kind=names.KIND_ALERT_POLICY,
        check=resync,
        interval=settings.resync_seconds,
        concurrency=settings.resync_concurrency,
    ).register(registry, RESOURCE)
