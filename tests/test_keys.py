"""Keys: PEM with optional passphrase, key IDs, the Signer interface (spec KEY-2)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.signer._key import SSlibKey

from sseaun.sdk.core import (
    Ed25519Signer,
    ProtocolError,
    Reason,
    Signer,
    key_id_for,
    load_public_pem,
    public_key_pem,
    sign_envelope,
    verify_envelope,
)


def test_pem_round_trip_keeps_the_key() -> None:
    signer = Ed25519Signer.generate()
    again = Ed25519Signer.from_pem(signer.to_pem())
    assert again.public_key == signer.public_key
    assert again.key_id == signer.key_id
    assert load_public_pem(signer.public_pem()) == signer.public_key


def test_encrypted_pem_needs_its_passphrase() -> None:
    signer = Ed25519Signer.generate()
    pem = signer.to_pem(b"correct horse")
    assert b"ENCRYPTED" in pem
    assert Ed25519Signer.from_pem(pem, b"correct horse").key_id == signer.key_id
    for passphrase in (None, b"wrong"):
        with pytest.raises(ProtocolError) as info:
            Ed25519Signer.from_pem(pem, passphrase)
        assert info.value.reason is Reason.MALFORMED


def test_public_half_of_a_private_pem_is_accepted() -> None:
    signer = Ed25519Signer.generate()
    assert load_public_pem(signer.to_pem()) == signer.public_key


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN PUBLIC KEY-----\nxx\n"])
def test_garbage_is_not_a_key(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        load_public_pem(data)
    assert info.value.reason is Reason.MALFORMED


def test_other_key_types_are_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for call in (lambda: Ed25519Signer.from_pem(private), lambda: load_public_pem(public)):
        with pytest.raises(ProtocolError, match="not an Ed25519"):
            call()


def test_key_id_equals_securesystemslib_default_keyid() -> None:
    signer = Ed25519Signer.generate()
    theirs = SSlibKey.from_crypto(
        serialization.load_pem_public_key(public_key_pem(signer.public_key))
    )
    assert theirs.keyid == key_id_for(signer.public_key) == signer.key_id


def test_key_id_needs_32_bytes() -> None:
    with pytest.raises(ProtocolError):
        key_id_for(b"\x00" * 31)


class FakeHsm:
    """A signer whose private key never leaves its 'device': only sign() is exposed."""

    def __init__(self) -> None:
        self._inner = Ed25519Signer.generate()
        self.calls = 0

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    @property
    def public_key(self) -> bytes:
        return self._inner.public_key

    def sign(self, data: bytes) -> bytes:
        self.calls += 1
        return self._inner.sign(data)


def test_any_signer_implementation_can_sign_envelopes() -> None:
    hsm = FakeHsm()
    assert isinstance(hsm, Signer)
    envelope = sign_envelope(b"record", "application/vnd.sseaun.test.v1+protobuf", [hsm])
    verified = verify_envelope(envelope, {hsm.key_id: hsm.public_key}, {envelope.payload_type})
    assert verified.key_ids == (hsm.key_id,)
    assert hsm.calls == 1


def test_timestamps_round_trip_at_microsecond_precision() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from hypothesis import given
    from hypothesis import strategies as st

    from sseaun.sdk.core import from_timestamp, to_timestamp

    @given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)))
    def check(naive: datetime) -> None:
        value = naive.replace(tzinfo=UTC)
        ts = to_timestamp(value)
        reference = type(ts)()
        reference.FromDatetime(value)
        assert ts == reference
        assert from_timestamp(ts) == value
        other_zone = value.astimezone(timezone(timedelta(hours=7)))
        assert to_timestamp(other_zone) == ts

    check()


def test_out_of_range_times_are_malformed_not_crashes() -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    from sseaun.sdk.core import from_timestamp

    for ts in (Timestamp(seconds=2**62), Timestamp(seconds=-(2**62)), Timestamp(nanos=-1)):
        with pytest.raises(ProtocolError) as info:
            from_timestamp(ts)
        assert info.value.reason is Reason.MALFORMED
