"""Access-log entries with no personal data: records appear as keyed commitments (spec LOG-*).

An entry names a record only as HMAC-SHA256(entry key, record name). The node keeps the per-entry
keys outside the log: revealing a key to the data subject or an auditor lets them check which
entries concern a record; deleting the key is how an erasure reaches the log, whose leaves never
change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sseaun.v1.access_log_pb2 import AccessLogEntry

from ._checkpoint import Checkpoint, SignedNote, verify_checkpoint
from ._errors import ProtocolError, Reason
from ._merkle import leaf_hash, verify_inclusion

__all__ = [
    "ENTRY_KEY_SIZE",
    "access_entry",
    "check_logged_call",
    "commit_record",
    "commit_records",
    "encode_entry",
    "entry_leaf",
    "log_origin",
    "new_entry_key",
    "record_in_entry",
    "verify_log_checkpoint",
]

ENTRY_KEY_SIZE = 32

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_sha256 = hashlib.sha256
# HMAC-SHA256 (RFC 2104) from two SHA-256 calls: the key padded to the 64-byte block, XORed with
# the inner and outer pads. On the development machine this takes 1.3 us for one name against
# 1.8 us through the hmac module (hmac.new or the one-shot hmac.digest: OpenSSL's generic HMAC),
# and half the time of the hmac module for fifty names.
_BLOCK = 64
_INNER = bytes(b ^ 0x36 for b in range(256))
_OUTER = bytes(b ^ 0x5C for b in range(256))


def log_origin(network_id: str, institution: str) -> str:
    """The checkpoint origin (and note signer name) of an institution's log (spec LOG-1)."""
    return f"{institution}/sseaun/{network_id}/access-log"


def new_entry_key() -> bytes:
    """A fresh random per-entry commitment key."""
    return secrets.token_bytes(ENTRY_KEY_SIZE)


def commit_records(entry_key: bytes, record_names: Iterable[str]) -> list[bytes]:
    """The commitments to record names under one entry key: HMAC-SHA256(entry key, name)."""
    key = entry_key if len(entry_key) <= _BLOCK else _sha256(entry_key).digest()
    key = key.ljust(_BLOCK, b"\x00")
    inner, outer = key.translate(_INNER), key.translate(_OUTER)
    return [
        _sha256(outer + _sha256(inner + name.encode()).digest()).digest() for name in record_names
    ]


def commit_record(entry_key: bytes, record_name: str) -> bytes:
    """The commitment to a record name under an entry key."""
    return commit_records(entry_key, (record_name,))[0]


# -- the entry's serialisation ----------------------------------------------------------------
#
# AccessLogEntry is serialised by hand: its deterministic protobuf encoding is fixed by the wire
# format (fields in number order, proto3 defaults left out, the time always present since it is
# set). Building the message through protobuf took about 5 us of the 6.7 us an entry took on the
# development machine; this takes about 1 us, in few Python calls (each costs more in a busy
# node than in a tight loop). tests/test_access_log.py checks byte equality with
# SerializeToString(deterministic=True) for random entries.

_SMALL = [bytes((n,)) for n in range(0x80)]
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint; a negative value as its 64-bit two's complement."""
    if 0 <= value < 0x80:
        return _SMALL[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, data: bytes) -> bytes:
    size = len(data)
    return tag + (_SMALL[size] if size < 0x80 else _varint(size)) + data


# Encoded pieces kept by value, since they repeat from entry to entry: the origin field (one
# per log), fields 3 to 6 together (caller, method, purpose, outcome: a few per caller), and
# the time field's seconds (the last value). Bounded, since the values are whatever callers pass.
_CACHE_MAX = 1024
_origins: dict[str, bytes] = {}
_calls: dict[tuple[str, str, int, str], bytes] = {}
_last_seconds: tuple[int, bytes] = (0, b"")


def _origin_field(log_origin: str) -> bytes:
    field = _delimited(b"\x0a", log_origin.encode()) if log_origin else b""
    if len(_origins) >= _CACHE_MAX:
        _origins.clear()
    _origins[log_origin] = field
    return field


def _call_fields(caller: str, method: str, purpose: int, outcome: str) -> bytes:
    if not _INT32_MIN <= purpose <= _INT32_MAX:
        raise ValueError(f"Value out of range: {purpose}")
    fields = b"".join(
        (
            _delimited(b"\x1a", caller.encode()) if caller else b"",
            _delimited(b"\x22", method.encode()) if method else b"",
            b"\x28" + _varint(purpose) if purpose else b"",
            _delimited(b"\x32", outcome.encode()) if outcome else b"",
        )
    )
    if len(_calls) >= _CACHE_MAX:
        _calls.clear()
    _calls[caller, method, purpose, outcome] = fields
    return fields


def _encode(
    log_origin: str,
    seconds: int,
    nanos: int,
    caller: str,
    method: str,
    purpose: int,
    outcome: str,
    record_commitments: Iterable[bytes],
    request_digest: bytes,
) -> bytes:
    global _last_seconds  # noqa: PLW0603 - a one-entry cache
    origin = _origins.get(log_origin)
    if origin is None:
        origin = _origin_field(log_origin)
    call = _calls.get((caller, method, purpose, outcome))
    if call is None:
        call = _call_fields(caller, method, purpose, outcome)
    # Field 2, a Timestamp (at most 22 bytes): seconds (1), then nanos (2), each if not 0.
    cached, time = _last_seconds
    if seconds != cached or not time:
        time = b"\x08" + _varint(seconds) if seconds else b""
        _last_seconds = (seconds, time)
    if nanos:
        time += b"\x10" + _varint(nanos)
    parts = [origin, b"\x12" + _SMALL[len(time)] + time, call]
    for commitment in record_commitments:  # field 7, each one even if empty
        parts.append(
            b"\x3a\x20" + commitment if len(commitment) == 32 else _delimited(b"\x3a", commitment)
        )
    if request_digest:  # field 8
        parts.append(
            b"\x42\x20" + request_digest
            if len(request_digest) == 32
            else _delimited(b"\x42", request_digest)
        )
    return b"".join(parts)


def encode_entry(
    *,
    log_origin: str,
    seconds: int,
    nanos: int,
    caller: str,
    method: str,
    purpose: int,
    outcome: str,
    record_commitments: Iterable[bytes],
    request_digest: bytes,
) -> bytes:
    """The deterministic serialisation of the AccessLogEntry with these fields, its time set
    to (seconds, nanos): byte for byte what protobuf's SerializeToString(deterministic=True)
    gives, without building the message.

    Raises:
        ValueError: purpose is outside int32 (as protobuf); a text is not valid UTF-8
            (UnicodeEncodeError, as protobuf).
    """
    return _encode(
        log_origin,
        seconds,
        nanos,
        caller,
        method,
        purpose,
        outcome,
        record_commitments,
        request_digest,
    )


def access_entry(
    *,
    log_origin: str,
    time: datetime,
    caller: str,
    method: str,
    purpose: int,
    outcome: str,
    record_names: Iterable[str],
    entry_key: bytes,
    request_digest: bytes = b"",
) -> bytes:
    """The serialised entry (the leaf data), with each record name replaced by its commitment.

    The bytes are the deterministic protobuf serialisation of sseaun.v1.AccessLogEntry (see
    encode_entry), the time at microsecond precision.

    Raises:
        ValueError: a naive time; as encode_entry.
    """
    if time.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    delta = time - _EPOCH  # aware datetimes subtract in UTC
    return _encode(
        log_origin,
        delta.days * 86_400 + delta.seconds,
        delta.microseconds * 1000,
        caller,
        method,
        purpose,
        outcome,
        commit_records(entry_key, record_names) if record_names else (),
        request_digest,
    )


def entry_leaf(entry: bytes) -> bytes:
    """The Merkle leaf hash of an entry."""
    return leaf_hash(entry)


def record_in_entry(entry: bytes, entry_key: bytes, record_name: str) -> bool:
    """Whether the entry concerns the record, given the entry's revealed key."""
    commitment = commit_record(entry_key, record_name)
    parsed = AccessLogEntry.FromString(entry)
    return any(hmac.compare_digest(commitment, c) for c in parsed.record_commitments)


def verify_log_checkpoint(note: SignedNote, origin: str, keys: Sequence[bytes]) -> Checkpoint:
    """The checkpoint of a note signed by any of the log's keys, for the expected origin.

    Raises:
        ProtocolError: MALFORMED, KEY_UNKNOWN, PROOF_INVALID (as verify_checkpoint); PROOF_INVALID
            also when the note is for another log.
    """
    error = ProtocolError(Reason.KEY_UNKNOWN, "no key of this log is known")
    for key in keys:
        try:
            checkpoint = verify_checkpoint(note, origin, key)
        except ProtocolError as exc:
            error = exc
            continue
        if checkpoint.origin != origin:
            raise ProtocolError(Reason.PROOF_INVALID, "the checkpoint is of another log")
        return checkpoint
    raise error


def check_logged_call(
    *,
    checkpoint: Checkpoint,
    index: int,
    entry: bytes,
    hashes: Sequence[bytes],
    request_digest: bytes,
    caller: str,
    method: str,
) -> AccessLogEntry:
    """Check that the entry at index of a (verified) checkpoint's tree records this call (LOG-9).

    Raises:
        ProtocolError: PROOF_INVALID when the entry is not in the tree or is another call's.
    """
    verify_inclusion(index, checkpoint.size, leaf_hash(entry), hashes, checkpoint.root)
    parsed = AccessLogEntry.FromString(entry)
    if (
        parsed.log_origin != checkpoint.origin
        or parsed.request_digest != request_digest
        or parsed.caller != caller
        or parsed.method != method
    ):
        raise ProtocolError(Reason.PROOF_INVALID, "the log entry records another call")
    return parsed
