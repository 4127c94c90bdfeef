"""Exception handlers: our errors, validation errors and surprises -> RAGFlow's envelope.

Only the runtime's own errors (``ragruntime.errors``) are mapped to codes: each store translates
its driver's errors into them (a database or Milvus failure is ``StoreUnavailable``, HTTP 503), so
no driver's exception is named here. Anything else is a bug: HTTP 500 naming its type.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragruntime.errors import RetCode, RuntimeServiceError
from ragruntime.services.validation import field_message

log = logging.getLogger(__name__)


def envelope(code: int, message: str, status: int) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def request_error_message(exc: RequestValidationError) -> str:
    """RAGFlow's ``Field: <name> - Message: <reason>`` for the first invalid part of a request."""
    errors = exc.errors()
    if not errors:
        return "Field: <body> - Message: <invalid request>"
    first = dict(errors[0])
    if first.get("type") == "json_invalid":
        return "Field: <body> - Message: <Request body is not valid JSON>"
    location = tuple(first.get("loc", ()))
    if location[:1] in (("body",), ("query",), ("path",), ("header",)):
        kind, location = location[0], location[1:]
        first["loc"] = location or (kind,)
    return field_message(first)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RuntimeServiceError)
    async def service_error(_request: Request, exc: RuntimeServiceError) -> JSONResponse:
        return envelope(int(exc.code), exc.message, exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return envelope(int(RetCode.ARGUMENT_ERROR), request_error_message(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = exc.status_code if exc.status_code in (401, 403, 404) else RetCode.ARGUMENT_ERROR
        return envelope(int(code), str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return envelope(int(RetCode.EXCEPTION_ERROR), f"{type(exc).__name__}", 500)
