"""Names every part of the operator shares: API group, kinds, labels, annotations, child names.

Pure constants and string helpers. Imported by the models, builders, apply layer, handlers and the
BackupPolicy/AlertPolicy modules. Child names depend only on the custom resource's name, so a
restarted operator finds (and adopts) what an earlier run created.
"""

from __future__ import annotations

GROUP = "ragflow.operator.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

KIND_CLUSTER = "RagFlowCluster"
PLURAL_CLUSTER = "ragflowclusters"
KIND_BACKUP_POLICY = "BackupPolicy"
PLURAL_BACKUP_POLICY = "backuppolicies"
KIND_ALERT_POLICY = "AlertPolicy"
PLURAL_ALERT_POLICY = "alertpolicies"

#: Server-side apply field manager of every write the operator makes.
FIELD_MANAGER = "ragflow-operator"
#: Field manager that keeps `spec.replicas` alive while an HPA takes it over (see apply.py).
HANDOVER_FIELD_MANAGER = "ragflow-operator-handover"

# Recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_VERSION = "app.kubernetes.io/version"
APP_NAME = "ragflow"
MANAGED_BY = "ragflow-operator"

# Annotations.
ANNOTATION_PREFIX = f"{GROUP}/"
#: Hash of the desired manifest last applied to a child; apply.py skips unchanged children.
ANNOTATION_APPLIED_HASH = f"{GROUP}/applied-hash"
#: Hash of the runtime ConfigMap, put on pod templates so a config change rolls the pods.
ANNOTATION_CONFIG_HASH = f"{GROUP}/config-hash"
#: Set to any new value on a BackupPolicy to request an on-demand backup.
ANNOTATION_BACKUP_NOW = f"{GROUP}/backup-now"
#: Marks a manifest created once and never updated (generated Secrets): see apply.py.
ANNOTATION_CREATE_ONLY = f"{GROUP}/create-only"

# Components (values of LABEL_COMPONENT).
COMPONENT_API = "api"
COMPONENT_WORKER = "worker"
COMPONENT_POSTGRES = "postgres"
COMPONENT_REDIS = "redis"
COMPONENT_MILVUS = "milvus"
COMPONENT_CONFIG = "config"
COMPONENT_BACKUP = "backup"
COMPONENT_ALERTS = "alerts"

# Runtime container facts shared with ragruntime.
RUNTIME_PORT = 9380
RUNTIME_PORT_NAME = "http"
RUNTIME_CONTAINER = "ragflow"
LIVENESS_PATH = "/health"
READINESS_PATH = "/ready"
METRICS_PATH = "/metrics"
#: Per-pod p95 query latency served through the custom metrics API by prometheus-adapter.
LATENCY_METRIC = "ragflow_query_latency_p95_seconds"

API_KEY_SECRET_KEY = "api-key"


def instance_labels(cluster: str) -> dict[str, str]:
    """Labels that select every child of one RagFlowCluster (used for listing and removal)."""
    return {LABEL_INSTANCE: cluster, LABEL_MANAGED_BY: MANAGED_BY}


def component_labels(cluster: str, component: str) -> dict[str, str]:
    """Full label set of a child of `cluster` with the given component."""
    return {
        LABEL_NAME: APP_NAME,
        LABEL_INSTANCE: cluster,
        LABEL_COMPONENT: component,
        LABEL_PART_OF: APP_NAME,
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def selector_labels(cluster: str, component: str) -> dict[str, str]:
    """The immutable subset used in Deployment/StatefulSet selectors and Service selectors."""
    return {LABEL_NAME: APP_NAME, LABEL_INSTANCE: cluster, LABEL_COMPONENT: component}


def selector_string(labels: dict[str, str]) -> str:
    """`a=b,c=d` form of a label map, keys sorted (for label selectors and status.selector)."""
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def child_name(cluster: str, suffix: str) -> str:
    """Name of a child: `<cluster>-<suffix>` (e.g. `docs-api`, `docs-postgres`)."""
    return f"{cluster}-{suffix}"


def api_name(cluster: str) -> str:
    return child_name(cluster, COMPONENT_API)


def worker_name(cluster: str) -> str:
    return child_name(cluster, COMPONENT_WORKER)


def config_name(cluster: str) -> str:
    return child_name(cluster, "config")


def api_key_secret_name(cluster: str) -> str:
    return child_name(cluster, "api-key")


def credentials_secret_name(cluster: str, component: str) -> str:
    """Generated credentials of a managed dependency (`<cluster>-postgres-credentials`)."""
    return child_name(cluster, f"{component}-credentials")
