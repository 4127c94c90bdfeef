"""``create_app(settings)``: the FastAPI application and its lifespan.

The lifespan opens the runtime in the background (stores + embedding model, in threads so the
event loop stays free; retried while dependencies are unreachable), starts the ingestion worker
when the role includes it, and on shutdown stops the worker (it finishes or returns its task)
before closing the stores. Nothing happens at import time. ``/health`` answers at once;
``/ready`` and the API only once everything is open (503 before).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ragruntime import __version__
from ragruntime.api.auth import AuditTrail, authorize
from ragruntime.api.errors import install_error_handlers
from ragruntime.api.routes import chunks, datasets, documents, keys, retrieval, standby, system
from ragruntime.config import Settings
from ragruntime.embedding import Embedder
from ragruntime.errors import RuntimeServiceError, failure_name
from ragruntime.ingest.worker import Worker
from ragruntime.metrics import RuntimeMetrics
from ragruntime.runtime import Runtime, load_embedder, open_runtime
from ragruntime.security.audit import AuditLog
from ragruntime.security.keys import KeyStore, SyncResult
from ragruntime.security.sources import KeySync
from ragruntime.store import standby as standby_state
from ragruntime.store.database import now_ms

log = logging.getLogger(__name__)


class ConnectionMetrics:
    """ASGI middleware: ``ragflow_active_connections`` and ``ragflow_http_requests_total``."""

    def __init__(self, app: ASGIApp, metrics: RuntimeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        self.metrics.active_connections.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.active_connections.dec()
            route = route_template(scope)
            self.metrics.http_requests.labels(scope["method"], route, str(status["code"])).inc()


def route_template(scope: Scope) -> str:
    """The full path with parameters as placeholders (``/api/v1/datasets/{dataset_id}``).

    Nested routers report their own relative path in ``scope["route"]``, so the template is
    rebuilt from the request path and its matched parameters; unmatched paths share one label
    so that scanners cannot grow the series count.
    """
    if scope.get("route") is None:
        return "unmatched"
    segments = scope["path"].split("/")
    by_value = {str(v): k for k, v in (scope.get("path_params") or {}).items()}
    return "/".join(f"{{{by_value[s]}}}" if s in by_value else s for s in segments)


def resolve_api_key(settings: Settings) -> str:
    """The configured key, or one generated once and kept in <data_dir>/api_key (mode 0600)."""
    if settings.api_key:
        return settings.api_key
    path = settings.data_dir / "api_key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = "ragflow-" + secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    log.warning("RAGFLOW_API_KEY not set; generated one", extra={"key_file": str(path)})
    return key


OPEN_RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0)  # seconds between attempts; the last repeats


class Lifecycle:
    """Opens the runtime in the background, retrying while its dependencies come up.

    The HTTP server answers from the first second (``/health`` 200, ``/ready`` 503, API 503),
    so a pod that starts before PostgreSQL or Milvus waits instead of crash-looping. Once open,
    the worker starts (if the role has one). ``close`` stops the worker first (it finishes or
    returns its task), then closes the stores.
    """

    def __init__(
        self, app: FastAPI, settings: Settings, embedder: Embedder | None, metrics: RuntimeMetrics
    ) -> None:
        self.app, self.settings, self.embedder, self.metrics = app, settings, embedder, metrics
        self.worker: Worker | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reload: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._open())

    async def _retry_wait(self, attempt: int, what: str, exc: Exception) -> None:
        delay = OPEN_RETRY_DELAYS[min(attempt, len(OPEN_RETRY_DELAYS) - 1)]
        # The exception type only: driver messages can carry hosts or credentials. Our own
        # errors promise secret-free messages (ragruntime.errors), so theirs say what is wrong.
        extra: dict[str, Any] = {"error": failure_name(exc), "retry_in_s": delay}
        if isinstance(exc, RuntimeServiceError):
            extra["reason"] = exc.message
        log.warning(f"{what} failed; retrying", extra=extra)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _open(self) -> None:
        settings, attempt = self.settings, 0
        while self.embedder is None and not self._stopping.is_set():
            try:
                self.embedder = await run_in_threadpool(load_embedder, settings)
            except Exception as exc:  # any failure: report and retry, the probes say why
                await self._retry_wait(attempt, "loading the embedding model", exc)
                attempt += 1
        while not self._stopping.is_set():
            try:
                runtime = await run_in_threadpool(
                    open_runtime, settings, embedder=self.embedder, metrics=self.metrics
                )
                break
            except Exception as exc:  # a dependency not reachable yet: wait for it
                await self._retry_wait(attempt, "opening the stores", exc)
                attempt += 1
        else:
            return
        try:
            await run_in_threadpool(self._standby_mode, runtime)
        except Exception as exc:  # bookkeeping only: serving must not depend on it
            log.warning("standby state unavailable", extra={"error": failure_name(exc)})
        if settings.runs_worker and not settings.standby:
            self.worker = Worker(runtime, settings.ingest_threads)
            self.worker.start()
        if settings.runs_api:
            await self._open_keys(runtime)
            # Index snapshots load and sync in the background from now on, not in a request.
            runtime.index.watch(settings.index_watch_seconds)
        self.app.state.runtime = runtime
        log.info("ragruntime ready", extra={"role": settings.role.value})

    def _standby_mode(self, runtime: Runtime) -> None:
        """A standby takes no ingestion task; a former standby now writable is promoted."""
        engine = runtime.metadata.engine
        self.metrics.bind_standby(lambda: standby_state.read_state(engine), self.settings.standby)
        if self.settings.standby:
            log.info("read-only standby: writes refused, no ingestion", extra={"standby": True})
        elif standby_state.mark_promoted(engine, now_ms()):
            log.warning("promoted: this former standby now accepts writes")

    async def _open_keys(self, runtime: Runtime) -> None:
        """Mirror the configured keys into the key store now, then every reload interval."""
        store = KeyStore(runtime.metadata.engine)
        audit: AuditLog = self.app.state.audit
        settings = self.settings

        def changed(result: SyncResult) -> None:
            audit.record(
                "configuration",
                "success",
                action="sync_keys",
                source=result.source,
                added_key_ids=list(result.added),
                expiring_key_ids=list(result.expiring),
            )

        sync = KeySync(
            store,
            env_key=self.app.state.api_key,
            keys_dir=settings.auth_keys_dir,
            grace_seconds=settings.auth_rotation_grace_seconds,
            on_change=changed,
        )
        try:
            await run_in_threadpool(sync.run_once)
        except Exception as exc:  # stored keys still work; the next reload retries the sync
            log.warning("syncing API keys failed", extra={"error": failure_name(exc)})
        self.app.state.key_store = store
        self._reload = asyncio.create_task(self._reload_keys(sync))

    async def _reload_keys(self, sync: KeySync) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.auth_reload_seconds)
            if self._stopping.is_set():
                return
            try:
                await run_in_threadpool(sync.run_once)
            except Exception as exc:  # the database may blip: keep the last state, retry later
                log.warning("reloading API keys failed", extra={"error": failure_name(exc)})

    async def close(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._reload is not None:
            await self._reload
        if self.worker is not None:
            await run_in_threadpool(self.worker.stop, self.settings.shutdown_grace_seconds)
        runtime = self.app.state.runtime
        self.app.state.runtime = None
        self.app.state.key_store = None
        if runtime is not None:
            await run_in_threadpool(runtime.close)
        log.info("ragruntime stopped")


def create_app(settings: Settings, *, embedder: Embedder | None = None) -> FastAPI:
    """Build the app for ``settings.role``; ``embedder`` lets tests share one loaded model."""
    metrics = RuntimeMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lifecycle = Lifecycle(app, settings, embedder, metrics)
        lifecycle.start()
        try:
            yield
        finally:
            await lifecycle.close()
            app.state.audit.close()

    app = FastAPI(title="ragruntime", version=__version__, lifespan=lifespan)
    app.state.runtime = None
    app.state.metrics = metrics
    app.state.api_key = resolve_api_key(settings)
    app.state.settings = settings
    app.state.key_store = None  # set once the metadata database is open
    app.state.audit = AuditLog(file=settings.audit_file, count=metrics.record_audit)
    install_error_handlers(app)
    app.include_router(system.router)
    app.include_router(system.ragflow_router, prefix="/api/v1")
    if settings.runs_api:
        api_v1 = APIRouter(prefix="/api/v1", dependencies=[Depends(authorize)])
        for module in (datasets, documents, chunks, retrieval, keys, standby):
            api_v1.include_router(module.router)
        app.include_router(api_v1)
    app.add_middleware(AuditTrail, audit=app.state.audit)
    app.add_middleware(ConnectionMetrics, metrics=metrics)
    return app
