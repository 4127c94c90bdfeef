"""Dataset use cases: create, get, list, update, delete (rows, vector collections, files)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ragruntime.errors import DataError, InvalidArgument, NotFound
from ragruntime.models import Dataset
from ragruntime.runtime import Runtime
from ragruntime.services.validation import DatasetFields, validate

log = logging.getLogger(__name__)


def _validated(fields: dict[str, Any]) -> dict[str, Any]:
    """Only the known fields, checked (``InvalidArgument`` naming the first bad one)."""
    model: DatasetFields = validate(DatasetFields, fields)
    values = model.model_dump(exclude_unset=True, exclude={"parser_config"})
    if model.parser_config is not None:
        values["parser_config"] = model.parser_config.stored()
    return values


def check_embedding_model(runtime: Runtime, requested: str | None) -> str:
    """The one model this runtime serves; RAGFlow-style ``name@factory`` spellings accepted."""
    served = runtime.embedder.name
    if not requested:
        return served
    bare = requested.split("@", 1)[0].split("/")[-1]
    if bare.lower() != served.split("/")[-1].lower():
        raise InvalidArgument(f"Unsupported model: <{requested}> (this runtime serves {served})")
    return served


def create_dataset(runtime: Runtime, fields: dict[str, Any]) -> Dataset:
    fields = _validated(fields)
    if not fields.get("name"):
        raise InvalidArgument("Field: <name> - Message: <Field required>")
    model = check_embedding_model(runtime, fields.get("embedding_model"))
    fields = {**fields, "embedding_model": model}
    dataset = runtime.metadata.create_dataset(name=fields["name"], fields=fields)
    runtime.vectors.ensure_collection(dataset.id)
    return dataset


def get_dataset(runtime: Runtime, dataset_id: str) -> Dataset:
    """The dataset, or ``NotFound``."""
    return runtime.metadata.get_dataset(dataset_id)


def list_datasets(
    runtime: Runtime,
    *,
    page: int,
    page_size: int,
    orderby: str,
    desc: bool,
    id: str | None,
    name: str | None,
) -> tuple[list[Dataset], int]:
    """A page of datasets and the total; a dataset asked for by id or name must exist."""
    found, total = runtime.metadata.list_datasets(
        page=page, page_size=page_size, orderby=orderby, desc=desc, id=id, name=name
    )
    if (id or name) and not found:
        raise NotFound(f"You don't own the dataset {id or name}.")
    return found, total


def update_dataset(runtime: Runtime, dataset_id: str, fields: dict[str, Any]) -> Dataset:
    fields = _validated(fields)
    current = runtime.metadata.get_dataset(dataset_id)
    if fields.get("embedding_model"):
        model = check_embedding_model(runtime, fields["embedding_model"])
        if model != current.embedding_model and current.chunk_count > 0:
            raise DataError("When chunk_num > 0, embedding_model must remain unchanged.")
        fields = {**fields, "embedding_model": model}
    return runtime.metadata.update_dataset(dataset_id, fields)


def delete_datasets(runtime: Runtime, ids: Sequence[str] | None) -> list[str]:
    deleted = runtime.metadata.delete_datasets(ids)
    for dataset_id in deleted:
        runtime.vectors.drop_collection(dataset_id)
        runtime.files.delete_prefix(f"{dataset_id}/")
        runtime.index.drop(dataset_id)
    return deleted
