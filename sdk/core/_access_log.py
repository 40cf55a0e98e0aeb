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
from collections.abc import Sequence
from datetime import datetime

from sseaun.v1.access_log_pb2 import AccessLogEntry

from ._checkpoint import Checkpoint, SignedNote, verify_checkpoint
from ._errors import ProtocolError, Reason
from ._merkle import leaf_hash, verify_inclusion
from ._time import to_timestamp

__all__ = [
    "ENTRY_KEY_SIZE",
    "access_entry",
    "check_logged_call",
    "commit_record",
    "entry_leaf",
    "log_origin",
    "new_entry_key",
    "record_in_entry",
    "verify_log_checkpoint",
]

ENTRY_KEY_SIZE = 32


def log_origin(network_id: str, institution: str) -> str:
    """The checkpoint origin (and note signer name) of an institution's log (spec LOG-1)."""
    return f"{institution}/sseaun/{network_id}/access-log"


def new_entry_key() -> bytes:
    """A fresh random per-entry commitment key."""
    return secrets.token_bytes(ENTRY_KEY_SIZE)


def commit_record(entry_key: bytes, record_name: str) -> bytes:
    """The commitment to a record name under an entry key."""
    return hmac.new(entry_key, record_name.encode(), hashlib.sha256).digest()


def access_entry(
    *,
    log_origin: str,
    time: datetime,
    caller: str,
    method: str,
    purpose: int,
    outcome: str,
    record_names: Sequence[str],
    entry_key: bytes,
    request_digest: bytes = b"",
) -> bytes:
    """The serialised entry (the leaf data), with each record name replaced by its commitment."""
    entry = AccessLogEntry(
        log_origin=log_origin,
        time=to_timestamp(time),
        caller=caller,
        method=method,
        purpose=purpose,  # type: ignore[arg-type]
        outcome=outcome,
        record_commitments=[commit_record(entry_key, name) for name in record_names],
        request_digest=request_digest,
    )
    return entry.SerializeToString(deterministic=True)


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
