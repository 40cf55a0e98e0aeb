"""C2SP checkpoints (signed notes) and cosignatures, with Ed25519 (spec LOG-*).

A checkpoint body is ``origin\\n size\\n base64(root)\\n`` plus optional extension lines; a signed
note is the body, an empty line, and signature lines ``— <name> base64(key ID ‖ signature)``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from ._errors import ProtocolError, Reason
from ._keys import Signer, verify_signature

__all__ = [
    "Checkpoint",
    "NoteSignature",
    "SignedNote",
    "cosign",
    "note_key_id",
    "parse_signed_note",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_cosignature",
]

_DASH = "\u2014 "
_ED25519 = 0x01
_COSIGNATURE_V1 = 0x04
_MAX_NOTE = 1 << 16


def note_key_id(name: str, public_key: bytes, kind: int = _ED25519) -> bytes:
    """The 4-byte key ID of a note signer (0x01) or an Ed25519 cosigner (0x04)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, size and root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> bytes:
        """The note body the log signs (every line newline-terminated)."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return ("\n".join(lines) + "\n").encode()

    @classmethod
    def from_body(cls, body: bytes) -> Checkpoint:
        """Parse a checkpoint body.

        Raises:
            ProtocolError: MALFORMED.
        """
        bad = ProtocolError(Reason.MALFORMED, "not a checkpoint body")
        try:
            text = body.decode()
        except UnicodeDecodeError as exc:
            raise bad from exc
        if not text.endswith("\n"):
            raise bad
        lines = text[:-1].split("\n")
        if len(lines) < 3 or not lines[0] or any(not line for line in lines):
            raise bad
        origin, size_text, root_text, *extensions = lines
        if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
            raise bad
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad from exc
        if len(root) != 32:
            raise bad
        return cls(origin, int(size_text), root, tuple(extensions))


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        payload = base64.b64encode(self.key_id + self.signature).decode()
        return f"{_DASH}{self.name} {payload}\n"


@dataclass(frozen=True)
class SignedNote:
    """A note body and its signature lines, as parsed (unknown signatures are kept, not trusted)."""

    body: bytes
    signatures: tuple[NoteSignature, ...]

    def text(self) -> str:
        return self.body.decode() + "\n" + "".join(s.line() for s in self.signatures)

    def with_signature(self, signature: NoteSignature) -> SignedNote:
        """The same note with one more signature line (a cosignature, say)."""
        if signature in self.signatures:
            return self
        return SignedNote(self.body, (*self.signatures, signature))


def parse_signed_note(text: str) -> SignedNote:
    """Split a signed note into its body and signature lines.

    Raises:
        ProtocolError: MALFORMED.
    """
    bad = ProtocolError(Reason.MALFORMED, "not a signed note")
    if len(text) > _MAX_NOTE or "\n\n" not in text or not text.endswith("\n"):
        raise bad
    split = text.index("\n\n")
    body, rest = text[: split + 1], text[split + 2 :]
    signatures: list[NoteSignature] = []
    for line in rest[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise bad
        name, _, encoded = line[len(_DASH) :].rpartition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad from exc
        if not name or " " in name or len(raw) < 5:
            raise bad
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if not signatures:
        raise bad
    return SignedNote(body.encode(), tuple(signatures))


def sign_checkpoint(checkpoint: Checkpoint, name: str, signer: Signer) -> SignedNote:
    """The checkpoint signed by the log's key under the note name (usually the origin)."""
    body = checkpoint.body()
    signature = NoteSignature(name, note_key_id(name, signer.public_key), signer.sign(body))
    return SignedNote(body, (signature,))


def verify_checkpoint(note: SignedNote, name: str, public_key: bytes) -> Checkpoint:
    """The checkpoint of a note the log's key signed; other signatures are ignored.

    Raises:
        ProtocolError: MALFORMED (body), KEY_UNKNOWN (no signature line of this key),
            PROOF_INVALID (the log's signature does not verify).
    """
    checkpoint = Checkpoint.from_body(note.body)
    key_id = note_key_id(name, public_key)
    mine = [s for s in note.signatures if s.name == name and s.key_id == key_id]
    if not mine:
        raise ProtocolError(Reason.KEY_UNKNOWN, "the checkpoint is not signed by the log's key")
    if not any(verify_signature(public_key, s.signature, note.body) for s in mine):
        raise ProtocolError(Reason.PROOF_INVALID, "the log's checkpoint signature does not verify")
    return checkpoint


def _cosigned_message(body: bytes, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime %d\n" % timestamp + body


def cosign(note: SignedNote, name: str, signer: Signer, timestamp: int) -> NoteSignature:
    """A witness's C2SP cosignature (Ed25519, v1) of the note's checkpoint at a POSIX time."""
    if not 0 <= timestamp < 1 << 63:
        raise ProtocolError(Reason.MALFORMED, "cosignature time out of range")
    signature = signer.sign(_cosigned_message(note.body, timestamp))
    key_id = note_key_id(name, signer.public_key, _COSIGNATURE_V1)
    return NoteSignature(name, key_id, struct.pack(">Q", timestamp) + signature)


def verify_cosignature(note: SignedNote, name: str, public_key: bytes) -> int:
    """The POSIX time of a valid cosignature by (name, key) on the note.

    Raises:
        ProtocolError: KEY_UNKNOWN (no cosignature of this witness), PROOF_INVALID.
    """
    key_id = note_key_id(name, public_key, _COSIGNATURE_V1)
    lines = [s for s in note.signatures if s.name == name and s.key_id == key_id]
    if not lines:
        raise ProtocolError(Reason.KEY_UNKNOWN, "no cosignature by this witness")
    for line in lines:
        if len(line.signature) != 8 + 64:
            continue
        (timestamp,) = struct.unpack(">Q", line.signature[:8])
        message = _cosigned_message(note.body, timestamp)
        if verify_signature(public_key, line.signature[8:], message):
            return int(timestamp)
    raise ProtocolError(Reason.PROOF_INVALID, "the cosignature does not verify")
