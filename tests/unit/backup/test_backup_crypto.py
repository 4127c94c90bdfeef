"""Streaming AES-256-GCM envelope encryption: round trips and every kind of tampering fails."""

from __future__ import annotations

import base64
import os

import pytest

from ragruntime.backup import crypto

CHUNK = 64
CONTEXT = crypto.Context("20260101T000000Z-abcdef", "database", "name1")


def sealed_chunks(sealed: bytes) -> tuple[bytes, list[bytes]]:
    header, body = sealed[: crypto.HEADER.size], sealed[crypto.HEADER.size :]
    record = crypto.NONCE_BYTES + CHUNK + crypto.TAG_BYTES
    return header, [body[i : i + record] for i in range(0, len(body), record)]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 7])
def test_round_trip_for_sizes_around_chunk_boundaries(size: int) -> None:
    key = crypto.new_data_key()
    plain = os.urandom(size)
    sealed = crypto.seal(key, CONTEXT, plain, CHUNK)
    assert crypto.open_sealed(key, CONTEXT, sealed) == plain
    # A plaintext shorter than a block can appear in random ciphertext by chance (a 1-byte one
    # about 15% of the time), so "not in" only proves something from 16 bytes on.
    assert len(plain) < 16 or plain not in sealed


def test_streaming_decrypt_accepts_arbitrary_piece_boundaries() -> None:
    key = crypto.new_data_key()
    plain = os.urandom(10 * CHUNK + 3)
    sealed = crypto.seal(key, CONTEXT, plain, CHUNK)
    pieces = [sealed[i : i + 37] for i in range(0, len(sealed), 37)]
    assert b"".join(crypto.decrypt_chunks(key, CONTEXT, pieces)) == plain


def test_same_plaintext_seals_differently_each_time() -> None:
    key = crypto.new_data_key()
    assert crypto.seal(key, CONTEXT, b"x" * 100, CHUNK) != crypto.seal(
        key, CONTEXT, b"x" * 100, CHUNK
    )


def test_flipped_bit_fails_authentication() -> None:
    key = crypto.new_data_key()
    sealed = bytearray(crypto.seal(key, CONTEXT, os.urandom(3 * CHUNK), CHUNK))
    sealed[crypto.HEADER.size + 20] ^= 1
    with pytest.raises(crypto.CryptoError, match="chunk 0 failed authentication"):
        crypto.open_sealed(key, CONTEXT, bytes(sealed))


def test_reordered_chunks_fail() -> None:
    key = crypto.new_data_key()
    header, chunks = sealed_chunks(crypto.seal(key, CONTEXT, os.urandom(3 * CHUNK + 5), CHUNK))
    chunks[0], chunks[1] = chunks[1], chunks[0]
    with pytest.raises(crypto.CryptoError, match="authentication"):
        crypto.open_sealed(key, CONTEXT, header + b"".join(chunks))


def test_truncation_at_a_chunk_boundary_fails_because_of_the_final_flag() -> None:
    key = crypto.new_data_key()
    header, chunks = sealed_chunks(crypto.seal(key, CONTEXT, os.urandom(3 * CHUNK + 5), CHUNK))
    with pytest.raises(crypto.CryptoError, match="chunk 1 failed authentication"):
        crypto.open_sealed(key, CONTEXT, header + b"".join(chunks[:2]))


def test_truncation_inside_a_chunk_and_missing_header_fail() -> None:
    key = crypto.new_data_key()
    sealed = crypto.seal(key, CONTEXT, os.urandom(2 * CHUNK), CHUNK)
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed(key, CONTEXT, sealed[:-5])
    with pytest.raises(crypto.CryptoError, match="truncated"):
        crypto.open_sealed(key, CONTEXT, sealed[:3])


@pytest.mark.parametrize(
    "other",
    [
        crypto.Context("20260101T000000Z-ffffff", "database", "name1"),
        crypto.Context(CONTEXT.key_id, "vectors", "name1"),
        crypto.Context(CONTEXT.key_id, "database", "name2"),
    ],
)
def test_object_moved_to_another_backup_component_or_name_fails(other: crypto.Context) -> None:
    key = crypto.new_data_key()
    sealed = crypto.seal(key, CONTEXT, b"payload", CHUNK)
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed(key, other, sealed)


def test_wrong_data_key_fails() -> None:
    sealed = crypto.seal(crypto.new_data_key(), CONTEXT, b"payload", CHUNK)
    with pytest.raises(crypto.CryptoError):
        crypto.open_sealed(crypto.new_data_key(), CONTEXT, sealed)


def test_keyring_first_key_is_active_and_older_keys_still_unwrap() -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = crypto.Keyring.from_keys([old])
    data_key = crypto.new_data_key()
    wrapped = before.wrap(data_key)
    rotated = crypto.Keyring.parse(
        f"# rotated\n{base64.b64encode(new).decode()}\n\n{base64.b64encode(old).decode()}\n"
    )
    assert rotated.active_id == crypto.key_id(new) != wrapped.master_key_id
    assert rotated.unwrap(wrapped) == data_key
    assert rotated.wrap(data_key).master_key_id == rotated.active_id


def test_missing_master_key_names_the_key_id_not_the_key() -> None:
    old = os.urandom(32)
    wrapped = crypto.Keyring.from_keys([old]).wrap(crypto.new_data_key())
    other = crypto.Keyring.from_keys([os.urandom(32)])
    with pytest.raises(crypto.KeyNotFound, match=wrapped.master_key_id) as info:
        other.unwrap(wrapped)
    assert base64.b64encode(old).decode() not in str(info.value)


def test_wrong_master_key_under_the_same_id_is_detected() -> None:
    keyring = crypto.Keyring.from_keys([os.urandom(32)])
    wrapped = keyring.wrap(crypto.new_data_key())
    forged = crypto.Keyring({wrapped.master_key_id: os.urandom(32)}, wrapped.master_key_id)
    with pytest.raises(crypto.CryptoError, match="does not unwrap"):
        forged.unwrap(wrapped)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "not-base64!!\n", "c2hvcnQ=\n"])
def test_bad_keyrings_are_rejected_with_a_clear_error(text: str) -> None:
    with pytest.raises(crypto.CryptoError):
        crypto.Keyring.parse(text)


def test_object_names_are_keyed() -> None:
    a, b = crypto.Keyring.from_keys([os.urandom(32)]), crypto.Keyring.from_keys([os.urandom(32)])
    assert crypto.object_name(a.object_name_key(), b"x") == crypto.object_name(
        a.object_name_key(), b"x"
    )
    assert crypto.object_name(a.object_name_key(), b"x") != crypto.object_name(
        b.object_name_key(), b"x"
    )
