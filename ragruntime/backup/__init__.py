"""Backup engine of the runtime: encrypted, incremental, multi-destination backups.

Layers (imports point down): ``cli`` -> ``engine``/``verify``/``restore``/``prune`` ->
``snapshot``/``objects``/``crypto``/``format``/``retention`` and ``destinations``.
The operator's CronJobs run ``ragruntime backup run``, which lands in ``engine.run_backup``.
"""
