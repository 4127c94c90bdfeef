"""The opened runtime: settings plus every store, the embedder and the metrics, in one value.

``open_runtime(settings)`` is the plain-Python entry point: the FastAPI lifespan, the worker
process, tests and benchmarks all call it, then use ``ragruntime.services`` and
``ragruntime.retrieval.search`` on the returned ``Runtime``. ``close()`` releases everything.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from ragruntime.config import Settings
from ragruntime.embedding import Embedder, set_torch_threads
from ragruntime.metrics import RuntimeMetrics
from ragruntime.retrieval.sync import IndexManager
from ragruntime.security.tls import postgres_connect_args
from ragruntime.store.cache import CacheLayer, MemoryCache, RedisCache, TieredCache
from ragruntime.store.database import is_postgres
from ragruntime.store.files import DatabaseFileStore, FileStore, LocalFileStore
from ragruntime.store.metadata import SqlMetadataStore
from ragruntime.store.queue import ClaimPolicy, TaskQueue
from ragruntime.store.vectors import MilvusVectorStore

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    metadata: SqlMetadataStore
    queue: TaskQueue
    vectors: MilvusVectorStore
    files: FileStore
    cache: TieredCache
    embedder: Embedder
    metrics: RuntimeMetrics
    index: IndexManager
    search_slots: threading.BoundedSemaphore
    redis_layer: RedisCache | None = None
    closers: list[object] = field(default_factory=list)

    @property
    def claim_policy(self) -> ClaimPolicy:
        return ClaimPolicy(self.settings.task_lease_seconds, self.settings.task_max_attempts)

    def close(self) -> None:
        self.index.close()
        if self.redis_layer is not None:
            self.redis_layer.close()
        self.vectors.close()
        self.metadata.close()


def load_embedder(settings: Settings) -> Embedder:
    """The model as ``settings`` ask: torch threads, one replica per ingest thread, query cache."""
    set_torch_threads(settings.torch_threads)
    embedder = Embedder.load(
        settings.embedding_model,
        settings.embedding_device,
        settings.embedding_batch_size,
        replicas=settings.encoder_replicas,
        query_cache_size=settings.query_embedding_cache,
        query_precision=settings.query_embedding_precision,
    )
    log.info(
        "embedding model loaded",
        extra={
            "model": settings.embedding_model,
            "replicas": embedder.replicas,
            "query_precision": str(embedder.query_precision),
        },
    )
    return embedder


def open_runtime(
    settings: Settings, *, embedder: Embedder | None = None, metrics: RuntimeMetrics | None = None
) -> Runtime:
    """Open the stores named by ``settings`` and load (or reuse) the embedding model."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database_url = settings.resolved_database_url()
    metadata = SqlMetadataStore.open(
        database_url,
        postgres_connect_args(settings.database_tls()) if is_postgres(database_url) else None,
    )
    embedder = embedder or load_embedder(settings)
    vectors = MilvusVectorStore(
        settings.resolved_vector_uri(),
        settings.vector_token,
        embedder.dimension,
        settings.vector_tls(),
    )
    files: FileStore = (
        DatabaseFileStore(metadata.engine)
        if is_postgres(database_url)
        else LocalFileStore(settings.files_dir)
    )
    metrics = metrics or RuntimeMetrics()
    layers: list[CacheLayer] = [
        MemoryCache(settings.cache_l1_ttl_seconds, settings.cache_l1_max_entries)
    ]
    redis_layer = None
    if settings.cache_url:
        redis_layer = RedisCache(
            settings.cache_url, settings.cache_l2_ttl_seconds, settings.cache_tls()
        )
        layers.append(redis_layer)
    cache = TieredCache(layers, metrics.record_cache)
    queue = TaskQueue(metadata.engine)
    index = IndexManager(
        metadata.engine,
        vectors,
        embedder.dimension,
        settings.index_dir,
        inline_rows=settings.index_inline_sync_rows,
        on_sync=metrics.record_index_sync,
    )
    metrics.bind_queue(queue)
    log.info(
        "runtime opened",
        extra={
            "database": database_url.split(":", 1)[0],
            "l2_cache": bool(redis_layer),
            "tls": [
                name
                for name, tls in (
                    ("database", settings.database_tls()),
                    ("cache", settings.cache_tls()),
                    ("vector_store", settings.vector_tls()),
                )
                if tls.enabled
            ],
        },
    )
    return Runtime(
        settings=settings,
        metadata=metadata,
        queue=queue,
        vectors=vectors,
        files=files,
        cache=cache,
        embedder=embedder,
        metrics=metrics,
        index=index,
        search_slots=threading.BoundedSemaphore(settings.search_slots),
        redis_layer=redis_layer,
    )
