"""Parsing under a budget, through the API of a real runtime: a decompression bomb fails fast
with the reason on the document while a small file next to it is parsed; a cancelled slow parse
really stops (its process is killed, the worker takes the next document at once); a parse over
its time budget and a parser setting stored before validation fail with the real error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragruntime.embedding import Embedder
from ragruntime.store.database import create_engine
from ragruntime.store.schema import documents
from tests.fixtures.processes import parser_processes
from tests.integration.runtime.robustness.conftest import Client, serve, settings_for
from tests.unit.runtime.documents_factory import pdf_bomb

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = ("small.txt", b"A small text file that must not wait behind a slow PDF.")


def upload(client: Client, dataset_id: str, files: list[tuple[str, bytes]]) -> list[str]:
    parts = [("file", item) for item in files]
    return [d["id"] for d in client.ok("POST", f"/datasets/{dataset_id}/documents", files=parts)]


def parse(client: Client, dataset_id: str, ids: list[str]) -> None:
    client.ok("POST", f"/datasets/{dataset_id}/chunks", json={"document_ids": ids})


@pytest.fixture
def slow_runtime(tmp_path: Path, embedder: Embedder) -> Iterator[Client]:
    """Limits high enough for the bomb to be slow instead of refused; a 3 s time budget."""
    settings = settings_for(tmp_path / "data", parse_max_stream_mb=200, parse_timeout_seconds=3)
    with serve(settings, embedder) as client:
        yield client


def test_a_decompression_bomb_fails_fast_and_does_not_block_a_small_file(
    runtime_client: Client,
) -> None:
    dataset_id = runtime_client.ok("POST", "/datasets", json={"name": "bomb"})["id"]
    bomb, small = upload(runtime_client, dataset_id, [("bomb.pdf", pdf_bomb()), SMALL])
    started = time.monotonic()
    parse(runtime_client, dataset_id, [bomb, small])
    docs = runtime_client.wait_terminal(dataset_id, [bomb, small], timeout_s=60)
    assert time.monotonic() - started < 45
    assert docs[bomb]["run"] == "FAIL" and "decompression limit" in docs[bomb]["progress_msg"]
    assert docs[small]["run"] == "DONE"


def test_a_parse_over_its_time_budget_fails_with_the_reason(slow_runtime: Client) -> None:
    dataset_id = slow_runtime.ok("POST", "/datasets", json={"name": "slow"})["id"]
    (slow,) = upload(slow_runtime, dataset_id, [("slow.pdf", pdf_bomb())])
    parse(slow_runtime, dataset_id, [slow])
    doc = slow_runtime.wait_terminal(dataset_id, [slow], timeout_s=60)[slow]
    assert doc["run"] == "FAIL" and "longer than its budget of 3 s" in doc["progress_msg"]
    assert not parser_processes()


def test_cancelling_a_stuck_parse_kills_it_and_frees_the_worker(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = settings_for(tmp_path / "data", parse_max_stream_mb=200, parse_timeout_seconds=600)
    with serve(settings, embedder) as client:
        dataset_id = client.ok("POST", "/datasets", json={"name": "cancel"})["id"]
        slow, small = upload(client, dataset_id, [("slow.pdf", pdf_bomb()), SMALL])
        parse(client, dataset_id, [slow])
        deadline = time.monotonic() + 30
        while not parser_processes():
            assert time.monotonic() < deadline, "the parse never started"
            time.sleep(0.1)
        client.ok("DELETE", f"/datasets/{dataset_id}/chunks", json={"document_ids": [slow]})
        deadline = time.monotonic() + 10
        while parser_processes():
            assert time.monotonic() < deadline, "the cancelled parse is still running"
            time.sleep(0.1)
        started = time.monotonic()
        parse(client, dataset_id, [small])
        docs = client.wait_terminal(dataset_id, [slow, small], timeout_s=30)
        assert docs[slow]["run"] == "CANCEL" and docs[small]["run"] == "DONE"
        assert time.monotonic() - started < 20


def test_a_bad_parser_setting_stored_before_validation_fails_the_document_with_its_error(
    tmp_path: Path, embedder: Embedder
) -> None:
    settings = settings_for(tmp_path / "data")
    with serve(settings, embedder) as client:
        dataset_id = client.ok("POST", "/datasets", json={"name": "legacy"})["id"]
        (document_id,) = upload(client, dataset_id, [SMALL])
        engine = create_engine(settings.resolved_database_url())
        with engine.begin() as conn:  # what an older runtime let through
            conn.execute(
                documents.update()
                .where(documents.c.id == document_id)
                .values(parser_config={"chunk_token_num": "abc"})
            )
        engine.dispose()
        parse(client, dataset_id, [document_id])
        doc = client.wait_terminal(dataset_id, [document_id], timeout_s=30)[document_id]
        assert doc["run"] == "FAIL" and "invalid literal for int()" in doc["progress_msg"]
