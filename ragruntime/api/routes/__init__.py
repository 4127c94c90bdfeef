"""One APIRouter per area: system, datasets, documents, chunks, retrieval."""
