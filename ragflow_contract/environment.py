"""The ``RAGFLOW_*`` environment of a runtime container.

The operator writes these names (the non-secret ones in the cluster's ConfigMap, the role, the
Secret-backed ones and the URLs built from Secrets in the pod's ``env``); ``ragruntime.config``
reads every one of them as a ``Settings`` field (pydantic-settings: ``PREFIX`` + the field name
upper-cased). ``REQUIRED`` are the ones a runtime in a cluster cannot do without: left unset, it
would fall back to its embedded defaults (a SQLite file, a Milvus Lite file, a generated key).
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "RAGFLOW_"

ROLE = "RAGFLOW_ROLE"
CLUSTER_NAME = "RAGFLOW_CLUSTER_NAME"
DATA_DIR = "RAGFLOW_DATA_DIR"
PORT = "RAGFLOW_PORT"
LOG_LEVEL = "RAGFLOW_LOG_LEVEL"
API_KEY = "RAGFLOW_API_KEY"
DATABASE_URL = "RAGFLOW_DATABASE_URL"
VECTOR_URI = "RAGFLOW_VECTOR_URI"
VECTOR_TOKEN = "RAGFLOW_VECTOR_TOKEN"
CACHE_URL = "RAGFLOW_CACHE_URL"
EMBEDDING_MODEL = "RAGFLOW_EMBEDDING_MODEL"
EMBEDDING_DEVICE = "RAGFLOW_EMBEDDING_DEVICE"
EMBEDDING_BATCH_SIZE = "RAGFLOW_EMBEDDING_BATCH_SIZE"
CACHE_L1_TTL_SECONDS = "RAGFLOW_CACHE_L1_TTL_SECONDS"
CACHE_L2_TTL_SECONDS = "RAGFLOW_CACHE_L2_TTL_SECONDS"
AUTH_KEYS_DIR = "RAGFLOW_AUTH_KEYS_DIR"
AUTH_ROTATION_GRACE_SECONDS = "RAGFLOW_AUTH_ROTATION_GRACE_SECONDS"
AUDIT_FILE = "RAGFLOW_AUDIT_FILE"
#: "true" on the api and worker pods of a standby cluster: writes refused, no ingestion.
STANDBY = "RAGFLOW_STANDBY"


@dataclass(frozen=True)
class TlsVariables:
    """The files (and, for Milvus, the expected server name) of TLS to one dependency."""

    ca: str
    cert: str
    key: str
    server_name: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.ca, self.cert, self.key, self.server_name) if n)


DATABASE_TLS = TlsVariables(
    "RAGFLOW_DATABASE_TLS_CA", "RAGFLOW_DATABASE_TLS_CERT", "RAGFLOW_DATABASE_TLS_KEY"
)
CACHE_TLS = TlsVariables("RAGFLOW_CACHE_TLS_CA", "RAGFLOW_CACHE_TLS_CERT", "RAGFLOW_CACHE_TLS_KEY")
VECTOR_TLS = TlsVariables(
    "RAGFLOW_VECTOR_TLS_CA",
    "RAGFLOW_VECTOR_TLS_CERT",
    "RAGFLOW_VECTOR_TLS_KEY",
    "RAGFLOW_VECTOR_TLS_SERVER_NAME",
)

#: Set in every api and worker container of a cluster, whatever the spec says.
REQUIRED = frozenset(
    {
        ROLE,
        CLUSTER_NAME,
        DATA_DIR,
        PORT,
        API_KEY,
        DATABASE_URL,
        VECTOR_URI,
        CACHE_URL,
        EMBEDDING_MODEL,
        EMBEDDING_DEVICE,
        EMBEDDING_BATCH_SIZE,
        CACHE_L1_TTL_SECONDS,
        CACHE_L2_TTL_SECONDS,
    }
)
#: Set only when the spec asks for them (a token, access control, audit, TLS, a backup Job, a
#: standby).
OPTIONAL = frozenset(
    {
        VECTOR_TOKEN,
        AUTH_KEYS_DIR,
        AUTH_ROTATION_GRACE_SECONDS,
        AUDIT_FILE,
        LOG_LEVEL,
        STANDBY,
        *DATABASE_TLS.names,
        *CACHE_TLS.names,
        *VECTOR_TLS.names,
    }
)
#: Every name the operator may write into a runtime container.
ALL = REQUIRED | OPTIONAL
