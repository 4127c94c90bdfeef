"""The RagFlowCluster model: a frozen, typed view of a RagFlowCluster custom resource.

`ClusterModel.from_body(body)` is called by the kopf handlers (body from the API server, already
defaulted), by handlers/backup_policy.py (the policy's cluster) and by the `render` command
(body from a file). It parses the body ONCE, after model/defaults.py has filled in the defaults
that crds/ragflowclusters.yaml declares (as the API server does), so no default is re-stated
here or in a builder; what the schema cannot express (exactly one of managed/external, no
password inside a URL, a standby that follows another cluster) raises InvalidSpec. The builders
read only this model. User-supplied objects that pass through verbatim (resources, affinity,
tolerations, the HPA behaviour, probe timings) stay `Mapping` fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from ragflow_operator import names
from ragflow_operator.errors import InvalidSpec
from ragflow_operator.model.defaults import defaulted_body
from ragflow_operator.model.standby import StandbyModel, parse_standby

Mode = Literal["managed", "external"]
Json = dict[str, Any]


@dataclass(frozen=True)
class SecretKeyRef:
    """A key in a Secret of the cluster's namespace."""

    name: str
    key: str


# --- runtime pods ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    pull_policy: str
    pull_secrets: tuple[str, ...]

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Workload:
    """`spec.api` or `spec.workers`: one Deployment of runtime pods."""

    replicas: int
    resources: Mapping[str, Any]
    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping[str, Any], ...]
    affinity: Mapping[str, Any]
    #: Spread the pods over nodes and zones (API pods, when no affinity is given).
    topology_spread: bool


@dataclass(frozen=True)
class Embedding:
    model: str
    device: str
    batch_size: int


@dataclass(frozen=True)
class Probes:
    """Timing fields of each probe (periodSeconds, ...), copied into the pod spec."""

    liveness: Mapping[str, int]
    readiness: Mapping[str, int]
    startup: Mapping[str, int]


# --- scaling ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Autoscaling:
    """`spec.autoscaling`: the API Deployment's HorizontalPodAutoscaler."""

    enabled: bool
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int
    target_memory_utilization: int
    latency_target_seconds: float | None
    behavior: Mapping[str, Any]


@dataclass(frozen=True)
class VerticalAutoscaling:
    enabled: bool
    update_mode: str
    min_allowed: Mapping[str, Any]
    max_allowed: Mapping[str, Any]


@dataclass(frozen=True)
class DisruptionBudget:
    enabled: bool
    min_available: int | str


# --- exposure and monitoring -------------------------------------------------------------------
@dataclass(frozen=True)
class IngressTLS:
    #: "" when unset: the builder names the Secret after the cluster.
    secret_name: str
    cluster_issuer: str


@dataclass(frozen=True)
class Ingress:
    enabled: bool
    host: str
    class_name: str
    tls: IngressTLS | None
    rate_limit_rps: int
    rate_limit_burst: int
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class NetworkPolicy:
    enabled: bool
    ingress_namespace: str
    monitoring_namespace: str


@dataclass(frozen=True)
class Monitoring:
    service_monitor: bool
    interval: str
    labels: Mapping[str, str]


# --- dependencies ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ManagedStore:
    """A dependency the operator runs: one StatefulSet with a PVC."""

    image: str
    storage: str
    storage_class_name: str
    resources: Mapping[str, Any]
    #: Redis only (its `--maxmemory`); "" for the others.
    max_memory: str


@dataclass(frozen=True)
class ExternalDatabase:
    host: str
    port: int
    database: str
    ssl_mode: str
    username: SecretKeyRef
    password: SecretKeyRef


@dataclass(frozen=True)
class ExternalCache:
    url: str
    #: None when the URL needs no password.
    password: SecretKeyRef | None


@dataclass(frozen=True)
class ExternalVectorStore:
    uri: str
    token: SecretKeyRef | None


External = TypeVar("External", ExternalDatabase, ExternalCache, ExternalVectorStore)


@dataclass(frozen=True)
class Dependency(Generic[External]):
    """One of PostgreSQL, Redis, Milvus: exactly one of `managed` and `external` is set."""

    component: str
    managed: ManagedStore | None
    external: External | None

    @property
    def is_managed(self) -> bool:
        return self.managed is not None

    @property
    def mode(self) -> Mode:
        return "managed" if self.managed is not None else "external"


@dataclass(frozen=True)
class CacheTTL:
    """The runtime's two cache levels (`spec.cache.l1TTLSeconds`, `l2TTLSeconds`)."""

    l1_seconds: int
    l2_seconds: int


# --- access control ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DependencyTLS:
    """CA (and, `mutual`, a client pair) in one Secret, for TLS to an external dependency."""

    secret_name: str
    mutual: bool
    #: Milvus only (the CRD has no such field for the others).
    server_name: str


#: spec.auth.dependencyTLS keys, in the order every consumer walks them.
TLS_KEYS = ("database", "cache", "vectorStore")


#: Roles that may name a Secret of their keys (spec.auth.roleKeySecrets), in this order.
ROLES = ("admin", "editor", "viewer")


@dataclass(frozen=True)
class Auth:
    api_key: SecretKeyRef
    #: role -> Secret of that role's keys, only the roles that name one (admin, editor, viewer).
    role_key_secrets: Mapping[str, str]
    rotation_grace_seconds: int
    audit_file: bool
    #: spec key (TLS_KEYS) -> settings, only the dependencies that name one.
    dependency_tls: Mapping[str, DependencyTLS]


@dataclass(frozen=True)
class RestoreFrom:
    backup_policy: str
    #: None: the newest backup.
    backup_id: str | None


@dataclass(frozen=True)
class ClusterModel:
    """Everything the builders and the status need from one RagFlowCluster."""

    name: str
    namespace: str
    uid: str
    generation: int
    image: Image
    api: Workload
    workers: Workload
    embedding: Embedding
    probes: Probes
    autoscaling: Autoscaling
    vertical_autoscaling: VerticalAutoscaling
    pod_disruption_budget: DisruptionBudget
    ingress: Ingress
    network_policy: NetworkPolicy
    monitoring: Monitoring
    database: Dependency[ExternalDatabase]
    cache: Dependency[ExternalCache]
    vector_store: Dependency[ExternalVectorStore]
    cache_ttl: CacheTTL
    auth: Auth
    restore_from: RestoreFrom | None
    #: None for a primary (or a promoted standby).
    standby: StandbyModel | None

    # --- parsing ---------------------------------------------------------------------------
    @classmethod
    def from_body(cls, body: Json) -> ClusterModel:
        """Parse a RagFlowCluster body; raises InvalidSpec for what the schema cannot express."""
        body = defaulted_body({**body, "spec": body.get("spec") or {}}, names.PLURAL_CLUSTER)
        meta = body.get("metadata") or {}
        if not meta.get("name"):
            raise InvalidSpec("metadata.name is required")
        name = str(meta["name"])
        spec: Json = body["spec"]
        image = spec["image"]
        monitoring = spec["monitoring"]
        restore = spec.get("restoreFrom")
        return cls(
            name=name,
            namespace=meta.get("namespace") or "default",
            uid=meta.get("uid") or "",
            generation=int(meta.get("generation") or 0),
            image=Image(
                repository=str(image["repository"]),
                tag=str(image["tag"]),
                pull_policy=str(image["pullPolicy"]),
                pull_secrets=tuple(str(s) for s in image.get("pullSecrets") or ()),
            ),
            api=_workload(spec["api"]),
            workers=_workload(spec["workers"]),
            embedding=Embedding(
                model=str(spec["embedding"]["model"]),
                device=str(spec["embedding"]["device"]),
                batch_size=int(spec["embedding"]["batchSize"]),
            ),
            probes=Probes(
                liveness=dict(spec["probes"]["liveness"]),
                readiness=dict(spec["probes"]["readiness"]),
                startup=dict(spec["probes"]["startup"]),
            ),
            autoscaling=_autoscaling(spec["autoscaling"]),
            vertical_autoscaling=_vertical_autoscaling(spec["verticalAutoscaling"]),
            pod_disruption_budget=DisruptionBudget(
                enabled=bool(spec["podDisruptionBudget"]["enabled"]),
                min_available=spec["podDisruptionBudget"]["minAvailable"],
            ),
            ingress=_ingress(spec["ingress"]),
            network_policy=NetworkPolicy(
                enabled=bool(spec["networkPolicy"]["enabled"]),
                ingress_namespace=str(spec["networkPolicy"]["ingressNamespace"]),
                monitoring_namespace=str(spec["networkPolicy"]["monitoringNamespace"]),
            ),
            monitoring=Monitoring(
                service_monitor=bool(monitoring["serviceMonitor"]),
                interval=str(monitoring["interval"]),
                labels=dict(monitoring.get("labels") or {}),
            ),
            database=_dependency(spec, "database", names.COMPONENT_POSTGRES, _external_database),
            cache=_dependency(spec, "cache", names.COMPONENT_REDIS, _external_cache),
            vector_store=_dependency(
                spec, "vectorStore", names.COMPONENT_MILVUS, _external_vector_store
            ),
            cache_ttl=CacheTTL(
                l1_seconds=int(spec["cache"]["l1TTLSeconds"]),
                l2_seconds=int(spec["cache"]["l2TTLSeconds"]),
            ),
            auth=_auth(spec["auth"], name),
            restore_from=(
                RestoreFrom(str(restore["backupPolicy"]), restore.get("backupId"))
                if restore
                else None
            ),
            standby=parse_standby(spec.get("standby"), name),
        )

    # --- helpers -----------------------------------------------------------------------------
    @property
    def api_key(self) -> SecretKeyRef:
        return self.auth.api_key

    @property
    def tls_enabled(self) -> bool:
        return self.ingress.enabled and self.ingress.tls is not None

    @property
    def version(self) -> str:
        return self.image.tag

    @property
    def is_standby(self) -> bool:
        return self.standby is not None

    @property
    def dependencies(self) -> tuple[Dependency[Any], ...]:
        """Database, cache and vector store, in that order."""
        return (self.database, self.cache, self.vector_store)

    def endpoint(self) -> str:
        """The URL clients use: the ingress host when exposed, else the in-cluster Service."""
        if self.ingress.enabled and self.ingress.host:
            scheme = "https" if self.tls_enabled else "http"
            return f"{scheme}://{self.ingress.host}"
        service = names.api_name(self.name)
        return f"http://{service}.{self.namespace}.svc:{names.RUNTIME_PORT}"

    def referenced_secrets(self) -> list[SecretKeyRef]:
        """Secrets the user must provide (external dependencies), in a stable order."""
        refs: list[SecretKeyRef] = []
        database = self.database.external
        if database is not None:
            refs += [database.username, database.password]
        cache = self.cache.external
        if cache is not None and cache.password is not None:
            refs.append(cache.password)
        vector_store = self.vector_store.external
        if vector_store is not None and vector_store.token is not None:
            refs.append(vector_store.token)
        for tls in self.auth.dependency_tls.values():
            files = ["ca.crt", "tls.crt", "tls.key"] if tls.mutual else ["ca.crt"]
            refs.extend(SecretKeyRef(tls.secret_name, f) for f in files)
        return refs


# --- section parsers (the body is defaulted: every field with a CRD default is present) --------
def _workload(section: Json) -> Workload:
    return Workload(
        replicas=int(section["replicas"]),
        resources=dict(section.get("resources") or {}),
        node_selector=dict(section.get("nodeSelector") or {}),
        tolerations=tuple(section.get("tolerations") or ()),
        affinity=dict(section.get("affinity") or {}),
        # spec.workers has no such field: spreading applies to the API pods only
        topology_spread=bool(section.get("topologySpread", False)),
    )


def _autoscaling(section: Json) -> Autoscaling:
    latency = section.get("latencyTargetSeconds")
    return Autoscaling(
        enabled=bool(section["enabled"]),
        min_replicas=int(section["minReplicas"]),
        max_replicas=int(section["maxReplicas"]),
        target_cpu_utilization=int(section["targetCPUUtilization"]),
        target_memory_utilization=int(section["targetMemoryUtilization"]),
        latency_target_seconds=float(latency) if latency else None,
        behavior=dict(section.get("behavior") or {}),
    )


def _vertical_autoscaling(section: Json) -> VerticalAutoscaling:
    return VerticalAutoscaling(
        enabled=bool(section["enabled"]),
        update_mode=str(section["updateMode"]),
        min_allowed=dict(section.get("minAllowed") or {}),
        max_allowed=dict(section.get("maxAllowed") or {}),
    )


def _ingress(section: Json) -> Ingress:
    tls = section.get("tls")
    rate = section["rateLimit"]
    return Ingress(
        enabled=bool(section["enabled"]),
        host=str(section.get("host") or ""),
        class_name=str(section["className"]),
        tls=(
            IngressTLS(str(tls.get("secretName") or ""), str(tls.get("clusterIssuer") or ""))
            if tls is not None
            else None
        ),
        rate_limit_rps=int(rate["rps"]),
        rate_limit_burst=int(rate["burst"]),
        annotations=dict(section.get("annotations") or {}),
    )


def _auth(section: Json, cluster: str) -> Auth:
    api_key = section.get("apiKeySecret") or {}
    roles = section.get("roleKeySecrets") or {}
    tls = section.get("dependencyTLS") or {}
    return Auth(
        api_key=SecretKeyRef(
            name=api_key.get("name") or names.api_key_secret_name(cluster),
            key=api_key.get("key") or names.API_KEY_SECRET_KEY,
        ),
        role_key_secrets={role: str(roles[role]) for role in ROLES if roles.get(role)},
        rotation_grace_seconds=int(section["rotationGraceSeconds"]),
        audit_file=bool(section["auditFile"]),
        dependency_tls={
            key: DependencyTLS(
                secret_name=str(tls[key]["secretName"]),
                mutual=bool(tls[key]["mutual"]),
                server_name=str(tls[key].get("serverName") or ""),
            )
            for key in TLS_KEYS
            if key in tls
        },
    )


def _external_database(section: Json) -> ExternalDatabase:
    creds = section["credentialsSecret"]
    return ExternalDatabase(
        host=str(section["host"]),
        port=int(section["port"]),
        database=str(section["database"]),
        ssl_mode=str(section["sslMode"]),
        username=SecretKeyRef(str(creds["name"]), str(creds["usernameKey"])),
        password=SecretKeyRef(str(creds["name"]), str(creds["passwordKey"])),
    )


def _external_cache(section: Json) -> ExternalCache:
    creds = section.get("credentialsSecret")
    return ExternalCache(
        url=str(section["url"]),
        password=SecretKeyRef(str(creds["name"]), str(creds["passwordKey"])) if creds else None,
    )


def _external_vector_store(section: Json) -> ExternalVectorStore:
    token = section.get("tokenSecret")
    return ExternalVectorStore(
        uri=str(section["uri"]),
        token=SecretKeyRef(str(token["name"]), str(token["key"])) if token else None,
    )


def _managed_store(section: Json) -> ManagedStore:
    return ManagedStore(
        image=str(section["image"]),
        storage=str(section["storage"]),
        storage_class_name=str(section.get("storageClassName") or ""),
        resources=dict(section.get("resources") or {}),
        max_memory=str(section.get("maxMemory") or ""),
    )


def _dependency(
    spec: Json, key: str, component: str, parse_external: Callable[[Json], External]
) -> Dependency[External]:
    section = spec.get(key) or {}
    managed, external = section.get("managed"), section.get("external")
    if (managed is None) == (external is None):
        raise InvalidSpec(
            f"set exactly one of spec.{key}.managed or spec.{key}.external",
            reason="InvalidDependency",
        )
    if managed is not None:
        return Dependency(component=component, managed=_managed_store(managed), external=None)
    assert external is not None  # exactly one of the two is set (checked above)
    for field_name in ("url", "uri", "host"):
        if _has_inline_password(str(external.get(field_name) or "")):
            # the message never repeats the value: it holds a password
            raise InvalidSpec(
                f"spec.{key}.external.{field_name} carries a password: remove it from the URL "
                "and reference a Secret instead (credentialsSecret / tokenSecret)",
                reason="CredentialsInSpec",
            )
    return Dependency(component=component, managed=None, external=parse_external(external))


#: `scheme://user:password@` or `scheme://:password@` at the start of a URL.
_INLINE_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@")


def _has_inline_password(url: str) -> bool:
    """True when a URL carries credentials (a user name alone is not a secret)."""
    return bool(_INLINE_PASSWORD.match(url.strip()))
