"""What every stored value must satisfy: limits, the field types the API accepts, error messages.

The HTTP request models (``ragruntime.api.requests``) are built from these types, and the
services validate again with the same models, so a value that reaches a store is always one that
every reader (the JSON encoder, SQLite/PostgreSQL, Milvus, the chunker) can handle: no NUL byte,
no lone surrogate, no NaN or infinity, no over-long string, no parser setting the chunker cannot
use. A violation is an ``InvalidArgument`` whose message names the field, in RAGFlow's format
``Field: <name> - Message: <reason>``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ragruntime.errors import InvalidArgument
from ragruntime.ingest.chunking import delimiter_pattern
from ragruntime.models import CHUNK_CONTENT_MAX_BYTES

DATASET_NAME_MAX_CHARS = 128  # RAGFlow's DATASET_NAME_LIMIT
FILE_NAME_MAX_BYTES = 255
DESCRIPTION_MAX_CHARS = 65535
MODEL_NAME_MAX_CHARS = 255
ID_MAX_CHARS = 64
QUERY_MAX_CHARS = 4096  # a retrieval question or a keyword filter
CHUNK_CONTENT_MAX_CHARS = CHUNK_CONTENT_MAX_BYTES  # a character is at least one byte
CHUNK_TERMS_MAX_ITEMS = 64  # important_keywords / questions entries
CHUNK_TERM_MAX_CHARS = 1024
CHUNK_TERMS_MAX_JSON = 8000  # each list is stored as ASCII JSON in an 8,192-byte column
IDS_MAX_ITEMS = 10000
PAGE_MAX = 1_000_000
PAGE_SIZE_MAX = 10_000
TOP_K_MAX = 16384
PAGERANK_MAX = 100
CHUNK_TOKEN_NUM_MAX = 2048
OVERLAP_MAX_PERCENT = 90
DELIMITER_MAX_CHARS = 256
JSON_MAX_DEPTH = 16

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(value: str) -> str:
    """A string every store and the UTF-8 JSON encoder accept: no NUL, no lone surrogate."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if _SURROGATE.search(value):
        raise ValueError("must be valid Unicode (no lone surrogates)")
    return value


def check_json(value: Any, depth: int = 0) -> Any:
    """Free-form JSON (``meta_fields``, extra parser settings) that reads back unchanged."""
    if depth > JSON_MAX_DEPTH:
        raise ValueError(f"must not nest deeper than {JSON_MAX_DEPTH} levels")
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(str(key))
            check_json(item, depth + 1)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for item in value:
            check_json(item, depth + 1)
    return value


def text(max_chars: int, min_chars: int = 0) -> Any:
    """A checked string of ``min_chars`` to ``max_chars`` characters."""
    limits = Field(min_length=min_chars, max_length=max_chars)
    return Annotated[StrictStr, limits, AfterValidator(check_text)]


Text = Annotated[StrictStr, AfterValidator(check_text)]
Id = text(ID_MAX_CHARS)
IdList = Annotated[list[Id], Field(max_length=IDS_MAX_ITEMS)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
ChunkMethod = Literal[
    "naive", "book", "email", "laws", "manual", "one", "paper", "picture",
    "presentation", "qa", "table", "tag",
]  # fmt: skip


def _check_terms(values: list[str]) -> list[str]:
    encoded = len(json.dumps(values))
    if encoded > CHUNK_TERMS_MAX_JSON:
        raise ValueError(
            f"the list takes {encoded} characters as JSON, at most {CHUNK_TERMS_MAX_JSON}"
        )
    return values


ChunkTerms = Annotated[
    list[text(CHUNK_TERM_MAX_CHARS)],
    Field(max_length=CHUNK_TERMS_MAX_ITEMS),
    AfterValidator(_check_terms),
]


def _check_content(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    size = len(value.encode())
    if size > CHUNK_CONTENT_MAX_BYTES:
        raise ValueError(f"is {size} bytes as UTF-8, at most {CHUNK_CONTENT_MAX_BYTES}")
    return value


ChunkContent = Annotated[text(CHUNK_CONTENT_MAX_CHARS), AfterValidator(_check_content)]


def _check_file_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if "/" in value or "\\" in value:
        raise ValueError("must not contain a path separator")
    if len(value.encode()) > FILE_NAME_MAX_BYTES:
        raise ValueError(f"must be {FILE_NAME_MAX_BYTES} bytes or less as UTF-8")
    return value


FileName = Annotated[Text, AfterValidator(_check_file_name)]


class ParserConfig(BaseModel):
    """The chunking settings the runtime reads, checked as the chunker will use them.

    Settings the runtime does not use (``raptor``, ``graphrag``, ...) are kept as given, as long
    as they are plain JSON.
    """

    model_config = ConfigDict(extra="allow")

    chunk_token_num: StrictInt | None = Field(None, ge=1, le=CHUNK_TOKEN_NUM_MAX)
    delimiter: text(DELIMITER_MAX_CHARS, 1) | None = None
    overlapped_percent: StrictInt | StrictFloat | None = Field(
        None, ge=0, le=OVERLAP_MAX_PERCENT, allow_inf_nan=False
    )
    html4excel: StrictBool | None = None
    layout_recognize: text(MODEL_NAME_MAX_CHARS) | StrictBool | None = None
    auto_keywords: StrictInt | None = Field(None, ge=0, le=32)
    auto_questions: StrictInt | None = Field(None, ge=0, le=10)
    task_page_size: StrictInt | None = Field(None, ge=1, le=PAGE_SIZE_MAX)

    @field_validator("delimiter")
    @classmethod
    def _delimiter_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            delimiter_pattern(value)  # raises ValueError with the reason
        return value

    @model_validator(mode="after")
    def _extras_are_plain_json(self) -> ParserConfig:
        check_json(self.model_extra or {})
        return self

    def stored(self) -> dict[str, Any]:
        """The settings given, extras included, ready to merge into the stored config."""
        return self.model_dump(exclude_unset=True)


class DatasetFields(BaseModel):
    """Create/update fields of a dataset (RAGFlow's CreateDatasetReq / UpdateDatasetReq)."""

    model_config = ConfigDict(extra="ignore")

    name: text(DATASET_NAME_MAX_CHARS, 1) | None = None
    avatar: text(DESCRIPTION_MAX_CHARS) | None = None
    description: text(DESCRIPTION_MAX_CHARS) | None = None
    embedding_model: text(MODEL_NAME_MAX_CHARS) | None = None
    permission: Literal["me", "team"] | None = None
    chunk_method: ChunkMethod | None = None
    pagerank: StrictInt | None = Field(None, ge=0, le=PAGERANK_MAX)
    parser_config: ParserConfig | None = None

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("String should have at least 1 non-blank character")
        return value.strip() if value is not None else None


class DocumentFields(BaseModel):
    """Update fields of a document."""

    model_config = ConfigDict(extra="ignore")

    name: FileName | None = None
    chunk_method: ChunkMethod | None = None
    parser_config: ParserConfig | None = None
    meta_fields: JsonObject | None = None


class ChunkFields(BaseModel):
    """Add/update fields of a chunk."""

    model_config = ConfigDict(extra="ignore")

    content: ChunkContent | None = None
    important_keywords: ChunkTerms | None = None
    questions: ChunkTerms | None = None
    available: StrictBool | None = None


def error_message(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> str:
    """RAGFlow's ``Field: <a.b> - Message: <reason>`` for the first error."""
    first = exc.errors(include_url=False)[0]
    return field_message(first, prefix)


def field_message(error: Mapping[str, Any], prefix: tuple[str | int, ...] = ()) -> str:
    location = [*prefix, *error.get("loc", ())]
    # pydantic names union members and validator kinds in the path: keep the field names only.
    names = [str(p) for p in location if not _is_type_tag(p)]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"Field: <{'.'.join(names) or 'body'}> - Message: <{message}>"


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPE_TAGS = {"int", "float", "str", "bool", "list", "dict", "none"}


def _is_type_tag(part: Any) -> bool:
    """pydantic's names of union members and validators (``int``, ``function-after[...]``)."""
    if isinstance(part, int):
        return False
    text = str(part)
    return text.lower() in _TYPE_TAGS or not _FIELD_NAME.fullmatch(text)


def validate(model: type[BaseModel], fields: Mapping[str, Any]) -> Any:
    """``model`` built from ``fields`` or ``InvalidArgument`` naming the first bad field."""
    if not isinstance(fields, Mapping):
        raise InvalidArgument("Field: <body> - Message: <Input should be a JSON object>")
    try:
        return model.model_validate(dict(fields))
    except ValidationError as exc:
        raise InvalidArgument(error_message(exc)) from None
