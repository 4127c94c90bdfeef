"""Errors the runtime raises, each carrying RAGFlow's return code and an HTTP status.

Stores, ingestion and services raise these; ``ragruntime.api.errors`` turns them into RAGFlow's
envelope ``{"code": N, "message": ...}``. Each store translates its own driver's errors (SQL,
Milvus, Redis) into these, so no layer above a store handles a driver's exception. Messages
never contain secrets (keys, URLs with credentials): callers pass identifiers and reasons only.
"""

from __future__ import annotations

from enum import IntEnum


class RetCode(IntEnum):
    """RAGFlow's return codes (api/settings RetCode in RAGFlow), used in the JSON envelope."""

    SUCCESS = 0
    EXCEPTION_ERROR = 100
    ARGUMENT_ERROR = 101
    DATA_ERROR = 102
    OPERATING_ERROR = 103
    CONNECTION_ERROR = 105
    PERMISSION_ERROR = 108
    AUTHENTICATION_ERROR = 109
    UNAUTHORIZED = 401
    NOT_FOUND = 404
    SERVER_ERROR = 500


class RuntimeServiceError(Exception):
    """Base class: a failure with a RAGFlow code and the HTTP status we answer with."""

    code: RetCode = RetCode.EXCEPTION_ERROR
    http_status: int = 200

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(RuntimeServiceError):
    """The request itself is wrong (missing field, wrong type, out-of-range value): HTTP 400."""

    code = RetCode.ARGUMENT_ERROR
    http_status = 400


class DataError(RuntimeServiceError):
    """The request names data that does not exist or is in the wrong state (RAGFlow uses 102)."""

    code = RetCode.DATA_ERROR


class NotFound(DataError):
    """An unknown dataset, document or chunk; RAGFlow answers code 102 with HTTP 200."""


class Unauthorized(RuntimeServiceError):
    """Missing or wrong API key: RAGFlow's code 109, HTTP 401 as the issue demands."""

    code = RetCode.AUTHENTICATION_ERROR
    http_status = 401


class Forbidden(RuntimeServiceError):
    """A valid key whose role or dataset scope does not cover the request: RAGFlow's 108."""

    code = RetCode.PERMISSION_ERROR
    http_status = 403


class PayloadTooLarge(RuntimeServiceError):
    """An upload above RAGFLOW_MAX_UPLOAD_BYTES."""

    code = RetCode.ARGUMENT_ERROR
    http_status = 413


class StandbyReadOnly(RuntimeServiceError):
    """A write sent to a read-only standby: it follows its primary's backups until promoted."""

    code = RetCode.OPERATING_ERROR
    http_status = 409


class StoreUnavailable(RuntimeServiceError):
    """A backing store (database, Milvus, Redis) failed or is unreachable."""

    code = RetCode.CONNECTION_ERROR
    http_status = 503


def failure_name(exc: BaseException) -> str:
    """The type to report for ``exc`` in logs and probes, which never carry a driver's message.

    A store translates its driver's errors into ``StoreUnavailable`` (``raise ... from`` the
    driver's exception); for one of those, the driver's exception names the failure.
    """
    if isinstance(exc, StoreUnavailable) and exc.__cause__ is not None:
        return type(exc.__cause__).__name__
    return type(exc).__name__


class ParseError(Exception):
    """A document cannot be parsed (unsupported type or corrupt content); it fails alone."""


class TaskLost(Exception):
    """The worker no longer holds the lease of its task (cancelled, or taken over)."""


class ShutdownRequested(Exception):
    """The worker is stopping; the current task goes back to the queue."""
