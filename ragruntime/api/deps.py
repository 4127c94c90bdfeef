"""FastAPI dependencies: the runtime and lenient JSON bodies (keys: ``ragruntime.api.auth``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from ragruntime.errors import InvalidArgument, StoreUnavailable
from ragruntime.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime | None = request.app.state.runtime
    if runtime is None:
        raise StoreUnavailable("The runtime is starting: its stores are not open yet.")
    return runtime


async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object body, ``{}`` when empty; anything else is an argument error."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise InvalidArgument("Request body is not valid JSON") from exc
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidArgument("Request body must be a JSON object")
    return body


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
JsonBody = Annotated[dict[str, Any], Depends(json_body)]
