"""ragruntime: document parsing, embedding and hybrid retrieval behind a RAGFlow-compatible API."""

__version__ = "0.1.0"
