"""Stores: metadata + queue (SQL), vectors (Milvus), cache (L1/Redis), files; each translates its
driver's errors into ``ragruntime.errors`` (a failing store is ``StoreUnavailable``)."""
