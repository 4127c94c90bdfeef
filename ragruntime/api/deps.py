"""FastAPI dependencies: the runtime (API keys and roles: ``ragruntime.api.auth``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ragruntime.errors import StoreUnavailable
from ragruntime.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime | None = request.app.state.runtime
    if runtime is None:
        raise StoreUnavailable("The runtime is starting: its stores are not open yet.")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
