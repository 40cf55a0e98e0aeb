"""DSSE interoperability of the ``sseaun`` command with securesystemslib, and its bad-input errors.

Every check runs the real command in a subprocess; securesystemslib (1.x) is the independent DSSE
implementation on the other side. No network is used.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError

# securesystemslib.signer imports these public names without an __all__, so mypy (as configured
# here) does not count them as re-exported.
from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]

from sseaun.sdk.core import key_id_for, pae, payload_types

PAYLOAD_TYPE = payload_types.RESPONSE
# Exact bytes, not text: a JSON record followed by bytes that are not UTF-8.
PAYLOAD = b'{"student":"6512345621","course":"CS301","grade":"A-"}\n\x00\xff\xfe'

Document = dict[str, Any]


def _command() -> list[str]:
    script = Path(sys.executable).with_name("sseaun")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sseaun.sdk.cli"]


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], reason: str) -> None:
    """A non-zero exit with one ``error: ...`` line naming reason on stderr, no traceback."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert reason in lines[0], done.stderr


@dataclass(frozen=True)
class KeyPair:
    key_id: str
    private: Path
    public: Path


@pytest.fixture
def keypair(tmp_path: Path) -> KeyPair:
    done = run_cli("keys", "generate", "--out", tmp_path / "keys", "--name", "chula-transport")
    assert done.returncode == 0, done.stderr
    key_id = done.stdout.split()[0]
    return KeyPair(
        key_id,
        tmp_path / "keys" / "chula-transport.private.pem",
        tmp_path / "keys" / "chula-transport.public.pem",
    )


@pytest.fixture
def payload_file(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(PAYLOAD)
    return path


def cli_sign(keypair: KeyPair, payload_file: Path) -> Document:
    done = run_cli(
        "envelope", "sign", "--key", keypair.private, "--type", PAYLOAD_TYPE, "--in", payload_file
    )
    assert done.returncode == 0, done.stderr
    document: Document = json.loads(done.stdout)
    return document


def sslib_public_key(keypair: KeyPair) -> SSlibKey:
    """The public key as securesystemslib sees it, built from the PEM alone."""
    public = serialization.load_pem_public_key(keypair.public.read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    return SSlibKey.from_crypto(public)


def sslib_sign(keypair: KeyPair, payload: bytes = PAYLOAD) -> Document:
    """A DSSE JSON envelope made by securesystemslib with the private key of our PEM."""
    private = serialization.load_pem_private_key(keypair.private.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    envelope = SslibEnvelope(payload, PAYLOAD_TYPE, {})
    envelope.sign(CryptoSigner(private))
    document: Document = envelope.to_dict()
    return document


def sslib_verify(document: Document, key: SSlibKey) -> dict[str, Any]:
    # Envelope.from_dict rewrites the signature dicts in place: give it a copy.
    envelope = SslibEnvelope.from_dict(json.loads(json.dumps(document)))
    accepted: dict[str, Any] = envelope.verify([key], 1)
    return accepted


def _flip_payload_bit(document: Document) -> None:
    payload = bytearray(base64.b64decode(document["payload"]))
    payload[0] ^= 0x01
    document["payload"] = base64.b64encode(bytes(payload)).decode()


def _change_payload_type(document: Document) -> None:
    document["payloadType"] = payload_types.REQUEST


def _flip_signature_bit(document: Document) -> None:
    signature = document["signatures"][0]
    sig = bytearray(base64.b64decode(signature["sig"]))
    sig[10] ^= 0x80
    signature["sig"] = base64.b64encode(bytes(sig)).decode()


TAMPERS: dict[str, Callable[[Document], None]] = {
    "payload-bit": _flip_payload_bit,
    "payload-type": _change_payload_type,
    "signature-bit": _flip_signature_bit,
}


def tampered(document: Document, how: str) -> Document:
    copy: Document = json.loads(json.dumps(document))
    TAMPERS[how](copy)
    return copy


# (a) sseaun signs, securesystemslib verifies ------------------------------------------------


def test_cli_key_id_is_securesystemslib_default_keyid(keypair: KeyPair) -> None:
    key = sslib_public_key(keypair)
    raw = bytes.fromhex(key.keyval["public"])
    assert key.keyid == keypair.key_id == key_id_for(raw)


def test_cli_envelope_verifies_with_securesystemslib(keypair: KeyPair, payload_file: Path) -> None:
    document = cli_sign(keypair, payload_file)
    key = sslib_public_key(keypair)
    assert [s["keyid"] for s in document["signatures"]] == [key.keyid]

    accepted = sslib_verify(document, key)

    assert list(accepted) == [key.keyid]
    envelope = SslibEnvelope.from_dict(json.loads(json.dumps(document)))
    assert envelope.payload == PAYLOAD
    assert envelope.payload_type == PAYLOAD_TYPE


@pytest.mark.parametrize("how", sorted(TAMPERS))
def test_tampered_cli_envelope_fails_securesystemslib(
    keypair: KeyPair, payload_file: Path, how: str
) -> None:
    document = cli_sign(keypair, payload_file)
    key = sslib_public_key(keypair)
    sslib_verify(document, key)  # the untouched envelope verifies

    with pytest.raises(VerificationError):
        sslib_verify(tampered(document, how), key)


# (b) securesystemslib signs, sseaun verifies ------------------------------------------------


def test_securesystemslib_envelope_verifies_with_cli(keypair: KeyPair, tmp_path: Path) -> None:
    document = sslib_sign(keypair)
    assert [s["keyid"] for s in document["signatures"]] == [keypair.key_id]
    envelope_file = tmp_path / "sslib.json"
    envelope_file.write_text(json.dumps(document))
    payload_out = tmp_path / "verified.bin"

    done = run_cli(
        "envelope", "verify", "--pub", keypair.public, "--in", envelope_file,
        "--type", PAYLOAD_TYPE, "--payload-out", payload_out,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == PAYLOAD_TYPE
    assert done.stderr == ""
    assert payload_out.read_bytes() == PAYLOAD


@pytest.mark.parametrize("how", sorted(TAMPERS))
def test_tampered_securesystemslib_envelope_fails_cli(
    keypair: KeyPair, tmp_path: Path, how: str
) -> None:
    envelope_file = tmp_path / "tampered.json"
    envelope_file.write_text(json.dumps(tampered(sslib_sign(keypair), how)))

    done = run_cli("envelope", "verify", "--pub", keypair.public, "--in", envelope_file)

    assert_one_line_error(done, "SIGNATURE_INVALID")
    assert done.stdout == ""


def test_both_sides_sign_the_same_bytes(keypair: KeyPair, payload_file: Path) -> None:
    """Ed25519 is deterministic: signing the same PAE bytes gives the same envelope."""
    ours = cli_sign(keypair, payload_file)
    theirs = sslib_sign(keypair)
    assert base64.b64decode(ours["payload"]) == base64.b64decode(theirs["payload"]) == PAYLOAD
    assert ours["payloadType"] == theirs["payloadType"]
    assert ours["signatures"] == theirs["signatures"]


# (c) PAE ------------------------------------------------------------------------------------

SPEC_TYPE = "http://example.com/HelloWorld"
SPEC_PAE = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_pae_spec_vector() -> None:
    """The worked example of the DSSE protocol (protocol.md), through both implementations."""
    theirs = SslibEnvelope(b"hello world", SPEC_TYPE, {}).pae()
    assert theirs == SPEC_PAE
    assert pae(SPEC_TYPE, b"hello world") == theirs


@pytest.mark.parametrize(
    ("payload_type", "payload"),
    [
        (PAYLOAD_TYPE, b""),
        (PAYLOAD_TYPE, PAYLOAD),
        ("t", bytes(range(256)) * 40),
        ("application/vnd.in-toto+json", b"DSSEv1 3 abc 5 hello"),
    ],
)
def test_pae_matches_securesystemslib(payload_type: str, payload: bytes) -> None:
    assert pae(payload_type, payload) == SslibEnvelope(payload, payload_type, {}).pae()


# Bad input ----------------------------------------------------------------------------------


GARBAGE: dict[str, bytes | Callable[[Document], None]] = {
    "not-json": b"this is not an envelope",
    "empty": b"",
    "binary": b"\xff\xfe\x00\x01garbage",
    "json-array": b"[]",
    "json-string": b'"payload"',
    "truncated": b'{"payload": "aGVsbG8=", "payloadType": ',
    # (A missing "payload" reads as empty, as proto3 JSON leaves it out: not garbage.)
    "payload-null": lambda d: d.__setitem__("payload", None),
    "payload-not-base64": lambda d: d.__setitem__("payload", "!!!"),
    "payload-number": lambda d: d.__setitem__("payload", 5),
    "no-payload-type": lambda d: d.pop("payloadType"),
    "payload-type-with-space": lambda d: d.__setitem__("payloadType", "a b"),
    "payload-type-not-ascii": lambda d: d.__setitem__("payloadType", "application/é"),
    "signatures-object": lambda d: d.__setitem__("signatures", {}),
    "no-signatures": lambda d: d.__setitem__("signatures", []),
    "signature-not-object": lambda d: d.__setitem__("signatures", ["sig"]),
    "signature-short": lambda d: d["signatures"][0].__setitem__("sig", "AAAA"),
    "signature-null": lambda d: d["signatures"][0].__setitem__("sig", None),
    "keyid-number": lambda d: d["signatures"][0].__setitem__("keyid", 7),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_garbage_envelope_is_one_line_error(
    keypair: KeyPair, payload_file: Path, tmp_path: Path, case: str
) -> None:
    garbage = GARBAGE[case]
    envelope_file = tmp_path / "garbage.json"
    if isinstance(garbage, bytes):
        envelope_file.write_bytes(garbage)
    else:
        document = cli_sign(keypair, payload_file)
        garbage(document)
        envelope_file.write_text(json.dumps(document))

    done = run_cli("envelope", "verify", "--pub", keypair.public, "--in", envelope_file)

    assert_one_line_error(done, "MALFORMED")
    assert done.stdout == ""


# Inputs that once escaped envelope_from_json as RecursionError / UnicodeEncodeError.
UNHANDLED: dict[str, str] = {
    "deeply-nested-json": "[" * 100_000 + "]" * 100_000,
    "payload-type-lone-surrogate": '{"payload": "aGk=", "payloadType": "\\ud800", "signatures": '
    '[{"keyid": "k", "sig": "' + base64.b64encode(bytes(64)).decode() + '"}]}',
    "keyid-lone-surrogate": '{"payload": "aGk=", "payloadType": "t", "signatures": '
    '[{"keyid": "\\ud800", "sig": "' + base64.b64encode(bytes(64)).decode() + '"}]}',
}


@pytest.mark.parametrize("case", sorted(UNHANDLED))
def test_unhandled_garbage_envelope_is_one_line_error(
    keypair: KeyPair, tmp_path: Path, case: str
) -> None:
    envelope_file = tmp_path / "garbage.json"
    envelope_file.write_text(UNHANDLED[case])

    done = run_cli("envelope", "verify", "--pub", keypair.public, "--in", envelope_file)

    assert_one_line_error(done, "MALFORMED")


def test_private_key_is_accepted_where_public_key_is_expected(
    keypair: KeyPair, payload_file: Path, tmp_path: Path
) -> None:
    envelope_file = tmp_path / "envelope.json"
    envelope_file.write_text(json.dumps(cli_sign(keypair, payload_file)))

    done = run_cli("envelope", "verify", "--pub", keypair.private, "--in", envelope_file)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == PAYLOAD_TYPE


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


FOREIGN_KEYS: dict[str, Callable[[], rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey]] = {
    "rsa": _rsa,
    "ec-p256": _ec,
}


@pytest.fixture(scope="module", params=sorted(FOREIGN_KEYS))
def foreign_pems(request: pytest.FixtureRequest) -> tuple[bytes, bytes]:
    """(private PKCS#8 PEM, public SubjectPublicKeyInfo PEM) of a key that is not Ed25519."""
    key = FOREIGN_KEYS[request.param]()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.mark.parametrize("which", ["public", "private"])
def test_non_ed25519_pem_for_verify_is_one_line_error(
    keypair: KeyPair,
    payload_file: Path,
    tmp_path: Path,
    foreign_pems: tuple[bytes, bytes],
    which: str,
) -> None:
    envelope_file = tmp_path / "envelope.json"
    envelope_file.write_text(json.dumps(cli_sign(keypair, payload_file)))
    pem = tmp_path / f"foreign.{which}.pem"
    pem.write_bytes(foreign_pems[0] if which == "private" else foreign_pems[1])

    done = run_cli("envelope", "verify", "--pub", pem, "--in", envelope_file)

    assert_one_line_error(done, "MALFORMED")
    assert "Ed25519" in done.stderr
    assert done.stdout == ""


def test_non_ed25519_pem_for_sign_is_one_line_error(
    payload_file: Path, tmp_path: Path, foreign_pems: tuple[bytes, bytes]
) -> None:
    pem = tmp_path / "foreign.private.pem"
    pem.write_bytes(foreign_pems[0])

    done = run_cli("envelope", "sign", "--key", pem, "--type", PAYLOAD_TYPE, "--in", payload_file)

    assert_one_line_error(done, "MALFORMED")
    assert "Ed25519" in done.stderr
    assert done.stdout == ""


def test_not_a_pem_is_one_line_error(keypair: KeyPair, payload_file: Path, tmp_path: Path) -> None:
    envelope_file = tmp_path / "envelope.json"
    envelope_file.write_text(json.dumps(cli_sign(keypair, payload_file)))
    pem = tmp_path / "garbage.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n")

    done = run_cli("envelope", "verify", "--pub", pem, "--in", envelope_file)

    assert_one_line_error(done, "MALFORMED")
