"""The result a backup Job reports: one JSON object in its container's termination message.

``ragruntime backup run|verify|restore ... --termination-log PATH`` writes the summary there (at
most ``TERMINATION_LIMIT`` bytes); the operator's Job sets ``terminationMessagePath`` to that path,
reads the message back from the finished pod and keeps the fields below in the BackupPolicy's
status (``lastBackup``, ``lastValidation``). A command that fails before it has a result writes
``{"kind", "succeeded": false, "ok": false, "error"}`` instead.
"""

from __future__ import annotations

#: Kubernetes keeps at most 4096 bytes of a termination message.
TERMINATION_LIMIT = 4000

KIND_BACKUP = "backup"
KIND_VALIDATION = "validation"
KIND_RESTORE = "restore"

#: Fields of a ``backup run`` summary that the operator keeps in ``status.lastBackup``
#: (``keyFirstUsedAt`` only after a successful run).
BACKUP_FIELDS = (
    "id",
    "schedule",
    "type",
    "parentId",
    "startedAt",
    "finishedAt",
    "succeeded",
    "bytes",
    "storedBytes",
    "error",
    "keyId",
    "keyFirstUsedAt",
)
#: Fields of each entry of a backup summary's ``destinations``.
DESTINATION_FIELDS = ("name", "state", "error")
#: Fields of a ``backup verify`` summary (``status.lastValidation``) ...
VALIDATION_FIELDS = ("ok", "tests", "details")
#: ... and of each entry of its ``details``.
VALIDATION_DETAIL_FIELDS = ("destination", "test", "ok", "problems", "mbPerS", "id")
