"""Invalid custom resources on the real API server, with the operator running (all three kinds).

One operator subprocess and one namespace for the module. Every invalid resource must be
rejected at admission with a message, or end `Ready=False` with a reason, a Warning Event and
zero children; a valid resource must still reconcile afterwards; no secret value may appear in
the operator's log, Events, statuses or children.

- explicit cases: children refused by the API server's dry run (malformed affinity/tolerations,
  backup container resources), names taken across kinds, a second AlertPolicy for one cluster;
- a Hypothesis property test: for each field of the three CRDs, generated invalid values
  (bounded: derandomized, a few dozen examples, about a minute);
- the secret grep over everything the module produced.
"""

from __future__ import annotations

import copy
import json
import secrets
import string
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ragflow_operator import errors, names
from ragflow_operator.builders.backup import LABEL_POLICY
from ragflow_operator.k8s import KubeClient, ObjectRef

from e2e.controlplane.cluster import Cluster
from e2e.ragflowcluster_support import OperatorProcess, external_spec, install_crds
from e2e.support import holds

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

#: Every secret value this module stores; none may show up anywhere but in its Secret.
SECRET_VALUES = {
    "pg": {"username": "user-" + secrets.token_hex(4), "password": "pg-" + secrets.token_hex(8)},
    "backup-keys": {"keyring": "a2V5LQ" + secrets.token_hex(8)},
    "aws": {
        "AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(6),
        "AWS_SECRET_ACCESS_KEY": "sk-" + secrets.token_hex(10),
    },
    "azure": {"AZURE_STORAGE_CONNECTION_STRING": "az-" + secrets.token_hex(10)},
}
#: A password a user wrongly wrote into a URL (rejected at admission, so never stored).
INLINE_PASSWORD = "inline-" + secrets.token_hex(6)
CLUSTER_KINDS = [
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("networking.k8s.io/v1", "Ingress"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
]
POLICY_KINDS = [("batch/v1", "CronJob"), ("batch/v1", "Job"), ("v1", "ConfigMap")]
REPORT_SECONDS = 30.0
#: The (valid, Ready) RagFlowCluster the generated policies point at.
POLICY_TARGET = "target"


class Env:
    """What the tests share: the API client, the namespace, a name counter."""

    def __init__(self, cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.operator = operator
        self.client = KubeClient(cluster.api_client())
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    install_crds(cluster)
    namespace = f"invalid-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", namespace)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = OperatorProcess(cluster, log, resync_seconds=2.0).start()
    shared = Env(cluster, namespace, process)
    for name, data in SECRET_VALUES.items():
        shared.client.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "stringData": data,
            }
        )
    target = rfc(POLICY_TARGET, namespace)
    shared.client.create(target)
    try:
        wait_ready_state(shared, target, "True")
        yield shared
    finally:
        process.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# --- bodies ----------------------------------------------------------------------------------


def rfc(name: str, namespace: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_CLUSTER,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**external_spec(), "networkPolicy": {"enabled": False}, **(spec or {})},
    }


def backup_policy(name: str, namespace: str, cluster: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_BACKUP_POLICY,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "clusterRef": {"name": cluster},
            "schedules": [{"name": "hourly", "schedule": "0 * * * *"}],
            "destinations": [
                {"name": "primary", "s3": {"bucket": "b", "credentialsSecret": {"name": "aws"}}},
                {
                    "name": "second",
                    "azure": {"container": "c", "credentialsSecret": {"name": "azure"}},
                },
            ],
            "encryption": {"keySecret": {"name": "backup-keys"}},
            **spec,
        },
    }


def alert_policy(name: str, namespace: str, cluster: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND_ALERT_POLICY,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterRef": {"name": cluster}, **spec},
    }


# --- observing -------------------------------------------------------------------------------


def ready_condition(env: Env, body: dict[str, Any]) -> dict[str, Any]:
    live = env.client.get(ObjectRef.of(body)) or {}
    generation = live.get("metadata", {}).get("generation")
    status = live.get("status") or {}
    if status.get("observedGeneration") != generation:
        return {}
    return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})


def wait_ready_state(env: Env, body: dict[str, Any], state: str) -> dict[str, Any]:
    deadline = time.monotonic() + REPORT_SECONDS
    while time.monotonic() < deadline:
        ready = ready_condition(env, body)
        if ready.get("status") == state:
            return ready
        time.sleep(0.3)
    raise AssertionError(
        f"{body['kind']} {body['metadata']['name']} never reported Ready={state} "
        f"(last: {ready_condition(env, body)}):\n{env.operator.log_tail()}"
    )


def children_of(env: Env, body: dict[str, Any]) -> list[str]:
    name = body["metadata"]["name"]
    if body["kind"] == names.KIND_BACKUP_POLICY:
        kinds, selector = POLICY_KINDS, {LABEL_POLICY: name}
    else:
        kinds, selector = CLUSTER_KINDS, {names.LABEL_INSTANCE: name}
    return [
        f"{kind}/{obj['metadata']['name']}"
        for api_version, kind in kinds
        for obj in env.client.list(api_version, kind, env.namespace, selector)
    ]


def warning_reasons(env: Env, name: str) -> set[str]:
    found = env.client.request(
        "GET",
        f"/api/v1/namespaces/{env.namespace}/events",
        query=[("fieldSelector", f"involvedObject.name={name},type=Warning")],
    )
    return {item.get("reason", "") for item in found.get("items") or []}


def assert_rejected_or_reported(env: Env, body: dict[str, Any]) -> str:
    """The property: refused at admission with a message, or Ready=False + Event + no child."""
    try:
        env.client.create(body)
    except errors.ApiInvalid as err:
        assert ": " in str(err) and len(str(err)) > 20, str(err)
        return "admission"
    try:
        ready = wait_ready_state(env, body, "False")
        assert ready.get("reason") and ready.get("message"), ready
        assert children_of(env, body) == [], ready
        deadline = time.monotonic() + 10
        while ready["reason"] not in warning_reasons(env, body["metadata"]["name"]):
            assert time.monotonic() < deadline, f"no Warning Event {ready['reason']}"
            time.sleep(0.3)
        return f"reported:{ready['reason']}"
    finally:
        env.client.delete(ObjectRef.of(body))


# --- explicit cases --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "api",
    [
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "Near"}]}
                        ]
                    }
                }
            }
        },
        {"tolerations": [{"key": "a", "operator": "Maybe", "effect": "NoSchedule"}]},
    ],
    ids=["affinity", "tolerations"],
)
def test_a_child_refused_by_the_server_leaves_no_child_and_recovers(env: Env, api) -> None:
    name = env.fresh("refused")
    body = rfc(name, env.namespace, {"api": {"replicas": 1, **api}})
    env.client.create(body)
    ready = wait_ready_state(env, body, "False")
    assert ready["reason"] == "ChildRejected" and f"Deployment/{name}-api" in ready["message"]
    assert children_of(env, body) == []
    assert "ChildRejected" in warning_reasons(env, name)
    # fixing the spec reconciles everything
    live = env.client.get(ObjectRef.of(body))
    assert live is not None
    live["spec"]["api"] = {"replicas": 1}
    env.client.request(
        "PUT",
        f"/apis/{names.API_VERSION}/namespaces/{env.namespace}/ragflowclusters/{name}",
        body=live,
    )
    wait_ready_state(env, body, "True")
    assert f"Deployment/{name}-api" in children_of(env, body)
    env.client.delete(ObjectRef.of(body))


def test_backup_policy_with_refused_job_resources_creates_nothing(env: Env) -> None:
    cluster = env.fresh("src")
    env.client.create(rfc(cluster, env.namespace))
    body = backup_policy(
        env.fresh("bad"), env.namespace, cluster, resources={"requests": {"cpu": "lots"}}
    )
    assert assert_rejected_or_reported(env, body) == "reported:ChildRejected"


def test_names_taken_across_kinds_are_reported_not_fought_over(env: Env) -> None:
    stem = env.fresh("docs")
    owner = rfc(f"{stem}-backup", env.namespace)
    env.client.create(owner)
    wait_ready_state(env, owner, "True")
    config = ObjectRef("v1", "ConfigMap", env.namespace, f"{stem}-backup-config")
    before = env.client.get(config)
    assert before is not None
    policy = backup_policy(stem, env.namespace, f"{stem}-backup")
    env.client.create(policy)
    ready = wait_ready_state(env, policy, "False")
    assert ready["reason"] == "NameConflict"
    assert f"RagFlowCluster {stem}-backup" in ready["message"]

    def unchanged() -> bool:
        after = env.client.get(config)
        assert after is not None
        assert after["metadata"]["ownerReferences"] == before["metadata"]["ownerReferences"]
        assert after["data"] == before["data"]
        return True

    # Over a few resyncs of both (2 s each) the ConfigMap keeps its owner and content.
    holds("the ConfigMap is left to its owner", unchanged, 3.0)
    assert wait_ready_state(env, owner, "True")


def test_a_second_alert_policy_for_a_cluster_is_reported(env: Env) -> None:
    # The older policy wins, by creationTimestamp (whole seconds), then by name: the names sort
    # in creation order, so the second is second even when both are created in one second.
    first = alert_policy(env.fresh("alerts-a"), env.namespace, "docs")
    env.client.create(first)
    wait_ready_state(env, first, "False")  # no cluster `docs` here: ClusterNotFound, but applied
    second = alert_policy(env.fresh("alerts-b"), env.namespace, "docs")
    env.client.create(second)
    deadline = time.monotonic() + REPORT_SECONDS
    while ready_condition(env, second).get("reason") != "DuplicatePolicy":
        assert time.monotonic() < deadline, ready_condition(env, second)
        time.sleep(0.3)
    assert children_of(env, second) == []
    assert "DuplicatePolicy" in warning_reasons(env, second["metadata"]["name"])


# --- the property ----------------------------------------------------------------------------

Build = Callable[[Env], dict[str, Any]]
TEXT = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=8)
BAD_CHARS = st.sampled_from([" ", "\n", "\t", "!", "%", "#", "$", "{", "\u00e9"])


def set_path(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return body


def _cluster_case(path: str, values: st.SearchStrategy) -> st.SearchStrategy[Build]:
    return values.map(lambda v: lambda env: set_path(rfc(env.fresh("p"), env.namespace), path, v))


def _policy_case(path: str, values: st.SearchStrategy) -> st.SearchStrategy[Build]:
    return values.map(
        lambda v: (
            lambda env: set_path(
                backup_policy(env.fresh("bp"), env.namespace, POLICY_TARGET), path, v
            )
        )
    )


def _alert_case(path: str, values: st.SearchStrategy) -> st.SearchStrategy[Build]:
    return values.map(
        lambda v: (
            lambda env: set_path(
                alert_policy(env.fresh("ap"), env.namespace, POLICY_TARGET), path, v
            )
        )
    )


def _with_bad_char(prefix: str, suffix: str = "") -> st.SearchStrategy[str]:
    return st.tuples(TEXT, BAD_CHARS, TEXT).map(lambda t: f"{prefix}{t[0]}{t[1]}{t[2]}{suffix}")


def _too_big_request(n: int) -> dict[str, Any]:
    return {"requests": {"cpu": str(n + 1)}, "limits": {"cpu": str(n)}}


CRON_NEVER = st.sampled_from(["0 0 31 2 *", "0 0 30 feb *", "0 0 31 4,6 *", "0 0 30,31 2 ?"])
CRON_OUT_OF_RANGE = st.tuples(st.integers(60, 99), st.integers(24, 99)).map(
    lambda t: f"{t[0]} {t[1]} * * *"
)
LONG_NAME = st.integers(44, 120).map(lambda n: "n" * n)

INVALID_CASES: st.SearchStrategy[Build] = st.one_of(
    # RagFlowCluster
    LONG_NAME.map(lambda n: lambda env: rfc(n, env.namespace)),
    _cluster_case("spec.api.resources", st.integers(1, 64).map(_too_big_request)),
    _cluster_case(
        "spec.workers.resources",
        st.integers(1, 64).map(
            lambda n: {"requests": {"memory": f"{n + 1}Gi"}, "limits": {"memory": f"{n}Gi"}}
        ),
    ),
    _cluster_case(
        "spec.api.resources", _with_bad_char("1").map(lambda q: {"requests": {"cpu": q}})
    ),
    _cluster_case("spec.image.repository", _with_bad_char("registry.example/")),
    _cluster_case("spec.image.tag", _with_bad_char("v")),
    _cluster_case(
        "spec.podDisruptionBudget",
        st.integers(101, 999).map(lambda n: {"enabled": True, "minAvailable": f"{n}%"}),
    ),
    _cluster_case(
        "spec.ingress",
        _with_bad_char("bad").map(
            lambda k: {"enabled": True, "host": "a.example", "annotations": {k: "v"}}
        ),
    ),
    _cluster_case(
        "spec.networkPolicy",
        st.integers(64, 90).map(lambda n: {"enabled": True, "ingressNamespace": "x" * n}),
    ),
    _cluster_case("spec.api.nodeSelector", _with_bad_char("zone").map(lambda v: {"zone": v})),
    _cluster_case(
        "spec.cache", st.just({"external": {"url": f"redis://app:{INLINE_PASSWORD}@cache:6379/0"}})
    ),
    _cluster_case("spec.monitoring.interval", _with_bad_char("3")),
    _cluster_case(
        "spec.api.affinity",
        st.sampled_from(["Near", "Within", "Like"]).map(
            lambda op: {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "topologyKey": "zone",
                            "labelSelector": {
                                "matchExpressions": [{"key": "a", "operator": op, "values": ["b"]}]
                            },
                        }
                    ]
                }
            }
        ),
    ),
    # BackupPolicy
    _policy_case("spec.schedules", CRON_NEVER.map(lambda c: [{"name": "x", "schedule": c}])),
    _policy_case("spec.schedules", CRON_OUT_OF_RANGE.map(lambda c: [{"name": "x", "schedule": c}])),
    _policy_case(
        "spec.schedules",
        st.sampled_from(["validate", "now"]).map(lambda n: [{"name": n, "schedule": "@daily"}]),
    ),
    _policy_case("spec.validation", CRON_NEVER.map(lambda c: {"schedule": c})),
    _policy_case("spec.scratchSizeLimit", _with_bad_char("2")),
    _policy_case(
        "spec.destinations",
        TEXT.map(
            lambda pw: [
                {"name": "p", "s3": {"bucket": "b", "endpoint": f"https://k:{pw}@s3.example"}}
            ]
        ),
    ),
    _policy_case("spec.image", _with_bad_char("img").map(lambda r: {"repository": r})),
    # AlertPolicy
    _alert_case(
        "spec.customRules",
        _with_bad_char("").map(
            lambda t: [{"name": "Custom", "expr": "up == 0", "summary": "{{ $labels.pod" + t}]
        ),
    ),
    _alert_case(
        "spec.customRules",
        st.sampled_from(["up ==", "sum(rate(x[5m])", "rate(x[)"]).map(
            lambda e: [{"name": "Custom", "expr": e}]
        ),
    ),
    _alert_case("spec.ruleLabels", _with_bad_char("release").map(lambda v: {"release": v})),
    _alert_case("spec.clusterRef", LONG_NAME.map(lambda n: {"name": n})),
)


@pytest.mark.slow  # ~35 s: 40 generated resources, a few of them waiting for the operator
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(build=INVALID_CASES)
def test_every_invalid_resource_is_rejected_or_reported_with_no_children(env: Env, build) -> None:
    """Policies point at an existing cluster, so only the invalid value can stop them."""
    body = build(env)
    event(
        f"{body['kind']}: {assert_rejected_or_reported(env, body)}"
    )  # --hypothesis-show-statistics


def test_a_valid_resource_still_reconciles_after_the_invalid_ones(env: Env) -> None:
    body = rfc(env.fresh("valid"), env.namespace)
    env.client.create(body)
    wait_ready_state(env, body, "True")
    assert f"Deployment/{body['metadata']['name']}-api" in children_of(env, body)


def test_no_secret_value_in_logs_events_statuses_or_children(env: Env) -> None:
    """Runs last in the module: everything the tests above produced is searched."""
    values = [v for data in SECRET_VALUES.values() for v in data.values()] + [INLINE_PASSWORD]
    haystacks = {"operator log": env.operator.log_path.read_text(errors="replace")}
    events = env.client.request("GET", f"/api/v1/namespaces/{env.namespace}/events")
    haystacks["events"] = json.dumps(events)
    for plural in ("ragflowclusters", "backuppolicies", "alertpolicies"):
        found = env.client.request(
            "GET", f"/apis/{names.API_VERSION}/namespaces/{env.namespace}/{plural}"
        )
        haystacks[plural] = json.dumps(found)
    for api_version, kind in {*CLUSTER_KINDS, *POLICY_KINDS}:
        if kind == "Secret":
            continue
        items = env.client.list(api_version, kind, env.namespace, {})
        haystacks[kind] = json.dumps(items)
    leaks = [
        (where, v[:4] + "...") for where, text in haystacks.items() for v in values if v in text
    ]
    assert leaks == []
    assert len(haystacks["operator log"]) > 0
