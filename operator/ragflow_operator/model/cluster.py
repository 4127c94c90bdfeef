"""Typed model of a RagFlowCluster, parsed from a defaulted CR body.

`ClusterModel.from_body(body)` is called by the kopf handlers (body from the API server, already
defaulted) and by the `render` command (body from a file, defaulted by model/defaults.py). The
builders read only this model. Pure helpers (`hpa_enabled`, `Dependency.mode`) live here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ragflow_operator import names
from ragflow_operator.errors import InvalidSpec
from ragflow_operator.model.defaults import defaulted_body

Mode = Literal["managed", "external"]
Json = dict[str, Any]


@dataclass(frozen=True)
class SecretKeyRef:
    """A key in a Secret of the cluster's namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class Dependency:
    """One of PostgreSQL, Redis, Milvus: either managed by us or an external connection."""

    component: str
    mode: Mode
    managed: Json = field(default_factory=dict)
    external: Json = field(default_factory=dict)

    @property
    def is_managed(self) -> bool:
        return self.mode == "managed"


@dataclass(frozen=True)
class ClusterModel:
    """Everything the builders need from one RagFlowCluster."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: Json
    database: Dependency
    cache: Dependency
    vector_store: Dependency
    api_key: SecretKeyRef

    # --- parsing ---------------------------------------------------------------------------
    @classmethod
    def from_body(cls, body: Json, *, apply_defaults: bool = True) -> ClusterModel:
        """Parse a RagFlowCluster body; raises InvalidSpec for what the schema cannot express."""
        if apply_defaults:
            body = defaulted_body(body, names.PLURAL_CLUSTER)
        meta = body.get("metadata") or {}
        if not meta.get("name"):
            raise InvalidSpec("metadata.name is required")
        spec: Json = body.get("spec") or {}
        auth = (spec.get("auth") or {}).get("apiKeySecret") or {}
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace") or "default",
            uid=meta.get("uid") or "",
            generation=int(meta.get("generation") or 0),
            spec=spec,
            database=_dependency(spec, "database", names.COMPONENT_POSTGRES),
            cache=_dependency(spec, "cache", names.COMPONENT_REDIS),
            vector_store=_dependency(spec, "vectorStore", names.COMPONENT_MILVUS),
            api_key=SecretKeyRef(
                name=auth.get("name") or names.api_key_secret_name(meta["name"]),
                key=auth.get("key") or names.API_KEY_SECRET_KEY,
            ),
        )

    # --- helpers -----------------------------------------------------------------------------
    def section(self, key: str) -> Json:
        """A spec section (defaulted), `{}` when absent."""
        value = self.spec.get(key)
        return value if isinstance(value, dict) else {}

    @property
    def hpa_enabled(self) -> bool:
        return bool(self.section("autoscaling").get("enabled"))

    @property
    def vpa_enabled(self) -> bool:
        return bool(self.section("verticalAutoscaling").get("enabled"))

    @property
    def ingress_enabled(self) -> bool:
        return bool(self.section("ingress").get("enabled"))

    @property
    def tls_enabled(self) -> bool:
        return self.ingress_enabled and "tls" in self.section("ingress")

    @property
    def image(self) -> str:
        image = self.section("image")
        repository = image.get("repository") or names.RUNTIME_DEFAULT_IMAGE
        return f"{repository}:{image.get('tag') or 'latest'}"

    @property
    def version(self) -> str:
        return str(self.section("image").get("tag") or "latest")

    @property
    def dependencies(self) -> tuple[Dependency, Dependency, Dependency]:
        return (self.database, self.cache, self.vector_store)

    def endpoint(self) -> str:
        """The URL clients use: the ingress host when exposed, else the in-cluster Service."""
        ingress = self.section("ingress")
        if self.ingress_enabled and ingress.get("host"):
            scheme = "https" if self.tls_enabled else "http"
            return f"{scheme}://{ingress['host']}"
        service = names.api_name(self.name)
        return f"http://{service}.{self.namespace}.svc:{names.RUNTIME_PORT}"

    def referenced_secrets(self) -> list[SecretKeyRef]:
        """Secrets the user must provide (external dependencies), in a stable order."""
        refs: list[SecretKeyRef] = []
        db = self.database.external
        if db:
            creds = db["credentialsSecret"]
            refs.append(SecretKeyRef(creds["name"], creds.get("usernameKey", "username")))
            refs.append(SecretKeyRef(creds["name"], creds.get("passwordKey", "password")))
        cache_creds = self.cache.external.get("credentialsSecret")
        if cache_creds:
            password_key = cache_creds.get("passwordKey", "password")
            refs.append(SecretKeyRef(cache_creds["name"], password_key))
        token = self.vector_store.external.get("tokenSecret")
        if token:
            refs.append(SecretKeyRef(token["name"], token.get("key", "token")))
        tls = (self.spec.get("auth") or {}).get("dependencyTLS") or {}
        for key in ("database", "cache", "vectorStore"):
            if key in tls:  # CA (and client pair) for TLS to that dependency
                files = ["ca.crt", "tls.crt", "tls.key"] if tls[key].get("mutual") else ["ca.crt"]
                refs.extend(SecretKeyRef(tls[key]["secretName"], f) for f in files)
        return refs


def _dependency(spec: Json, key: str, component: str) -> Dependency:
    section = spec.get(key) or {}
    managed, external = section.get("managed"), section.get("external")
    if (managed is None) == (external is None):
        raise InvalidSpec(
            f"set exactly one of spec.{key}.managed or spec.{key}.external",
            reason="InvalidDependency",
        )
    if managed is not None:
        return Dependency(component=component, mode="managed", managed=dict(managed))
    assert external is not None  # exactly one of the two is set (checked above)
    for field_name in ("url", "uri", "host"):
        if _has_inline_password(str(external.get(field_name) or "")):
            # the message never repeats the value: it holds a password
            raise InvalidSpec(
                f"spec.{key}.external.{field_name} carries a password: remove it from the URL "
                "and reference a Secret instead (credentialsSecret / tokenSecret)",
                reason="CredentialsInSpec",
            )
    return Dependency(component=component, mode="external", external=dict(external))


#: `scheme://user:password@` or `scheme://:password@` at the start of a URL.
_INLINE_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@]*:[^/@]*@")


def _has_inline_password(url: str) -> bool:
    """True when a URL carries credentials (a user name alone is not a secret)."""
    return bool(_INLINE_PASSWORD.match(url.strip()))
