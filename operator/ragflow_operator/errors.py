"""The operator's own error types, shared by every kind.

Raised by the models (invalid input the schema cannot express), the kopf layer (a referenced Secret
is missing) and k8s.py (translated API errors). Handlers map them to a `Ready=False` condition with
the error's `reason`, and to kopf's TemporaryError/PermanentError. Messages must never contain
secret values: they name objects and keys only.
"""

from __future__ import annotations


class OperatorError(Exception):
    """Base class; `reason` is a CamelCase condition reason, `str(err)` the human message."""

    reason = "ReconcileError"


class InvalidSpec(OperatorError):
    """The spec cannot work and retrying cannot help until the user edits it."""

    reason = "InvalidSpec"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        if reason:
            self.reason = reason


class MissingReference(OperatorError):
    """A referenced object (Secret, RagFlowCluster, BackupPolicy) or key in it does not exist."""

    reason = "MissingReference"

    def __init__(self, message: str, reason: str | None = None, delay: float = 30.0) -> None:
        super().__init__(message)
        self.delay = delay
        if reason:
            self.reason = reason


# --- Translated Kubernetes API errors (raised only by k8s.py) ---------------------------------


class ApiError(OperatorError):
    """An API request failed; `status` is the HTTP status code (0 when there was no response)."""

    reason = "ApiError"

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ApiNotFound(ApiError):
    """404: the object (or its kind) does not exist."""


class ApiConflict(ApiError):
    """409: already exists, or a resourceVersion/field-manager conflict."""


class ApiInvalid(ApiError):
    """400 or 422: the API server rejected the object (malformed, schema, CEL, immutable field).

    Permanent: the same request fails again until the spec changes.
    """


class ApiThrottled(ApiError):
    """Timeout, 408, 429 or 5xx: the server is busy or unavailable; retry later."""


class ChildrenRejected(InvalidSpec):
    """The API server refused one or more children in the dry run: nothing was written.

    `reason` is ChildRejected (the server's validation) or NameConflict (a child's name is taken
    by an object another owner controls); the message carries every refusal, one per child.
    """

    def __init__(self, problems: list[str], reason: str = "ChildRejected") -> None:
        super().__init__("; ".join(problems), reason=reason)
        self.problems = problems
