"""DSSE envelopes: PAE, signing exact bytes, verifying them, and the DSSE JSON form."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache

from google.protobuf.message import DecodeError

from sseaun.v1.envelope_pb2 import Envelope, Signature

from ._errors import ProtocolError, Reason
from ._keys import SIGNATURE_SIZE, Signer, verify_signature

__all__ = [
    "MAX_PAYLOAD_TYPE_LENGTH",
    "MAX_SIGNATURES",
    "Envelope",
    "VerifiedEnvelope",
    "add_signatures",
    "check_structure",
    "envelope_digest",
    "envelope_from_bytes",
    "envelope_from_json",
    "envelope_to_json",
    "pae",
    "sign_envelope",
    "verify_envelope",
]

MAX_PAYLOAD_TYPE_LENGTH = 128
MAX_SIGNATURES = 16


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding (spec ENV-2).

    Lengths count bytes. Valid payload types are ASCII (ENV-4, checked before anything is signed
    or verified); any other type is encoded as UTF-8 here, so that a digest binding an answer to a
    malformed request can still be computed.
    """
    type_bytes = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def envelope_digest(envelope: Envelope) -> bytes:
    """SHA-256 of PAE(payload_type, payload): what binds an answer to an envelope (AUTH-14)."""
    return hashlib.sha256(pae(envelope.payload_type, envelope.payload)).digest()


@lru_cache(maxsize=256)
def _type_problem(payload_type: str) -> str | None:
    # Cached: a verifier sees the same few payload types over and over.
    if not payload_type or len(payload_type) > MAX_PAYLOAD_TYPE_LENGTH:
        return "payload type must be 1 to 128 characters"
    if not payload_type.isascii() or not payload_type.isprintable() or " " in payload_type:
        return "payload type must be printable ASCII without spaces"
    return None


def _check_payload_type(payload_type: str) -> None:
    problem = _type_problem(payload_type)
    if problem is not None:
        raise ProtocolError(Reason.MALFORMED, problem)


def sign_envelope(payload: bytes, payload_type: str, signers: Iterable[Signer]) -> Envelope:
    """Sign payload, exactly as given, under payload_type with each signer (spec ENV-3)."""
    _check_payload_type(payload_type)
    message = pae(payload_type, payload)
    envelope = Envelope(payload=payload, payload_type=payload_type)
    present: set[str] = set()
    for signer in signers:
        if signer.key_id not in present:
            envelope.signatures.add(sig=signer.sign(message), keyid=signer.key_id)
            present.add(signer.key_id)
    if not present:
        raise ProtocolError(Reason.MALFORMED, "an envelope needs at least one signature")
    if len(present) > MAX_SIGNATURES:
        raise ProtocolError(Reason.MALFORMED, f"at most {MAX_SIGNATURES} signatures")
    return envelope


def add_signatures(envelope: Envelope, signers: Iterable[Signer]) -> Envelope:
    """A copy of envelope with one more signature per signer over the same PAE bytes.

    A signer whose key already signed is skipped, so co-signing twice changes nothing.
    """
    _check_payload_type(envelope.payload_type)
    out = Envelope()
    out.CopyFrom(envelope)
    message = pae(envelope.payload_type, envelope.payload)
    present = {s.keyid for s in out.signatures}
    for signer in signers:
        if signer.key_id in present:
            continue
        out.signatures.append(Signature(sig=signer.sign(message), keyid=signer.key_id))
        present.add(signer.key_id)
    if not out.signatures:
        raise ProtocolError(Reason.MALFORMED, "an envelope needs at least one signature")
    if len(out.signatures) > MAX_SIGNATURES:
        raise ProtocolError(Reason.MALFORMED, f"at most {MAX_SIGNATURES} signatures")
    return out


def check_structure(envelope: Envelope) -> None:
    """Refuse an envelope whose shape is wrong before any key is looked at (spec ENV-4).

    Raises:
        ProtocolError: MALFORMED.
    """
    _check_payload_type(envelope.payload_type)
    _check_signatures(envelope.signatures)


def _check_signatures(signatures: Sequence[Signature]) -> None:
    if not signatures:
        raise ProtocolError(Reason.MALFORMED, "envelope has no signatures")
    if len(signatures) > MAX_SIGNATURES:
        raise ProtocolError(Reason.MALFORMED, f"envelope has more than {MAX_SIGNATURES} signatures")
    for sig in signatures:
        if len(sig.sig) != SIGNATURE_SIZE:
            raise ProtocolError(Reason.MALFORMED, "an Ed25519 signature is 64 bytes")
        if not sig.keyid:
            raise ProtocolError(Reason.MALFORMED, "every signature needs a keyid hint")


class VerifiedEnvelope:
    """The bytes of an envelope that verified, and the key IDs whose signatures verified.

    A plain slotted class rather than a frozen dataclass: it is built on every verification.
    """

    __slots__ = ("_digest", "key_ids", "payload", "payload_type")

    def __init__(self, payload_type: str, payload: bytes, key_ids: tuple[str, ...]) -> None:
        self.payload_type = payload_type
        self.payload = payload
        self.key_ids = key_ids
        self._digest: bytes | None = None

    @property
    def digest(self) -> bytes:
        """SHA-256 of the PAE bytes (computed only when an answer needs binding)."""
        if self._digest is None:
            self._digest = hashlib.sha256(pae(self.payload_type, self.payload)).digest()
        return self._digest

    def __repr__(self) -> str:
        return f"VerifiedEnvelope({self.payload_type!r}, {len(self.payload)} bytes, {self.key_ids})"


def verify_envelope(
    envelope: Envelope,
    keys: Mapping[str, bytes],
    allowed_types: Collection[str],
) -> VerifiedEnvelope:
    """Verify envelope against known keys (key ID → raw public key); no trust policy.

    The checks run in the order of spec ENV-6, so each bad envelope has one reason: structure
    (MALFORMED), type (PAYLOAD_TYPE_UNSUPPORTED), a signature naming a known key (KEY_UNKNOWN),
    at least one such signature verifying over PAE (SIGNATURE_INVALID).

    Returns:
        the verified payload with every key ID whose signature verified.
    """
    payload_type = envelope.payload_type
    signatures = envelope.signatures
    _check_payload_type(payload_type)
    _check_signatures(signatures)
    if payload_type not in allowed_types:
        raise ProtocolError(
            Reason.PAYLOAD_TYPE_UNSUPPORTED,
            "payload type is not accepted here",
            metadata={"payload-type": payload_type},
        )
    payload = envelope.payload
    message = b""
    known = False
    verified: list[str] = []
    for sig in signatures:
        keyid = sig.keyid
        public = keys.get(keyid)
        if public is None:
            continue
        if not known:
            known, message = True, pae(payload_type, payload)
        if keyid not in verified and verify_signature(public, sig.sig, message):
            verified.append(keyid)
    if not known:
        raise ProtocolError(Reason.KEY_UNKNOWN, "no signature names a known key")
    if not verified:
        raise ProtocolError(Reason.SIGNATURE_INVALID, "no signature verifies")
    return VerifiedEnvelope(payload_type, payload, tuple(verified))


def envelope_from_bytes(data: bytes) -> Envelope:
    """Parse a binary sseaun.v1.Envelope.

    Raises:
        ProtocolError: MALFORMED.
    """
    envelope = Envelope()
    try:
        envelope.ParseFromString(data)
    except DecodeError as exc:
        raise ProtocolError(Reason.MALFORMED, "not a protobuf Envelope") from exc
    return envelope


def _b64decode(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ProtocolError(Reason.MALFORMED, f"{what} must be a base64 string")
    # DSSE allows standard or URL-safe base64 (envelope.md); padding may be left off.
    text = value.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(Reason.MALFORMED, f"{what} is not valid base64") from exc


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates from JSON escapes
        return False
    return True


def envelope_from_json(data: str | bytes) -> Envelope:
    """Parse a DSSE JSON envelope (``payload``, ``payloadType``, ``signatures[{keyid, sig}]``).

    Raises:
        ProtocolError: MALFORMED, naming what is wrong.
    """
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(Reason.MALFORMED, "not JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(Reason.MALFORMED, "a DSSE envelope is a JSON object")
    # proto3 JSON leaves out an empty payload; DSSE JSON has it as "".
    payload = _b64decode(obj.get("payload", ""), "payload")
    payload_type = obj.get("payloadType")
    if not isinstance(payload_type, str) or not _encodable(payload_type):
        raise ProtocolError(Reason.MALFORMED, "payloadType must be a string")
    signatures = obj.get("signatures")
    if not isinstance(signatures, list):
        raise ProtocolError(Reason.MALFORMED, "signatures must be a list")
    envelope = Envelope(payload=payload, payload_type=payload_type)
    for entry in signatures:
        if not isinstance(entry, dict):
            raise ProtocolError(Reason.MALFORMED, "each signature must be a JSON object")
        keyid = entry.get("keyid", "")
        if not isinstance(keyid, str) or not _encodable(keyid):
            raise ProtocolError(Reason.MALFORMED, "keyid must be a string")
        envelope.signatures.append(Signature(sig=_b64decode(entry.get("sig"), "sig"), keyid=keyid))
    return envelope


def envelope_to_json(envelope: Envelope, *, indent: int | None = 2) -> str:
    """The DSSE JSON form (standard padded base64), as independent DSSE libraries read it."""
    signatures: Sequence[dict[str, str]] = [
        {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in envelope.signatures
    ]
    obj = {
        "payload": base64.b64encode(envelope.payload).decode(),
        "payloadType": envelope.payload_type,
        "signatures": signatures,
    }
    return json.dumps(obj, indent=indent)
