"""Query cache: L1 in-process TTL+LRU, optional L2 Redis, behind one ``TieredCache``.

Keys are built by ``cache_key`` from the request parameters AND the current version of every
dataset involved (``datasets.version`` is bumped in the same transaction as any change), so a
change makes old entries unreachable without scanning; they simply expire. Used by
``ragruntime.retrieval.search``; hit/miss counts feed ``ragflow_cache_requests_total``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import redis

from ragruntime.security.tls import TlsFiles, redis_connection

KEY_PREFIX = "ragflow:retrieval:v1:"

HitRecorder = Callable[[str, str], None]


class CacheLayer(Protocol):
    name: str

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes) -> None: ...
    def ping(self) -> None: ...


def cache_key(params: Mapping[str, Any], versions: Mapping[str, int]) -> str:
    """Stable key: sorted JSON of the parameters plus each dataset's version."""
    material = json.dumps({"p": params, "v": dict(sorted(versions.items()))}, sort_keys=True)
    return KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()


class MemoryCache:
    """Thread-safe TTL cache with an LRU bound."""

    name = "l1"

    def __init__(
        self, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def set(self, key: str, value: bytes) -> None:
        if self.ttl_seconds <= 0 or self.max_entries <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def ping(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._entries)


class RedisCache:
    """L2 shared by every API replica; entries expire by Redis TTL."""

    name = "l2"

    def __init__(self, url: str, ttl_seconds: float, tls: TlsFiles | None = None) -> None:
        self.ttl_seconds = ttl_seconds
        url, tls_args = redis_connection(url, tls or TlsFiles())
        self.client = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2, **tls_args
        )

    def get(self, key: str) -> bytes | None:
        value = self.client.get(key)
        return bytes(value) if value is not None else None  # type: ignore[arg-type]

    def set(self, key: str, value: bytes) -> None:
        if self.ttl_seconds > 0:
            self.client.set(key, value, ex=max(1, int(self.ttl_seconds)))

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()


class TieredCache:
    """L1 then L2; an L2 outage counts as an error lookup and a miss, never a failed query."""

    def __init__(self, layers: list[CacheLayer], record: HitRecorder | None = None) -> None:
        self.layers = layers
        self._record = record or (lambda _layer, _result: None)

    def get(self, key: str) -> bytes | None:
        for index, layer in enumerate(self.layers):
            try:
                value = layer.get(key)
            except redis.RedisError:
                self._record(layer.name, "error")
                continue
            if value is not None:
                self._record(layer.name, "hit")
                for upper in self.layers[:index]:
                    upper.set(key, value)
                return value
            self._record(layer.name, "miss")
        return None

    def set(self, key: str, value: bytes) -> None:
        for layer in self.layers:
            try:
                layer.set(key, value)
            except redis.RedisError:
                self._record(layer.name, "error")

    def ping(self) -> None:
        for layer in self.layers:
            layer.ping()
