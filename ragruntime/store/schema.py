"""SQL tables of the metadata database (SQLite in embedded mode, PostgreSQL in clusters).

SQLAlchemy Core only, portable across both engines. ``ragruntime.store.metadata`` and
``ragruntime.store.queue`` read and write these; the backup engine dumps them.
Times are epoch milliseconds (``*_ms``) or epoch seconds (``lease_expires_at``).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata_obj = sa.MetaData()

datasets = sa.Table(
    "datasets",
    metadata_obj,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("name_key", sa.String(128), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("avatar", sa.Text),
    sa.Column("embedding_model", sa.String(255), nullable=False),
    sa.Column("permission", sa.String(16), nullable=False),
    sa.Column("chunk_method", sa.String(32), nullable=False),
    sa.Column("parser_config", sa.JSON, nullable=False),
    sa.Column("pagerank", sa.Integer, nullable=False, default=0),
    # Bumped in the same transaction as every change that can alter retrieval results, so
    # cache keys that include it make older entries unreachable.
    sa.Column("version", sa.BigInteger, nullable=False, default=1),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
)

documents = sa.Table(
    "documents",
    metadata_obj,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "dataset_id", sa.String(32), sa.ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    ),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("suffix", sa.String(16), nullable=False),
    sa.Column("file_key", sa.String(255), nullable=False),
    sa.Column("run", sa.String(8), nullable=False),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
    sa.Column("progress_msg", sa.Text, nullable=False, default=""),
    sa.Column("chunk_count", sa.Integer, nullable=False, default=0),
    sa.Column("token_count", sa.Integer, nullable=False, default=0),
    # The generation whose chunks are searchable; NULL = none. Flipped atomically on success.
    sa.Column("active_generation", sa.BigInteger),
    sa.Column("process_begin_at_ms", sa.BigInteger),
    sa.Column("process_duration", sa.Float, nullable=False, default=0.0),
    sa.Column("chunk_method", sa.String(32), nullable=False),
    sa.Column("parser_config", sa.JSON, nullable=False),
    sa.Column("meta_fields", sa.JSON, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
)

tasks = sa.Table(
    "ingest_tasks",
    metadata_obj,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("document_id", sa.String(32), nullable=False, index=True),
    sa.Column("dataset_id", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("generation", sa.BigInteger, nullable=False, default=0),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_expires_at", sa.Float),
    sa.Column("error", sa.Text),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_ingest_tasks_state_created", "state", "created_at_ms"),
)

file_blobs = sa.Table(
    "file_blobs",
    metadata_obj,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# API keys (ragruntime.security.keys): only the SHA-256 digest of a key is stored, never the key.
api_keys = sa.Table(
    "api_keys",
    metadata_obj,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # NULL = every dataset; else the JSON list of dataset ids the key may touch.
    sa.Column("dataset_ids", sa.JSON),
    # "api" (created through the API or CLI), "env" (RAGFLOW_API_KEY) or "secret:<role>".
    sa.Column("source", sa.String(64), nullable=False, index=True),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    # Set when a key is rotated or leaves its Secret: valid until then (the grace period).
    sa.Column("expires_at_ms", sa.BigInteger),
    sa.Column("revoked_at_ms", sa.BigInteger),
)
