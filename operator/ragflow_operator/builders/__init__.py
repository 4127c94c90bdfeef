"""Pure builders: typed models + capabilities -> lists of child manifests (plain dicts).

Builders never do I/O, read the clock, make random values or import kopf/kubernetes
(checked by .importlinter). Each kind's entry point is registered in `registry.py`.
"""
