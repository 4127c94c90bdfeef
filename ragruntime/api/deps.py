"""FastAPI dependencies: the runtime and Bearer API-key auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from ragruntime.errors import StoreUnavailable, Unauthorized
from ragruntime.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime | None = request.app.state.runtime
    if runtime is None:
        raise StoreUnavailable("The runtime is starting: its stores are not open yet.")
    return runtime


def require_api_key(request: Request) -> None:
    """``Authorization: Bearer <key>``; missing or wrong -> 401 with RAGFlow's code 109."""
    expected: str = request.app.state.api_key
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthorized("Authorization is not valid!")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization is not valid!")
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Unauthorized("API key is invalid!")


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
