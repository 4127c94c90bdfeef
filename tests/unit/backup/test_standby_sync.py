"""One standby pass against a local repository, without a vector store (backups of metadata and
stored files only): a network cut in the middle of an apply leaves the standby serving the
previous backup and is not a verdict on the backup (the next pass applies it, reusing the files
the cut pass had already staged); deletions on the primary disappear."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from backup_helpers import DictSnapshot

from ragruntime.backup import crypto
from ragruntime.backup.destinations.base import DestinationError
from ragruntime.backup.destinations.local import LocalDestination
from ragruntime.backup.engine import BackupOptions, run_backup
from ragruntime.backup.repository import Repository
from ragruntime.config import Settings
from ragruntime.models import NewDocument
from ragruntime.standby.sync import Follower
from ragruntime.store.metadata import SqlMetadataStore


class CutAfter(LocalDestination):
    """A destination whose connection drops after ``budget`` downloads (then heals)."""

    def __init__(self, name: str, root: Path, budget: int) -> None:
        super().__init__(name, root)
        self.budget = budget

    def get(self, key: str) -> bytes:
        if key.startswith("data/"):
            if self.budget == 0:
                raise DestinationError("connection reset by peer")
            self.budget -= 1
        return super().get(key)


class Primary:
    """A primary's metadata database (one dataset) and its stored files, backed up on demand."""

    def __init__(self, path: Path, dest: LocalDestination, keyring: crypto.Keyring) -> None:
        self.path, self.dest, self.keyring = path, dest, keyring
        self.store = SqlMetadataStore.open(f"sqlite:///{path}")
        self.dataset = self.store.create_dataset(name="docs", fields={"embedding_model": "m"})
        self.files: dict[str, bytes] = {}

    def add(self, *names: str) -> None:
        new = [NewDocument(n, f"{n}.txt", 4, "txt", f"{self.dataset.id}/{n}") for n in names]
        self.store.add_documents(self.dataset, new)
        self.files.update({f"{self.dataset.id}/{n}": f"body of {n}".encode() for n in names})

    def delete(self, name: str) -> None:
        self.store.delete_documents(self.dataset.id, [name])
        del self.files[f"{self.dataset.id}/{name}"]

    def backup(self) -> str:
        copy = self.path.with_suffix(".copy")
        copy.unlink(missing_ok=True)
        with sqlite3.connect(self.path) as source, sqlite3.connect(copy) as target:
            source.backup(target)  # the online copy (the live file is in WAL mode)
        data = {("database", "ragflow.db"): copy.read_bytes()}
        data.update({("files", key): body for key, body in self.files.items()})
        options = BackupOptions(cluster="primary", object_size=1024, chunk_size=256)
        return run_backup(DictSnapshot(data), [self.dest], self.keyring, options).backup_id


def _names(settings: Settings) -> set[str]:
    with sqlite3.connect(settings.data_dir / "ragflow.db") as conn:
        return {r[0] for r in conn.execute("SELECT name FROM documents")}


def test_a_network_cut_mid_apply_keeps_the_old_backup_and_the_next_pass_resumes(
    tmp_path: Path,
) -> None:
    keyring = crypto.Keyring.from_keys([os.urandom(32)])
    root = tmp_path / "repo" / "primary"
    writer = LocalDestination("disk", root)
    settings = Settings(data_dir=tmp_path / "standby", vector_uri=str(tmp_path / "unused.db"))
    primary = Primary(tmp_path / "primary.db", writer, keyring)
    primary.add("a", "b")
    first = primary.backup()

    def follower(budget: int) -> Follower:
        repo = Repository(CutAfter("disk", root, budget), "primary")
        return Follower([repo], keyring, settings, "primary")

    applied = follower(100).sync_once()
    assert applied.ok and applied.applied == first and _names(settings) == {"a.txt", "b.txt"}

    # Second backup: "a" deleted, "c" and "d" added. The cut hits after one new file is staged.
    primary.delete("a")
    primary.add("c", "d")
    second = primary.backup()
    manifest = Repository(writer, "primary").committed_manifest(second)
    needed = sum(len(e.objects) for e in manifest.entries)  # downloads of a complete apply
    cut = follower(1).sync_once()
    assert not cut.ok and "connection reset" in (cut.error or "")
    assert cut.applied is None and cut.current == first and cut.skipped == []
    assert cut.chunks_fetched == 1
    assert _names(settings) == {"a.txt", "b.txt"}  # still the first backup, whole

    resumed = follower(100).sync_once()
    assert resumed.ok and resumed.applied == second and resumed.skipped == []
    # not downloaded again: "b" (held since the first backup), "c" (staged before the cut)
    assert resumed.chunks_fetched == needed - 2
    assert _names(settings) == {"b.txt", "c.txt", "d.txt"}
    files = settings.files_dir / primary.dataset.id
    assert not (files / "a").exists()  # deleted on the primary: gone here too
    assert (files / "d").read_bytes() == b"body of d"
