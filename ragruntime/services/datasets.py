"""Dataset use cases: create, list, update, delete (metadata rows + vector collections + files)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ragruntime.errors import DataError, InvalidArgument
from ragruntime.models import Dataset
from ragruntime.runtime import Runtime

log = logging.getLogger(__name__)

CHUNK_METHODS = {
    "naive", "book", "email", "laws", "manual", "one", "paper", "picture",
    "presentation", "qa", "table", "tag",
}  # fmt: skip


def _validate(fields: dict[str, Any]) -> None:
    name = fields.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 128):
        raise InvalidArgument("Field: <name> - Message: <String should have 1 to 128 characters>")
    method = fields.get("chunk_method")
    if method is not None and method not in CHUNK_METHODS:
        raise InvalidArgument(
            f"Field: <chunk_method> - Message: <Input should be one of {sorted(CHUNK_METHODS)}>"
        )
    config = fields.get("parser_config")
    if config is not None:
        if not isinstance(config, dict):
            raise InvalidArgument("Field: <parser_config> - Message: <Input should be an object>")
        tokens = config.get("chunk_token_num")
        if tokens is not None and not (isinstance(tokens, int) and 1 <= tokens <= 2048):
            raise InvalidArgument(
                "Field: <parser_config.chunk_token_num> - Message: <must be 1..2048>"
            )
    if fields.get("permission") not in (None, "me", "team"):
        raise InvalidArgument("Field: <permission> - Message: <Input should be 'me' or 'team'>")


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
    if not fields.get("name"):
        raise InvalidArgument("Field: <name> - Message: <String should have at least 1 character>")
    _validate(fields)
    model = check_embedding_model(runtime, fields.get("embedding_model"))
    fields = {**fields, "embedding_model": model}
    dataset = runtime.metadata.create_dataset(name=fields["name"].strip(), fields=fields)
    runtime.vectors.ensure_collection(dataset.id)
    return dataset


def update_dataset(runtime: Runtime, dataset_id: str, fields: dict[str, Any]) -> Dataset:
    _validate(fields)
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
    return deleted
