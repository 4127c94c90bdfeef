"""Stores behind Protocols: metadata + queue (SQL), vectors (Milvus), cache (L1/Redis), files."""
