"""Probes and metrics: /health, /ready, /metrics, and RAGFlow's /api/v1/system aliases."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ragruntime.api.schemas import ok
from ragruntime.errors import failure_name

log = logging.getLogger(__name__)

router = APIRouter(tags=["system"])
ragflow_router = APIRouter(prefix="/system", tags=["system"])


def readiness(request: Request) -> tuple[bool, dict[str, str]]:
    """Check every dependency; a missing runtime (still starting) is not ready."""
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return False, {"runtime": "starting"}
    checks = {
        "database": runtime.metadata.ping,
        "vector_store": runtime.vectors.ping,
        "cache": runtime.cache.ping,
        "model": runtime.embedder.check,
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            log.warning("readiness check failed", extra={"check": name})
            results[name] = f"error: {failure_name(exc)}"
    return all(v == "ok" for v in results.values()), results


@router.get("/health")
def health() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/ready")
def ready(request: Request) -> JSONResponse:
    is_ready, checks = readiness(request)
    body = {"status": "ready" if is_ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if is_ready else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@ragflow_router.get("/ping")
def ping() -> Response:
    return Response("pong", media_type="text/plain")


@ragflow_router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    is_ready, checks = readiness(request)
    body = {"status": "ok" if is_ready else "nok", **checks}
    return JSONResponse(ok(body), status_code=200 if is_ready else 500)
