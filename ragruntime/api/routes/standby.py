"""GET /api/v1/standby: whether this cluster is a read-only standby, and what it serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ragruntime.api.deps import RuntimeDep
from ragruntime.api.schemas import ok
from ragruntime.services import standby as service

router = APIRouter(tags=["standby"])


@router.get("/standby")
def standby(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    return ok(service.describe(runtime, bool(request.app.state.settings.standby)))
