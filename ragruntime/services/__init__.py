"""Use cases behind the HTTP API (datasets, documents, chunks), callable from plain Python."""
