"""The standby's database flip, on SQLite and PostgreSQL: one transaction that replaces the
primary's tables, keeps the standby's own API keys, moves dataset versions forward and records
the applied backup; a reader inside a transaction keeps seeing the old data until it ends; an
unreadable dump changes nothing."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ragruntime.backup import pg
from ragruntime.models import NewDocument
from ragruntime.security.keys import KeyStore
from ragruntime.security.roles import AccessRole
from ragruntime.security.sources import KeySync
from ragruntime.standby import flip
from ragruntime.store import standby as standby_state
from ragruntime.store.database import READ_ONLY
from ragruntime.store.metadata import SqlMetadataStore
from ragruntime.store.schema import datasets, documents, file_blobs

pytestmark = pytest.mark.integration
STANDBY_ENV_KEY = "standby-own-key-from-RAGFLOW_API_KEY"


@pytest.fixture(params=["sqlite", "postgres"])
def urls(request, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'primary.db'}", f"sqlite:///{tmp_path / 'standby.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        yield server.create_database("primary"), server.create_database("standby")


def _dump(url: str, target: Path) -> flip.StagedDatabase:
    if url.startswith("sqlite"):
        source = sqlite3.connect(url.split("///", 1)[1])
        copy = sqlite3.connect(target)
        source.backup(copy)
        source.close(), copy.close()
        return flip.SqliteStage(target)
    pg.run(["pg_dump", "--format=custom", f"--file={target}"], url)
    return flip.PostgresStage(target, url)


def _primary(url: str) -> tuple[SqlMetadataStore, str, str]:
    store = SqlMetadataStore.open(url)
    dataset = store.create_dataset(name="manuals", fields={"embedding_model": "m"})
    store.add_documents(
        dataset, [NewDocument(f"doc{i}", f"{i}.txt", 3, "txt", f"k{i}") for i in range(3)]
    )
    for i in range(2):
        store.ensure_generation(dataset.id, f"doc{i}", 100 + i)
    with store.engine.begin() as conn:
        conn.execute(file_blobs.insert().values(key="k0", data=b"\x00binary\nblob\\."))
    token = KeyStore(store.engine).create(name="app", role=AccessRole.VIEWER).token
    return store, dataset.id, token


def _standby(url: str) -> tuple[SqlMetadataStore, str, str]:
    store = SqlMetadataStore.open(url)
    standby_state.ensure_tables(store.engine)
    old = store.create_dataset(name="stale", fields={"embedding_model": "m"})
    for _ in range(4):
        store.update_dataset(old.id, {"description": "bumps the version"})
    KeySync(
        KeyStore(store.engine), env_key=STANDBY_ENV_KEY, keys_dir=None, grace_seconds=0
    ).run_once()
    token = KeyStore(store.engine).create(name="local", role=AccessRole.ADMIN).token
    return store, old.id, token


def _names(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.select(datasets.c.name))}


def test_flip_replaces_the_primary_tables_in_one_transaction(urls, tmp_path) -> None:
    primary, dataset_id, primary_key = _primary(urls[0])
    standby, stale_id, local_key = _standby(urls[1])
    staged = _dump(urls[0], tmp_path / "dump")
    keys = KeyStore(standby.engine)

    # a reader inside one transaction (SQLite: deferred, WAL; PostgreSQL: one snapshot)
    options = {READ_ONLY: True}
    if standby.engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    reader = standby.engine.connect().execution_options(**options)
    reader_names = lambda: {r[0] for r in reader.execute(sa.select(datasets.c.name))}  # noqa: E731
    assert reader_names() == {"stale"}

    def record(conn: sa.Connection, before: flip.Visible, after: flip.Visible) -> None:
        assert before.datasets == {stale_id} and after.datasets == {dataset_id}
        assert after.generations == {f"{dataset_id}/doc0@100", f"{dataset_id}/doc1@101"}
        assert after.file_keys == {"k0", "k1", "k2"}
        standby_state.write_state(conn, {"primary_cluster": "a", "backup_id": "b1"})

    flip.flip(standby.engine, staged, record)  # a writer: the reader does not block it
    assert reader_names() == {"stale"}  # an open transaction still sees the old backup
    reader.rollback(), reader.close()

    assert _names(standby.engine) == {"manuals"}
    with standby.engine.connect() as conn:
        active = dict(conn.execute(sa.select(documents.c.id, documents.c.active_generation)).all())
        blob = conn.execute(sa.select(file_blobs.c.data)).scalar_one()
    assert active == {"doc0": 100, "doc1": 101, "doc2": None}
    assert bytes(blob) == b"\x00binary\nblob\\."
    assert keys.authenticate(STANDBY_ENV_KEY) is not None  # the standby's own key stays
    assert keys.authenticate(primary_key) is not None  # the primary's API keys arrive
    assert keys.authenticate(local_key) is None  # keys created on the standby are replaced
    state = standby_state.read_state(standby.engine)
    assert state is not None and state.backup_id == "b1"

    # Applying the same backup again moves the version forward (caches and indexes resync).
    served = standby.dataset_versions([dataset_id])[dataset_id]
    flip.flip(standby.engine, staged, lambda *_: None)
    assert standby.dataset_versions([dataset_id])[dataset_id] == served + 1

    # An unreadable dump fails before anything changes.
    broken = tmp_path / "broken"
    shutil.copyfile(tmp_path / "dump", broken)
    with broken.open("r+b") as handle:
        handle.truncate(broken.stat().st_size // 3)
    bad = (
        flip.SqliteStage(broken)
        if urls[1].startswith("sqlite")
        else flip.PostgresStage(broken, urls[1])
    )
    with pytest.raises(flip.FlipError):
        flip.flip(standby.engine, bad, lambda *_: pytest.fail("recorded a failed flip"))
    assert _names(standby.engine) == {"manuals"}
    primary.close(), standby.close()
