"""Kubernetes operator for production RAG deployments (see README)."""

__version__ = "0.1.0"
