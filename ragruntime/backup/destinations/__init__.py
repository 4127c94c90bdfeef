"""Storage backends for backups: one small interface, one module per provider, retry as a wrapper.

``build_destination`` (in ``factory``) turns a destination config into a ready backend.
"""
