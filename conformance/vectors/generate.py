#!/usr/bin/env python3
"""Write the SSEAUN conformance test vectors: keys, PAE bytes, envelopes, manifests, requests.

The output is byte-stable: every key comes from a fixed seed (SHA-256 of a label), every time is
fixed, Ed25519 signatures are deterministic and protobuf payloads are serialised once with
``deterministic=True``. Running the script twice writes the same bytes; tests/test_vectors.py
checks that the committed files are what this script writes.

Usage: ``python conformance/vectors/generate.py [--out DIR]`` (default: this script's folder).
See README.md beside this script for the layout and how to apply each vector.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sseaun.sdk.core import (
    Ed25519Signer,
    build_request,
    envelope_digest,
    envelope_to_json,
    pae,
    payload_types,
    sign_envelope,
    sign_manifest,
    to_timestamp,
)
from sseaun.v1.auth_pb2 import Purpose, SignedRequest
from sseaun.v1.envelope_pb2 import Envelope, Signature
from sseaun.v1.manifest_pb2 import (
    Endpoint,
    EndpointKind,
    KeyAlgorithm,
    KeyPurpose,
    KeyStatus,
    Limits,
    Member,
    MemberStatus,
    NetworkManifest,
    PublicKey,
)
from sseaun.v1.types_pb2 import LocalizedText, MultilingualText

HERE = Path(__file__).resolve().parent

#: Folders this script owns in the output directory: stale files in them are removed.
MANAGED_DIRS = ("keys", "envelopes", "manifests", "requests")
SEED_LABEL = "sseaun-conformance-vectors/v1/key/{name}"
NETWORK_ID = "sseaun-test-vectors"
OTHER_NETWORK_ID = "sseaun-other-network"

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY_NOT_AFTER = datetime(2028, 1, 1, tzinfo=UTC)
REQUEST_NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
GET_MANIFEST = "/sseaun.v1.ManifestService/GetManifest"
OTHER_METHOD = "/sseaun.v1.ManifestService/ListManifestVersions"
REQUEST_BODY = b"\x08\x01"

TEST_TYPE = "application/vnd.sseaun.test.v1+json"
TEST_TYPE_V2 = "application/vnd.sseaun.test.v2+json"
# "tеst" with a Cyrillic U+0435: looks like TEST_TYPE, is not ASCII.
HOMOGLYPH_TYPE = "application/vnd.sseaun.t\u0435st.v1+json"
TEST_PAYLOAD = '{"issuer":"ynu.edu.cn","name":"云南大学","note":"test vector"}'.encode()


def iso(value: datetime) -> str:
    """RFC 3339 UTC with a Z, as every time in the vectors is written."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sha256_label(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


# --------------------------------------------------------------------------------------------
# Keys


@dataclass(frozen=True)
class VectorKey:
    """One test key: its name, seed, signer and what it is for."""

    name: str
    holder: str
    role: str
    seed: bytes
    signer: Ed25519Signer

    @property
    def key_id(self) -> str:
        return self.signer.key_id

    @property
    def public_key(self) -> bytes:
        return self.signer.public_key

    def ref(self) -> dict[str, str]:
        """How an index names a verification key."""
        return {"name": self.name, "key_id": self.key_id, "public_key_hex": self.public_key.hex()}


_KEY_TABLE: Sequence[tuple[str, str, str]] = (
    ("gov-ynu", "ynu.edu.cn", "governance key of manifest v1"),
    ("gov-chula", "chula.ac.th", "governance key of manifests v1, v2 and v3"),
    ("gov-du", "du.ac.bd", "governance key of manifest v1"),
    ("gov-ynu-2", "ynu.edu.cn", "governance key of manifests v2 and v3 (replaces gov-ynu)"),
    ("gov-du-2", "du.ac.bd", "governance key of manifests v2 and v3 (replaces gov-du)"),
    ("root-ynu", "ynu.edu.cn", "member root key"),
    ("root-chula", "chula.ac.th", "member root key"),
    ("root-du", "du.ac.bd", "member root key"),
    ("root-um", "um.edu.my", "member root key"),
    ("root-tu", "tu.edu.np", "member root key (member from manifest v3 on)"),
    ("transport-ynu", "ynu.edu.cn", "transport key listed in the manifests"),
    ("transport-ynu-retired", "ynu.edu.cn", "transport key, retired 2026-02-01"),
    ("transport-um", "um.edu.my", "transport key listed in the manifests"),
    ("transport-um-revoked", "um.edu.my", "transport key, revoked 2026-02-15"),
    ("forged-gov-1", "ynu.edu.cn", "attacker's key in a forged genesis manifest"),
    ("forged-gov-2", "chula.ac.th", "attacker's key in a forged genesis manifest"),
    ("dsse-a", "", "signs envelope vectors"),
    ("dsse-b", "", "signs envelope vectors"),
    ("dsse-c", "", "signs envelope vectors; never given to the verifier"),
)


def make_keys() -> dict[str, VectorKey]:
    keys: dict[str, VectorKey] = {}
    for name, holder, role in _KEY_TABLE:
        seed = sha256_label(SEED_LABEL.format(name=name))
        keys[name] = VectorKey(name, holder, role, seed, Ed25519Signer.from_seed(seed))
    return keys


K = make_keys()


def signers(*names: str) -> list[Ed25519Signer]:
    return [K[n].signer for n in names]


def key_files(out: dict[str, bytes]) -> None:
    entries = []
    for key in K.values():
        base = f"keys/test-{key.name}"
        out[f"{base}.private.pem"] = key.signer.to_pem()
        out[f"{base}.public.pem"] = key.signer.public_pem()
        entries.append(
            {
                "name": key.name,
                "holder": key.holder or None,
                "role": key.role,
                "key_id": key.key_id,
                "public_key_hex": key.public_key.hex(),
                "seed_hex": key.seed.hex(),
                "seed_label": SEED_LABEL.format(name=key.name),
                "private_pem": f"test-{key.name}.private.pem",
                "public_pem": f"test-{key.name}.public.pem",
            }
        )
    doc = {
        "warning": "TEST KEYS ONLY. Published private keys: never use them outside tests.",
        "algorithm": "Ed25519",
        "key_id": "lower-case hex SHA-256 of "
        '{"keytype":"ed25519","keyval":{"public":"<hex>"},"scheme":"ed25519"} (compact, sorted)',
        "seed": "seed = SHA-256(UTF-8 seed_label); the private key is the Ed25519 key of that seed",
        "keys": entries,
    }
    out["keys/keys.json"] = dump(doc)
    out["keys/README.md"] = (
        b"# TEST KEYS ONLY\n\n"
        b"These are TEST KEYS ONLY. Their private halves are published on purpose, so that anyone\n"
        b"can reproduce the signatures of the conformance vectors. Never use them, or trust them,\n"
        b"anywhere but in tests; a production manifest must never list them.\n\n"
        b"`keys.json` lists every key with its key ID, raw public key (hex), holder institution\n"
        b"and the seed it is derived from. Files: `test-<name>.private.pem` (PKCS#8) and\n"
        b"`test-<name>.public.pem` (SubjectPublicKeyInfo).\n"
    )


# --------------------------------------------------------------------------------------------
# PAE


def pae_vectors() -> list[dict[str, Any]]:
    cases: list[tuple[str, str, str, bytes]] = [
        (
            "dsse-spec",
            "The example of the DSSE specification (protocol.md).",
            "http://example.com/HelloWorld",
            b"hello world",
        ),
        ("empty-body", "An empty payload: its length is 0.", TEST_TYPE, b""),
        (
            "binary-body",
            "Binary payload bytes, including NUL, SP and 0xff; lengths count bytes.",
            "application/vnd.sseaun.manifest.v1+protobuf",
            bytes([0, 1, 2, 0x20, 0x7F, 0x80, 0xFE, 0xFF, 0x0A, 0x0D]),
        ),
        (
            "utf8-body",
            "A UTF-8 body: 4 characters, 12 bytes; the length is the byte count.",
            TEST_TYPE,
            "云南大学".encode(),
        ),
        (
            "long-type",
            "A 128-character payload type (the longest an envelope may carry): 3-digit length.",
            "application/vnd.sseaun." + "x" * 93 + ".v1+protobuf",
            b"payload",
        ),
        (
            "long-body",
            "A 1000-byte body: 4-digit length.",
            TEST_TYPE,
            bytes(range(250)) * 4,
        ),
    ]
    out = []
    for name, description, ptype, body in cases:
        encoded = independent_pae(ptype, body)
        entry: dict[str, Any] = {
            "name": name,
            "description": description,
            "payload_type": ptype,
            "payload_b64": b64(body),
            "pae_b64": b64(encoded),
            "pae_hex": encoded.hex(),
        }
        if encoded.isascii() and all(0x20 <= c < 0x7F for c in encoded):
            entry["pae_text"] = encoded.decode()
        out.append(entry)
    assert len(cases[4][2]) == 128
    return out


def independent_pae(payload_type: str, payload: bytes) -> bytes:
    """PAE written out from the DSSE text, not with the sdk's pae(), which the vectors test."""
    type_bytes = payload_type.encode("ascii")
    parts = [b"DSSEv1", str(len(type_bytes)).encode(), type_bytes, str(len(payload)).encode()]
    return b" ".join(parts) + b" " + payload


# --------------------------------------------------------------------------------------------
# Envelopes


def envelope_json(envelope: Envelope) -> bytes:
    return (envelope_to_json(envelope, indent=2) + "\n").encode()


def raw_json(payload: str, payload_type: str, sigs: Iterable[tuple[str, str]]) -> bytes:
    """A DSSE JSON envelope written field by field (for shapes envelope_to_json never writes)."""
    obj = {
        "payload": payload,
        "payloadType": payload_type,
        "signatures": [{"keyid": keyid, "sig": sig} for keyid, sig in sigs],
    }
    return dump(obj)


def urlsafe(data: bytes, *, padded: bool) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if padded else text.rstrip("=")


def envelope_vectors(out: dict[str, bytes]) -> list[dict[str, Any]]:
    a, b, c = K["dsse-a"], K["dsse-b"], K["dsse-c"]
    cases: list[dict[str, Any]] = []

    def case(
        name: str,
        description: str,
        data: bytes | None,
        *,
        keys: Sequence[VectorKey],
        allowed: Sequence[str],
        expected: dict[str, Any],
        file: str | None = None,
    ) -> None:
        path = f"envelopes/{file or name}.json"
        if data is not None:
            out[path] = data
        cases.append(
            {
                "name": name,
                "description": description,
                "file": path,
                "keys": [k.ref() for k in keys],
                "allowed_types": list(allowed),
                "expected": expected,
            }
        )

    def ok(*keys: VectorKey, ptype: str = TEST_TYPE) -> dict[str, Any]:
        return {
            "valid": True,
            "payload_type": ptype,
            "verified_key_ids": [k.key_id for k in keys],
            "digest_hex": hashlib.sha256(pae(ptype, TEST_PAYLOAD)).hexdigest(),
        }

    def bad(reason: str) -> dict[str, Any]:
        return {"valid": False, "reason": reason}

    single = sign_envelope(TEST_PAYLOAD, TEST_TYPE, [a.signer])
    two = sign_envelope(TEST_PAYLOAD, TEST_TYPE, [a.signer, b.signer])

    case(
        "valid-single-signature",
        "One signature by a known key.",
        envelope_json(single),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=ok(a),
    )
    case(
        "valid-two-signatures",
        "Two signatures over the same PAE bytes, both keys known: both verify.",
        envelope_json(two),
        keys=[a, b],
        allowed=[TEST_TYPE],
        expected=ok(a, b),
    )
    case(
        "valid-two-signatures-one-key-known",
        "Two signatures; the verifier knows only dsse-a. A signature naming an unknown key is "
        "ignored; the envelope verifies with dsse-a alone.",
        None,
        keys=[a],
        allowed=[TEST_TYPE],
        expected=ok(a),
        file="valid-two-signatures",
    )
    broken_b = Envelope()
    broken_b.CopyFrom(two)
    sig_b = bytearray(broken_b.signatures[1].sig)
    sig_b[0] ^= 0x01
    broken_b.signatures[1].sig = bytes(sig_b)
    case(
        "valid-one-of-two-signatures-bad",
        "Two known keys; dsse-b's signature has one bit flipped. The envelope verifies (at "
        "least one signature by a known key verifies) and only dsse-a is reported as verified.",
        envelope_json(broken_b),
        keys=[a, b],
        allowed=[TEST_TYPE],
        expected=ok(a),
    )
    case(
        "wrong-context-type",
        "A valid envelope presented where only another payload type is accepted "
        "(domain separation).",
        None,
        keys=[a],
        allowed=[TEST_TYPE_V2],
        expected=bad("PAYLOAD_TYPE_UNSUPPORTED"),
        file="valid-single-signature",
    )
    tampered = Envelope()
    tampered.CopyFrom(single)
    tampered.payload = TEST_PAYLOAD.replace(b"ynu.edu.cn", b"ynu.edu.cm")
    case(
        "tampered-payload",
        "The payload was changed after signing (one byte).",
        envelope_json(tampered),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=bad("SIGNATURE_INVALID"),
    )
    retyped = Envelope()
    retyped.CopyFrom(single)
    retyped.payload_type = TEST_TYPE_V2
    case(
        "tampered-payload-type-allowed",
        "The payload type was changed from v1 to v2 after signing; the verifier accepts both "
        "types, so the signature check fails.",
        envelope_json(retyped),
        keys=[a],
        allowed=[TEST_TYPE, TEST_TYPE_V2],
        expected=bad("SIGNATURE_INVALID"),
        file="tampered-payload-type",
    )
    case(
        "tampered-payload-type-not-allowed",
        "The same envelope where only the original v1 type is accepted: refused for its type "
        "before any signature is checked.",
        None,
        keys=[a],
        allowed=[TEST_TYPE],
        expected=bad("PAYLOAD_TYPE_UNSUPPORTED"),
        file="tampered-payload-type",
    )
    case(
        "unknown-key",
        "Signed by dsse-c, which the verifier does not know.",
        envelope_json(sign_envelope(TEST_PAYLOAD, TEST_TYPE, [c.signer])),
        keys=[a, b],
        allowed=[TEST_TYPE],
        expected=bad("KEY_UNKNOWN"),
    )
    impostor = Envelope(payload=TEST_PAYLOAD, payload_type=TEST_TYPE)
    impostor.signatures.append(
        Signature(sig=c.signer.sign(pae(TEST_TYPE, TEST_PAYLOAD)), keyid=a.key_id)
    )
    case(
        "wrong-key-under-known-keyid",
        "Signed by dsse-c, but the signature's keyid names dsse-a (key IDs are hints, never "
        "trusted).",
        envelope_json(impostor),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=bad("SIGNATURE_INVALID"),
    )
    raw_signed = Envelope(payload=TEST_PAYLOAD, payload_type=TEST_TYPE)
    raw_signed.signatures.append(Signature(sig=a.signer.sign(TEST_PAYLOAD), keyid=a.key_id))
    case(
        "signature-over-payload-not-pae",
        "dsse-a signed the bare payload instead of PAE(type, payload).",
        envelope_json(raw_signed),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=bad("SIGNATURE_INVALID"),
    )
    case(
        "no-signatures",
        "An empty signatures list.",
        raw_json(b64(TEST_PAYLOAD), TEST_TYPE, []),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=bad("MALFORMED"),
    )
    good_sig = single.signatures[0].sig
    case(
        "truncated-signature",
        "The signature is 63 bytes (its last byte removed); an Ed25519 signature is 64.",
        raw_json(b64(TEST_PAYLOAD), TEST_TYPE, [(a.key_id, b64(good_sig[:63]))]),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=bad("MALFORMED"),
    )
    case(
        "empty-keyid",
        "A valid signature by dsse-a with an empty keyid. SSEAUN requires the keyid hint "
        "(DSSE itself makes it optional).",
        raw_json(b64(TEST_PAYLOAD), TEST_TYPE, [("", b64(good_sig))]),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=bad("MALFORMED"),
    )
    homoglyph_pae = b"DSSEv1 %d %b %d %b" % (
        len(HOMOGLYPH_TYPE.encode()),
        HOMOGLYPH_TYPE.encode(),
        len(TEST_PAYLOAD),
        TEST_PAYLOAD,
    )
    case(
        "non-ascii-payload-type",
        "The payload type contains a Cyrillic 'е' (U+0435). It is validly signed by dsse-a over "
        "PAE with the UTF-8 type bytes and is even in the allowed list, but a payload type must "
        "be ASCII.",
        raw_json(
            b64(TEST_PAYLOAD), HOMOGLYPH_TYPE, [(a.key_id, b64(a.signer.sign(homoglyph_pae)))]
        ),
        keys=[a],
        allowed=[TEST_TYPE, HOMOGLYPH_TYPE],
        expected=bad("MALFORMED"),
    )
    spaced = "application/vnd.sseaun.test.v1+json extra"
    case(
        "payload-type-with-space",
        "The payload type contains a space (validly signed, and allowed).",
        envelope_json(_unchecked_sign(TEST_PAYLOAD, spaced, a)),
        keys=[a],
        allowed=[spaced],
        expected=bad("MALFORMED"),
    )
    too_long = "application/vnd.sseaun." + "x" * 94 + ".v1+protobuf"
    assert len(too_long) == 129
    case(
        "payload-type-too-long",
        "A 129-character payload type (at most 128), validly signed and allowed.",
        envelope_json(_unchecked_sign(TEST_PAYLOAD, too_long, a)),
        keys=[a],
        allowed=[too_long],
        expected=bad("MALFORMED"),
    )
    case(
        "too-many-signatures",
        "17 signature entries (at most 16), each a valid signature by dsse-a.",
        raw_json(b64(TEST_PAYLOAD), TEST_TYPE, [(a.key_id, b64(good_sig))] * 17),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=bad("MALFORMED"),
    )
    case(
        "payload-not-base64",
        "The payload field is not base64; the envelope cannot be parsed.",
        raw_json("not base64!", TEST_TYPE, [(a.key_id, b64(good_sig))]),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=bad("MALFORMED"),
    )
    url_payload = urlsafe(TEST_PAYLOAD, padded=True)
    url_sig = urlsafe(good_sig, padded=True)
    assert any(ch in url_payload + url_sig for ch in "-_"), "pick data whose base64 has + or /"
    case(
        "urlsafe-base64",
        "The valid single-signature envelope with payload and sig in URL-safe base64 "
        "('-' and '_' instead of '+' and '/'), which DSSE allows.",
        raw_json(url_payload, TEST_TYPE, [(a.key_id, url_sig)]),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=ok(a),
    )
    url_payload_np = urlsafe(TEST_PAYLOAD, padded=False)
    url_sig_np = urlsafe(good_sig, padded=False)
    assert url_payload_np != url_payload or url_sig_np != url_sig
    case(
        "urlsafe-base64-unpadded",
        "As urlsafe-base64, with the '=' padding left off.",
        raw_json(url_payload_np, TEST_TYPE, [(a.key_id, url_sig_np)]),
        keys=[a],
        allowed=[TEST_TYPE],
        expected=ok(a),
    )
    return cases


def _unchecked_sign(payload: bytes, payload_type: str, key: VectorKey) -> Envelope:
    """Sign over PAE without the payload-type checks of sign_envelope (for invalid vectors)."""
    envelope = Envelope(payload=payload, payload_type=payload_type)
    envelope.signatures.append(
        Signature(sig=key.signer.sign(pae(payload_type, payload)), keyid=key.key_id)
    )
    return envelope


# --------------------------------------------------------------------------------------------
# Manifests


def public_key(
    name: str,
    purpose: int,
    *,
    not_before: datetime = T0,
    not_after: datetime = KEY_NOT_AFTER,
    status: int = KeyStatus.KEY_STATUS_ACTIVE,
    changed: datetime | None = None,
) -> PublicKey:
    key = K[name]
    msg = PublicKey(
        key_id=key.key_id,
        algorithm=KeyAlgorithm.KEY_ALGORITHM_ED25519,
        public_key=key.public_key,
        holder=key.holder,
        purpose=purpose,  # type: ignore[arg-type]
        not_before=to_timestamp(not_before),
        not_after=to_timestamp(not_after),
        status=status,  # type: ignore[arg-type]
    )
    if changed is not None:
        msg.status_changed_at.CopyFrom(to_timestamp(changed))
    return msg


def names(**texts: str) -> MultilingualText:
    return MultilingualText(
        texts=[LocalizedText(lang=lang.replace("_", "-"), text=t) for lang, t in texts.items()]
    )


def member(
    institution: str, country: str, texts: MultilingualText, keys: Sequence[PublicKey]
) -> Member:
    return Member(
        institution_id=institution,
        names=texts,
        country=country,
        status=MemberStatus.MEMBER_STATUS_ACTIVE,
        keys=keys,
        endpoints=[
            Endpoint(
                kind=EndpointKind.ENDPOINT_KIND_GRPC,
                address=f"{institution.split('.', maxsplit=1)[0]}.node.example:443",
                tls=True,
            )
        ],
        api_versions=["sseaun.v1"],
        limits=Limits(max_page_size=100, max_message_bytes=4 * 1024 * 1024),
    )


ROOT = KeyPurpose.KEY_PURPOSE_ROOT
TRANSPORT = KeyPurpose.KEY_PURPOSE_TRANSPORT
GOVERNANCE = KeyPurpose.KEY_PURPOSE_GOVERNANCE


def members(*, with_tu: bool = False) -> list[Member]:
    listed = [
        member(
            "ynu.edu.cn",
            "CN",
            names(zh_Hans="云南大学", en="Yunnan University"),
            [
                public_key("root-ynu", ROOT),
                public_key("transport-ynu", TRANSPORT),
                public_key(
                    "transport-ynu-retired",
                    TRANSPORT,
                    status=KeyStatus.KEY_STATUS_RETIRED,
                    changed=datetime(2026, 2, 1, tzinfo=UTC),
                ),
            ],
        ),
        member(
            "chula.ac.th",
            "TH",
            names(th="จุฬาลงกรณ์มหาวิทยาลัย", en="Chulalongkorn University"),
            [public_key("root-chula", ROOT)],
        ),
        member(
            "du.ac.bd",
            "BD",
            names(bn="ঢাকা বিশ্ববিদ্যালয়", en="University of Dhaka"),
            [public_key("root-du", ROOT)],
        ),
        member(
            "um.edu.my",
            "MY",
            names(ms="Universiti Malaya", en="University of Malaya"),
            [
                public_key("root-um", ROOT),
                public_key("transport-um", TRANSPORT),
                public_key(
                    "transport-um-revoked",
                    TRANSPORT,
                    status=KeyStatus.KEY_STATUS_REVOKED,
                    changed=datetime(2026, 2, 15, tzinfo=UTC),
                ),
            ],
        ),
    ]
    if with_tu:
        listed.append(
            member(
                "tu.edu.np",
                "NP",
                names(ne="त्रिभुवन विश्वविद्यालय", en="Tribhuvan University"),
                [public_key("root-tu", ROOT, not_before=datetime(2026, 3, 1, tzinfo=UTC))],
            )
        )
    return listed


def manifest(
    version: int,
    issued: datetime,
    expires: datetime,
    governance: Sequence[PublicKey],
    *,
    network_id: str = NETWORK_ID,
    with_tu: bool = False,
) -> NetworkManifest:
    return NetworkManifest(
        network_id=network_id,
        version=version,
        issued_at=to_timestamp(issued),
        expires_at=to_timestamp(expires),
        governance_keys=governance,
        governance_threshold=2,
        members=members(with_tu=with_tu),
    )


def governance(*key_names: str) -> list[PublicKey]:
    return [public_key(n, GOVERNANCE) for n in key_names]


V1_EXPIRES = datetime(2026, 7, 1, tzinfo=UTC)
V2_EXPIRES = datetime(2026, 8, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ManifestFile:
    path: str
    envelope: Envelope
    description: str
    signed_by: tuple[str, ...]

    @property
    def digest_hex(self) -> str:
        return envelope_digest(self.envelope).hex()


def manifest_files() -> dict[str, ManifestFile]:
    v1 = manifest(1, T0, V1_EXPIRES, governance("gov-ynu", "gov-chula", "gov-du"))
    v2_governance = governance("gov-ynu-2", "gov-chula", "gov-du-2")
    v2 = manifest(2, datetime(2026, 2, 1, tzinfo=UTC), V2_EXPIRES, v2_governance)
    v2_alt = manifest(
        2, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC), v2_governance
    )
    v2_other = manifest(
        2, datetime(2026, 2, 1, tzinfo=UTC), V2_EXPIRES, v2_governance, network_id=OTHER_NETWORK_ID
    )
    old_retired = [
        public_key(
            n,
            GOVERNANCE,
            status=KeyStatus.KEY_STATUS_RETIRED,
            changed=datetime(2026, 1, 31, tzinfo=UTC),
        )
        for n in ("gov-ynu", "gov-du")
    ]
    v2_retired = manifest(
        2, datetime(2026, 2, 1, tzinfo=UTC), V2_EXPIRES, [*old_retired, *v2_governance]
    )
    v3 = manifest(
        3,
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 9, 1, tzinfo=UTC),
        v2_governance,
        with_tu=True,
    )
    forged = manifest(1, T0, V1_EXPIRES, governance("forged-gov-1", "forged-gov-2"))

    v1_env = sign_manifest(v1, signers("gov-ynu", "gov-chula"))
    one_sig = Envelope()
    one_sig.CopyFrom(v1_env)
    del one_sig.signatures[1:]
    duplicate = Envelope()
    duplicate.CopyFrom(one_sig)
    duplicate.signatures.append(one_sig.signatures[0])
    v2_env = sign_manifest(v2, signers("gov-ynu", "gov-du", "gov-ynu-2", "gov-du-2"))
    v2_alt_env = sign_manifest(v2_alt, signers("gov-ynu", "gov-du", "gov-ynu-2", "gov-du-2"))

    files = [
        ManifestFile(
            "manifests/v1.json",
            v1_env,
            "Genesis (version 1): governance keys of ynu.edu.cn, chula.ac.th and du.ac.bd, "
            "threshold 2; members ynu.edu.cn, chula.ac.th, du.ac.bd, um.edu.my.",
            ("gov-ynu", "gov-chula"),
        ),
        ManifestFile(
            "manifests/v1-one-signature.json",
            one_sig,
            "The genesis payload with only gov-ynu's signature (1 of the 2 institutions needed).",
            ("gov-ynu",),
        ),
        ManifestFile(
            "manifests/v1-duplicate-signature.json",
            duplicate,
            "The genesis payload with gov-ynu's signature listed twice: one institution counts "
            "once.",
            ("gov-ynu", "gov-ynu"),
        ),
        ManifestFile(
            "manifests/v1-forged.json",
            sign_manifest(forged, signers("forged-gov-1", "forged-gov-2")),
            "A forged genesis: validly self-signed by attacker keys claiming to be ynu.edu.cn "
            "and chula.ac.th.",
            ("forged-gov-1", "forged-gov-2"),
        ),
        ManifestFile(
            "manifests/v2.json",
            v2_env,
            "Version 2: ynu.edu.cn and du.ac.bd rotate their governance keys (gov-ynu-2, "
            "gov-du-2); signed by a threshold of v1's keys (gov-ynu, gov-du) and of its own "
            "(gov-ynu-2, gov-du-2).",
            ("gov-ynu", "gov-du", "gov-ynu-2", "gov-du-2"),
        ),
        ManifestFile(
            "manifests/v2-old-keys-only.json",
            sign_manifest(v2, signers("gov-ynu", "gov-du")),
            "The v2 payload signed only by v1's keys: v2's own threshold is not met.",
            ("gov-ynu", "gov-du"),
        ),
        ManifestFile(
            "manifests/v2-new-keys-only.json",
            sign_manifest(v2, signers("gov-ynu-2", "gov-du-2")),
            "The v2 payload signed only by v2's new keys: v1's threshold is not met.",
            ("gov-ynu-2", "gov-du-2"),
        ),
        ManifestFile(
            "manifests/v2-equivocating.json",
            v2_alt_env,
            "A second, different version 2 (expires 2026-09-01 instead of 2026-08-01), signed "
            "like v2 by both thresholds.",
            ("gov-ynu", "gov-du", "gov-ynu-2", "gov-du-2"),
        ),
        ManifestFile(
            "manifests/v2-equivocating-new-keys-only.json",
            sign_manifest(v2_alt, signers("gov-ynu-2", "gov-du-2")),
            "The payload of v2-equivocating signed only by the new keys: not signed by a "
            "threshold of v1's keys.",
            ("gov-ynu-2", "gov-du-2"),
        ),
        ManifestFile(
            "manifests/v2-retired-keys-listed.json",
            sign_manifest(v2_retired, signers("gov-ynu", "gov-du")),
            "A version 2 that also lists the old gov-ynu and gov-du as RETIRED since "
            "2026-01-31 (before its issue time 2026-02-01), signed only by those old keys.",
            ("gov-ynu", "gov-du"),
        ),
        ManifestFile(
            "manifests/v2-other-network.json",
            sign_manifest(v2_other, signers("gov-ynu", "gov-du", "gov-ynu-2", "gov-du-2")),
            f"Version 2 for network {OTHER_NETWORK_ID!r}, validly signed by both thresholds.",
            ("gov-ynu", "gov-du", "gov-ynu-2", "gov-du-2"),
        ),
        ManifestFile(
            "manifests/v3.json",
            sign_manifest(v3, signers("gov-ynu-2", "gov-chula")),
            "Version 3: adds member tu.edu.np; same governance keys as v2, so two of them meet "
            "both thresholds.",
            ("gov-ynu-2", "gov-chula"),
        ),
    ]
    return {f.path: f for f in files}


def manifest_vectors(out: dict[str, bytes]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    files = manifest_files()
    for f in files.values():
        out[f.path] = envelope_json(f.envelope)
    v1_pin = files["manifests/v1.json"].digest_hex

    def boot(path: str, expected: dict[str, Any], current: int | None) -> dict[str, Any]:
        return {
            "op": "bootstrap",
            "envelope": path,
            "pinned_digest_hex": v1_pin,
            "expected": expected,
            "current_version": current,
        }

    def update(path: str, expected: dict[str, Any], current: int) -> dict[str, Any]:
        return {"op": "update", "envelope": path, "expected": expected, "current_version": current}

    def fresh(now: datetime, expected: dict[str, Any], current: int) -> dict[str, Any]:
        return {
            "op": "check_fresh",
            "now": iso(now),
            "expected": expected,
            "current_version": current,
        }

    def ok(path: str) -> dict[str, Any]:
        f = files[path]
        version = NetworkManifest.FromString(f.envelope.payload).version
        return {"valid": True, "version": version, "digest_hex": f.digest_hex}

    def bad(reason: str) -> dict[str, Any]:
        return {"valid": False, "reason": reason}

    valid = {"valid": True}
    v1, v2, v3 = "manifests/v1.json", "manifests/v2.json", "manifests/v3.json"
    cases: list[tuple[str, str, list[dict[str, Any]]]] = [
        (
            "genesis",
            "Bootstrap from the genesis manifest pinned by its digest; it is fresh before it "
            "expires.",
            [
                boot(v1, ok(v1), 1),
                fresh(datetime(2026, 3, 1, tzinfo=UTC), valid, 1),
            ],
        ),
        (
            "genesis-threshold-not-met",
            "The pinned genesis with one governance signature (threshold 2). The pin covers the "
            "PAE bytes, not the signatures, so the pin matches and the threshold decides.",
            [boot("manifests/v1-one-signature.json", bad("THRESHOLD_NOT_MET"), None)],
        ),
        (
            "genesis-duplicate-signature",
            "The pinned genesis with the same governance signature twice: institutions are "
            "counted, not signatures.",
            [boot("manifests/v1-duplicate-signature.json", bad("THRESHOLD_NOT_MET"), None)],
        ),
        (
            "pin-mismatch",
            "A forged, validly self-signed genesis offered to a party that pinned the real one.",
            [boot("manifests/v1-forged.json", bad("MANIFEST_PIN_MISMATCH"), None)],
        ),
        (
            "rotation",
            "Good rotation v1 -> v2 (governance keys of ynu.edu.cn and du.ac.bd replaced), "
            "re-offering v2 confirms it, v2 is fresh after v1's expiry, then v2 -> v3.",
            [
                boot(v1, ok(v1), 1),
                update(v2, ok(v2), 2),
                update(v2, ok(v2), 2),
                fresh(datetime(2026, 7, 15, tzinfo=UTC), valid, 2),
                update(v3, ok(v3), 3),
            ],
        ),
        (
            "rotation-missing-new-threshold",
            "v2 signed by a threshold of v1's keys but none of its own new keys.",
            [
                boot(v1, ok(v1), 1),
                update("manifests/v2-old-keys-only.json", bad("THRESHOLD_NOT_MET"), 1),
            ],
        ),
        (
            "rotation-missing-old-threshold",
            "v2 signed by its own new keys but not by a threshold of v1's keys.",
            [
                boot(v1, ok(v1), 1),
                update("manifests/v2-new-keys-only.json", bad("THRESHOLD_NOT_MET"), 1),
            ],
        ),
        (
            "rotation-retired-keys-listed",
            "v2 lists the old governance keys as retired before v2's issue time and is signed "
            "only by them: retired keys do not count towards v2's own threshold.",
            [
                boot(v1, ok(v1), 1),
                update("manifests/v2-retired-keys-listed.json", bad("THRESHOLD_NOT_MET"), 1),
            ],
        ),
        (
            "expired",
            "v1 expires at 2026-07-01T00:00:00Z: fresh one second before, expired at that "
            "instant (now >= expires_at).",
            [
                boot(v1, ok(v1), 1),
                fresh(V1_EXPIRES - timedelta(seconds=1), valid, 1),
                fresh(V1_EXPIRES, bad("MANIFEST_EXPIRED"), 1),
            ],
        ),
        (
            "rollback",
            "After adopting v2, the genuine v1 is offered again.",
            [
                boot(v1, ok(v1), 1),
                update(v2, ok(v2), 2),
                update(v1, bad("MANIFEST_ROLLBACK"), 2),
            ],
        ),
        (
            "version-gap",
            "v3 offered to a party at v1 (versions step by exactly 1); after v2, v3 is adopted.",
            [
                boot(v1, ok(v1), 1),
                update(v3, bad("MANIFEST_VERSION_GAP"), 1),
                update(v2, ok(v2), 2),
                update(v3, ok(v3), 3),
            ],
        ),
        (
            "equivocation",
            "After adopting v2, a different version 2 signed by both thresholds is offered.",
            [
                boot(v1, ok(v1), 1),
                update(v2, ok(v2), 2),
                update("manifests/v2-equivocating.json", bad("MANIFEST_EQUIVOCATION"), 2),
            ],
        ),
        (
            "same-version-not-signed-by-previous",
            "After adopting v2, a different version 2 signed only by v2's own keys (not by a "
            "threshold of v1's keys) is offered. It must not replace the adopted v2.",
            [
                boot(v1, ok(v1), 1),
                update(v2, ok(v2), 2),
                update("manifests/v2-equivocating-new-keys-only.json", bad("THRESHOLD_NOT_MET"), 2),
            ],
        ),
        (
            "wrong-network",
            "v2 of another network, validly signed, offered to a party trusting v1.",
            [
                boot(v1, ok(v1), 1),
                update("manifests/v2-other-network.json", bad("WRONG_NETWORK"), 1),
            ],
        ),
    ]
    file_table = [
        {
            "file": f.path,
            "description": f.description,
            "signed_by": list(f.signed_by),
            "digest_hex": f.digest_hex,
        }
        for f in files.values()
    ]
    vectors = [{"name": n, "description": d, "steps": s} for n, d, s in cases]
    return file_table, vectors


# --------------------------------------------------------------------------------------------
# Requests


def request_vectors(out: dict[str, bytes]) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    v1_pin = envelope_digest(manifest_files()["manifests/v1.json"].envelope).hex()
    purposes = ["PURPOSE_NETWORK_OPERATIONS"]

    def make(
        name: str,
        *,
        key: str = "transport-um",
        sender: str = "um.edu.my",
        audience: str = "ynu.edu.cn",
        network_id: str = NETWORK_ID,
        method: str = GET_MANIFEST,
        purpose: int = Purpose.PURPOSE_NETWORK_OPERATIONS,
        issued: datetime = REQUEST_NOW,
        nonce_size: int = 32,
        payload_type: str | None = None,
    ) -> Envelope:
        nonce = sha256_label(f"sseaun-conformance-vectors/v1/nonce/{name}")
        nonce = (nonce * 2)[:nonce_size]
        envelope = build_request(
            signer=K[key].signer,
            network_id=network_id,
            method=method,
            sender=sender,
            audience=audience,
            purpose=purpose,
            body=REQUEST_BODY,
            request_id=f"vector-{name}",
            now=issued,
            nonce=nonce,
        )
        if payload_type is not None:
            envelope = sign_envelope(envelope.payload, payload_type, [K[key].signer])
        return envelope

    def case(
        name: str,
        description: str,
        envelope: Envelope | None,
        expected: dict[str, Any],
        *,
        file: str | None = None,
        method: str = GET_MANIFEST,
        audiences: Sequence[str] = ("ynu.edu.cn",),
    ) -> None:
        path = f"requests/{file or name}.json"
        if envelope is not None:
            out[path] = envelope_json(envelope)
        cases.append(
            {
                "name": name,
                "description": description,
                "file": path,
                "manifest": "manifests/v1.json",
                "manifest_pinned_digest_hex": v1_pin,
                "now": iso(REQUEST_NOW),
                "method": method,
                "audiences": list(audiences),
                "allowed_purposes": purposes,
                "clock_window_seconds": 300,
                "expected": expected,
            }
        )

    def ok(envelope: Envelope, key: str = "transport-um") -> dict[str, Any]:
        header = SignedRequest.FromString(envelope.payload).header
        nonce_key = hashlib.sha256(header.sender.encode() + b"\x00" + header.nonce).digest()
        return {
            "valid": True,
            "sender": header.sender,
            "key_id": K[key].key_id,
            "request_id": header.request_id,
            "body_b64": b64(REQUEST_BODY),
            "digest_hex": envelope_digest(envelope).hex(),
            "nonce_key_hex": nonce_key.hex(),
            "nonce_expires_at": iso(header.issued_at.ToDatetime(tzinfo=UTC) + timedelta(minutes=5)),
        }

    def bad(reason: str) -> dict[str, Any]:
        return {"valid": False, "reason": reason}

    valid = make("valid")
    case(
        "valid",
        "um.edu.my asks ynu.edu.cn for the manifest, signed with its transport key at `now`.",
        valid,
        ok(valid),
    )
    case(
        "method-mismatch",
        "The valid request presented to another method than the one it was signed for.",
        None,
        bad("METHOD_MISMATCH"),
        file="valid",
        method=OTHER_METHOD,
    )
    case(
        "wrong-audience",
        "Signed for chula.ac.th, presented to ynu.edu.cn.",
        make("wrong-audience", audience="chula.ac.th"),
        bad("WRONG_AUDIENCE"),
    )
    edge = make("clock-window-edge", issued=REQUEST_NOW - timedelta(minutes=5))
    case(
        "clock-window-edge",
        "Issued exactly 5 minutes before `now`: still inside the window.",
        edge,
        ok(edge),
    )
    case(
        "clock-skew-past",
        "Issued 5 minutes and 1 second before `now`.",
        make("clock-skew-past", issued=REQUEST_NOW - timedelta(minutes=5, seconds=1)),
        bad("CLOCK_SKEW"),
    )
    case(
        "clock-skew-future",
        "Issued 5 minutes and 1 second after `now`.",
        make("clock-skew-future", issued=REQUEST_NOW + timedelta(minutes=5, seconds=1)),
        bad("CLOCK_SKEW"),
    )
    case(
        "wrong-network",
        f"The header names network {OTHER_NETWORK_ID!r}.",
        make("wrong-network", network_id=OTHER_NETWORK_ID),
        bad("WRONG_NETWORK"),
    )
    case(
        "purpose-not-allowed",
        "Purpose PURPOSE_RECOGNITION where only PURPOSE_NETWORK_OPERATIONS is allowed.",
        make("purpose-not-allowed", purpose=Purpose.PURPOSE_RECOGNITION),
        bad("PURPOSE_NOT_ALLOWED"),
    )
    case(
        "signer-mismatch",
        "The header names chula.ac.th as sender, but um.edu.my's transport key signed.",
        make("signer-mismatch", sender="chula.ac.th"),
        bad("SIGNER_MISMATCH"),
    )
    case(
        "key-wrong-purpose",
        "Signed with um.edu.my's root key instead of a transport key.",
        make("key-wrong-purpose", key="root-um"),
        bad("KEY_WRONG_PURPOSE"),
    )
    case(
        "key-expired",
        "ynu.edu.cn calls um.edu.my with its transport key retired on 2026-02-01.",
        make("key-expired", key="transport-ynu-retired", sender="ynu.edu.cn", audience="um.edu.my"),
        bad("KEY_EXPIRED"),
        audiences=("um.edu.my",),
    )
    case(
        "key-revoked",
        "Signed with um.edu.my's transport key revoked on 2026-02-15.",
        make("key-revoked", key="transport-um-revoked"),
        bad("KEY_REVOKED"),
    )
    case(
        "unknown-key",
        "Signed by dsse-c, a key no manifest lists.",
        make("unknown-key", key="dsse-c"),
        bad("KEY_UNKNOWN"),
    )
    case(
        "short-nonce",
        "An 8-byte nonce (16 to 64 bytes required).",
        make("short-nonce", nonce_size=8),
        bad("MALFORMED"),
    )
    rewritten = Envelope()
    rewritten.CopyFrom(valid)
    request = SignedRequest.FromString(valid.payload)
    request.header.audience = "chula.ac.th"
    rewritten.payload = request.SerializeToString(deterministic=True)
    case(
        "tampered-audience",
        "The valid request with its audience rewritten to chula.ac.th after signing; the "
        "verifier serves chula.ac.th.",
        rewritten,
        bad("SIGNATURE_INVALID"),
        audiences=("chula.ac.th",),
    )
    case(
        "wrong-payload-type",
        "The request bytes signed under the response payload type.",
        make("wrong-payload-type", payload_type=payload_types.RESPONSE),
        bad("PAYLOAD_TYPE_UNSUPPORTED"),
    )
    return cases


# --------------------------------------------------------------------------------------------


def dump(obj: object) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def generate() -> dict[str, bytes]:
    """Every vector file, by path relative to the output directory."""
    out: dict[str, bytes] = {}
    key_files(out)
    out["pae.json"] = dump(
        {
            "description": 'PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body; '
            "LEN is the ASCII decimal byte count. Check pae(payload_type, base64decode("
            "payload_b64)) == base64decode(pae_b64).",
            "vectors": pae_vectors(),
        }
    )
    envelopes = envelope_vectors(out)
    manifest_table, manifests = manifest_vectors(out)
    requests = request_vectors(out)
    index = {
        "description": "SSEAUN Exchange conformance test vectors. Paths are relative to this "
        "file. See README.md for how to apply each kind.",
        "generator": "conformance/vectors/generate.py",
        "network_id": NETWORK_ID,
        "keys": "keys/keys.json",
        "pae": "pae.json",
        "envelopes": envelopes,
        "manifest_files": manifest_table,
        "manifests": manifests,
        "requests": requests,
    }
    out["index.json"] = dump(index)
    return out


def write(files: dict[str, bytes], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    for folder in MANAGED_DIRS:
        for path in sorted((root / folder).glob("*")):
            if path.is_file() and path.relative_to(root).as_posix() not in files:
                path.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out", type=Path, default=HERE, help="output directory (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    files = generate()
    write(files, args.out)
    total = sum(len(d) for d in files.values())
    print(f"wrote {len(files)} files ({total} bytes) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
