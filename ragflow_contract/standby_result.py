"""The result a standby sync Job reports: one JSON object in its container's termination message.

``ragruntime standby sync --termination-log PATH`` writes the summary there (as ``backup run``
does, at most ``backup_result.TERMINATION_LIMIT`` bytes); the operator's sync CronJob points
``terminationMessagePath`` at that path, reads the message back from the finished pod and turns it
into the RagFlowCluster's ``status.standby`` and its ``StandbyReady`` condition. Every summary has
all of ``SUMMARY_FIELDS``; a pass that failed (or a command that failed before its pass) also has
``ERROR``.
"""

from __future__ import annotations

#: The backup this pass applied; null when it applied none.
APPLIED = "applied"
#: The backup the standby serves after this pass; null before the first one.
CURRENT = "current"
#: When the served backup was taken (ISO-8601, UTC): the reference of the standby's lag.
CURRENT_BACKUP_TIME = "currentBackupTime"
#: The newest backup the primary's destinations list; null when they list none.
NEWEST_AVAILABLE = "newestAvailable"
#: Backups this pass found unusable, newest first (``SKIPPED_FIELDS`` each).
SKIPPED = "skipped"
#: Objects and bytes this pass downloaded.
CHUNKS_FETCHED = "chunksFetched"
BYTES_FETCHED = "bytesFetched"
#: True when the standby serves the newest usable backup after this pass.
UP_TO_DATE = "upToDate"
#: Why the pass failed; absent when it did not.
ERROR = "error"

SUMMARY_FIELDS = (
    APPLIED,
    CURRENT,
    CURRENT_BACKUP_TIME,
    NEWEST_AVAILABLE,
    SKIPPED,
    CHUNKS_FETCHED,
    BYTES_FETCHED,
    UP_TO_DATE,
)

#: Fields of each entry of ``SKIPPED``: the backup's id and why it was not applied.
SKIPPED_BACKUP_ID = "backupId"
SKIPPED_REASON = "reason"
SKIPPED_FIELDS = (SKIPPED_BACKUP_ID, SKIPPED_REASON)
