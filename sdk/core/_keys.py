"""Ed25519 keys, key IDs and the Signer interface (no IO: PEM in and out as bytes)."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._errors import ProtocolError, Reason

__all__ = [
    "Ed25519Signer",
    "Signer",
    "key_id_for",
    "load_public_pem",
    "public_key_pem",
    "verify_signature",
]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


@runtime_checkable
class Signer(Protocol):
    """Anything that can sign with one Ed25519 key: a key in memory, an HSM or a cloud KMS."""

    @property
    def key_id(self) -> str:
        """The key ID (spec KEY-2) of the public key."""
        ...

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of data."""
        ...


def key_id_for(public_key: bytes) -> str:
    """The key ID of a raw Ed25519 public key (spec KEY-2).

    It is the lower-case hex SHA-256 of the compact, key-sorted JSON
    ``{"keytype":"ed25519","keyval":{"public":HEX},"scheme":"ed25519"}``, which is also the
    default key ID of securesystemslib, so independent DSSE verifiers match it.
    """
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ProtocolError(Reason.MALFORMED, "an Ed25519 public key is 32 bytes")
    description = {
        "keytype": "ed25519",
        "keyval": {"public": public_key.hex()},
        "scheme": "ed25519",
    }
    canonical = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@lru_cache(maxsize=4096)
def _public_key_object(public_key: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_key)


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """True when signature is a valid Ed25519 signature of data under the raw public key."""
    try:
        _public_key_object(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):  # ValueError: not a 32-byte key
        return False
    return True


def public_key_pem(public_key: bytes) -> bytes:
    """SubjectPublicKeyInfo PEM of a raw Ed25519 public key."""
    return _public_key_object(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_pem(data: bytes) -> bytes:
    """The raw public key of a PEM public key, or of a PEM private key's public half.

    Raises:
        ProtocolError: MALFORMED if data is not an Ed25519 key in PEM.
    """
    if b"PRIVATE KEY" in data:
        return Ed25519Signer.from_pem(data).public_key
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(Reason.MALFORMED, "not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ProtocolError(Reason.MALFORMED, "not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Ed25519Signer:
    """A Signer holding an Ed25519 private key in memory."""

    __slots__ = ("_key", "_key_id", "_public")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._key_id = key_id_for(self._public)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        """A new random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519Signer:
        """The key of a 32-byte seed (for test vectors only)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> Ed25519Signer:
        """Load a PKCS#8 PEM private key, decrypting it with passphrase if it is encrypted.

        Raises:
            ProtocolError: MALFORMED if data is not an Ed25519 private key, is encrypted and no
                or a wrong passphrase is given, or a passphrase is given for a plain key.
        """
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except TypeError as exc:
            hint = (
                "it is encrypted: give its passphrase"
                if passphrase is None
                else ("it is not encrypted: give no passphrase")
            )
            raise ProtocolError(Reason.MALFORMED, f"cannot load private key: {hint}") from exc
        except ValueError as exc:
            raise ProtocolError(
                Reason.MALFORMED, "cannot load private key: not PEM, or wrong passphrase"
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise ProtocolError(Reason.MALFORMED, "not an Ed25519 private key")
        return cls(key)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """PKCS#8 PEM of the private key, encrypted with passphrase when given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    @property
    def key_id(self) -> str:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._public

    def public_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM of the public key."""
        return public_key_pem(self._public)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def __repr__(self) -> str:
        return f"Ed25519Signer(key_id={self._key_id[:16]}…)"
