"""Authentication, authorization and the audit trail of the HTTP API.

``authorize`` is the one dependency of every protected ``/api/v1`` route: it reads the Bearer
key, looks it up in the key store (``ragruntime.security.keys``), finds the route's rule in
``ragruntime.security.roles.RULES`` and checks the key's role and dataset scope, auditing each
step. ``AuditTrail`` (ASGI middleware) gives every request an id (``X-Request-ID``, echoed
back) and, once the response is known, writes the data-access or configuration event that
``authorize`` left pending, with its outcome. Route bodies stay unaware of all this.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragruntime.errors import Forbidden, StandbyReadOnly, StoreUnavailable, Unauthorized
from ragruntime.security import roles
from ragruntime.security.audit import AuditLog
from ragruntime.security.keys import ApiKey, KeyStore
from ragruntime.services import standby

REQUEST_ID_HEADER = "x-request-id"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ENVELOPE_CODE = re.compile(rb'^\{"code":(-?\d+)')
PENDING = "audit_pending"
AUDITED_IDS = 1000  # ids of one body field written to one audit event


def _audit(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


def _base_fields(request: Request) -> dict[str, Any]:
    return {
        "request_id": getattr(request.state, "request_id", None),
        "method": request.method,
        "path": request.url.path,
        "client": request.client.host if request.client else None,
    }


def _deny(request: Request, key: ApiKey, reason: str, action: str | None) -> Forbidden:
    _audit(request).record(
        "authorization",
        "denied",
        **_base_fields(request),
        key_id=key.id,
        role=key.role.value,
        action=action,
        reason=reason,
    )
    return Forbidden(f"This API key ({key.role.value}) may not {action or 'call this route'}.")


async def _standby_refusal(request: Request, key: ApiKey, action: str) -> StandbyReadOnly:
    """A write on a read-only standby: 409 naming the primary it follows (from its state)."""
    runtime = getattr(request.app.state, "runtime", None)
    primary = None
    if runtime is not None:
        with contextlib.suppress(Exception):  # the refusal stands even if the state is unreadable
            primary = await run_in_threadpool(standby.primary, runtime)
    _audit(request).record(
        "authorization",
        "denied",
        **_base_fields(request),
        key_id=key.id,
        role=key.role.value,
        action=action,
        reason="standby",
    )
    following = f"of {primary}" if primary else "following its primary's backups"
    return StandbyReadOnly(
        f"This cluster is a read-only standby {following}; promote it to write ({action} refused)."
    )


def bearer_token(request: Request) -> str:
    """The key of ``Authorization: Bearer <key>``; missing or malformed -> 401 (code 109)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "bearer" or not token.strip():
        _audit(request).record(
            "authentication",
            "failure",
            **_base_fields(request),
            reason="missing" if not header else "malformed",
        )
        raise Unauthorized("Authorization is not valid!")
    return token.strip()


async def authenticate(request: Request) -> ApiKey:
    token = bearer_token(request)
    store: KeyStore | None = request.app.state.key_store
    if store is None:
        raise StoreUnavailable("The runtime is starting: its stores are not open yet.")
    key = await run_in_threadpool(store.authenticate, token)
    if key is None:
        _audit(request).record(
            "authentication", "failure", **_base_fields(request), reason="unknown_key"
        )
        raise Unauthorized("API key is invalid!")
    _audit(request).record(
        "authentication",
        "success",
        **_base_fields(request),
        key_id=key.id,
        role=key.role.value,
    )
    return key


async def _body_ids(request: Request, fields: tuple[str, ...]) -> dict[str, list[str]]:
    """Id lists named by the rule, read from a JSON body (cached by Starlette for the route)."""
    if not fields or "json" not in request.headers.get("content-type", ""):
        return {}
    try:
        body = await request.json()
    except ValueError:
        return {}  # the route reports the bad body
    if not isinstance(body, dict):
        return {}
    found: dict[str, list[str]] = {}
    for field in fields:
        value = body.get(field)
        if isinstance(value, list):
            found[field] = [str(v) for v in value]
    return found


def _scope_targets(match: roles.Match, request: Request, ids: dict[str, list[str]]) -> list[str]:
    """The datasets a request touches, as far as a scoped key must be checked."""
    if "dataset_id" in match.params:
        return [match.params["dataset_id"]]
    if match.rule.action == "retrieve":
        return ids.get("dataset_ids", [])
    if match.rule.action == "list_datasets":
        wanted = request.query_params.get("id")
        return [wanted] if wanted else []
    return []


async def authorize(request: Request) -> ApiKey:
    """Dependency of the protected router: authenticate, then check the route's rule."""
    key = await authenticate(request)
    match = roles.match(request.method, request.url.path)
    if match is None:
        raise _deny(request, key, "no_rule", None)
    rule = match.rule
    if not key.role.allows(rule.role):
        raise _deny(request, key, "role", rule.action)
    if request.app.state.settings.standby and roles.writes(request.method, rule):
        raise await _standby_refusal(request, key, rule.action)
    ids = await _body_ids(request, rule.body_ids)
    if key.dataset_ids is not None:
        targets = _scope_targets(match, request, ids)
        if not targets or not all(key.may_touch(t) for t in targets):
            raise _deny(request, key, "dataset_scope", rule.action)
    pending: dict[str, Any] = {
        "category": rule.category.value,
        "action": rule.action,
        "key_id": key.id,
        "role": key.role.value,
        "route": match.template,
        # a path's key_id names the key acted upon, not the caller's key
        **{("target_key_id" if k == "key_id" else k): v for k, v in match.params.items()},
    }
    for field, values in ids.items():  # the scope saw them all; the trail keeps the first ones
        pending[field] = values[:AUDITED_IDS]
    request.state.audit_pending = pending
    request.state.key_record = key
    return key


class AuditTrail:
    """ASGI middleware: request ids, and the outcome event of each allowed API request."""

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app, self.audit = app, audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        seen: dict[str, Any] = {"status": 500, "code": None}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and seen["code"] is None:
                found = _ENVELOPE_CODE.match(message.get("body", b"")[:32])
                seen["code"] = int(found.group(1)) if found else 0
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            pending = state.pop(PENDING, None)
            if pending is not None:
                success = seen["status"] < 400 and not seen["code"]
                self.audit.record(
                    pending.pop("category"),
                    "success" if success else "failure",
                    request_id=request_id,
                    method=scope["method"],
                    status=seen["status"],
                    code=seen["code"] or None,
                    **pending,
                )


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex
