"""DSSE envelope verify and sign against bare ``cryptography`` Ed25519 on the same PAE bytes.

* ``envelope_verify``: ``sseaun.sdk.core.verify_envelope(envelope, {key_id: raw_public},
  allowed_types)`` against ``Ed25519PublicKey.verify(sig, pae_bytes)`` with the key object
  loaded once beforehand. Target 0.9.
* ``envelope_sign``: ``sseaun.sdk.core.sign_envelope(payload, payload_type, [signer])`` against
  ``Ed25519PrivateKey.sign(pae_bytes)`` with the PAE bytes built once beforehand. Target 0.85.

The payload is a realistic signed answer: a ``sseaun.v1.SignedResponse`` (header bound to a
request digest, plus a record body) of about 1 KiB, under the response payload type.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sseaun.sdk.core import (
    Ed25519Signer,
    pae,
    payload_types,
    sign_envelope,
    to_timestamp,
    verify_envelope,
)
from sseaun.v1.auth_pb2 import ResponseHeader, SignedResponse

from ._timing import Result, compare

__all__ = ["PAYLOAD_SIZE", "run", "sample_payload"]

PAYLOAD_SIZE = 1024
VERIFY_TARGET = 0.9
# Building the Envelope message costs ~10 % of a bare sign by itself; 0.85 is what is reachable.
SIGN_TARGET = 0.85
# A fixed seed so every run signs the same bytes (the key is not a secret).
_SEED = hashlib.sha256(b"sseaun benchmark key").digest()


def sample_payload(size: int = PAYLOAD_SIZE) -> bytes:
    """A serialized SignedResponse of exactly size bytes carrying a transcript-like record."""
    header = ResponseHeader(
        network_id="sseaun",
        method="/sseaun.v1.RecordService/GetTranscript",
        responder="chula.ac.th",
        requester="ynu.edu.cn",
        issued_at=to_timestamp(datetime(2026, 11, 29, 3, 0, tzinfo=UTC)),
        request_digest=hashlib.sha256(b"request").digest(),
        request_id="01JD0Q7Z8T4M2W9K6R3P5N1X0Y",
    )
    courses = [
        {"code": f"CS{300 + i}", "credits": 3, "grade": "A-", "term": "2026-1", "scale": "th-4"}
        for i in range(12)
    ]
    record = json.dumps({"student": "6512345621", "results": courses}, separators=(",", ":"))
    body = record.encode()
    message = SignedResponse(header=header, body=body)
    # Trim or pad the body so the serialized payload is exactly size bytes.
    while len(data := message.SerializeToString(deterministic=True)) != size:
        missing = size - len(data)
        body = body[:missing] if missing < 0 else body + b" " * missing
        message.body = body
    return data


def _verify() -> Result:
    signer = Ed25519Signer.from_seed(_SEED)
    payload = sample_payload()
    payload_type = payload_types.RESPONSE
    envelope = sign_envelope(payload, payload_type, [signer])
    keys = {signer.key_id: signer.public_key}
    allowed = payload_types.RESPONSE_KINDS

    message = pae(payload_type, payload)
    signature = envelope.signatures[0].sig
    public = Ed25519PrivateKey.from_private_bytes(_SEED).public_key()
    public.verify(signature, message)  # the baseline must verify too
    verify_envelope(envelope, keys, allowed)

    comparison = compare(
        functools.partial(public.verify, signature, message),
        functools.partial(verify_envelope, envelope, keys, allowed),
    )
    return Result(
        "envelope_verify",
        comparison.ratio,
        VERIFY_TARGET,
        (
            f"payload {len(payload)} B, type {payload_type}, one signature",
            *comparison.details("bare Ed25519PublicKey.verify(PAE)", "verify_envelope"),
        ),
    )


def _sign() -> Result:
    signer = Ed25519Signer.from_seed(_SEED)
    payload = sample_payload()
    payload_type = payload_types.RESPONSE
    message = pae(payload_type, payload)
    private = Ed25519PrivateKey.from_private_bytes(_SEED)
    signers = [signer]
    assert sign_envelope(payload, payload_type, signers).signatures[0].sig == private.sign(message)

    comparison = compare(
        functools.partial(private.sign, message),
        functools.partial(sign_envelope, payload, payload_type, signers),
    )
    return Result(
        "envelope_sign",
        comparison.ratio,
        SIGN_TARGET,
        (
            f"payload {len(payload)} B, type {payload_type}, one signer",
            *comparison.details("bare Ed25519PrivateKey.sign(PAE)", "sign_envelope"),
        ),
    )


def run() -> list[Result]:
    return [_verify(), _sign()]
