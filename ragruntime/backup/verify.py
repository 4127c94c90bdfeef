"""Backup validation: integrity (every object downloaded, checksummed, authenticated) and
restore tests (into a scratch target, counts compared with the manifest, restore MB/s).

Called by ``ragruntime backup verify`` (the operator's validation CronJob) and by tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable

from ragruntime.backup import crypto
from ragruntime.backup.destinations.base import DestinationError, NotFound
from ragruntime.backup.format import FormatError, Manifest
from ragruntime.backup.objects import IntegrityError, open_object
from ragruntime.backup.repository import Repository, UnknownBackup, unlock_keys
from ragruntime.backup.restore import RestoreSink, restore_manifest


@dataclasses.dataclass
class VerifyReport:
    backup_id: str
    destination: str
    test: str  # integrity | restore
    ok: bool = True
    problems: list[str] = dataclasses.field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    unchecked: list[str] = dataclasses.field(default_factory=list)  # validated, not restored

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)

    def summary(self) -> dict[str, object]:
        return {
            "id": self.backup_id,
            "destination": self.destination,
            "test": self.test,
            "ok": self.ok,
            "problems": [p[:200] for p in self.problems[:10]],
            "objects": self.objects,
            "bytes": self.bytes,
            "mbPerS": round(self.mb_per_s, 2),
            **({"unchecked": self.unchecked} if self.unchecked else {}),
        }


def _load(
    repo: Repository, backup_id: str, keyring: crypto.Keyring, report: VerifyReport
) -> tuple[Manifest, dict[str, bytes]] | None:
    try:
        manifest = repo.committed_manifest(backup_id)
        return manifest, unlock_keys(manifest, keyring)
    except UnknownBackup:
        raise
    except (DestinationError, FormatError, crypto.CryptoError) as exc:
        report.problem(f"manifest: {exc}")
        return None


def verify_integrity(repo: Repository, backup_id: str, keyring: crypto.Keyring) -> VerifyReport:
    """Download every object the backup references; check size, sha256, and decryption."""
    report = VerifyReport(backup_id, repo.name, "integrity")
    start = time.monotonic()
    loaded = _load(repo, backup_id, keyring, report)
    if loaded is None:
        return report
    manifest, keys = loaded

    failed: set[str] = set()
    for entry in manifest.entries:
        digest = hashlib.sha256()
        intact = True
        for ref in entry.objects:
            try:
                stored = repo.destination.get(ref.path)
                report.objects += 1
                report.bytes += len(stored)
                digest.update(open_object(ref, stored, keys))
            except IntegrityError as exc:
                intact = False
                if ref.path not in failed:
                    failed.add(ref.path)
                    report.problem(f"{entry.component}/{entry.path}: {exc}")
            except DestinationError as exc:
                intact = False
                state = "missing" if isinstance(exc, NotFound) else "unreadable"
                report.problem(f"{entry.component}/{entry.path}: object {ref.name} {state}: {exc}")
        if intact and digest.hexdigest() != entry.sha256:
            report.problem(f"{entry.component}/{entry.path}: entry checksum mismatch")
    report.seconds = time.monotonic() - start
    return report


def verify_restore(
    repo: Repository, backup_id: str, keyring: crypto.Keyring, make_sink: Callable[[], RestoreSink]
) -> VerifyReport:
    """Restore into a scratch target and compare its counts with the manifest's."""
    report = VerifyReport(backup_id, repo.name, "restore")
    loaded = _load(repo, backup_id, keyring, report)
    if loaded is None:
        return report
    manifest, keys = loaded
    start = time.monotonic()
    sink = make_sink()
    try:
        restored = restore_manifest(repo, manifest, keys, sink, force=False)
    except Exception as exc:  # a validation reports every failure instead of crashing
        report.problem(f"restore failed: {type(exc).__name__}: {exc}")
        return report
    report.seconds = time.monotonic() - start
    report.bytes = manifest.plain_bytes
    report.objects = len(manifest.objects)
    report.counts = dict(restored)
    unchecked = set(getattr(sink, "unchecked", ()))
    report.unchecked = sorted(unchecked)
    for component, expected in manifest.counts.items():
        if component in unchecked:
            continue
        got = restored.get(component)
        if got != expected:
            report.problem(f"{component}: restored {got} records, manifest says {expected}")
    return report
