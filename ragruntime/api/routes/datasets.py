"""/api/v1/datasets: create, list, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ragruntime.api.deps import JsonBody, RuntimeDep
from ragruntime.api.schemas import dataset_json, ok
from ragruntime.errors import InvalidArgument, NotFound
from ragruntime.services import datasets as service

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.post("")
def create_dataset(runtime: RuntimeDep, body: JsonBody) -> dict[str, Any]:
    return ok(dataset_json(service.create_dataset(runtime, body)))


@router.get("")
def list_datasets(
    runtime: RuntimeDep,
    page: int = 1,
    page_size: int = 30,
    orderby: str = "create_time",
    desc: str = "true",
    id: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    if page < 1 or page_size < 1:
        raise InvalidArgument("`page` and `page_size` must be positive")
    found, total = runtime.metadata.list_datasets(
        page=page,
        page_size=page_size,
        orderby=orderby,
        desc=desc.lower() != "false",
        id=id,
        name=name,
    )
    if (id or name) and not found:
        raise NotFound(f"You don't own the dataset {id or name}.")
    return ok([dataset_json(d) for d in found], total_datasets=total)


@router.put("/{dataset_id}")
def update_dataset(dataset_id: str, runtime: RuntimeDep, body: JsonBody) -> dict[str, Any]:
    return ok(dataset_json(service.update_dataset(runtime, dataset_id, body)))


@router.delete("")
def delete_datasets(runtime: RuntimeDep, body: JsonBody) -> dict[str, Any]:
    if "ids" not in body:
        raise InvalidArgument("`ids` is required (null deletes every dataset)")
    ids = body["ids"]
    if ids is not None and not isinstance(ids, list):
        raise InvalidArgument("`ids` must be a list or null")
    deleted = service.delete_datasets(runtime, ids)
    return ok({"success_count": len(deleted)})
