"""kopf handlers of AlertPolicy: model -> rules, dashboard, routing -> apply -> status.

`reconcile_alert_policy(client, body, now)` does one reconcile and returns the desired status; the
kopf handlers (create/update/resume, added by `register` through handlers/__init__.py, client
from lifecycle's `memo`) and the operator-wide resync pass (handlers/resync.py) call it inside
`metrics.reconcile_timer` and write the status only when it changed.

Each reconcile discovers whether the cluster serves PrometheusRule and AlertmanagerConfig (two
discovery GETs), so installing or removing the Prometheus Operator's CRDs switches the rules
between a PrometheusRule and the fallback ConfigMap at the next reconcile; the object of the
other kind is removed by apply.py. Every rule is parsed (builders/alert_policy.py) before
anything is written: an invalid custom rule sets `Ready=False` (reason InvalidRule, the parser's
message) and leaves what is in the cluster untouched, so a typo never replaces working alerts
with a broken rule group.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from ragflow_operator import conditions, errors, metrics, names
from ragflow_operator.apply import apply_children
from ragflow_operator.builders import alert_routing, alerts, dashboard
from ragflow_operator.builders.alert_policy import build_alert_policy_children
from ragflow_operator.handlers import outcome
from ragflow_operator.handlers.resync import ResyncPass
from ragflow_operator.k8s import KubeClient, ObjectRef
from ragflow_operator.model.alert_policy import AlertPolicyModel
from ragflow_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)
Json = dict[str, Any]

MONITORING_V1 = "monitoring.coreos.com/v1"
MONITORING_V1ALPHA1 = "monitoring.coreos.com/v1alpha1"
#: Every kind an AlertPolicy may own; the ones not desired any more are deleted.
REMOVABLE_KINDS = (
    ("v1", "ConfigMap"),
    (MONITORING_V1, "PrometheusRule"),
    (MONITORING_V1ALPHA1, "AlertmanagerConfig"),
)
RESOURCE = (names.GROUP, names.VERSION, names.PLURAL_ALERT_POLICY)

READY = "Ready"
RULES_VALID = "RulesValid"
ROUTING = "RoutingReady"


class StatusEditor:
    """The desired status of one reconcile; `set` edits a condition (metav1.Condition shape)."""

    def __init__(self, model: AlertPolicyModel, current: Json, now: datetime) -> None:
        self.model = model
        self.now = now
        self.status: Json = {
            "observedGeneration": model.generation,
            "conditions": list(current.get("conditions") or []),
        }

    def set(self, type_: str, state: str, reason: str, message: str) -> None:
        self.status["conditions"] = conditions.set_condition(
            self.status["conditions"],
            type_=type_,
            status=state,
            reason=reason,
            message=message,
            generation=self.model.generation,
            now=self.now,
        )


def reconcile_alert_policy(client: KubeClient, body: Json, *, now: datetime) -> Json:
    """Bring the policy's children to its spec; return the desired status."""
    model = AlertPolicyModel.from_body(body)
    editor = StatusEditor(model, dict(body.get("status") or {}), now)
    status = editor.status
    holder = _policy_in_charge(client, model)
    if holder != model.name:
        message = (
            f"AlertPolicy {holder} already defines the alerts of RagFlowCluster {model.cluster}; "
            "one policy per cluster: merge the rules into it or delete one"
        )
        editor.set(READY, conditions.FALSE, "DuplicatePolicy", message)
        return status
    served = client.served_kinds([MONITORING_V1, MONITORING_V1ALPHA1])
    has_routing = "AlertmanagerConfig" in served.get(MONITORING_V1ALPHA1, set())
    try:
        children = build_alert_policy_children(
            model,
            prometheus_rule="PrometheusRule" in served.get(MONITORING_V1, set()),
            alertmanager_config=has_routing,
        )
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

    target = children.target
    status.update(
        rules=children.rule_count, target=target, ruleObject=alerts.rules_object_name(model)
    )
    if model.dashboard.enabled:
        status["dashboard"] = dashboard.dashboard_name(model)
    editor.set(RULES_VALID, conditions.TRUE, "Parsed", f"{status['rules']} rules parsed")
    if not model.alertmanager.enabled:
        editor.set(ROUTING, conditions.TRUE, "Disabled", "alertmanager routing is not enabled")
    elif has_routing:
        routing = alert_routing.routing_name(model)
        editor.set(ROUTING, conditions.TRUE, "Applied", f"AlertmanagerConfig {routing}")
    else:
        missing = f"{MONITORING_V1ALPHA1} AlertmanagerConfig is not served by this cluster"
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
    meta = body.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    current = dict(body.get("status") or {})
    status: Json = {
        "observedGeneration": generation,
        "conditions": list(current.get("conditions") or []),
    }
    status["conditions"] = conditions.set_condition(
        status["conditions"],
        type_=READY,
        status=conditions.FALSE,
        reason=failure.reason,
        message=failure.message,
        generation=generation,
        now=now,
    )
    return status


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
