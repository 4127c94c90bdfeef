"""Typed, frozen views of our custom resources, parsed from their (defaulted) bodies.

`defaults.py` applies the CRD schema's defaults the way the API server does, so a CR read from
a file (`ragflow-operator render`) and one read from the cluster give the same model.
"""
