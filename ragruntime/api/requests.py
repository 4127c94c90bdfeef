"""Request bodies of every /api/v1 route, as pydantic models (they also make the OpenAPI schema).

Field types and limits come from ``ragruntime.services.validation``, so the HTTP layer rejects a
bad value with the same message the services would give. Types are strict where RAGFlow's API
is (booleans are JSON booleans, integers are JSON integers); unknown fields are ignored, as
ragflow-sdk sends a few the runtime has no use for (``rerank_id``, ``cross_languages``...).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from ragruntime.services.validation import (
    DATASET_NAME_MAX_CHARS,
    PAGE_MAX,
    PAGE_SIZE_MAX,
    QUERY_MAX_CHARS,
    TOP_K_MAX,
    ChunkContent,
    ChunkFields,
    ChunkTerms,
    DatasetFields,
    DocumentFields,
    IdList,
    text,
)


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateDataset(DatasetFields):
    name: text(DATASET_NAME_MAX_CHARS, 1)  # required here


class UpdateDataset(DatasetFields):
    pass


class DeleteIds(RequestBody):
    """``ids``: the ones to delete; ``null`` means every one (RAGFlow's convention)."""

    ids: IdList | None


class UpdateDocument(DocumentFields):
    pass


class DocumentIds(RequestBody):
    document_ids: IdList | None = None


class DeleteDocuments(RequestBody):
    ids: IdList | None = None


class AddChunk(RequestBody):
    content: ChunkContent | None = None
    important_keywords: ChunkTerms | None = None
    questions: ChunkTerms | None = None


class UpdateChunk(ChunkFields):
    pass


class DeleteChunks(RequestBody):
    chunk_ids: IdList | None = None


Score = StrictInt | StrictFloat


class Retrieval(RequestBody):
    """RAGFlow's retrieval request; ``None`` means the default, as ragflow-sdk sends it."""

    question: text(QUERY_MAX_CHARS) | None = None  # type: ignore[valid-type]
    dataset_ids: IdList | None = None
    document_ids: IdList | None = None
    page: StrictInt | None = Field(None, ge=1, le=PAGE_MAX)
    page_size: StrictInt | None = Field(None, ge=1, le=PAGE_SIZE_MAX)
    similarity_threshold: Score | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    vector_similarity_weight: Score | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    top_k: StrictInt | None = Field(None, ge=1, le=TOP_K_MAX)
    keyword: StrictBool | None = None
    highlight: StrictBool | None = None
    fusion: Literal["weighted", "rrf"] | None = None

    def given(self) -> dict[str, Any]:
        """The fields that were sent with a value."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class NewToken(RequestBody):
    """``POST /system/new_token``: every field optional (RAGFlow sends no body at all)."""

    name: text(DATASET_NAME_MAX_CHARS, 1) | None = None  # type: ignore[valid-type]
    role: Literal["admin", "editor", "viewer"] = "admin"
    dataset_ids: IdList | None = None


class RotateToken(RequestBody):
    """``POST /system/token/{key_id}/rotate``: how long the old key stays valid."""

    grace_seconds: Score | None = Field(None, ge=0, le=31 * 24 * 3600, allow_inf_nan=False)
