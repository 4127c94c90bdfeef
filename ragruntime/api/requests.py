"""Request bodies of every /api/v1 route, as pydantic models (they also make the OpenAPI schema).

Field types and limits come from ``ragruntime.services.validation``, so the HTTP layer rejects a
bad value with the same message the services would give. Types are strict where RAGFlow's API
is (booleans are JSON booleans, integers are JSON integers); unknown fields are ignored.

RAGFlow retrieval options that need a component this runtime does not run (a chat model, a
reranker, a metadata index, a knowledge graph) are accepted when they ask for nothing (false,
null, empty: what ragflow-sdk sends by default) and refused with a 400 naming the option when
they ask for the feature, so a client never gets a different search than it asked for silently.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
)

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
    highlight: StrictBool | None = None
    fusion: Literal["weighted", "rrf"] | None = None
    # RAGFlow options this runtime cannot honour (see UNSUPPORTED_RETRIEVAL_OPTIONS).
    keyword: StrictBool | None = None
    use_kg: StrictBool | None = None
    toc_enhance: StrictBool | None = None
    rerank_id: text(QUERY_MAX_CHARS) | None = None  # type: ignore[valid-type]
    cross_languages: list[text(QUERY_MAX_CHARS)] | None = None  # type: ignore[valid-type]
    metadata_condition: dict[str, Any] | None = None

    @field_validator(
        "keyword", "use_kg", "toc_enhance", "rerank_id", "cross_languages", "metadata_condition"
    )
    @classmethod
    def _asks_for_nothing(cls, value: Any, info: ValidationInfo) -> Any:
        if value:
            why = UNSUPPORTED_RETRIEVAL_OPTIONS[str(info.field_name)]
            raise ValueError(f"not supported by this runtime: {why}; omit it or send false/null")
        return value

    def given(self) -> dict[str, Any]:
        """The fields that were sent with a value (the unsupported options never carry one)."""
        sent = self.model_dump(exclude_unset=True, exclude=set(UNSUPPORTED_RETRIEVAL_OPTIONS))
        return {k: v for k, v in sent.items() if v is not None}


UNSUPPORTED_RETRIEVAL_OPTIONS = {
    "keyword": "RAGFlow extracts keywords with a chat model, and none is served here (the BM25 "
    "side already matches the question's stemmed terms)",
    "use_kg": "there is no knowledge graph",
    "toc_enhance": "there is no table-of-contents index",
    "rerank_id": "no reranker model is served",
    "cross_languages": "translating the question needs a chat model",
    "metadata_condition": "there is no document metadata index",
}


class NewToken(RequestBody):
    """``POST /system/new_token``: every field optional (RAGFlow sends no body at all)."""

    name: text(DATASET_NAME_MAX_CHARS, 1) | None = None  # type: ignore[valid-type]
    role: Literal["admin", "editor", "viewer"] = "admin"
    dataset_ids: IdList | None = None


class RotateToken(RequestBody):
    """``POST /system/token/{key_id}/rotate``: how long the old key stays valid."""

    grace_seconds: Score | None = Field(None, ge=0, le=31 * 24 * 3600, allow_inf_nan=False)
