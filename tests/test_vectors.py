"""The committed conformance vectors are current, deterministic, and agree with the sdk core."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sseaun.sdk.core import (
    Ed25519Signer,
    Envelope,
    KeyRing,
    ManifestTrust,
    ProtocolError,
    envelope_from_json,
    key_id_for,
    load_public_pem,
    pae,
    verify_envelope,
    verify_request,
)
from sseaun.v1.auth_pb2 import Purpose

VECTORS = Path(__file__).resolve().parents[1] / "conformance" / "vectors"
GENERATOR = VECTORS / "generate.py"
#: Files in the vectors folder that the generator does not write.
HAND_WRITTEN = {"generate.py", "README.md"}
MAX_TOTAL_BYTES = 512 * 1024

#: Vectors whose expected result follows the design, where the sdk core currently differs.
#: Strict: once the core is fixed the test fails until the entry is removed here.
KNOWN_CORE_DEVIATIONS: dict[str, str] = {}

INDEX: dict[str, Any] = json.loads((VECTORS / "index.json").read_text())


def read(rel: str) -> bytes:
    return (VECTORS / rel).read_bytes()


def load_envelope(rel: str) -> Envelope:
    return envelope_from_json(read(rel))


def when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def outcome(exc: ProtocolError) -> dict[str, Any]:
    return {"valid": False, "reason": exc.reason.value}


def params(section: str) -> list[Any]:
    out = []
    for case in INDEX[section]:
        vector_id = f"{section}/{case['name']}"
        marks = []
        if vector_id in KNOWN_CORE_DEVIATIONS:
            marks.append(pytest.mark.xfail(reason=KNOWN_CORE_DEVIATIONS[vector_id], strict=True))
        out.append(pytest.param(case, id=case["name"], marks=marks))
    return out


def generated_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


# ------------------------------------------------------------------------------------------
# (a) The committed vectors are exactly what the generator writes.


def test_generator_output_matches_committed_files(tmp_path: Path) -> None:
    out = tmp_path / "vectors"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out)], check=True, capture_output=True
    )
    fresh = generated_files(out)
    committed = {k: v for k, v in generated_files(VECTORS).items() if k not in HAND_WRITTEN}
    assert sorted(fresh) == sorted(committed), "run `make vectors` and commit the result"
    changed = [rel for rel in fresh if fresh[rel] != committed[rel]]
    assert not changed, f"stale vectors (run `make vectors`): {changed}"


def test_generator_is_deterministic_and_removes_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "vectors"
    run = [sys.executable, str(GENERATOR), "--out", str(out)]
    subprocess.run(run, check=True, capture_output=True)
    first = generated_files(out)
    (out / "envelopes" / "stale.json").write_text("{}")
    subprocess.run(run, check=True, capture_output=True)
    assert generated_files(out) == first


def test_vectors_are_small_and_keys_are_marked_as_test_keys() -> None:
    files = generated_files(VECTORS)
    assert sum(len(v) for v in files.values()) < MAX_TOTAL_BYTES
    pems = [rel for rel in files if rel.endswith(".pem")]
    assert pems
    assert all(Path(rel).name.startswith("test-") for rel in pems)
    assert "TEST KEYS ONLY" in (VECTORS / "keys" / "README.md").read_text()


def test_every_vector_file_is_used_by_the_index() -> None:
    used = {INDEX["keys"], INDEX["pae"]}
    used |= {case["file"] for case in INDEX["envelopes"] + INDEX["requests"]}
    used |= {case["manifest"] for case in INDEX["requests"]}
    used |= {entry["file"] for entry in INDEX["manifest_files"]}
    for case in INDEX["manifests"]:
        used |= {step["envelope"] for step in case["steps"] if "envelope" in step}
    data_files = {
        rel
        for rel in generated_files(VECTORS)
        if rel.split("/")[0] in {"envelopes", "manifests", "requests"}
    }
    assert data_files <= used
    assert all((VECTORS / rel).is_file() for rel in used)


# ------------------------------------------------------------------------------------------
# Keys


def test_keys_match_their_seeds_pems_and_ids() -> None:
    doc = json.loads(read("keys/keys.json"))
    assert doc["keys"]
    for entry in doc["keys"]:
        signer = Ed25519Signer.from_seed(bytes.fromhex(entry["seed_hex"]))
        public = bytes.fromhex(entry["public_key_hex"])
        assert signer.public_key == public
        assert key_id_for(public) == entry["key_id"] == signer.key_id
        assert read("keys/" + entry["private_pem"]) == signer.to_pem()
        assert load_public_pem(read("keys/" + entry["public_pem"])) == public
        assert Ed25519Signer.from_pem(read("keys/" + entry["private_pem"])).key_id == signer.key_id


# ------------------------------------------------------------------------------------------
# (c) PAE


PAE_DOC: dict[str, Any] = json.loads(read("pae.json"))


@pytest.mark.parametrize("case", PAE_DOC["vectors"], ids=lambda c: c["name"])
def test_pae_vector(case: dict[str, Any]) -> None:
    body = base64.b64decode(case["payload_b64"])
    expected = base64.b64decode(case["pae_b64"])
    assert bytes.fromhex(case["pae_hex"]) == expected
    assert pae(case["payload_type"], body) == expected
    if "pae_text" in case:
        assert case["pae_text"].encode() == expected


def test_pae_includes_the_dsse_spec_example() -> None:
    spec = next(c for c in PAE_DOC["vectors"] if c["name"] == "dsse-spec")
    assert spec["pae_text"] == "DSSEv1 29 http://example.com/HelloWorld 11 hello world"


# ------------------------------------------------------------------------------------------
# (b) Envelopes


def check_envelope(case: dict[str, Any]) -> dict[str, Any]:
    keys = {k["key_id"]: bytes.fromhex(k["public_key_hex"]) for k in case["keys"]}
    try:
        envelope = load_envelope(case["file"])
        verified = verify_envelope(envelope, keys, case["allowed_types"])
    except ProtocolError as exc:
        return outcome(exc)
    return {
        "valid": True,
        "payload_type": verified.payload_type,
        "verified_key_ids": list(verified.key_ids),
        "digest_hex": verified.digest.hex(),
    }


@pytest.mark.parametrize("case", params("envelopes"))
def test_envelope_vector(case: dict[str, Any]) -> None:
    assert check_envelope(case) == case["expected"]


def test_envelope_vectors_cover_the_required_reasons() -> None:
    reasons = {c["expected"].get("reason") for c in INDEX["envelopes"]}
    assert {
        None,
        "SIGNATURE_INVALID",
        "PAYLOAD_TYPE_UNSUPPORTED",
        "KEY_UNKNOWN",
        "MALFORMED",
    } <= reasons


def test_valid_envelopes_verify_with_an_independent_dsse_library() -> None:
    """securesystemslib's DSSE implementation accepts the valid standard-base64 envelopes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from securesystemslib.dsse import Envelope as SslibEnvelope
    from securesystemslib.signer._key import Key, SSlibKey

    checked = 0
    for case in INDEX["envelopes"]:
        if not case["expected"]["valid"] or "urlsafe" in case["name"]:
            continue
        obj = json.loads(read(case["file"]))
        envelope = SslibEnvelope.from_dict(obj)
        keys: list[Key] = [
            SSlibKey.from_crypto(
                Ed25519PublicKey.from_public_bytes(bytes.fromhex(k["public_key_hex"])),
                keyid=k["key_id"],
            )
            for k in case["keys"]
        ]
        expected = case["expected"]["verified_key_ids"]
        accepted = envelope.verify(keys, len(expected))
        assert sorted(accepted) == sorted(expected)
        checked += 1
    assert checked >= 3


# ------------------------------------------------------------------------------------------
# (b) Manifests


def run_manifest_steps(case: dict[str, Any]) -> list[tuple[dict[str, Any], int | None]]:
    """Apply every step; return (result, current version afterwards) per step."""
    trust: ManifestTrust | None = None
    results: list[tuple[dict[str, Any], int | None]] = []
    for step in case["steps"]:
        result: dict[str, Any]
        try:
            if step["op"] == "bootstrap":
                pin = bytes.fromhex(step["pinned_digest_hex"])
                trust = ManifestTrust.bootstrap(load_envelope(step["envelope"]), pin)
                result = ok_manifest(trust)
            elif step["op"] == "update":
                assert trust is not None
                trust.update(load_envelope(step["envelope"]))
                result = ok_manifest(trust)
            elif step["op"] == "check_fresh":
                assert trust is not None
                trust.check_fresh(when(step["now"]))
                result = {"valid": True}
            else:
                raise AssertionError(f"unknown op {step['op']}")
        except ProtocolError as exc:
            result = outcome(exc)
        results.append((result, trust.current.version if trust is not None else None))
    return results


def ok_manifest(trust: ManifestTrust) -> dict[str, Any]:
    return {
        "valid": True,
        "version": trust.current.version,
        "digest_hex": trust.current.digest.hex(),
    }


@pytest.mark.parametrize("case", params("manifests"))
def test_manifest_vector(case: dict[str, Any]) -> None:
    results = run_manifest_steps(case)
    expected = [(s["expected"], s["current_version"]) for s in case["steps"]]
    assert results == expected


def test_manifest_vectors_cover_the_required_reasons() -> None:
    reasons = {s["expected"].get("reason") for c in INDEX["manifests"] for s in c["steps"]}
    assert {
        None,
        "THRESHOLD_NOT_MET",
        "MANIFEST_EXPIRED",
        "MANIFEST_ROLLBACK",
        "MANIFEST_VERSION_GAP",
        "MANIFEST_EQUIVOCATION",
        "MANIFEST_PIN_MISMATCH",
    } <= reasons


def test_manifest_file_table_matches_the_files() -> None:
    for entry in INDEX["manifest_files"]:
        envelope = load_envelope(entry["file"])
        assert pae_digest(envelope) == entry["digest_hex"]
        assert len(envelope.signatures) == len(entry["signed_by"])


def pae_digest(envelope: Envelope) -> str:
    return hashlib.sha256(pae(envelope.payload_type, envelope.payload)).hexdigest()


# ------------------------------------------------------------------------------------------
# (b) Requests


def check_request(case: dict[str, Any]) -> dict[str, Any]:
    trust = ManifestTrust.bootstrap(
        load_envelope(case["manifest"]), bytes.fromhex(case["manifest_pinned_digest_hex"])
    )
    keyring = KeyRing(trust.current)
    try:
        verified = verify_request(
            load_envelope(case["file"]),
            keyring,
            now=when(case["now"]),
            method=case["method"],
            audiences=case["audiences"],
            allowed_purposes=[Purpose.Value(p) for p in case["allowed_purposes"]],
            clock_window=timedelta(seconds=case["clock_window_seconds"]),
        )
    except ProtocolError as exc:
        return outcome(exc)
    return {
        "valid": True,
        "sender": verified.sender,
        "key_id": verified.key.key_id,
        "request_id": verified.header.request_id,
        "body_b64": base64.b64encode(verified.body).decode(),
        "digest_hex": verified.digest.hex(),
        "nonce_key_hex": verified.nonce_key.hex(),
        "nonce_expires_at": verified.nonce_expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@pytest.mark.parametrize("case", params("requests"))
def test_request_vector(case: dict[str, Any]) -> None:
    assert check_request(case) == case["expected"]


def test_request_vectors_cover_the_required_reasons() -> None:
    reasons = {c["expected"].get("reason") for c in INDEX["requests"]}
    assert {None, "WRONG_AUDIENCE", "CLOCK_SKEW", "WRONG_NETWORK", "METHOD_MISMATCH"} <= reasons
