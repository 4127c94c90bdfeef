"""Path and query parameters shared by the routes, with the same limits as request bodies."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, StringConstraints

from ragruntime.services.validation import (
    ID_MAX_CHARS,
    PAGE_MAX,
    PAGE_SIZE_MAX,
    QUERY_MAX_CHARS,
    check_text,
)

TIME_MAX_MS = 2**62

DatasetId = Annotated[str, Path(max_length=ID_MAX_CHARS), AfterValidator(check_text)]
DocumentId = Annotated[str, Path(max_length=ID_MAX_CHARS), AfterValidator(check_text)]
ChunkId = Annotated[str, Path(max_length=ID_MAX_CHARS), AfterValidator(check_text)]
IdQuery = Annotated[str | None, Query(max_length=ID_MAX_CHARS), AfterValidator(check_text)]
TextQuery = Annotated[str | None, Query(max_length=QUERY_MAX_CHARS), AfterValidator(check_text)]
Page = Annotated[int, Query(ge=1, le=PAGE_MAX)]
PageSize = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]
OrderBy = Annotated[Literal["create_time", "update_time"], Query()]
TimeMs = Annotated[int, Query(ge=0, le=TIME_MAX_MS)]


def short_text(max_chars: int) -> object:
    """A checked query value of at most ``max_chars`` characters (repeated list items)."""
    return Annotated[str, StringConstraints(max_length=max_chars), AfterValidator(check_text)]
