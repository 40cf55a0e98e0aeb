"""Envelopes: PAE, exact-bytes signing, verification order, DSSE JSON (spec ENV-2..ENV-6)."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sseaun.sdk.core import (
    Ed25519Signer,
    ProtocolError,
    Reason,
    add_signatures,
    envelope_digest,
    envelope_from_bytes,
    envelope_from_json,
    envelope_to_json,
    pae,
    sign_envelope,
    verify_envelope,
)
from sseaun.v1.envelope_pb2 import Envelope
from tests.factories import seeded

ALICE = seeded("alice")
BOB = seeded("bob")
KEYS = {ALICE.key_id: ALICE.public_key, BOB.key_id: BOB.public_key}
TYPE = "application/vnd.sseaun.test.v1+protobuf"
payload_types = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128
)


def reason_of(envelope: Envelope, allowed: set[str] | None = None) -> Reason:
    with pytest.raises(ProtocolError) as info:
        verify_envelope(envelope, KEYS, allowed or {envelope.payload_type})
    return info.value.reason


def test_pae_matches_the_dsse_spec_vector() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_of_an_empty_body() -> None:
    assert pae("t", b"") == b"DSSEv1 1 t 0 "


@settings(max_examples=150)
@given(payload=st.binary(max_size=2048), payload_type=payload_types)
def test_any_payload_and_type_round_trip(payload: bytes, payload_type: str) -> None:
    envelope = sign_envelope(payload, payload_type, [ALICE])
    wire = envelope_from_bytes(envelope.SerializeToString())
    verified = verify_envelope(wire, KEYS, {payload_type})
    assert verified.payload == payload
    assert verified.payload_type == payload_type
    assert verified.key_ids == (ALICE.key_id,)
    assert envelope_from_json(envelope_to_json(envelope)) == envelope


@settings(max_examples=150)
@given(payload=st.binary(min_size=1, max_size=512), data=st.data())
def test_flipping_any_payload_bit_fails_with_signature_invalid(
    payload: bytes, data: st.DataObject
) -> None:
    envelope = sign_envelope(payload, TYPE, [ALICE])
    bit = data.draw(st.integers(0, len(payload) * 8 - 1))
    tampered = bytearray(payload)
    tampered[bit // 8] ^= 1 << (bit % 8)
    envelope.payload = bytes(tampered)
    assert reason_of(envelope) is Reason.SIGNATURE_INVALID


@settings(max_examples=150)
@given(data=st.data())
def test_flipping_any_type_bit_fails(data: st.DataObject) -> None:
    envelope = sign_envelope(b"payload", TYPE, [ALICE])
    raw = bytearray(TYPE.encode())
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    new_type = raw.decode("latin-1")
    envelope.payload_type = new_type
    printable = new_type.isascii() and new_type.isprintable() and " " not in new_type
    # Accepting the new type isolates the signature check: only the signature can fail then.
    expected = Reason.SIGNATURE_INVALID if printable else Reason.MALFORMED
    assert reason_of(envelope, {new_type}) is expected
    if printable:  # and in a context that allows only the original type, the type is refused
        assert reason_of(envelope, {TYPE}) is Reason.PAYLOAD_TYPE_UNSUPPORTED


@settings(max_examples=150)
@given(data=st.data())
def test_flipping_any_signature_bit_fails(data: st.DataObject) -> None:
    envelope = sign_envelope(b"some payload", TYPE, [ALICE])
    bit = data.draw(st.integers(0, 64 * 8 - 1))
    sig = bytearray(envelope.signatures[0].sig)
    sig[bit // 8] ^= 1 << (bit % 8)
    envelope.signatures[0].sig = bytes(sig)
    assert reason_of(envelope) is Reason.SIGNATURE_INVALID


def test_several_signatures_all_reported() -> None:
    envelope = sign_envelope(b"x", TYPE, [ALICE, BOB])
    assert set(verify_envelope(envelope, KEYS, {TYPE}).key_ids) == {ALICE.key_id, BOB.key_id}


def test_one_good_signature_among_bad_ones_is_enough_and_named() -> None:
    envelope = sign_envelope(b"x", TYPE, [ALICE, BOB])
    envelope.signatures[1].sig = bytes(64)
    assert verify_envelope(envelope, KEYS, {TYPE}).key_ids == (ALICE.key_id,)


def test_cosigning_twice_with_one_key_adds_nothing() -> None:
    envelope = sign_envelope(b"x", TYPE, [ALICE])
    assert len(add_signatures(add_signatures(envelope, [BOB]), [ALICE, BOB]).signatures) == 2


def test_cosigning_keeps_the_exact_payload_bytes() -> None:
    envelope = sign_envelope(b"\x00\x01exact", TYPE, [ALICE])
    cosigned = add_signatures(envelope, [BOB])
    assert cosigned.payload == b"\x00\x01exact"
    assert envelope_digest(cosigned) == envelope_digest(envelope)


def test_unknown_key_is_key_unknown() -> None:
    stranger = Ed25519Signer.generate()
    assert reason_of(sign_envelope(b"x", TYPE, [stranger])) is Reason.KEY_UNKNOWN


def test_key_id_is_a_hint_only_a_wrong_key_under_a_known_id_fails() -> None:
    envelope = sign_envelope(b"x", TYPE, [BOB])
    envelope.signatures[0].keyid = ALICE.key_id
    assert reason_of(envelope) is Reason.SIGNATURE_INVALID


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda e: e.ClearField("signatures"), "no signatures"),
        (lambda e: setattr(e.signatures[0], "sig", b"short"), "truncated signature"),
        (lambda e: setattr(e.signatures[0], "keyid", ""), "empty keyid"),
        (lambda e: setattr(e, "payload_type", "application/vnd.é+json"), "non-ASCII type"),
        (lambda e: setattr(e, "payload_type", "has space"), "space in type"),
        (lambda e: setattr(e, "payload_type", ""), "empty type"),
        (lambda e: setattr(e, "payload_type", "a" * 129), "long type"),
    ],
)
def test_structural_faults_are_malformed(mutate, why: str) -> None:  # type: ignore[no-untyped-def]
    envelope = sign_envelope(b"x", TYPE, [ALICE])
    mutate(envelope)
    assert reason_of(envelope, {envelope.payload_type, TYPE}) is Reason.MALFORMED, why


def test_more_than_sixteen_signatures_are_malformed() -> None:
    envelope = sign_envelope(b"x", TYPE, [ALICE])
    for _ in range(16):
        envelope.signatures.add(sig=bytes(64), keyid="k")
    assert reason_of(envelope) is Reason.MALFORMED


def test_dsse_json_has_the_dsse_field_names_and_standard_base64() -> None:
    envelope = sign_envelope(b"\xfb\xff payload", TYPE, [ALICE])
    obj = json.loads(envelope_to_json(envelope))
    assert set(obj) == {"payload", "payloadType", "signatures"}
    assert base64.b64decode(obj["payload"], validate=True) == b"\xfb\xff payload"
    assert obj["signatures"][0]["keyid"] == ALICE.key_id


def test_dsse_json_equals_the_proto3_json_of_the_envelope() -> None:
    from google.protobuf import json_format

    envelope = sign_envelope(b"bytes", TYPE, [ALICE])
    assert json.loads(json_format.MessageToJson(envelope)) == json.loads(envelope_to_json(envelope))


def test_url_safe_unpadded_base64_is_accepted() -> None:
    envelope = sign_envelope(b"\xfb\xff\xfe?", TYPE, [ALICE])
    obj = json.loads(envelope_to_json(envelope))
    obj["payload"] = base64.urlsafe_b64encode(envelope.payload).decode().rstrip("=")
    parsed = envelope_from_json(json.dumps(obj))
    assert verify_envelope(parsed, KEYS, {TYPE}).payload == envelope.payload


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"payload": 5, "payloadType": "t", "signatures": []}',
        '{"payload": "!!", "payloadType": "t", "signatures": []}',
        '{"payload": "", "payloadType": 7, "signatures": []}',
        '{"payload": "", "payloadType": "t", "signatures": {}}',
        '{"payload": "", "payloadType": "t", "signatures": ["x"]}',
        '{"payload": "", "payloadType": "t", "signatures": [{"keyid": 1, "sig": ""}]}',
    ],
)
def test_bad_json_is_malformed(text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        envelope_from_json(text)
    assert info.value.reason is Reason.MALFORMED


def test_garbage_protobuf_is_malformed() -> None:
    with pytest.raises(ProtocolError) as info:
        envelope_from_bytes(b"\xff\xff\xff")
    assert info.value.reason is Reason.MALFORMED
