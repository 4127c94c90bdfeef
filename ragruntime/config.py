"""Runtime configuration: one pydantic-settings ``Settings`` read from ``RAGFLOW_*`` variables.

The URLs choose the backends: ``sqlite:///...`` or ``postgresql://...`` for metadata and the
ingest queue, a Milvus Lite file path or ``http://host:19530`` for vectors, and an empty or
``redis://...`` cache URL. Nothing is created at import time: ``ragruntime.cli`` and tests call
``Settings()`` (or pass overrides) and hand the value to ``ragruntime.app.create_app``.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragflow_contract import environment
from ragruntime.security.tls import TlsFiles


class QueryPrecision(StrEnum):
    """Arithmetic of the query encoder's forward pass (documents are always encoded in float32)."""

    AUTO = "auto"  # bfloat16 where the CPU computes it natively, else float32
    BFLOAT16 = "bfloat16"
    FLOAT32 = "float32"


class Role(StrEnum):
    """What one process does: serve the API, run ingestion workers, or both (embedded mode)."""

    API = "api"
    WORKER = "worker"
    ALL = "all"


class Settings(BaseSettings):
    """Every knob of the runtime; the operator sets those ``ragflow_contract.environment`` names."""

    model_config = SettingsConfigDict(env_prefix=environment.PREFIX, env_file=None, extra="ignore")

    data_dir: Path = Field(
        Path("./ragflow-data"),
        description="Root for the embedded SQLite file, the Milvus Lite file and stored documents.",
    )
    database_url: str = Field(
        "", description="sqlite:///path or postgresql://...; empty = <data_dir>/ragflow.db."
    )
    vector_uri: str = Field(
        "",
        description="Milvus Lite file path or http(s)://host:19530; empty = <data_dir>/milvus.db.",
    )
    vector_token: str = Field("", description="Milvus token (user:password or API key).")
    cache_url: str = Field("", description="Empty = in-process L1 only; redis://... adds L2.")
    api_key: str = Field("", description="Bearer key every /api/v1 request must present.")
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Model name shipped by a gt-* package, or a local sentence-transformers path.",
    )
    embedding_device: str = Field("cpu", description="torch device: cpu, cuda, cuda:0, mps.")
    embedding_batch_size: int = Field(64, ge=1, description="Texts per encode() call.")
    cache_l1_ttl_seconds: float = Field(300.0, ge=0, description="In-process cache entry life.")
    cache_l2_ttl_seconds: float = Field(3600.0, ge=0, description="Redis cache entry life.")
    cache_l1_max_entries: int = Field(2048, ge=0, description="LRU bound of the L1 cache.")
    host: str = Field("0.0.0.0", description="Listen address of the HTTP server.")
    port: int = Field(9380, ge=1, le=65535, description="RAGFlow's API port.")
    max_upload_bytes: int = Field(
        100 * 1024 * 1024, ge=1, description="Largest accepted upload request; larger -> 413."
    )
    role: Role = Field(Role.ALL, description="api, worker, or all (embedded).")
    cluster_name: str = Field("local", description="Name of the deployment (logs, backups).")
    standby: bool = Field(
        False,
        description="A read-only standby fed by `ragruntime standby` from a primary's backups: "
        "writes get 409, workers take no tasks. Unset it (and restart) to promote.",
    )
    worker_threads: int = Field(
        0,
        ge=0,
        description="Ingestion tasks processed at once; 0 = one per usable core (at most 8).",
    )
    embedding_replicas: int = Field(
        0,
        ge=0,
        description="Model copies encoding in parallel; 0 = one per worker thread (API: one).",
    )
    torch_threads: int = Field(
        1,
        ge=0,
        description="torch intra-op threads per process; 0 = torch's default (all cores).",
    )
    search_concurrency: int = Field(
        0,
        ge=0,
        description="Retrievals computed at once per process (others wait); 0 = usable cores.",
    )
    query_embedding_cache: int = Field(
        4096, ge=0, description="Query embeddings kept in an LRU cache (0 = no cache)."
    )
    query_embedding_precision: QueryPrecision = Field(
        QueryPrecision.AUTO,
        description="Query encoder arithmetic: auto (bfloat16 on CPUs with native bfloat16, "
        "else float32), bfloat16 or float32. Document vectors stay float32.",
    )
    index_inline_sync_rows: int = Field(
        2000,
        ge=0,
        description="A query waits for its dataset's index sync when it fetches at most this many"
        " rows; a larger sync runs in the background (older snapshot or Milvus meanwhile).",
    )
    index_watch_seconds: float = Field(
        5.0, gt=0, description="How often an API process checks dataset versions to sync."
    )

    task_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="A claimed task returns to the queue if its worker is silent this long.",
    )
    task_max_attempts: int = Field(3, ge=1, description="Claims before a task is declared failed.")
    worker_poll_seconds: float = Field(0.5, gt=0, description="Idle wait between queue polls.")
    shutdown_grace_seconds: float = Field(
        20.0,
        ge=0,
        description="How long a stopping worker may finish its task before returning it.",
    )
    parse_timeout_seconds: float = Field(
        120.0, gt=0, description="Time budget for parsing one document; then it fails."
    )
    parse_memory_mb: int = Field(
        1024, ge=64, description="Memory budget (address space) of one document's parser."
    )
    parse_inline_max_kb: int = Field(
        32,
        ge=0,
        description="Plain-text documents (txt, md, csv, json...) up to this size are parsed in "
        "the worker thread instead of a sandbox process; 0 = always the sandbox.",
    )
    parse_max_pages: int = Field(2000, ge=1, description="Most PDF pages / PPTX slides.")
    parse_max_stream_mb: int = Field(
        32, ge=1, description="Largest decompressed PDF stream or DOCX/XLSX/PPTX part."
    )
    parse_max_unpacked_mb: int = Field(
        256, ge=1, description="All parts of one DOCX/XLSX/PPTX together, decompressed."
    )
    parse_max_ratio: int = Field(
        200, ge=1, description="Largest compression ratio of a DOCX/XLSX/PPTX part over 1 MiB."
    )
    log_level: str = Field("INFO", description="Python logging level.")
    # --- access control and audit (ragruntime.security) ---
    auth_keys_dir: Path | None = Field(
        None,
        description="Per-role key files (<dir>/admin|editor|viewer/<file>), re-read periodically.",
    )
    auth_reload_seconds: float = Field(
        10.0, gt=0, description="How often the key files are re-read."
    )
    auth_rotation_grace_seconds: float = Field(
        300.0,
        ge=0,
        description="A rotated key, or one removed from its Secret, stays valid this long.",
    )
    audit_file: Path | None = Field(
        None, description="Also append the audit trail (JSON lines) to this file."
    )
    # --- TLS to the dependencies (ragruntime.security.tls): a CA file turns TLS on ---
    database_tls_ca: str = Field("", description="CA bundle verifying PostgreSQL (verify-full).")
    database_tls_cert: str = Field("", description="Client certificate for PostgreSQL (mTLS).")
    database_tls_key: str = Field("", description="Client key for PostgreSQL (mTLS).")
    cache_tls_ca: str = Field("", description="CA bundle verifying Redis (rediss://).")
    cache_tls_cert: str = Field("", description="Client certificate for Redis (mTLS).")
    cache_tls_key: str = Field("", description="Client key for Redis (mTLS).")
    vector_tls_ca: str = Field("", description="CA bundle verifying Milvus (https://).")
    vector_tls_cert: str = Field("", description="Client certificate for Milvus (mTLS).")
    vector_tls_key: str = Field("", description="Client key for Milvus (mTLS).")
    vector_tls_server_name: str = Field(
        "", description="Name expected in Milvus' certificate when it differs from the host."
    )

    def database_tls(self) -> TlsFiles:
        return TlsFiles(self.database_tls_ca, self.database_tls_cert, self.database_tls_key)

    def cache_tls(self) -> TlsFiles:
        return TlsFiles(self.cache_tls_ca, self.cache_tls_cert, self.cache_tls_key)

    def vector_tls(self) -> TlsFiles:
        return TlsFiles(
            self.vector_tls_ca,
            self.vector_tls_cert,
            self.vector_tls_key,
            self.vector_tls_server_name,
        )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ragflow.db').resolve()}"

    def resolved_vector_uri(self) -> str:
        if self.vector_uri:
            return self.vector_uri
        return str((self.data_dir / "milvus.db").resolve())

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def index_dir(self) -> Path:
        """Where each process persists its query-side index (``ragruntime.retrieval.sync``)."""
        return self.data_dir / "index"

    @property
    def ingest_threads(self) -> int:
        """``worker_threads``, with 0 resolved to the usable cores (each encodes on one)."""
        if self.worker_threads:
            return self.worker_threads
        return max(1, min(8, len(os.sched_getaffinity(0))))

    @property
    def search_slots(self) -> int:
        return self.search_concurrency or len(os.sched_getaffinity(0))

    @property
    def encoder_replicas(self) -> int:
        """Model copies: one per ingest thread, or per search slot in an ``api`` process (each
        concurrent query embeds on its own copy; torch releases the GIL)."""
        if self.embedding_replicas:
            return self.embedding_replicas
        return self.ingest_threads if self.runs_worker else self.search_slots

    @property
    def runs_api(self) -> bool:
        return self.role in (Role.API, Role.ALL)

    @property
    def runs_worker(self) -> bool:
        return self.role in (Role.WORKER, Role.ALL)
