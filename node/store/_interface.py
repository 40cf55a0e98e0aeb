"""Store: the narrow async interface between the node and its database engine.

The node depends only on this Protocol, so an engine other than SQLite (PostgreSQL for hosted,
multi-university deployments) can follow. Each engine has its own way to open; everything after
that is here. Every method is a coroutine except statistics(), which does no IO.

Semantics every engine keeps:

- Records are stored as the envelope bytes that were put and returned byte for byte.
- Versions of a record are 1, 2, 3, … with no gaps; each stored version gets a feed position
  (sequence) that is unique and increasing across the store and never reused.
- A batch of put_records is one transaction: all of it is stored, or none of it.
- A claimed nonce is acknowledged only once it is durable (it survives a crash of the process).
- Visibility: a record version is visible to a reader when its parties are empty (public to
  members) or include the reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ._model import Evidence, NewRecord, PutOutcome, StoredRecord, StoreStatistics

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

    def statistics(self) -> StoreStatistics:
        """Counters of the store's work since open (no IO)."""
        ...
