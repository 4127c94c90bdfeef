"""Plain values passed between stores, ingestion, retrieval and the HTTP layer.

Frozen dataclasses only: the stores build them from rows, ``ragruntime.api.schemas`` turns them
into RAGFlow's JSON shapes. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: The most UTF-8 bytes a chunk's content may hold: the vector store's content column
#: (a Milvus VARCHAR, whose max_length counts bytes).
CHUNK_CONTENT_MAX_BYTES = 65_535
#: The most UTF-8 bytes of a document name the vector store keeps beside each chunk.
CHUNK_DOCUMENT_NAME_MAX_BYTES = 512


def fit_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form fits ``max_bytes`` (never half a char)."""
    encoded = text.encode()
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode(errors="ignore")


class RunStatus(StrEnum):
    """A document's parsing state, spelled as RAGFlow's HTTP API reports it."""

    UNSTART = "UNSTART"
    RUNNING = "RUNNING"
    CANCEL = "CANCEL"
    DONE = "DONE"
    FAIL = "FAIL"


RUN_STATUS_CODES = {"0": "UNSTART", "1": "RUNNING", "2": "CANCEL", "3": "DONE", "4": "FAIL"}


class TaskState(StrEnum):
    """Life of one ingestion task in the durable queue."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


DEFAULT_PARSER_CONFIG: dict[str, Any] = {
    "chunk_token_num": 512,
    "delimiter": "\n",
    "overlapped_percent": 0,
    "html4excel": False,
    "layout_recognize": "DeepDOC",
    "auto_keywords": 0,
    "auto_questions": 0,
    "raptor": {"use_raptor": False},
    "graphrag": {"use_graphrag": False},
}


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    description: str | None
    avatar: str | None
    embedding_model: str
    permission: str
    chunk_method: str
    parser_config: dict[str, Any]
    created_at_ms: int
    updated_at_ms: int
    version: int
    pagerank: int = 0
    document_count: int = 0
    chunk_count: int = 0
    token_num: int = 0


@dataclass(frozen=True)
class Document:
    id: str
    dataset_id: str
    name: str
    size: int
    suffix: str
    file_key: str
    run: RunStatus
    progress: float
    progress_msg: str
    chunk_count: int
    token_count: int
    active_generation: int | None
    process_begin_at_ms: int | None
    process_duration: float
    created_at_ms: int
    updated_at_ms: int
    chunk_method: str
    parser_config: dict[str, Any]
    meta_fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    id: str
    document_id: str
    dataset_id: str
    state: TaskState
    attempts: int
    generation: int
    lease_owner: str | None
    lease_expires_at: float | None


@dataclass(frozen=True)
class NewDocument:
    """What an upload stores before the document row exists."""

    id: str
    name: str
    size: int
    suffix: str
    file_key: str


@dataclass(frozen=True)
class Chunk:
    """A chunk as stored in the vector store (without its vectors)."""

    id: str
    dataset_id: str
    document_id: str
    generation: int
    content: str
    document_name: str
    important_keywords: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    available: bool = True
    position: int = 0
    created_at: float = 0.0
