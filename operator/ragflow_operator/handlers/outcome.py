"""How every kind's handler turns a failure into a status, an Event and a retry decision.

`classify(exc)` sorts any exception a reconcile can raise into one of two classes:
- transient (timeouts, 408, 409, 429, 5xx, a dependency not ready yet): the handler raises
  kopf.TemporaryError with an exponential `backoff` (the resync pass retries the object alone
  with the same delays) and writes no status, so a busy API server
  or a concurrent update never flips Ready;
- reported (everything else: an invalid spec, a child the API server refused with 400/422, a
  name taken by another owner, a missing Secret, an unexpected error in our own code): the
  handler writes `Ready=False` with the failure's reason and message, records a Warning Event
  on the transition, and returns normally; the resync pass (handlers/resync.py) tries again at
  its interval, so a fixed spec or a created Secret recovers without a retry loop in between.
Used by handlers/cluster.py, handlers/backup_policy.py and handlers/alert_policy.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import kopf

from ragflow_operator import conditions, errors

logger = logging.getLogger(__name__)

#: First retry delay of a transient failure and the ceiling of its exponential backoff.
BACKOFF_FIRST_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 300.0
#: Longest message kept in a condition or Event.
MESSAGE_LIMIT = 1000


@dataclass(frozen=True)
class Failure:
    """A classified failure: condition reason, human message, and whether to retry soon."""

    reason: str
    message: str
    transient: bool


def classify(exc: BaseException) -> Failure:
    """The condition reason and retry class of an exception raised by a reconcile."""
    if isinstance(exc, errors.ApiInvalid):  # a write the server refused outright (400/422)
        return Failure("ChildRejected", str(exc)[:MESSAGE_LIMIT], transient=False)
    if isinstance(exc, errors.ApiConflict | errors.ApiThrottled):
        return Failure(exc.reason, str(exc)[:MESSAGE_LIMIT], transient=True)
    if isinstance(exc, errors.OperatorError):  # InvalidSpec, MissingReference, other API errors
        return Failure(exc.reason, str(exc)[:MESSAGE_LIMIT], transient=False)
    # A bug or an input our validation missed: report it, never loop on a traceback. The
    # message names the exception type; our own code never puts secret values in messages.
    logger.debug("unexpected reconcile error", exc_info=exc)
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Failure("ReconcileError", text[:MESSAGE_LIMIT], transient=False)


def backoff(retry: int) -> float:
    """Delay before retry number `retry` (0-based) of a transient failure: 5 s, 10 s, ... 300 s."""
    return float(min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** min(retry, 16)))


def event_target(body: Mapping[str, Any]) -> kopf.Body:
    """`body` as the object kopf.event/kopf.warn report on (they read its apiVersion, kind and
    metadata; their annotation names kopf's own Body class)."""
    return cast(kopf.Body, dict(body))


def temporary(failure: Failure, retry: int) -> kopf.TemporaryError:
    """kopf's retry of a transient failure, backing off with each attempt."""
    return kopf.TemporaryError(failure.message, delay=backoff(retry))


def record_ready_transition(
    body: Mapping[str, Any], current: Mapping[str, Any], desired: Mapping[str, Any]
) -> None:
    """An Event when Ready changes status or reason: Normal when True, else Warning."""
    old = conditions.find_condition(list(current.get("conditions") or []), "Ready") or {}
    new = conditions.find_condition(list(desired.get("conditions") or []), "Ready") or {}
    if not new or (old.get("status"), old.get("reason")) == (new.get("status"), new.get("reason")):
        return
    kopf.event(
        event_target(body),
        type="Normal" if new.get("status") == conditions.TRUE else "Warning",
        reason=str(new.get("reason")),
        message=str(new.get("message"))[:MESSAGE_LIMIT],
    )
