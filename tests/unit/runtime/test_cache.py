"""Cache keys include dataset versions, so a change makes old entries unreachable."""

from __future__ import annotations

from ragruntime.store.cache import MemoryCache, TieredCache, cache_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_dataset_version_bump_changes_the_key() -> None:
    params = {"question": "q", "top_k": 5}
    assert cache_key(params, {"ds": 1}) == cache_key(dict(params), {"ds": 1})
    assert cache_key(params, {"ds": 1}) != cache_key(params, {"ds": 2})
    assert cache_key(params, {"ds": 1}) != cache_key({**params, "top_k": 6}, {"ds": 1})


def test_memory_cache_expires_entries_and_evicts_least_recently_used() -> None:
    clock = Clock()
    cache = MemoryCache(ttl_seconds=10, max_entries=2, clock=clock)
    cache.set("a", b"1")
    cache.set("b", b"2")
    assert cache.get("a") == b"1"  # a is now most recently used
    cache.set("c", b"3")
    assert cache.get("b") is None and cache.get("a") == b"1"
    clock.now = 11
    assert cache.get("a") is None


def test_tiered_cache_fills_l1_from_l2_and_records_hits_and_misses() -> None:
    events: list[tuple[str, str]] = []
    l1, l2 = MemoryCache(60, 10), MemoryCache(60, 10)
    l2.name = "l2"
    cache = TieredCache([l1, l2], lambda layer, result: events.append((layer, result)))
    l2.set("k", b"v")
    assert cache.get("k") == b"v"
    assert l1.get("k") == b"v"
    assert cache.get("missing") is None
    assert events == [("l1", "miss"), ("l2", "hit"), ("l1", "miss"), ("l2", "miss")]
