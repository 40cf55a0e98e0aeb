"""Access-log evidence that verifies offline: proof files and disclosures (spec LOG-12).

Three documents, all UTF-8 JSON with sorted keys, bytes as standard padded base64:

- an inclusion proof: ``{"type": "sseaun.log.inclusion/v1", "checkpoint": <signed note text,
  cosignatures included>, "index", "tree_size" (the checkpoint's size), "entry" (optional: the
  entry bytes), "leaf_hash", "hashes": [audit path, leaf to root]}``;
- a consistency proof: ``{"type": "sseaun.log.consistency/v1", "old_checkpoint", "checkpoint",
  "hashes"}``;
- a disclosure: a DSSE envelope of type ``application/vnd.sseaun.log-disclosure.v1+json``
  signed by the log's LOG key, whose payload is ``{"type": "sseaun.log.disclosure/v1",
  "record", "recipient", "log_origin", "disclosed_at" (RFC 3339, UTC), "checkpoint",
  "entries": [{"index", "entry", "key", "hashes"}]}``: the entries whose commitments match the
  record, each with its commitment key and its inclusion proof in the checkpoint's tree.

check() verifies any of them against the log's public keys and, optionally, requires valid
cosignatures of named witnesses on the checkpoint. Pure: no IO.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError

from sseaun.v1.access_log_pb2 import AccessLogEntry
from sseaun.v1.envelope_pb2 import Envelope

from ._access_log import record_in_entry, verify_log_checkpoint
from ._checkpoint import Checkpoint, SignedNote, parse_signed_note, verify_cosignature
from ._envelope import check_structure, envelope_from_json, sign_envelope, verify_envelope
from ._errors import ProtocolError, Reason
from ._keys import Signer, key_id_for
from ._merkle import leaf_hash, verify_consistency, verify_inclusion
from ._payload_types import LOG_DISCLOSURE

__all__ = [
    "CONSISTENCY",
    "DISCLOSURE",
    "INCLUSION",
    "DisclosedEntry",
    "Disclosure",
    "Report",
    "check",
    "consistency_document",
    "disclosure_payload",
    "format_time",
    "inclusion_document",
    "parse_disclosure",
    "sign_disclosure",
]

INCLUSION = "sseaun.log.inclusion/v1"
CONSISTENCY = "sseaun.log.consistency/v1"
DISCLOSURE = "sseaun.log.disclosure/v1"


@dataclass(frozen=True)
class DisclosedEntry:
    """One disclosed entry: its index, bytes, commitment key and audit path."""

    index: int
    entry: bytes
    key: bytes
    hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class Disclosure:
    """The payload of a disclosure, parsed (not yet verified)."""

    record: str
    recipient: str
    log_origin: str
    disclosed_at: datetime
    checkpoint: str
    entries: tuple[DisclosedEntry, ...]


@dataclass(frozen=True)
class Report:
    """What a document proved once it verified."""

    #: "inclusion", "consistency" or "disclosure".
    kind: str
    origin: str
    #: The tree size the document proves against; (old size, new size) for consistency.
    sizes: tuple[int, ...]
    #: The indexes of the entries checked (none for a consistency proof).
    entries: tuple[int, ...] = ()
    #: The named witnesses whose cosignature of the (newest) checkpoint verified.
    witnesses: tuple[str, ...] = ()
    #: For a disclosure: the record, the recipient and when it was made.
    record: str = ""
    recipient: str = ""
    disclosed_at: str = ""

    def summary(self) -> str:
        """One line, e.g. ``inclusion of entry 12 in <origin> at size 40, cosigned by a, b``."""
        if self.kind == "inclusion":
            text = f"inclusion of entry {self.entries[0]} in {self.origin} at size {self.sizes[0]}"
        elif self.kind == "consistency":
            text = f"consistency of {self.origin} from size {self.sizes[0]} to {self.sizes[1]}"
        else:
            count = len(self.entries)
            listed = f" ({', '.join(map(str, self.entries))})" if self.entries else ""
            text = (
                f"disclosure of {count} {'entry' if count == 1 else 'entries'}{listed} about "
                f"{self.record} to {self.recipient} from {self.origin} at size {self.sizes[0]}"
            )
        if self.witnesses:
            text += f", cosigned by {', '.join(self.witnesses)}"
        return text

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "origin": self.origin,
            "entries": list(self.entries),
            "witnesses": list(self.witnesses),
        }
        if self.kind == "consistency":
            out["old_size"], out["tree_size"] = self.sizes
        else:
            out["tree_size"] = self.sizes[0]
        if self.kind == "disclosure":
            out |= {
                "record": self.record,
                "recipient": self.recipient,
                "disclosed_at": self.disclosed_at,
            }
        return out


# -- encoding ---------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _dumps(obj: Mapping[str, Any], *, indent: int | None) -> str:
    separators = None if indent else (",", ":")
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=indent, separators=separators)


def format_time(at: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the second (as disclosed_at is written)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def inclusion_document(
    *,
    checkpoint: str,
    index: int,
    leaf_hash: bytes,
    hashes: Sequence[bytes],
    entry: bytes | None = None,
) -> str:
    """The inclusion-proof file of an entry in a checkpoint's tree (tree_size: its size).

    Raises:
        ProtocolError: MALFORMED when the checkpoint is not a signed note.
    """
    size = Checkpoint.from_body(parse_signed_note(checkpoint).body).size
    doc: dict[str, Any] = {
        "type": INCLUSION,
        "checkpoint": checkpoint,
        "index": index,
        "tree_size": size,
        "leaf_hash": _b64(leaf_hash),
        "hashes": [_b64(h) for h in hashes],
    }
    if entry is not None:
        doc["entry"] = _b64(entry)
    return _dumps(doc, indent=2) + "\n"


def consistency_document(*, old_checkpoint: str, checkpoint: str, hashes: Sequence[bytes]) -> str:
    """The consistency-proof file from one checkpoint to a newer one."""
    doc = {
        "type": CONSISTENCY,
        "old_checkpoint": old_checkpoint,
        "checkpoint": checkpoint,
        "hashes": [_b64(h) for h in hashes],
    }
    return _dumps(doc, indent=2) + "\n"


def disclosure_payload(disclosure: Disclosure) -> bytes:
    """The exact bytes a disclosure envelope signs (compact JSON, sorted keys, UTF-8)."""
    doc = {
        "type": DISCLOSURE,
        "record": disclosure.record,
        "recipient": disclosure.recipient,
        "log_origin": disclosure.log_origin,
        "disclosed_at": format_time(disclosure.disclosed_at),
        "checkpoint": disclosure.checkpoint,
        "entries": [
            {
                "index": e.index,
                "entry": _b64(e.entry),
                "key": _b64(e.key),
                "hashes": [_b64(h) for h in e.hashes],
            }
            for e in disclosure.entries
        ],
    }
    return _dumps(doc, indent=None).encode()


def sign_disclosure(disclosure: Disclosure, signer: Signer) -> Envelope:
    """The disclosure as a DSSE envelope signed by the log's LOG key."""
    return sign_envelope(disclosure_payload(disclosure), LOG_DISCLOSURE, [signer])


# -- decoding ---------------------------------------------------------------------------------


def _malformed(message: str) -> ProtocolError:
    return ProtocolError(Reason.MALFORMED, message)


def _field(obj: Mapping[str, Any], name: str, kind: type, where: str = "") -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _malformed(f"{where}{name} is missing or not a {kind.__name__}")
    return value


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _malformed(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed(f"{what} is not valid base64") from exc


def _hashes(obj: Mapping[str, Any], where: str = "") -> tuple[bytes, ...]:
    values = _field(obj, "hashes", list, where)
    return tuple(_bytes(v, f"{where}hashes[{i}]") for i, v in enumerate(values))


def _index(obj: Mapping[str, Any], name: str, where: str = "") -> int:
    value: int = _field(obj, name, int, where)
    if value < 0:
        raise _malformed(f"{where}{name} is negative")
    return value


def _object(data: str | bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _malformed("not JSON") from exc
    if not isinstance(obj, dict):
        raise _malformed("not a JSON object")
    return obj


def parse_disclosure(payload: bytes) -> Disclosure:
    """The disclosure in a (verified) envelope's payload.

    Raises:
        ProtocolError: MALFORMED, naming the field.
    """
    obj = _object(payload)
    if obj.get("type") != DISCLOSURE:
        raise _malformed(f"the payload's type is not {DISCLOSURE}")
    text = _field(obj, "disclosed_at", str)
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _malformed("disclosed_at is not an RFC 3339 time") from exc
    if at.tzinfo is None:
        raise _malformed("disclosed_at has no time zone")
    entries: list[DisclosedEntry] = []
    for i, item in enumerate(_field(obj, "entries", list)):
        where = f"entries[{i}]."
        if not isinstance(item, dict):
            raise _malformed(f"entries[{i}] is not an object")
        entries.append(
            DisclosedEntry(
                index=_index(item, "index", where),
                entry=_bytes(item.get("entry"), f"{where}entry"),
                key=_bytes(item.get("key"), f"{where}key"),
                hashes=_hashes(item, where),
            )
        )
    return Disclosure(
        record=_field(obj, "record", str),
        recipient=_field(obj, "recipient", str),
        log_origin=_field(obj, "log_origin", str),
        disclosed_at=at.astimezone(UTC),
        checkpoint=_field(obj, "checkpoint", str),
        entries=tuple(entries),
    )


# -- verification ------------------------------------------------------------------------------


def _checkpoint(text: str, log_keys: Collection[bytes], what: str) -> tuple[SignedNote, Checkpoint]:
    """A note and its checkpoint, verified with one of the log's keys for its own origin."""
    note = parse_signed_note(text)
    origin = Checkpoint.from_body(note.body).origin
    try:
        return note, verify_log_checkpoint(note, origin, list(log_keys))
    except ProtocolError as exc:
        raise ProtocolError(exc.reason, f"{what}: {exc.message}") from exc


def _cosigners(
    note: SignedNote, witnesses: Mapping[str, bytes], min_witnesses: int
) -> tuple[str, ...]:
    """The named witnesses with a valid cosignature of the note, at least min_witnesses."""
    signed: list[str] = []
    for name, key in sorted(witnesses.items()):
        try:
            verify_cosignature(note, name, key)
        except ProtocolError:
            continue
        signed.append(name)
    if len(signed) < min_witnesses:
        raise ProtocolError(
            Reason.PROOF_INVALID,
            f"only {len(signed)} of the required {min_witnesses} witnesses cosigned",
        )
    return tuple(signed)


def _parse_entry(entry: bytes, index: int) -> AccessLogEntry:
    try:
        return AccessLogEntry.FromString(entry)
    except DecodeError as exc:
        raise _malformed(f"entry {index} is not an AccessLogEntry") from exc


def _included(index: int, entry_hash: bytes, hashes: Sequence[bytes], cp: Checkpoint) -> None:
    try:
        verify_inclusion(index, cp.size, entry_hash, hashes, cp.root)
    except ProtocolError as exc:
        raise ProtocolError(
            Reason.PROOF_INVALID, f"entry {index} is not in the checkpoint's tree: {exc.message}"
        ) from exc


def _check_inclusion(
    obj: Mapping[str, Any], log_keys: Collection[bytes], witnesses: Mapping[str, bytes], least: int
) -> Report:
    note, cp = _checkpoint(_field(obj, "checkpoint", str), log_keys, "checkpoint")
    index, tree_size = _index(obj, "index"), _index(obj, "tree_size")
    if tree_size != cp.size:
        raise ProtocolError(
            Reason.PROOF_INVALID,
            f"tree_size {tree_size} is not the checkpoint's size {cp.size}",
        )
    entry = _bytes(obj["entry"], "entry") if obj.get("entry") is not None else None
    stated = _bytes(obj["leaf_hash"], "leaf_hash") if obj.get("leaf_hash") is not None else None
    if entry is None and stated is None:
        raise _malformed("an inclusion proof needs entry or leaf_hash")
    leaf = leaf_hash(entry) if entry is not None else stated
    assert leaf is not None
    if stated is not None and stated != leaf:
        raise ProtocolError(Reason.PROOF_INVALID, "leaf_hash is not the hash of entry")
    _included(index, leaf, _hashes(obj), cp)
    if entry is not None and _parse_entry(entry, index).log_origin != cp.origin:
        raise ProtocolError(Reason.PROOF_INVALID, f"entry {index} is an entry of another log")
    signed = _cosigners(note, witnesses, least)
    return Report("inclusion", cp.origin, (cp.size,), (index,), signed)


def _check_consistency(
    obj: Mapping[str, Any], log_keys: Collection[bytes], witnesses: Mapping[str, bytes], least: int
) -> Report:
    _, old = _checkpoint(_field(obj, "old_checkpoint", str), log_keys, "old_checkpoint")
    note, new = _checkpoint(_field(obj, "checkpoint", str), log_keys, "checkpoint")
    if old.origin != new.origin:
        raise ProtocolError(Reason.PROOF_INVALID, "the two checkpoints are of different logs")
    if old.size > new.size:
        raise ProtocolError(Reason.PROOF_INVALID, "old_checkpoint is larger than checkpoint")
    try:
        verify_consistency(old.size, new.size, old.root, new.root, _hashes(obj))
    except ProtocolError as exc:
        raise ProtocolError(
            Reason.PROOF_INVALID,
            f"size {old.size} to {new.size}: {exc.message}",
        ) from exc
    signed = _cosigners(note, witnesses, least)
    return Report("consistency", new.origin, (old.size, new.size), (), signed)


def _check_disclosure(
    envelope: Envelope,
    log_keys: Collection[bytes],
    witnesses: Mapping[str, bytes],
    least: int,
) -> Report:
    check_structure(envelope)
    if envelope.payload_type != LOG_DISCLOSURE:
        raise _malformed(f"not a log disclosure: payload type {envelope.payload_type}")
    keys = {key_id_for(k): k for k in log_keys}
    try:
        verify_envelope(envelope, keys, {LOG_DISCLOSURE})
    except ProtocolError as exc:
        if exc.reason is Reason.KEY_UNKNOWN:
            raise ProtocolError(
                Reason.KEY_UNKNOWN, "the disclosure is not signed by a given log key"
            ) from exc
        raise ProtocolError(
            Reason.PROOF_INVALID, "the disclosure's signature does not verify"
        ) from exc
    disclosure = parse_disclosure(envelope.payload)
    note, cp = _checkpoint(disclosure.checkpoint, log_keys, "checkpoint")
    if cp.origin != disclosure.log_origin:
        raise ProtocolError(
            Reason.PROOF_INVALID, "the checkpoint is of another log than the disclosure names"
        )
    previous = -1
    for item in disclosure.entries:
        if item.index <= previous:
            raise _malformed("entries are not in increasing index order")
        previous = item.index
        _included(item.index, leaf_hash(item.entry), item.hashes, cp)
        if _parse_entry(item.entry, item.index).log_origin != disclosure.log_origin:
            raise ProtocolError(
                Reason.PROOF_INVALID, f"entry {item.index} is an entry of another log"
            )
        if not record_in_entry(item.entry, item.key, disclosure.record):
            raise ProtocolError(
                Reason.PROOF_INVALID,
                f"entry {item.index} does not concern the record with the disclosed key",
            )
    signed = _cosigners(note, witnesses, least)
    return Report(
        "disclosure",
        cp.origin,
        (cp.size,),
        tuple(e.index for e in disclosure.entries),
        signed,
        record=disclosure.record,
        recipient=disclosure.recipient,
        disclosed_at=format_time(disclosure.disclosed_at),
    )


def check(
    document: str | bytes | Envelope,
    *,
    log_keys: Collection[bytes],
    witnesses: Mapping[str, bytes] | None = None,
    min_witnesses: int = 0,
) -> Report:
    """Verify an inclusion proof, a consistency proof or a disclosure (its DSSE envelope, as
    JSON text or parsed) against the log's raw Ed25519 public keys.

    witnesses maps a witness name (its institution ID) to its raw LOG public key; the report
    names those whose cosignature of the (newest) checkpoint verifies, and fewer than
    min_witnesses of them fails.

    Raises:
        ProtocolError: MALFORMED (the document), KEY_UNKNOWN (not signed by a given log key),
            PROOF_INVALID (anything that does not verify), with a message saying what.
    """
    witnesses = dict(witnesses or {})
    if min_witnesses < 0:
        raise ValueError("min_witnesses is 0 or more")
    if isinstance(document, Envelope):
        return _check_disclosure(document, log_keys, witnesses, min_witnesses)
    obj = _object(document)
    if "payloadType" in obj:
        envelope = envelope_from_json(document)
        return _check_disclosure(envelope, log_keys, witnesses, min_witnesses)
    kind = obj.get("type")
    if kind == INCLUSION:
        return _check_inclusion(obj, log_keys, witnesses, min_witnesses)
    if kind == CONSISTENCY:
        return _check_consistency(obj, log_keys, witnesses, min_witnesses)
    raise _malformed("not an inclusion proof, a consistency proof or a disclosure")
