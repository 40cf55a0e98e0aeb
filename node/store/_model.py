"""What the store holds and answers: record versions, put outcomes, evidence, outbox items and
statistics.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "Evidence",
    "LogEntry",
    "NewRecord",
    "OutboxItem",
    "PutOutcome",
    "PutStatus",
    "StoreStatistics",
    "StoredCheckpoint",
    "StoredRecord",
]


@dataclass(frozen=True, slots=True)
class NewRecord:
    """One version of a record to store: its envelope bytes plus the columns the store indexes.

    envelope is the serialized sseaun.v1.Envelope exactly as issued or received; it is stored
    and returned byte for byte, never re-serialised. The other fields come from the verified
    payload's RecordHeader and must agree with it (the store cannot parse payloads).

    Raises:
        ValueError: the name is not a member of parent, version < 1, issued_at is naive, the
            envelope is empty or a party is empty.
    """

    #: The record's resource name, e.g. "institutions/ynu.edu.cn/courses/CS101".
    name: str
    #: The collection: the name without its last segment, e.g. "institutions/ynu.edu.cn/courses".
    parent: str
    #: 1 for a new record, then the stored latest + 1.
    version: int
    issuer: str
    payload_type: str
    envelope: bytes
    #: Institutions that may read the record; empty means every member (public).
    parties: tuple[str, ...]
    #: True for a tombstone (the record was withdrawn).
    deleted: bool
    issued_at: datetime
    #: The name of the record this one is about (a decision's record), or "".
    subject: str = ""

    def __post_init__(self) -> None:
        collection, _, record_id = self.name.rpartition("/")
        if not record_id or not collection or collection != self.parent:
            raise ValueError(f"record name {self.name!r} is not in collection {self.parent!r}")
        if self.version < 1:
            raise ValueError(f"record version must be 1 or more, not {self.version}")
        if self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be an aware datetime")
        if not self.envelope:
            raise ValueError("the envelope is empty")
        if not all(self.parties):
            raise ValueError("a party is empty")


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One stored version of a record, with its change-feed position."""

    name: str
    parent: str
    version: int
    issuer: str
    payload_type: str
    #: The serialized sseaun.v1.Envelope exactly as it was put.
    envelope: bytes
    parties: tuple[str, ...]
    deleted: bool
    issued_at: datetime
    #: The change-feed position the store assigned on insert, or on the version's latest
    #: merge_version (which moves it to the end of the feeds): unique and increasing across the
    #: whole store, never reused.
    sequence: int


class PutStatus(enum.Enum):
    """What put_records did with one record."""

    #: Stored now; sequence is its new feed position.
    INSERTED = "inserted"
    #: This (name, version) was already stored with the same bytes; sequence is the stored one.
    UNCHANGED = "unchanged"
    #: The batch_id was completed before, so nothing was compared or written; sequence is 0.
    BATCH_DONE = "batch_done"


@dataclass(frozen=True, slots=True)
class PutOutcome:
    """The outcome of one record of a put_records batch."""

    name: str
    version: int
    status: PutStatus
    sequence: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """Proof of misbehaviour (e.g. two manifests with one version), kept for operators."""

    id: int
    #: What was seen, e.g. "manifest-equivocation".
    kind: str
    #: A human-readable account.
    detail: str
    #: The signed envelopes that prove it, exactly as received.
    envelopes: tuple[bytes, ...]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A notification to a partner kept until it is delivered (it survives restarts)."""

    #: Unique and increasing, never reused; coalescing gives the item a new one (see enqueue).
    id: int
    #: Who it is for, e.g. the partner institution "chula.ac.th".
    recipient: str
    #: What it is about, e.g. "exchange": with recipient, what enqueue coalesces on.
    topic: str
    #: What to send, opaque to the store.
    payload: bytes
    #: When it was first enqueued (coalescing keeps this time).
    created_at: datetime
    #: Failed deliveries so far.
    attempts: int
    #: When it is due (again).
    next_attempt_at: datetime
    #: When it was delivered; None while pending.
    delivered_at: datetime | None
    #: The error of the last failed delivery; None if none failed.
    last_error: str | None


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One stored access-log entry (spec LOG-2)."""

    #: The log: the institution whose log it is.
    log: str
    #: 0-based position in the log.
    index: int
    #: The serialized sseaun.v1.AccessLogEntry, the Merkle leaf data, exactly as appended.
    entry: bytes
    #: The entry's record-commitment key, kept outside the log; None once erased.
    key: bytes | None


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint the node signed for one of its logs, with the cosignatures it received."""

    log: str
    size: int
    root: bytes
    #: The C2SP signed note exactly as signed (body, blank line, the log's signature line).
    note: str
    signed_at: datetime
    #: Cosignature lines ("— <witness> <base64>\n") in the order received.
    cosignatures: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The note with its cosignatures, as served."""
        return self.note + "".join(self.cosignatures)


@dataclass(frozen=True, slots=True)
class StoreStatistics:
    """A point-in-time view of the store's work, for metrics; reading it does no IO."""

    #: Write operations submitted and not finished yet (each pending nonce claim counts once).
    queued_writes: int
    #: Nonce claims waiting for their group commit.
    pending_nonce_claims: int
    #: Write transactions committed since open.
    transactions_committed: int
    #: Group commits of nonce claims since open (each is one of transactions_committed).
    nonce_batches_committed: int
    #: Claims that found their nonce unseen and stored it.
    nonces_claimed: int
    #: Claims refused as replays (or because their expiry had passed).
    nonces_refused: int
    #: Record versions inserted since open.
    records_inserted: int
    #: Access-log appends waiting for their group commit.
    pending_log_appends: int = 0
    #: Access-log entries appended since open.
    log_entries_appended: int = 0
    #: Record versions given merged envelopes (merge_version with new bytes) since open.
    records_merged: int = 0
