"""A standby runtime: follows a primary through its backups, serves read-only, can be promoted."""
