"""Apply one backup to a standby incrementally: stage what is missing, flip, collect garbage.

Called by ``ragruntime.standby.sync`` for the backup it chose. Three steps:

1. **Stage.** Every ``vectors`` entry (one document generation) and ``files`` entry (one stored
   document) the standby does not already hold with the same checksum is downloaded, decrypted
   and written: vectors upserted into the dataset's collection, files written atomically. The
   ledger (``ragruntime.store.standby``) remembers each staged entry, so a later backup — or a
   retry after a failed pass — fetches only what changed. Staged data is invisible: searches and
   the query-side index only serve the generations the metadata database names, and it does not
   name these yet. A stored file that is already on disk with the right checksum is adopted
   without a download.
2. **Flip.** The backup's metadata database is downloaded and swapped in with one transaction
   (``ragruntime.standby.flip``), which also records the applied backup. Any failure before
   this commit (network, corrupt or undecryptable object, wrong checksum) leaves the standby
   serving the previous backup.
3. **Garbage.** Generations, collections and files the new metadata no longer names (deleted on
   the primary, or superseded by a re-parse) are removed from the stores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ragruntime.backup.format import Entry, Manifest, ObjectRef
from ragruntime.backup.objects import read_entry
from ragruntime.backup.repository import Repository
from ragruntime.backup.restore import RESTORE_PREFETCH
from ragruntime.backup.sink import INSERT_BATCH, _lines
from ragruntime.config import Settings
from ragruntime.standby import flip
from ragruntime.store import standby as ledger
from ragruntime.store.database import is_postgres, read_only
from ragruntime.store.vectors import MilvusVectorStore, chunk_from_row

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Transfer:
    """Objects downloaded by one pass (what the incremental apply saved is what is not here)."""

    objects: int = 0
    bytes: int = 0
    reused_entries: int = 0
    fetched_entries: int = 0


class Vectors:
    """The standby's vector store, opened with the backup's dimension on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: MilvusVectorStore | None = None

    def get(self, dimension: int = 0) -> MilvusVectorStore:
        if self.store is None or (dimension and self.store.dimension != dimension):
            if self.store is not None:
                self.store.close()
            self.store = MilvusVectorStore(
                self.settings.resolved_vector_uri(),
                self.settings.vector_token,
                dimension,
                self.settings.vector_tls(),
            )
        return self.store

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def _split_generation(path: str) -> tuple[str, str, int]:
    dataset_id, rest = path.split("/", 1)
    document_id, generation = rest.rsplit("@", 1)
    return dataset_id, document_id, int(generation)


class Applier:
    """Applies backups from one repository into the stores named by ``settings``."""

    def __init__(self, settings: Settings, engine: sa.Engine, workdir: Path) -> None:
        self.settings = settings
        self.engine = engine
        self.workdir = workdir
        self.postgres = is_postgres(settings.resolved_database_url())
        self.vectors = Vectors(settings)
        self.transfer = Transfer()

    def close(self) -> None:
        self.vectors.close()

    # -- reading ---------------------------------------------------------------------------
    def _reader(
        self, repo: Repository, keys: Mapping[str, bytes]
    ) -> Callable[[Entry], Iterator[bytes]]:
        def fetch(ref: ObjectRef) -> bytes:
            data = repo.destination.get(ref.path)
            self.transfer.objects += 1
            self.transfer.bytes += len(data)
            return data

        def read(entry: Entry) -> Iterator[bytes]:
            self.transfer.fetched_entries += 1
            return read_entry(entry, fetch, keys, depth=RESTORE_PREFETCH)

        return read

    # -- staging ---------------------------------------------------------------------------
    def _stage_vectors(self, entry: Entry, read: Callable[[Entry], Iterator[bytes]]) -> None:
        dataset_id, document_id, generation = _split_generation(entry.path)
        written: set[str] = set()
        batch: list[Mapping[str, Any]] = []

        def flush() -> None:
            if batch:
                store = self.vectors.get(len(batch[0]["dense"]))
                store.insert(
                    dataset_id,
                    [chunk_from_row(dataset_id, r) for r in batch],
                    [r["dense"] for r in batch],
                    replace=True,  # a retried or edited entry overwrites, never doubles
                )
                written.update(str(r["id"]) for r in batch)
                batch.clear()

        for line in _lines(read(entry)):
            batch.append(json.loads(line))
            if len(batch) >= INSERT_BATCH:
                flush()
        flush()
        if self.vectors.store is not None:
            store = self.vectors.get()
            stale = store.generation_ids(dataset_id, document_id, generation) - written
            store.delete_ids(dataset_id, sorted(stale))

    def _stage_file(self, entry: Entry, read: Callable[[Entry], Iterator[bytes]]) -> bool:
        """Write one stored document unless it is on disk already; True when downloaded."""
        root = self.settings.files_dir.resolve()
        target = (root / entry.path).resolve()
        if root not in target.parents:
            raise ValueError(f"stored file {entry.path!r} lies outside the files directory")
        if target.is_file() and _sha256_file(target) == entry.sha256:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".standby-")
        try:
            with os.fdopen(fd, "wb") as handle:
                for piece in read(entry):
                    handle.write(piece)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def _database_entry(self, manifest: Manifest) -> Entry:
        found = [e for e in manifest.entries if e.component == "database"]
        if len(found) != 1:
            raise ValueError(f"backup {manifest.backup_id} has no database component")
        if found[0].path.endswith(".pgdump") != self.postgres:
            raise ValueError(
                f"the primary's database ({found[0].path}) does not fit this standby's "
                f"({'PostgreSQL' if self.postgres else 'SQLite'}): both must use the same kind"
            )
        return found[0]

    def _held(self) -> dict[str, dict[str, str]]:
        with read_only(self.engine) as conn:
            return {c: ledger.ledger(conn, c) for c in ("vectors", "files")}

    def _stage(self, manifest: Manifest, read: Callable[[Entry], Iterator[bytes]]) -> None:
        have = self._held()
        for entry in manifest.entries:
            if entry.component not in have:
                continue  # the database is flipped later; the configuration is the primary's
            if have[entry.component].get(entry.path) == entry.sha256:
                self.transfer.reused_entries += 1
                continue
            if entry.component == "vectors":
                self._stage_vectors(entry, read)
            elif not self._stage_file(entry, read):
                self.transfer.reused_entries += 1
            with self.engine.begin() as conn:
                ledger.remember(conn, entry.component, entry.path, entry.sha256, entry.records)

    def _download(self, entry: Entry, read: Callable[[Entry], Iterator[bytes]]) -> Path:
        target = self.workdir / entry.path.replace("/", "_")
        with target.open("wb") as handle:
            for piece in read(entry):
                handle.write(piece)
        return target

    # -- the whole apply -------------------------------------------------------------------
    def apply(
        self,
        repo: Repository,
        manifest: Manifest,
        keys: Mapping[str, bytes],
        record: Callable[[sa.Connection], None],
    ) -> None:
        """Stage, flip (calling ``record`` inside the flip's transaction), collect garbage."""
        read = self._reader(repo, keys)
        database = self._database_entry(manifest)
        self._stage(manifest, read)
        dump = self._download(database, read)
        staged: flip.StagedDatabase = (
            flip.PostgresStage(dump, self.settings.resolved_database_url())
            if self.postgres
            else flip.SqliteStage(dump)
        )
        held = {c: set(paths) for c, paths in self._held().items()}
        garbage: dict[str, set[str]] = {}
        gone: set[str] = set()

        def in_flip(conn: sa.Connection, before: flip.Visible, after: flip.Visible) -> None:
            garbage["vectors"] = (held["vectors"] | before.generations) - after.generations
            garbage["files"] = (held["files"] | before.file_keys) - after.file_keys
            for component, paths in garbage.items():
                ledger.forget(conn, component, sorted(paths))
            known = before.datasets | {p.split("/", 1)[0] for p in held["vectors"]}
            gone.update(known - after.datasets)
            record(conn)

        flip.flip(self.engine, staged, in_flip)
        dump.unlink(missing_ok=True)
        self._collect(garbage, gone)

    def _collect(self, garbage: Mapping[str, set[str]], gone: set[str]) -> None:
        """Remove what the new metadata no longer names (best effort: it is invisible anyway).

        Only datasets this standby knew are dropped: a vector store shared with other
        deployments keeps their collections."""
        vectors = garbage.get("vectors", set())
        if vectors or gone:
            try:
                store = self.vectors.get()
                for path in sorted(vectors):
                    dataset_id, document_id, generation = _split_generation(path)
                    if dataset_id not in gone:
                        store.delete_document(dataset_id, document_id, generation)
                for dataset_id in sorted(gone):
                    store.drop_collection(dataset_id)
            except Exception:
                log.warning(
                    "removing superseded vectors failed (they stay invisible)", exc_info=True
                )
        if not self.postgres:
            for key in sorted(garbage.get("files", ())):
                (self.settings.files_dir / key).unlink(missing_ok=True)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while piece := handle.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()
