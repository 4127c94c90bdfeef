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


class Role(StrEnum):
    """What one process does: serve the API, run ingestion workers, or both (embedded mode)."""

    API = "api"
    WORKER = "worker"
    ALL = "all"


class Settings(BaseSettings):
    """Every knob of the runtime; the operator's ConfigMap sets the same names."""

    model_config = SettingsConfigDict(env_prefix="RAGFLOW_", env_file=None, extra="ignore")

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
    log_level: str = Field("INFO", description="Python logging level.")

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
        if self.embedding_replicas:
            return self.embedding_replicas
        return self.ingest_threads if self.runs_worker else 1

    @property
    def runs_api(self) -> bool:
        return self.role in (Role.API, Role.ALL)

    @property
    def runs_worker(self) -> bool:
        return self.role in (Role.WORKER, Role.ALL)
