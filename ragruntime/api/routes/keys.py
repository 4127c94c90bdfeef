"""API key management under /api/v1/system, in RAGFlow's shape (admin keys only).

RAGFlow's ``POST /system/new_token``, ``GET /system/token_list`` and ``DELETE /system/token/<t>``
become: ``new_token`` (optional ``name``, ``role``, ``dataset_ids``; the key is in the answer
once and never again), ``token_list`` (ids, roles and states, never keys), ``DELETE
/system/token/{key_id}`` (revoke, by key id so that no key travels in a URL or an access log) and
``POST /system/token/{key_id}/rotate`` (a new key; the old one stays valid for the grace period).
Authorization comes from the router's ``authorize`` dependency (``ragruntime.api.auth``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.concurrency import run_in_threadpool

from ragruntime.api.requests import NewToken, RotateToken
from ragruntime.api.schemas import ok
from ragruntime.errors import StoreUnavailable
from ragruntime.security.keys import ApiKey, IssuedKey, KeyStore
from ragruntime.services import keys as service

router = APIRouter(prefix="/system", tags=["keys"])


def _store(request: Request) -> KeyStore:
    store: KeyStore | None = request.app.state.key_store
    if store is None:
        raise StoreUnavailable("The runtime is starting: its stores are not open yet.")
    return store


def _date(ms: int | None) -> str | None:
    if ms is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))


def key_json(key: ApiKey) -> dict[str, Any]:
    return {**key.describe(), "create_date": _date(key.created_at_ms)}


def _issued(request: Request, issued: IssuedKey) -> dict[str, Any]:
    request.state.audit_pending["new_key_id"] = issued.key.id
    return ok({**key_json(issued.key), "token": issued.token})


@router.post("/new_token")
def new_token(
    request: Request,
    body: Annotated[NewToken, Body()] = NewToken(),  # noqa: B008 - a constant
    name: str | None = None,
) -> dict[str, Any]:
    issued = service.issue(
        _store(request), name=body.name or name, role=body.role, dataset_ids=body.dataset_ids
    )
    return _issued(request, issued)


@router.get("/token_list")
def token_list(request: Request, include_inactive: bool = False) -> dict[str, Any]:
    keys = service.listed(_store(request), include_inactive=include_inactive)
    return ok([key_json(k) for k in keys])


@router.delete("/token/{key_id}")
def revoke_token(key_id: str, request: Request) -> dict[str, Any]:
    service.revoke(_store(request), key_id)
    return ok(True)


@router.post("/token/{key_id}/rotate")
async def rotate_token(
    key_id: str,
    request: Request,
    body: Annotated[RotateToken, Body()] = RotateToken(),  # noqa: B008 - a constant
) -> dict[str, Any]:
    grace = body.grace_seconds
    if grace is None:
        grace = request.app.state.settings.auth_rotation_grace_seconds
    issued = await run_in_threadpool(service.rotate, _store(request), key_id, float(grace))
    return _issued(request, issued)
