"""/api/v1/datasets: create, list, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from ragruntime.api.deps import RuntimeDep
from ragruntime.api.params import DatasetId, IdQuery, OrderBy, Page, PageSize, TextQuery
from ragruntime.api.requests import CreateDataset, DeleteIds, UpdateDataset
from ragruntime.api.schemas import dataset_json, ok
from ragruntime.services import datasets as service

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.post("")
def create_dataset(runtime: RuntimeDep, body: Annotated[CreateDataset, Body()]) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True, exclude={"parser_config"})
    if body.parser_config is not None:
        fields["parser_config"] = body.parser_config.stored()
    return ok(dataset_json(service.create_dataset(runtime, fields)))


@router.get("")
def list_datasets(
    runtime: RuntimeDep,
    page: Page = 1,
    page_size: PageSize = 30,
    orderby: OrderBy = "create_time",
    desc: bool = True,
    id: IdQuery = None,
    name: TextQuery = None,
) -> dict[str, Any]:
    found, total = service.list_datasets(
        runtime, page=page, page_size=page_size, orderby=orderby, desc=desc, id=id, name=name
    )
    return ok([dataset_json(d) for d in found], total_datasets=total)


@router.put("/{dataset_id}")
def update_dataset(
    dataset_id: DatasetId, runtime: RuntimeDep, body: Annotated[UpdateDataset, Body()]
) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True, exclude={"parser_config"})
    if body.parser_config is not None:
        fields["parser_config"] = body.parser_config.stored()
    return ok(dataset_json(service.update_dataset(runtime, dataset_id, fields)))


@router.delete("")
def delete_datasets(runtime: RuntimeDep, body: Annotated[DeleteIds, Body()]) -> dict[str, Any]:
    deleted = service.delete_datasets(runtime, body.ids)
    return ok({"success_count": len(deleted)})
