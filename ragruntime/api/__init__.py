"""The HTTP layer: RAGFlow-compatible /api/v1 routers, dependencies, envelopes and errors."""
