"""Use cases behind the HTTP API (datasets, documents, chunks, API keys, standby), callable from
Python. Retrieval's use case is ``ragruntime.retrieval.search``."""
