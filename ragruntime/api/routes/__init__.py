"""One APIRouter per area: system, keys, datasets, documents, chunks, retrieval, standby."""
