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

from ._merkle import leaf_hash
from ._time import to_timestamp

__all__ = [
    "ENTRY_KEY_SIZE",
    "access_entry",
    "commit_record",
    "entry_leaf",
    "new_entry_key",
    "record_in_entry",
]

ENTRY_KEY_SIZE = 32


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
