"""Envelope encryption for backups: master keyring, per-backup data keys, chunked AES-256-GCM.

Pure computation (no I/O besides reading a keyring file). Used by ``objects`` (sealing chunks),
``engine`` (new data keys, manifest MAC) and ``verify``/``restore`` (opening them).

* Master keys come from a keyring: one base64 32-byte key per line, the FIRST line is the active
  key for new backups, later lines keep older backups restorable after a rotation. A key's id is
  a fingerprint (HMAC of a fixed label), so ids never reveal the key and need no bookkeeping.
* Each backup gets a fresh random data key, wrapped with AES-KW (RFC 3394) by the active master key.
* A sealed object is ``MAGIC | version | chunk size`` then chunks ``nonce | ciphertext | tag``.
  Every chunk has a fresh random 96-bit nonce and associated data binding the data key id,
  component, object name, chunk index and a final-chunk flag: reordering, truncation, substitution
  or a change of context all fail authentication.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from ragruntime.backup.format import WrappedKey

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAGIC = b"RFBK"
VERSION = 1
HEADER = struct.Struct(">4sBI")
DEFAULT_CHUNK_SIZE = 1 << 20  # 1 MiB: small enough to bound memory, large enough to amortise tags


class CryptoError(Exception):
    """Decryption or key handling failed. Messages never contain key material."""


class KeyNotFound(CryptoError):
    """The keyring has no master key with the id a backup was wrapped with."""


def key_id(master_key: bytes) -> str:
    """Stable, non-secret id of a master key."""
    return "k-" + hmac.new(master_key, b"ragflow-backup key id v1", hashlib.sha256).hexdigest()[:16]


def _derive(key: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(key)


@dataclasses.dataclass(frozen=True)
class Keyring:
    """Master keys by id; ``active_id`` wraps new data keys."""

    keys: dict[str, bytes]
    active_id: str

    @classmethod
    def from_keys(cls, keys: Iterable[bytes]) -> Keyring:
        ordered = list(keys)
        if not ordered:
            raise CryptoError("the keyring is empty: at least one 32-byte master key is needed")
        for key in ordered:
            if len(key) != KEY_BYTES:
                raise CryptoError(f"a master key must be {KEY_BYTES} bytes, got {len(key)}")
        return cls(keys={key_id(k): k for k in ordered}, active_id=key_id(ordered[0]))

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """One base64 key per line (first = active); blank lines and ``#`` comments ignored."""
        keys = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                keys.append(base64.b64decode(line, validate=True))
            except ValueError:
                raise CryptoError(f"keyring line {number} is not base64") from None
        return cls.from_keys(keys)

    @classmethod
    def load(cls, path: str | Path) -> Keyring:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise CryptoError(f"cannot read the keyring file {path}: {exc.strerror}") from None
        return cls.parse(text)

    @property
    def active(self) -> bytes:
        return self.keys[self.active_id]

    def object_name_key(self) -> bytes:
        """Key of the keyed hash that names objects (derived from the active master key)."""
        return _derive(self.active, b"ragflow-backup object names v1")

    def wrap(self, data_key: bytes) -> WrappedKey:
        wrapped = aes_key_wrap(self.active, data_key)
        return WrappedKey(self.active_id, base64.b64encode(wrapped).decode())

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        master = self.keys.get(wrapped.master_key_id)
        if master is None:
            raise KeyNotFound(
                f"master key {wrapped.master_key_id} is not in the keyring "
                f"(keyring has {', '.join(sorted(self.keys))}); add the key the backup used"
            )
        try:
            return aes_key_unwrap(master, base64.b64decode(wrapped.wrapped))
        except (InvalidUnwrap, ValueError):
            raise CryptoError(
                f"data key wrapped by {wrapped.master_key_id} does not unwrap (wrong key?)"
            ) from None


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def object_name(name_key: bytes, plaintext: bytes) -> str:
    """Content address of a chunk: HMAC-SHA256, so names reveal nothing about the content."""
    return hmac.new(name_key, plaintext, hashlib.sha256).hexdigest()


def manifest_mac(data_key: bytes, unsigned: bytes) -> str:
    mac_key = _derive(data_key, b"ragflow-backup manifest mac v1")
    return hmac.new(mac_key, unsigned, hashlib.sha256).hexdigest()


def check_manifest_mac(data_key: bytes, unsigned: bytes, mac: str) -> None:
    if not hmac.compare_digest(manifest_mac(data_key, unsigned), mac):
        raise CryptoError("manifest authentication failed: it was modified or the key is wrong")


@dataclasses.dataclass(frozen=True)
class Context:
    """What an object is bound to; part of every chunk's associated data."""

    key_id: str
    component: str
    name: str

    def aad(self, index: int, final: bool) -> bytes:
        fields = (b"ragflow-backup v1", self.key_id.encode(), self.component.encode())
        return b"\0".join((*fields, self.name.encode(), struct.pack(">QB", index, int(final))))


def encrypt_chunks(
    data_key: bytes, context: Context, plaintext: Iterable[bytes], chunk_size: int
) -> Iterator[bytes]:
    """Yield the sealed stream for plaintext pieces, re-cut into ``chunk_size`` chunks.

    Holds at most two chunks in memory whatever the total size.
    """
    aead = AESGCM(data_key)
    yield HEADER.pack(MAGIC, VERSION, chunk_size)
    index = 0
    pending = b""
    for piece in plaintext:
        pending += piece
        while len(pending) > chunk_size:  # strictly more: the last chunk must carry final=1
            chunk, pending = pending[:chunk_size], pending[chunk_size:]
            nonce = os.urandom(NONCE_BYTES)
            yield nonce + aead.encrypt(nonce, chunk, context.aad(index, False))
            index += 1
    nonce = os.urandom(NONCE_BYTES)
    yield nonce + aead.encrypt(nonce, pending, context.aad(index, True))


def decrypt_chunks(data_key: bytes, context: Context, sealed: Iterable[bytes]) -> Iterator[bytes]:
    """Authenticate and decrypt a sealed stream, yielding plaintext chunk by chunk."""
    aead = AESGCM(data_key)
    buffer = b""
    stream = iter(sealed)
    for piece in stream:
        buffer += piece
        if len(buffer) >= HEADER.size:
            break
    if len(buffer) < HEADER.size:
        raise CryptoError(f"object {context.name} is truncated (no header)")
    magic, version, chunk_size = HEADER.unpack_from(buffer)
    if magic != MAGIC or version != VERSION:
        raise CryptoError(f"object {context.name} is not a sealed backup object (bad header)")
    buffer = buffer[HEADER.size :]
    record = NONCE_BYTES + chunk_size + TAG_BYTES
    index = 0
    exhausted = False
    while True:
        while len(buffer) <= record and not exhausted:
            more = next(stream, None)
            if more is None:
                exhausted = True
            else:
                buffer += more
        final = exhausted and len(buffer) <= record
        sealed_chunk, buffer = buffer[:record], buffer[record:]
        if len(sealed_chunk) < NONCE_BYTES + TAG_BYTES:
            raise CryptoError(f"object {context.name} is truncated at chunk {index}")
        nonce, body = sealed_chunk[:NONCE_BYTES], sealed_chunk[NONCE_BYTES:]
        try:
            yield aead.decrypt(nonce, body, context.aad(index, final))
        except InvalidTag:
            raise CryptoError(
                f"object {context.name} chunk {index} failed authentication "
                "(corrupted, truncated, reordered, or wrong key)"
            ) from None
        if final:
            return
        index += 1


def seal(data_key: bytes, context: Context, plaintext: bytes, chunk_size: int) -> bytes:
    """``encrypt_chunks`` of one in-memory object, byte for byte, without re-cutting copies:
    chunks are views into ``plaintext`` and the sealed object is joined once."""
    aead = AESGCM(data_key)
    view = memoryview(plaintext)
    parts: list[bytes] = [HEADER.pack(MAGIC, VERSION, chunk_size)]
    index = start = 0
    while len(view) - start > chunk_size:  # strictly more: the last chunk must carry final=1
        nonce = os.urandom(NONCE_BYTES)
        chunk = view[start : start + chunk_size]
        parts += (nonce, aead.encrypt(nonce, chunk, context.aad(index, False)))
        start += chunk_size
        index += 1
    nonce = os.urandom(NONCE_BYTES)
    parts += (nonce, aead.encrypt(nonce, view[start:], context.aad(index, True)))
    return b"".join(parts)


def open_sealed(data_key: bytes, context: Context, sealed: bytes) -> bytes:
    return b"".join(decrypt_chunks(data_key, context, [sealed]))
