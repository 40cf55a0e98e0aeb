"""Store: the narrow async interface between the node and its database engine.

The node depends only on this Protocol, so an engine other than SQLite (PostgreSQL for hosted,
multi-university deployments) can follow. Each engine has its own way to open; everything after
that is here. Every method is a coroutine except statistics(), which does no IO.

Semantics every engine keeps:

- Records are stored as the envelope bytes that were put and returned byte for byte.
- Versions of a record are 1, 2, 3, … with no gaps; each stored version gets a feed position
  (sequence) that is unique and increasing across the store and never reused. A version whose
  envelope is replaced by a merged copy (merge_version, spec LC-13) moves to a new position after
  every other, so every feed shows it again; its old position is not reused.
- A batch of put_records is one transaction: all of it is stored, or none of it.
- A claimed nonce is acknowledged only once it is durable (it survives a crash of the process).
- Visibility: a record version is visible to a reader when its parties are empty (public to
  members) or include the reader.
- Feeds: each collection has one (changes), and each reader has an exchange feed of the private
  versions it is a party of, across every collection and issuer (exchange_changes): what a node
  serves a partner that pulls from it.
- The outbox keeps notifications to partners until they are delivered, across restarts.
- Access logs (spec LOG): each log (named by the institution it belongs to) is append-only;
  entries are numbered 0, 1, 2, … in commit order with no gaps, even when several processes
  append to one file. With each entry the store keeps the hash of every perfect subtree it
  completes (level 0 = the leaf hash), so any proof needs O(log n) lookups. An append is
  acknowledged only once durable. Entry keys are kept apart from entries.
- Checkpoints of a log are kept forever, one per size, in increasing size.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from ._model import (
    Evidence,
    LogEntry,
    NewRecord,
    OutboxItem,
    PutOutcome,
    StoredCheckpoint,
    StoredRecord,
    StoreStatistics,
)

__all__ = ["Store"]


class Store(Protocol):
    """The node's storage; methods raise StoreClosedError once closed, StoreError on failure."""

    async def close(self) -> None:
        """Finish pending writes (nonce group commits included), then close; idempotent."""
        ...

    async def claim_nonce(self, key: bytes, expires_at: datetime) -> bool:
        """Store a request's nonce key until expires_at; False if it was already stored (replay).

        Atomic: of several claims of one key, exactly one returns True. The answer comes only
        after the claim is durable. A claim whose expires_at has already passed returns False:
        it could not be remembered, so accepting it would not be replay-safe.
        """
        ...

    async def purge_expired_nonces(self, now: datetime) -> int:
        """Forget the nonces that expired at or before now; return how many."""
        ...

    async def put_records(
        self, records: Sequence[NewRecord], *, batch_id: str | None = None
    ) -> list[PutOutcome]:
        """Store a batch of record versions in one transaction; one outcome per record, in order.

        A (name, version) already stored with the same envelope bytes is UNCHANGED. With a
        batch_id already completed, nothing is written and every outcome is BATCH_DONE; on
        success the batch_id is recorded in the same transaction.

        Raises:
            StoreConflictError: a (name, version) is stored with different bytes.
            StoreVersionError: a version is not the stored latest + 1 (1 for a new record).
        """
        ...

    async def batch_done(self, batch_id: str) -> bool:
        """True if a put_records batch with this batch_id was committed."""
        ...

    async def get_record(self, name: str, version: int = 0) -> StoredRecord | None:
        """One version of a record (0: the latest), tombstones included; None if not stored.

        No visibility check: the caller checks the reader against parties.
        """
        ...

    async def latest_version(self, name: str) -> int:
        """The latest stored version of a record; 0 if it is not stored."""
        ...

    async def list_records(
        self,
        parent: str,
        *,
        reader: str,
        after_name: str = "",
        limit: int,
        changed_since: int = 0,
    ) -> list[StoredRecord]:
        """The latest version of the collection's live records visible to reader, by name.

        Only names > after_name, only latest versions with sequence >= changed_since, at most
        limit. Tombstoned records are left out.
        """
        ...

    async def changes(
        self, parent: str, *, reader: str, after_sequence: int, limit: int
    ) -> list[StoredRecord]:
        """Every stored version of the collection visible to reader, tombstones included, with
        sequence > after_sequence, in sequence order, at most limit.
        """
        ...

    async def head_sequence(self, parent: str) -> int:
        """The sequence of the collection's newest change; 0 if it has none."""
        ...

    async def merge_version(self, name: str, version: int, envelope: bytes) -> StoredRecord | None:
        """Replace the stored envelope of (name, version) with a merged copy that carries more
        signatures (spec LC-13), and move the version to a new feed position; None if (name,
        version) is not stored.

        The caller has checked that the copy has the same payload and that its new signatures
        count: the store only swaps the bytes. The version gets a fresh sequence, larger than
        every other, so changes, exchange_changes and list_records (changed_since) show it again
        after its new sequence; its old sequence is never reused. Everything else about the
        version (issuer, parties, deleted, issued_at, whether it is the latest) stays. Bytes
        equal to the stored ones change nothing: the stored version is returned with its
        sequence. One transaction. Afterwards put_records of the version's earlier bytes raises
        StoreConflictError, as for any bytes other than the stored ones.
        """
        ...

    async def names_about(self, subject: str) -> list[str]:
        """The names of the stored records about subject (put with NewRecord.subject), sorted."""
        ...

    async def exchange_changes(
        self, reader: str, *, after_sequence: int, limit: int
    ) -> list[StoredRecord]:
        """The exchange feed of reader: every stored private version (its parties are not
        empty) whose parties include reader, of any collection and issuer, tombstones included,
        with sequence > after_sequence, in sequence order, at most limit.

        Public versions are never in it: every member reads them from the collections' feeds.
        """
        ...

    async def exchange_head(self, reader: str) -> int:
        """The sequence of the newest version in reader's exchange feed; 0 if it is empty."""
        ...

    async def put_manifest(self, version: int, envelope: bytes, digest: bytes) -> bool:
        """Keep a verified manifest version; False if it was already held with the same digest.

        Raises:
            StoreConflictError: this version is held with another digest (equivocation).
        """
        ...

    async def get_manifest(self, version: int = 0) -> bytes | None:
        """The envelope bytes of a manifest version (0: the newest held); None if not held."""
        ...

    async def manifest_versions(self) -> list[int]:
        """The manifest versions held, ascending."""
        ...

    async def put_statement(
        self, kind: str, institution: str, serial_or_key: str, envelope: bytes
    ) -> None:
        """Keep a signed statement (a delegation or revocation); replaces one with the same
        (kind, institution, serial_or_key).
        """
        ...

    async def statements(self) -> list[tuple[str, bytes]]:
        """Every statement as (kind, envelope bytes), by kind, institution, serial or key."""
        ...

    async def put_evidence(self, kind: str, detail: str, envelopes: Sequence[bytes]) -> bool:
        """Keep evidence of misbehaviour; False if the same evidence is already kept."""
        ...

    async def evidence(self) -> list[Evidence]:
        """Every piece of evidence, oldest first."""
        ...

    async def enqueue(
        self, recipient: str, topic: str, payload: bytes, *, coalesce: bool = True
    ) -> int:
        """Keep a notification for recipient in the outbox until it is delivered, due now;
        return the item's id.

        With coalesce, a pending item with the same recipient and topic (the newest, if there
        are several) takes this payload and is due now instead of another item being added (a
        hint to look again need not be sent twice). It keeps its created_at, attempts and
        last_error but gets a new id, so a delivery of its old payload that was under way
        (outbox_delivered or outbox_failed with the old id) leaves the new payload pending.

        Raises:
            ValueError: recipient or topic is empty.
        """
        ...

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Up to limit pending items with next_attempt_at <= now, the longest due first (by
        next_attempt_at, then id; items never retried come in the order enqueued).
        """
        ...

    async def outbox_delivered(self, item_id: int) -> None:
        """Mark a pending item delivered now; an unknown or delivered item is left as it is."""
        ...

    async def outbox_failed(self, item_id: int, *, next_attempt_at: datetime, error: str) -> None:
        """Count a failed delivery of a pending item: attempts + 1, due again at
        next_attempt_at, last_error = error. An unknown or delivered item is left as it is.
        """
        ...

    async def outbox_pending(self) -> int:
        """How many items of the outbox are not delivered yet, due or not."""
        ...

    async def purge_outbox(self, delivered_before: datetime) -> int:
        """Forget the items delivered before delivered_before; return how many."""
        ...

    async def get_setting(self, key: str) -> bytes | None:
        """A node setting (e.g. its page-token secret); None if unset."""
        ...

    async def set_setting(self, key: str, value: bytes) -> None:
        """Set a node setting, replacing any earlier value."""
        ...

    async def change_marker(self) -> int:
        """A number that changes whenever anything committed a write (for read caches)."""
        ...

    async def integrity_check(self) -> str:
        """Check the database; "ok" when it is sound, else the problems found, one per line."""
        ...

    async def append_log(self, log: str, entry: bytes, key: bytes) -> int:
        """Append one entry to a log and return its index, once durable.

        Appends are group-committed (with each other and with nonce claims), so many callers
        share one transaction. If the caller is cancelled the append still happens.
        """
        ...

    async def log_size(self, log: str) -> int:
        """How many entries the log holds (0 for a log never written)."""
        ...

    async def log_nodes(
        self, log: str, nodes: Collection[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        """The hashes of perfect subtrees (level, index) of the log's tree.

        Raises:
            StoreError: a node is not stored (it lies beyond the log's size).
        """
        ...

    async def log_entries(self, log: str, start: int, limit: int) -> list[LogEntry]:
        """Up to limit entries of the log from index start, in index order."""
        ...

    async def logs(self) -> list[str]:
        """The logs that hold at least one entry or checkpoint, by name."""
        ...

    async def erase_log_keys(self, log: str, indexes: Collection[int]) -> int:
        """Delete the commitment keys of these entries (erasure); return how many were held."""
        ...

    async def put_checkpoint(
        self, log: str, size: int, root: bytes, note: str, signed_at: datetime
    ) -> None:
        """Keep a checkpoint the node signed.

        Raises:
            StoreConflictError: a checkpoint of this size is kept with another root, or a
                larger one is kept already (checkpoints only grow).
        """
        ...

    async def checkpoints(self, log: str) -> list[StoredCheckpoint]:
        """Every checkpoint of the log, by size, with its cosignatures."""
        ...

    async def latest_checkpoint(self, log: str) -> StoredCheckpoint | None:
        """The largest checkpoint of the log, with its cosignatures; None if none."""
        ...

    async def add_cosignature(self, log: str, size: int, witness: str, line: str) -> bool:
        """Keep a witness's cosignature line of the checkpoint of this size (replacing that
        witness's earlier line for it); False if no such checkpoint is kept.
        """
        ...

    async def put_witnessed(self, origin: str, size: int, note: str) -> None:
        """Remember the newest checkpoint of another log this node verified (as a witness)."""
        ...

    async def witnessed(self, origin: str) -> tuple[int, str] | None:
        """The (size, note) last remembered by put_witnessed for origin; None if none."""
        ...

    def statistics(self) -> StoreStatistics:
        """Counters of the store's work since open (no IO)."""
        ...
