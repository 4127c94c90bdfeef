"""Ingestion: parsers, chunking, embedding, the per-task pipeline, the worker loop (no FastAPI)."""
