"""The Helm chart: lint, schema validation for every supported Kubernetes minor, and its contract.

Runs `helm lint` and `helm template` (real helm from scripts/install.d/50-helm.sh) and validates
the output with kubernetes-validate --strict. Also pins what the issue asks of the chart: CRDs equal
to crds/, one-replica Recreate Deployment with kopf's liveness probe and a restricted security
context, standard labels, and RBAC that covers every child kind the operator renders.
"""

from __future__ import annotations

import difflib
import filecmp
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from conftest import CHART_DIR, REPO_ROOT, RenderChart, run_helm

SUPPORTED_KUBERNETES_MINORS = ("1.30", "1.31", "1.32", "1.33", "1.34")
"""The Kubernetes minors the project claims (README, Chart.yaml kubeVersion >= 1.30)."""

CRD_TYPED_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
"""Kinds from optional CRDs: kubernetes-validate ships no schema for them, so they are checked
by test_service_monitor_is_well_formed instead."""

VALUE_SETS = {
    "defaults": [],
    "namespace-list": ["watch.allNamespaces=false", "watch.namespaces={team-a,team-b}"],
    "everything-on": ["metrics.serviceMonitor.enabled=true", "operator.logLevel=debug"],
    "metrics-off": ["metrics.enabled=false"],
}

OWN_KINDS = {"RagFlowCluster", "BackupPolicy", "AlertPolicy"}

APPLY_VERBS = {"get", "list", "watch", "create", "patch", "delete"}

CHILD_KIND_RESOURCES = {
    "ConfigMap": ("", "configmaps"),
    "Secret": ("", "secrets"),
    "Service": ("", "services"),
    "PersistentVolumeClaim": ("", "persistentvolumeclaims"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "ServiceMonitor": ("monitoring.coreos.com", "servicemonitors"),
    "PrometheusRule": ("monitoring.coreos.com", "prometheusrules"),
    "AlertmanagerConfig": ("monitoring.coreos.com", "alertmanagerconfigs"),
    "VerticalPodAutoscaler": ("autoscaling.k8s.io", "verticalpodautoscalers"),
}
"""Every kind the operator may render, and the RBAC resource that must cover it."""


def removable_child_kinds() -> set[tuple[str, str]]:
    """(apiVersion, kind) the handlers may delete when a feature is switched off."""
    from ragflow_operator.builders.cluster import CLUSTER_CHILD_KINDS
    from ragflow_operator.handlers import alert_policy, backup_policy

    return {*CLUSTER_CHILD_KINDS, *alert_policy.REMOVABLE_KINDS, *backup_policy.REMOVABLE_KINDS}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def granted_verbs(cluster_role: dict[str, Any], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in cluster_role["rules"]:
        if group in rule.get("apiGroups", []) and resource in rule.get("resources", []):
            verbs |= set(rule["verbs"])
    return verbs


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_helm_lint_is_clean(helm: Path, value_set: str) -> None:
    args = ["lint", str(CHART_DIR), "--strict"]
    for value in VALUE_SETS[value_set]:
        args += ["--set", value]
    result = run_helm(helm, args)
    assert result.returncode == 0, result.stdout + result.stderr
    findings = [
        line for line in result.stdout.splitlines() if "[WARNING]" in line or "[ERROR]" in line
    ]
    assert findings == []


@pytest.mark.parametrize("minor", SUPPORTED_KUBERNETES_MINORS)
def test_rendered_chart_validates_strictly_for_every_supported_minor(
    render_chart: RenderChart, minor: str
) -> None:
    checked = 0
    for value_set, values in sorted(VALUE_SETS.items()):
        for doc in render_chart(values=values, include_crds=True):
            if (doc["apiVersion"], doc["kind"]) in CRD_TYPED_KINDS:
                continue
            try:
                kubernetes_validate.validate(doc, f"{minor}.0", strict=True)
            except kubernetes_validate.ValidationError as error:
                name = doc["metadata"]["name"]
                pytest.fail(
                    f"{value_set}: {doc['kind']}/{name} invalid for {minor}: {error.message}"
                )
            checked += 1
    assert checked >= 4 * len(VALUE_SETS)


def test_chart_crds_are_identical_to_repository_crds() -> None:
    source = sorted(path.name for path in (REPO_ROOT / "crds").glob("*.yaml"))
    copy = sorted(path.name for path in (CHART_DIR / "crds").glob("*.yaml"))
    assert source, "crds/ holds no CRDs"
    assert copy == source, "chart crds/ differs from crds/: run `make sync-crds`"
    for name in source:
        original, chart_copy = REPO_ROOT / "crds" / name, CHART_DIR / "crds" / name
        if not filecmp.cmp(original, chart_copy, shallow=False):
            diff = difflib.unified_diff(
                original.read_text().splitlines(),
                chart_copy.read_text().splitlines(),
                "crds/" + name,
                "charts/ragflow-operator/crds/" + name,
                lineterm="",
            )
            pytest.fail("chart CRD out of date, run `make sync-crds`:\n" + "\n".join(diff))


def test_chart_renders_the_crds_from_crds_folder(render_chart: RenderChart) -> None:
    crds = by_kind(render_chart(include_crds=True), "CustomResourceDefinition")
    names = sorted(crd["metadata"]["name"] for crd in crds)
    assert names == [
        "alertpolicies.ragflow.operator.dev",
        "backuppolicies.ragflow.operator.dev",
        "ragflowclusters.ragflow.operator.dev",
    ]


def test_operator_deployment_is_one_replica_recreate_with_kopf_liveness(
    render_chart: RenderChart,
) -> None:
    (deployment,) = by_kind(render_chart(), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    (container,) = spec["template"]["spec"]["containers"]
    assert container["args"][0] == "run"
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports[probe["port"]] == 8080
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert "--metrics-port=9090" in container["args"]


def test_operator_pod_meets_the_restricted_pod_security_standard(
    render_chart: RenderChart,
) -> None:
    (deployment,) = by_kind(render_chart(), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
    assert all("hostPath" not in volume for volume in pod.get("volumes", []))


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_object_carries_the_standard_labels(
    render_chart: RenderChart, value_set: str
) -> None:
    for doc in render_chart(values=VALUE_SETS[value_set]):
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "ragflow-operator"
        assert labels["app.kubernetes.io/instance"] == "rfo"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "ragflow"
        assert labels["app.kubernetes.io/version"] == "0.1.0"


def test_watching_all_namespaces_binds_the_role_cluster_wide(render_chart: RenderChart) -> None:
    docs = render_chart()
    (binding,) = by_kind(docs, "ClusterRoleBinding")
    assert by_kind(docs, "RoleBinding") == []
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rfo-ragflow-operator", "namespace": "ragflow-system"}
    ]
    (deployment,) = by_kind(docs, "Deployment")
    assert "--all-namespaces" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_watching_a_namespace_list_binds_only_those_namespaces(render_chart: RenderChart) -> None:
    docs = render_chart(values=VALUE_SETS["namespace-list"])
    assert by_kind(docs, "ClusterRoleBinding") == []
    bindings = by_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert {b["roleRef"]["name"] for b in bindings} == {"rfo-ragflow-operator"}
    (deployment,) = by_kind(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" not in args
    assert [a for a in args if a.startswith("--namespace=")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]


@pytest.mark.parametrize(
    ("values", "expected_error"),
    [
        (["watch.allNamespaces=false"], "minItems"),
        (["replicas=2"], "additional properties 'replicas' not allowed"),
        (["image.pullPolicy=Sometimes"], "value must be one of"),
        (["metrics.port=70000"], "maximum"),
        (["operator.extraEnv[0].name=X", "operator.extraEnv[0].value=30"], "want string"),
    ],
)
def test_values_schema_rejects_invalid_values(
    helm: Path, values: list[str], expected_error: str
) -> None:
    args = ["template", "rfo", str(CHART_DIR)]
    for value in values:
        args += ["--set", value]
    result = run_helm(helm, args)
    assert result.returncode != 0
    assert expected_error in result.stderr


def test_values_schema_is_valid_json_schema_and_accepts_the_defaults() -> None:
    import jsonschema
    import yaml

    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART_DIR / "values.yaml").read_text()), schema)


def test_metrics_service_targets_the_metrics_port(render_chart: RenderChart) -> None:
    docs = render_chart()
    (service,) = by_kind(docs, "Service")
    (deployment,) = by_kind(docs, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert by_kind(docs, "ServiceMonitor") == []
    assert by_kind(render_chart(values=VALUE_SETS["metrics-off"]), "Service") == []


def test_service_monitor_is_well_formed(render_chart: RenderChart) -> None:
    docs = render_chart(
        values=VALUE_SETS["everything-on"] + ["metrics.serviceMonitor.labels.release=kps"]
    )
    (monitor,) = by_kind(docs, "ServiceMonitor")
    (service,) = by_kind(docs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ragflow-system"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert re.fullmatch(r"[0-9]+s", endpoint["interval"])
    assert endpoint["honorLabels"] is True, "backup alerts match on the namespace label"


def test_cluster_role_grants_apply_verbs_on_every_child_kind_the_operator_renders(
    render_chart: RenderChart,
) -> None:
    (cluster_role,) = by_kind(render_chart(), "ClusterRole")
    templates = sorted((REPO_ROOT / "templates").glob("*.j2"))
    assert templates, "templates/ holds no child templates"
    rendered_kinds = set()
    for template in templates:
        rendered_kinds |= set(re.findall(r"^kind:\s*(\w+)", template.read_text(), re.MULTILINE))
    for builder in (REPO_ROOT / "operator" / "ragflow_operator" / "builders").glob("*.py"):
        rendered_kinds |= set(re.findall(r"[\"']kind[\"']:\s*[\"'](\w+)[\"']", builder.read_text()))
    rendered_kinds -= OWN_KINDS  # our custom resources appear only as ownerReferences
    unknown = rendered_kinds - CHILD_KIND_RESOURCES.keys()
    assert not unknown, f"templates render kinds the chart's RBAC does not know: {unknown}"
    removable = {kind for _, kind in removable_child_kinds()}
    assert removable <= rendered_kinds | {"ServiceMonitor", "VerticalPodAutoscaler"}
    for kind in sorted(rendered_kinds):
        group, resource = CHILD_KIND_RESOURCES[kind]
        needed = {"get", "list", "create", "patch"} | ({"delete"} if kind in removable else set())
        missing = needed - granted_verbs(cluster_role, group, resource)
        assert not missing, f"ClusterRole lacks {missing} on {resource} ({kind})"


def test_cluster_role_has_no_wildcards_and_no_verbs_the_operator_never_uses(
    render_chart: RenderChart,
) -> None:
    (cluster_role,) = by_kind(render_chart(), "ClusterRole")
    for rule in cluster_role["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert set(rule["verbs"]) <= APPLY_VERBS, rule
    custom = [r for r in cluster_role["rules"] if r["apiGroups"] == ["ragflow.operator.dev"]]
    for rule in custom:
        assert "create" not in rule["verbs"] and "delete" not in rule["verbs"], (
            "the operator never creates or deletes its own custom resources"
        )
    assert granted_verbs(cluster_role, "", "secrets") == APPLY_VERBS - {"watch"}
    assert granted_verbs(cluster_role, "apps", "deployments") == APPLY_VERBS
    assert granted_verbs(cluster_role, "", "pods") == {"list"}, "pods: read termination messages"
    jobs = granted_verbs(cluster_role, "batch", "jobs")
    assert jobs == {"get", "list", "watch", "create", "patch"}, "Jobs are never deleted (TTL)"
    for _, kind in removable_child_kinds():
        group, resource = CHILD_KIND_RESOURCES[kind]
        assert "delete" in granted_verbs(cluster_role, group, resource), kind
    assert granted_verbs(cluster_role, "events.k8s.io", "events") == set()


def test_rendering_is_byte_identical_for_the_same_input(helm: Path) -> None:
    args = [
        "template",
        "rfo",
        str(CHART_DIR),
        "--include-crds",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ]
    first, second = run_helm(helm, args), run_helm(helm, args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout


def test_notes_tell_how_to_check_the_install_and_point_at_existing_samples(helm: Path) -> None:
    args = ["install", "rfo", str(CHART_DIR), "--namespace", "ops", "--dry-run=client"]
    result = run_helm(
        helm, [*args, "--set", "watch.allNamespaces=false", "--set", "watch.namespaces={a,b}"]
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "kubectl -n ops rollout status deployment/rfo-ragflow-operator" in notes
    assert "Watching: a, b" in notes
    for sample in re.findall(r"samples/[\w.-]+\.yaml", notes):
        assert (REPO_ROOT / sample).is_file(), f"NOTES.txt names a missing {sample}"


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_deployment_args_are_accepted_by_the_operator_cli(
    render_chart: RenderChart, value_set: str
) -> None:
    from ragflow_operator import cli

    (deployment,) = by_kind(render_chart(values=VALUE_SETS[value_set]), "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    parsed = cli._parser().parse_args(args)
    assert parsed.command == "run"
    assert parsed.liveness == "http://0.0.0.0:8080/healthz"
    if value_set == "namespace-list":
        assert parsed.namespace == ["team-a", "team-b"] and not parsed.all_namespaces
    else:
        assert parsed.all_namespaces and not parsed.namespace
    assert parsed.metrics_port == (None if value_set == "metrics-off" else 9090)


@pytest.mark.parametrize("minor", [*SUPPORTED_KUBERNETES_MINORS, "1.29"])
def test_chart_kube_version_constraint_matches_the_supported_minors(helm: Path, minor: str) -> None:
    args = ["template", "rfo", str(CHART_DIR), "--kube-version", f"v{minor}.0"]
    result = run_helm(helm, args)
    if minor in SUPPORTED_KUBERNETES_MINORS:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0 and "kubeVersion" in result.stderr
