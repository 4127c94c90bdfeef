"""GET /api/v1/standby: whether this cluster is a read-only standby, and what it serves.

The state is what ``ragruntime standby sync`` recorded in the metadata database
(``ragruntime.store.standby``); ``standby`` itself is this process's ``RAGFLOW_STANDBY``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ragruntime.api.deps import RuntimeDep
from ragruntime.api.schemas import ok
from ragruntime.store import standby as standby_state

router = APIRouter(tags=["standby"])


@router.get("/standby")
def standby(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    enabled = bool(request.app.state.settings.standby)
    recorded = standby_state.read_state(runtime.metadata.engine)
    if recorded is None:
        return ok({**standby_state.EMPTY_API, "standby": enabled})
    return ok(recorded.to_api(enabled))
