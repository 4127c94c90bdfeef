"""What the operator and the runtime agree on, in the one place both import.

The operator writes the runtime's environment and reads the results its backup and standby sync
Jobs report; the runtime reads that environment and writes those results. Both sides take the
names from here: ``environment`` (the ``RAGFLOW_*`` variables), ``backup_result`` (the JSON
summary in a backup Job's termination message) and ``standby_result`` (the one in a standby sync
Job's). Constants only, standard library only, and no import of either side (``.importlinter``
checks it), so the operator image stays free of the runtime's dependencies. ``tests/contract``
renders real operator output and real runtime output and checks each against the other side's
reader.
"""
