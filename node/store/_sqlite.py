"""SqliteStore: the Store on one SQLite file in WAL mode, kept off the event loop.

Threads. The process has one event loop and nothing may block it, so no SQLite call runs on it.
All writes run on one dedicated writer thread that owns the read-write connection: SQLite
allows one writer at a time anyway, a single owner needs no locks, and jobs run in the order
they were submitted. Reads run on a second thread with its own read-only connection. In WAL
mode a reader works on the last committed snapshot without waiting for the writer, so a long
import never delays a GetRecord, and a slow read never delays a nonce claim. A single reader
thread is enough: sqlite3 releases the GIL inside SQLite, but turning rows into Python objects
holds it, so more reader threads would mostly queue for the GIL. The thread hop, not SQLite, is
most of the cost of a point read, so reads queued together run as one job and are answered with
one wake-up of the loop.

Durability. journal_mode=WAL with synchronous=NORMAL: a commit appends the transaction to the
WAL file and returns without fsync (the WAL is fsynced at checkpoints, about every 4 MB of
writes). A committed transaction therefore survives a crash of the process (SIGKILL, OOM kill,
an exception): its bytes are in the kernel's page cache, which the kernel writes out. Only an
OS crash or power loss can lose transactions: the last ones committed since the previous
checkpoint, each lost whole, never leaving the file corrupt. synchronous=FULL would close that
gap by fsyncing every commit, at about three times the cost of a one-row commit on the
development machine (building_block_limits.md, §6).
A lost nonce after an OS crash re-opens a replay window of at most the clock window, and only
for requests captured in the last moments before the crash.

Group commit. A request's nonce claim is on the hot path of every call. Claims are queued on
the event loop and the writer commits all claims queued so far in one transaction, then answers
each one. While it commits, new claims queue for the next batch, so batches grow with load
without a timer; nonce_linger can add a short wait to collect more claims at moderate load.
Each claim is one upsert whose row count says whether the key was unseen; the table itself is
the authority (a key's row lives until it expires), so memory holds only the batch in flight.
Access-log appends (also one per call) join the same queue and the same transaction: one group
commit stores the claims and the appends queued so far, up to max_nonce_batch of them together
(_log_writer.py: an append's index is the log's size read inside that transaction, so appends
from several processes never collide, and the Merkle nodes come from a cached frontier).
Expired nonces are deleted, through an index on the expiry time, at open and then at most once
per purge_interval with a batch, so the table holds about one clock window of nonces.

Statements. Hot reads use plain sqlite3 cursors with constant SQL, which sqlite3 prepares once
and keeps in its per-connection statement cache; sqlite-utils runs the migrations only (its
table helpers re-read the schema on every call, ~4x slower on point reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from . import _sql as sql
from ._errors import (
    StoreClosedError,
    StoreConflictError,
    StoreError,
    StoreVersionError,
    VersionProblem,
)
from ._log_writer import LogAppend, LogFrontier, LogWriter, leaf_hashes, load_nodes
from ._model import (
    Evidence,
    LogEntry,
    NewRecord,
    OutboxItem,
    PutOutcome,
    PutStatus,
    StoredCheckpoint,
    StoredRecord,
    StoreStatistics,
)
from ._schema import immediate, migrate

__all__ = ["SqliteStore"]

_T = TypeVar("_T")

#: Bounds the WAL file left behind after a checkpoint (it is reused, not shrunk, otherwise).
_JOURNAL_SIZE_LIMIT: Final = 64 * 1024 * 1024


def _fingerprint(kind: str, detail: str, envelopes: Sequence[bytes]) -> bytes:
    """The SHA-256 that identifies a piece of evidence, so it is kept once."""
    digest = hashlib.sha256()
    # Length-prefixed, so different splits of the same bytes cannot collide.
    for part in (kind.encode(), detail.encode(), *envelopes):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def _create_private(path: Path) -> None:
    """Create an empty database file readable by its owner only; SQLite gives its -wal and -shm
    files the same permissions. The store holds student records.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _open_writer(path: Path, busy_timeout: float, now_us: int) -> sqlite3.Connection:
    """Writer thread: open the read-write connection, migrate, purge expired nonces."""
    _create_private(path)
    # isolation_level=None: transactions are only the explicit BEGIN IMMEDIATE ... COMMIT below,
    # never ones the sqlite3 module opens implicitly.
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, cached_statements=256)
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"the database cannot use WAL mode (journal_mode is {mode})")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute(f"PRAGMA journal_size_limit = {_JOURNAL_SIZE_LIMIT}")
        migrate(conn)
        with immediate(conn):
            conn.execute(sql.PURGE, (now_us,))
    except BaseException:
        conn.close()
        raise
    return conn


def _open_reader(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """Reader thread: open the read-only connection (after the writer created the schema)."""
    uri = path.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(
        uri, uri=True, timeout=busy_timeout, isolation_level=None, cached_statements=256
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    return conn


def _guarded(call: Callable[[], _T]) -> _T:
    """Run call, turning SQLite's own errors into StoreError (the Store's only error family)."""
    try:
        return call()
    except sqlite3.Error as exc:
        raise StoreError(f"SQLite: {exc}") from exc


def _checkpoint(log: str, row: tuple[Any, ...], lines: Sequence[str]) -> StoredCheckpoint:
    """The StoredCheckpoint of a row of (size, root, note, signed_at) and its cosignatures."""
    size, root, note, signed_at = row
    return StoredCheckpoint(
        log=log,
        size=int(size),
        root=bytes(root),
        note=str(note),
        signed_at=sql.from_us(signed_at),
        cosignatures=tuple(lines),
    )


@dataclass(slots=True)
class _Claim:
    key: bytes
    expires_at: int
    future: asyncio.Future[bool]


def _failure(what: str, cause: BaseException) -> StoreError:
    """A fresh exception per waiter: each await raises (and annotates) its own."""
    if isinstance(cause, StoreClosedError):
        return StoreClosedError(str(cause))
    error = StoreError(f"{what} failed: {cause}")
    error.__cause__ = cause
    return error


def _settle(
    claims: list[_Claim],
    appends: list[LogAppend],
    outcome: tuple[list[bool], list[int]] | BaseException,
) -> None:
    """Event loop: answer the claims and log appends of a committed (or failed) group commit.

    A future already done belongs to a caller that gave up (cancelled); its write stands anyway.
    """
    if isinstance(outcome, BaseException):
        for claim in claims:
            if not claim.future.done():
                claim.future.set_exception(_failure("nonce claim", outcome))
        for append in appends:
            if not append[3].done():
                append[3].set_exception(_failure("log append", outcome))
        return
    claimed, indexes = outcome
    for claim, result in zip(claims, claimed, strict=True):
        if not claim.future.done():
            claim.future.set_result(result)
    for (_, _, _, future), index in zip(appends, indexes, strict=True):
        if not future.done():
            future.set_result(index)


def _answer_reads(answers: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    """Event loop: answer a job's reads."""
    for future, result, error in answers:
        if future.done():  # the caller was cancelled
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class SqliteStore:
    """The Store on one SQLite file. Open it with ``await SqliteStore.open(path)``.

    Example::

        store = await SqliteStore.open(Path("node.db"))
        try:
            if not await store.claim_nonce(request.nonce_key, request.nonce_expires_at):
                ...  # REPLAYED_NONCE
        finally:
            await store.close()
    """

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        writer: ThreadPoolExecutor,
        reader: ThreadPoolExecutor,
        write_conn: sqlite3.Connection,
        read_conn: sqlite3.Connection,
        clock: Callable[[], datetime],
        nonce_linger: float,
        max_nonce_batch: int,
        purge_interval: float,
    ) -> None:
        """Use SqliteStore.open(); the connections belong to the threads of their executors."""
        self._loop = loop
        self._writer = writer
        self._reader = reader
        self._write_conn = write_conn  # used on the writer thread only
        self._read_conn = read_conn  # used on the reader thread only
        self._clock = clock
        self._nonce_linger = nonce_linger
        self._last_batch_size = 0
        self._max_batch = max_nonce_batch
        self._purge_interval_us = int(purge_interval * 1_000_000)
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        # Nonce claims and log appends queued for the group commit, in call order. Shared by
        # the loop (adds) and the writer (takes); the lock is held only to move list items,
        # never during IO, so the loop never waits.
        self._queue_lock = threading.Lock()
        self._queue: list[_Claim | LogAppend] = []
        self._group_job_queued = False
        self._log_writer = LogWriter()  # writer thread only
        # Reads queued for the reader thread, shared the same way.
        self._reads_lock = threading.Lock()
        self._reads: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._read_job_queued = False
        # Each counter has one writing thread, so += needs no lock; readers may see a value
        # one step old, which is fine for statistics. Loop thread:
        self._writes_submitted = 0
        self._claims_submitted = 0
        self._appends_submitted = 0
        # Writer thread:
        self._writes_done = 0
        self._claims_done = 0
        self._appends_done = 0
        self._log_entries_appended = 0
        self._last_purge_us = 0
        self._transactions = 0
        self._nonce_batches = 0
        self._nonces_claimed = 0
        self._nonces_refused = 0
        self._records_inserted = 0
        self._records_merged = 0

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        clock: Callable[[], datetime] = sql.utcnow,
        nonce_linger: float = 0.0,
        max_nonce_batch: int = 1024,
        purge_interval: float = 1.0,
        busy_timeout: float = 5.0,
    ) -> SqliteStore:
        """Open (creating if needed) the store at path and bring its schema up to date.

        Args:
            path: the database file; created with mode 0600, its directory as needed.
            clock: the current time as an aware datetime; decides which nonces have expired.
            nonce_linger: seconds the writer waits for more nonce claims and log appends
                before committing a group that is not full; 0 commits at once (they still
                group up under load).
            max_nonce_batch: the most nonce claims and log appends (together) committed in one
                transaction.
            purge_interval: the least seconds between two purges of expired nonces.
            busy_timeout: seconds to wait for a lock held by another process (a CLI tool).

        Raises:
            StoreError: the file cannot be opened, is not an SSEAUN store, or is newer.
        """
        if max_nonce_batch < 1:
            raise ValueError("max_nonce_batch must be 1 or more")
        loop = asyncio.get_running_loop()
        path = Path(path)
        writer = ThreadPoolExecutor(1, thread_name_prefix="sseaun-store-writer")
        reader = ThreadPoolExecutor(1, thread_name_prefix="sseaun-store-reader")
        now_us = sql.to_us(clock())
        try:
            write_conn = await loop.run_in_executor(
                writer, _guarded, lambda: _open_writer(path, busy_timeout, now_us)
            )
            try:
                read_conn = await loop.run_in_executor(
                    reader, _guarded, lambda: _open_reader(path, busy_timeout)
                )
            except BaseException:
                await loop.run_in_executor(writer, write_conn.close)
                raise
        except BaseException:
            writer.shutdown(wait=False)
            reader.shutdown(wait=False)
            raise
        store = cls(
            loop=loop,
            writer=writer,
            reader=reader,
            write_conn=write_conn,
            read_conn=read_conn,
            clock=clock,
            nonce_linger=nonce_linger,
            max_nonce_batch=max_nonce_batch,
            purge_interval=purge_interval,
        )
        store._last_purge_us = now_us
        return store

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- running work on the two threads ------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the store is closed")

    async def _write(self, call: Callable[[], _T]) -> _T:
        """Run call on the writer thread. Once submitted it runs to the end even if the caller
        is cancelled, so a write is done or not done, never half done or lost in the queue.
        """
        self._check_open()
        self._writes_submitted += 1
        return await asyncio.shield(self._loop.run_in_executor(self._writer, self._run_write, call))

    def _run_write(self, call: Callable[[], _T]) -> _T:
        try:
            return _guarded(call)
        finally:
            self._writes_done += 1

    async def _read(self, call: Callable[[], _T]) -> _T:
        """Run call on the reader thread.

        Reads queued while the reader is busy run in one job and are answered with one wake-up
        of the loop: under load this halves the cost of a thread hop, which is most of the cost
        of a point read.
        """
        self._check_open()
        future: asyncio.Future[_T] = self._loop.create_future()
        with self._reads_lock:
            self._reads.append((call, future))
            submit = not self._read_job_queued
            self._read_job_queued = True
        if submit:
            self._reader.submit(self._read_job)
        return await future

    def _read_job(self) -> None:
        """Reader thread: run every queued read, then answer them all at once."""
        with self._reads_lock:
            batch, self._reads = self._reads, []
            self._read_job_queued = False
        answers: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        for call, future in batch:
            try:
                answers.append((future, _guarded(call), None))
            except Exception as exc:  # noqa: BLE001 - passed on to the caller's future
                answers.append((future, None, exc))
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self._loop.call_soon_threadsafe(_answer_reads, answers)

    def _now_us(self) -> int:
        return sql.to_us(self._clock())

    # -- lifecycle -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish the queued writes, nonce claims and log appends, then close both connections;
        idempotent.
        """
        if self._closing is None:
            self._closed = True
            self._closing = self._loop.create_task(self._shut_down())
        # Shielded: a cancelled caller must not leave the store half closed.
        await asyncio.shield(self._closing)

    async def _shut_down(self) -> None:
        try:
            # Reader first, so the writer's connection is the last one and its close checkpoints
            # the WAL into the database file.
            await self._loop.run_in_executor(self._reader, self._read_conn.close)
            await self._loop.run_in_executor(self._writer, self._close_writer)
        finally:
            self._reader.shutdown(wait=False)
            self._writer.shutdown(wait=False)

    def _close_writer(self) -> None:
        """Writer thread: commit every claim and append still queued (no new ones come once
        closed).
        """
        try:
            while True:
                claims, appends, _ = self._take_group()
                if not claims and not appends:
                    break
                self._commit_group(claims, appends)
            self._write_conn.execute("PRAGMA optimize")
        finally:
            # After a failed commit, nothing may be left waiting forever.
            with self._queue_lock:
                left, self._queue = self._queue, []
            if left:
                claims = [item for item in left if isinstance(item, _Claim)]
                appends = [item for item in left if not isinstance(item, _Claim)]
                self._claims_done += len(claims)
                self._appends_done += len(appends)
                self._answer(
                    claims, appends, StoreClosedError("the store closed before the write committed")
                )
            self._write_conn.close()

    def statistics(self) -> StoreStatistics:
        """Counters of the store's work since open (no IO)."""
        pending_claims = self._claims_submitted - self._claims_done
        pending_appends = self._appends_submitted - self._appends_done
        return StoreStatistics(
            queued_writes=self._writes_submitted
            - self._writes_done
            + pending_claims
            + pending_appends,
            pending_nonce_claims=pending_claims,
            transactions_committed=self._transactions,
            nonce_batches_committed=self._nonce_batches,
            nonces_claimed=self._nonces_claimed,
            nonces_refused=self._nonces_refused,
            records_inserted=self._records_inserted,
            pending_log_appends=pending_appends,
            log_entries_appended=self._log_entries_appended,
            records_merged=self._records_merged,
        )

    # -- nonces --------------------------------------------------------------------------------

    async def claim_nonce(self, key: bytes, expires_at: datetime) -> bool:
        """Store a request's nonce key until expires_at; False if it was already stored (replay).

        Answers after the group commit that stored it. A claim whose expires_at has already
        passed is refused (False). If the caller is cancelled meanwhile the claim still
        stands: the nonce counts as seen, and the client's retry uses a fresh one anyway.
        """
        self._check_open()
        if not key:
            raise ValueError("the nonce key is empty")
        claim = _Claim(bytes(key), sql.to_us(expires_at), self._loop.create_future())
        self._enqueue(claim)
        self._claims_submitted += 1
        return await claim.future

    def _enqueue(self, item: _Claim | LogAppend) -> None:
        """Event loop: queue a claim or append for the group commit, starting a job if none is
        queued.
        """
        with self._queue_lock:
            self._queue.append(item)
            submit = not self._group_job_queued
            self._group_job_queued = True
        if submit:
            self._writer.submit(self._group_job)

    def _take_group(self) -> tuple[list[_Claim], list[LogAppend], bool]:
        """Take up to max_nonce_batch queued claims and appends (in call order), and whether
        more remain queued.

        When none remain the job flag is cleared: items queued from then on submit a new job,
        which runs after this one and so forms the next group.
        """
        with self._queue_lock:
            taken = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            more = bool(self._queue)
            if not more:
                self._group_job_queued = False
        claims: list[_Claim] = []
        appends: list[LogAppend] = []
        for item in taken:
            if isinstance(item, _Claim):
                claims.append(item)
            else:
                appends.append(item)
        return claims, appends, more

    def _group_job(self) -> None:
        """Writer thread: commit one group of queued claims and appends and answer them."""
        # Linger only under load (the last group held several items), so a lone caller never
        # waits, while concurrent callers share one commit instead of paying one each.
        if self._nonce_linger > 0 and self._last_batch_size > 1:
            with self._queue_lock:
                short = len(self._queue) < self._max_batch
            if short:
                time.sleep(self._nonce_linger)
        claims, appends, more = self._take_group()
        if not claims and not appends:  # close() committed them already
            return
        if more:
            # More than one group was queued: the rest goes behind the writes queued meanwhile.
            self._writer.submit(self._group_job)
        self._commit_group(claims, appends)

    def _commit_group(self, claims: list[_Claim], appends: list[LogAppend]) -> None:
        """Writer thread: one transaction for the group, then the answers (after COMMIT).

        O(group) statements: one upsert per claim (its row count is the answer), one read of
        the head per log touched, one executemany per log table.
        """
        try:
            leaves = leaf_hashes(appends)  # before the lock
            now = self._now_us()
            claimed: list[bool] = []
            indexes: list[int] = []
            frontiers: dict[str, LogFrontier] = {}
            conn = self._write_conn
            with immediate(conn):
                for claim in claims:
                    if claim.expires_at <= now:
                        claimed.append(False)
                        continue
                    cursor = conn.execute(sql.CLAIM, (claim.key, claim.expires_at, now))
                    claimed.append(cursor.rowcount == 1)
                if appends:
                    indexes, frontiers = self._log_writer.stage(conn, appends, leaves)
                if now - self._last_purge_us >= self._purge_interval_us:
                    conn.execute(sql.PURGE, (now,))
                    self._last_purge_us = now
        except BaseException as exc:
            # The frontiers the failed transaction grew are dropped with it (never kept).
            self._claims_done += len(claims)
            self._appends_done += len(appends)
            self._answer(claims, appends, exc)
            raise
        self._log_writer.keep(frontiers)
        self._transactions += 1
        self._nonce_batches += 1
        self._last_batch_size = len(claims) + len(appends)
        won = sum(claimed)
        self._nonces_claimed += won
        self._nonces_refused += len(claims) - won
        self._claims_done += len(claims)
        self._log_entries_appended += len(appends)
        self._appends_done += len(appends)
        self._answer(claims, appends, (claimed, indexes))

    def _answer(
        self,
        claims: list[_Claim],
        appends: list[LogAppend],
        outcome: tuple[list[bool], list[int]] | BaseException,
    ) -> None:
        # RuntimeError: the event loop is closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_settle, claims, appends, outcome)

    async def purge_expired_nonces(self, now: datetime) -> int:
        """Forget the nonces that expired at or before now; return how many."""
        now_us = sql.to_us(now)
        return await self._write(lambda: self._purge_sync(now_us))

    def _purge_sync(self, now_us: int) -> int:
        with immediate(self._write_conn):
            deleted = self._write_conn.execute(sql.PURGE, (now_us,)).rowcount
        self._transactions += 1
        return deleted

    # -- records -------------------------------------------------------------------------------

    async def put_records(
        self, records: Sequence[NewRecord], *, batch_id: str | None = None
    ) -> list[PutOutcome]:
        """Store a batch of record versions in one transaction; one outcome per record, in order.

        A (name, version) already stored with the same envelope bytes is UNCHANGED. With a
        batch_id already completed, nothing is written and every outcome is BATCH_DONE; on
        success the batch_id is recorded in the same transaction. Keep batches to about a
        thousand records: nonce claims queue behind a running batch.

        Raises:
            StoreConflictError: a (name, version) is stored with different bytes.
            StoreVersionError: a version is not the stored latest + 1 (1 for a new record).
        """
        batch = tuple(records)  # the caller may change its sequence while the writer works
        if not batch and batch_id is None:
            return []
        return await self._write(lambda: self._put_records_sync(batch, batch_id))

    def _put_records_sync(
        self, batch: tuple[NewRecord, ...], batch_id: str | None
    ) -> list[PutOutcome]:
        conn = self._write_conn
        outcomes: list[PutOutcome] = []
        conflicts: list[str] = []
        problems: list[VersionProblem] = []
        with immediate(conn):
            if batch_id is not None and conn.execute(sql.BATCH_DONE, (batch_id,)).fetchone():
                return [PutOutcome(r.name, r.version, PutStatus.BATCH_DONE, 0) for r in batch]
            # One pass that checks and inserts in order, so a batch may hold several versions
            # of one record; any problem rolls the whole transaction back below.
            for record in batch:
                stored = conn.execute(sql.STORED, (record.name, record.version)).fetchone()
                if stored is not None:
                    if stored[1] == record.envelope:
                        outcomes.append(
                            PutOutcome(record.name, record.version, PutStatus.UNCHANGED, stored[0])
                        )
                    else:
                        conflicts.append(f"{record.name}@{record.version}")
                    continue
                head = conn.execute(sql.HEAD, (record.name,)).fetchone()
                expected = 1 if head is None else head[0] + 1
                if record.version != expected:
                    problems.append(VersionProblem(record.name, record.version, expected))
                    continue
                sequence = self._insert_version(conn, record, head)
                outcomes.append(
                    PutOutcome(record.name, record.version, PutStatus.INSERTED, sequence)
                )
            if conflicts:
                raise StoreConflictError(
                    "already stored with different envelope bytes: " + ", ".join(conflicts),
                    conflicts,
                )
            if problems:
                raise StoreVersionError(problems)
            if batch_id is not None:
                conn.execute(sql.INSERT_BATCH, (batch_id, self._now_us()))
        self._transactions += 1
        self._records_inserted += sum(o.status is PutStatus.INSERTED for o in outcomes)
        return outcomes

    @staticmethod
    def _insert_version(
        conn: sqlite3.Connection, record: NewRecord, head: tuple[Any, ...] | None
    ) -> int:
        """Insert one version, make it the record's head and index who may read it."""
        public = not record.parties
        parties = sorted(set(record.parties))
        cursor = conn.execute(
            sql.INSERT_VERSION,
            (
                record.name,
                record.version,
                record.parent,
                record.issuer,
                record.payload_type,
                record.envelope,
                sql.parties_json(record.parties),
                public,
                record.deleted,
                sql.to_us(record.issued_at),
            ),
        )
        sequence = cursor.lastrowid
        assert sequence is not None  # an INSERT into a rowid table always sets it
        conn.executemany(
            sql.INSERT_CHANGE_PARTY, [(party, record.parent, sequence) for party in parties]
        )
        if head is not None:
            _, head_public, head_deleted, head_parties = head
            if not head_public and not head_deleted:
                conn.executemany(
                    sql.DELETE_RECORD_PARTY,
                    [
                        (party, record.parent, record.name)
                        for party in set(sql.parties_from_json(head_parties))
                    ],
                )
        conn.execute(
            sql.UPSERT_HEAD,
            (record.name, record.parent, record.version, sequence, public, record.deleted),
        )
        if not record.deleted:
            conn.executemany(
                sql.INSERT_RECORD_PARTY, [(party, record.parent, record.name) for party in parties]
            )
        if record.subject:
            conn.execute(sql.INSERT_SUBJECT, (record.subject, record.name))
        return sequence

    async def batch_done(self, batch_id: str) -> bool:
        """True if a put_records batch with this batch_id was committed."""
        return await self._read(
            lambda: self._read_conn.execute(sql.BATCH_DONE, (batch_id,)).fetchone() is not None
        )

    async def get_record(self, name: str, version: int = 0) -> StoredRecord | None:
        """One version of a record (0: the latest), tombstones included; None if not stored.

        No visibility check: the caller checks the reader against parties.
        """
        if version < 0:
            raise ValueError("version must be 0 (latest) or more")

        def read() -> StoredRecord | None:
            if version == 0:
                row = self._read_conn.execute(sql.GET_LATEST, (name,)).fetchone()
            else:
                row = self._read_conn.execute(sql.GET_VERSION, (name, version)).fetchone()
            return None if row is None else sql.record(row)

        return await self._read(read)

    async def latest_version(self, name: str) -> int:
        """The latest stored version of a record; 0 if it is not stored."""

        def read() -> int:
            row = self._read_conn.execute(sql.LATEST_VERSION, (name,)).fetchone()
            return 0 if row is None else int(row[0])

        return await self._read(read)

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
        if limit < 1:
            raise ValueError("limit must be 1 or more")
        params = {
            "parent": parent,
            "reader": reader,
            "after": after_name,
            "since": changed_since,
            "limit": limit,
        }
        return await self._read(
            lambda: [
                sql.record(row) for row in self._read_conn.execute(sql.LIST, params).fetchall()
            ]
        )

    async def changes(
        self, parent: str, *, reader: str, after_sequence: int, limit: int
    ) -> list[StoredRecord]:
        """Every stored version of the collection visible to reader, tombstones included, with
        sequence > after_sequence, in sequence order, at most limit.
        """
        if limit < 1:
            raise ValueError("limit must be 1 or more")
        params = {"parent": parent, "reader": reader, "after": after_sequence, "limit": limit}
        return await self._read(
            lambda: [
                sql.record(row) for row in self._read_conn.execute(sql.CHANGES, params).fetchall()
            ]
        )

    async def head_sequence(self, parent: str) -> int:
        """The sequence of the collection's newest change; 0 if it has none."""

        def read() -> int:
            value = self._read_conn.execute(sql.HEAD_SEQUENCE, (parent,)).fetchone()[0]
            return 0 if value is None else int(value)

        return await self._read(read)

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
        if version < 1:
            raise ValueError(f"record version must be 1 or more, not {version}")
        if not envelope:
            raise ValueError("the envelope is empty")
        merged = bytes(envelope)
        return await self._write(lambda: self._merge_version_sync(name, version, merged))

    def _merge_version_sync(self, name: str, version: int, envelope: bytes) -> StoredRecord | None:
        """Writer thread: delete the version's row and insert it again with the merged envelope
        (AUTOINCREMENT gives it a sequence above every one ever used), then point the rows that
        reference it (its change_parties, and records if it is the latest) at the new sequence.
        O(parties) statements.
        """
        conn = self._write_conn
        with immediate(conn):
            row = conn.execute(sql.MERGE_SOURCE, (name, version)).fetchone()
            if row is None:
                return None
            # MERGE_SOURCE's columns: the sequence, then INSERT_VERSION's values in its order.
            old, stored, parent, parties = row[0], row[6], row[3], row[7]
            values = (*row[1:6], envelope, *row[7:])
            if stored == envelope:
                return sql.record((old, *row[1:8], *row[9:]))
            # Between the delete and the updates the references point at no row: check the
            # foreign keys at COMMIT instead (the pragma switches itself off at COMMIT/ROLLBACK).
            conn.execute("PRAGMA defer_foreign_keys = ON")
            conn.execute(sql.DELETE_VERSION, (old,))
            sequence = conn.execute(sql.INSERT_VERSION, values).lastrowid
            assert sequence is not None  # an INSERT into a rowid table always sets it
            conn.executemany(
                sql.MOVE_CHANGE_PARTY,
                [(sequence, party, parent, old) for party in set(sql.parties_from_json(parties))],
            )
            conn.execute(sql.MOVE_HEAD, (sequence, name, old))
        self._transactions += 1
        self._records_merged += 1
        return sql.record((sequence, *values[:7], *values[8:]))

    async def exchange_changes(
        self, reader: str, *, after_sequence: int, limit: int
    ) -> list[StoredRecord]:
        """The exchange feed of reader: every stored private version (its parties are not
        empty) whose parties include reader, of any collection and issuer, tombstones included,
        with sequence > after_sequence, in sequence order, at most limit.

        Public versions are never in it: every member reads them from the collections' feeds.
        One range of the index change_parties_by_party, so a page costs O(page).
        """
        if limit < 1:
            raise ValueError("limit must be 1 or more")
        params = {"reader": reader, "after": after_sequence, "limit": limit}
        return await self._read(
            lambda: [
                sql.record(row)
                for row in self._read_conn.execute(sql.EXCHANGE_CHANGES, params).fetchall()
            ]
        )

    async def names_about(self, subject: str) -> list[str]:
        """The names of the stored records about subject (put with NewRecord.subject), sorted."""
        return await self._read(
            lambda: [str(r[0]) for r in self._read_conn.execute(sql.NAMES_ABOUT, (subject,))]
        )

    async def exchange_head(self, reader: str) -> int:
        """The sequence of the newest version in reader's exchange feed; 0 if it is empty."""

        def read() -> int:
            value = self._read_conn.execute(sql.EXCHANGE_HEAD, (reader,)).fetchone()[0]
            return 0 if value is None else int(value)

        return await self._read(read)

    # -- manifests, statements, evidence -------------------------------------------------------

    async def put_manifest(self, version: int, envelope: bytes, digest: bytes) -> bool:
        """Keep a verified manifest version; False if it was already held with the same digest.

        Raises:
            StoreConflictError: this version is held with another digest (equivocation).
        """
        if version < 1:
            raise ValueError("manifest versions start at 1")

        def write() -> bool:
            conn = self._write_conn
            with immediate(conn):
                row = conn.execute(
                    "SELECT digest FROM manifests WHERE version = ?", (version,)
                ).fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO manifests (version, envelope, digest) VALUES (?, ?, ?)",
                        (version, envelope, digest),
                    )
            self._transactions += 1
            if row is None:
                return True
            if row[0] == digest:
                return False
            raise StoreConflictError(
                f"manifest version {version} is held with another digest",
                [f"manifests/{version}"],
            )

        return await self._write(write)

    async def get_manifest(self, version: int = 0) -> bytes | None:
        """The envelope bytes of a manifest version (0: the newest held); None if not held."""
        if version < 0:
            raise ValueError("version must be 0 (newest) or more")

        def read() -> bytes | None:
            if version == 0:
                row = self._read_conn.execute(
                    "SELECT envelope FROM manifests ORDER BY version DESC LIMIT 1"
                ).fetchone()
            else:
                row = self._read_conn.execute(
                    "SELECT envelope FROM manifests WHERE version = ?", (version,)
                ).fetchone()
            return None if row is None else bytes(row[0])

        return await self._read(read)

    async def manifest_versions(self) -> list[int]:
        """The manifest versions held, ascending."""
        return await self._read(
            lambda: [
                int(row[0])
                for row in self._read_conn.execute(
                    "SELECT version FROM manifests ORDER BY version"
                ).fetchall()
            ]
        )

    async def put_statement(
        self, kind: str, institution: str, serial_or_key: str, envelope: bytes
    ) -> None:
        """Keep a signed statement (a delegation or revocation); replaces one with the same
        (kind, institution, serial_or_key).
        """

        def write() -> None:
            with immediate(self._write_conn):
                self._write_conn.execute(
                    "INSERT INTO statements (kind, institution, serial_or_key, envelope)"
                    " VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (kind, institution, serial_or_key)"
                    " DO UPDATE SET envelope = excluded.envelope",
                    (kind, institution, serial_or_key, envelope),
                )
            self._transactions += 1

        await self._write(write)

    async def statements(self) -> list[tuple[str, bytes]]:
        """Every statement as (kind, envelope bytes), by kind, institution, serial or key."""
        return await self._read(
            lambda: [
                (str(kind), bytes(envelope))
                for kind, envelope in self._read_conn.execute(
                    "SELECT kind, envelope FROM statements"
                    " ORDER BY kind, institution, serial_or_key"
                ).fetchall()
            ]
        )

    async def put_evidence(self, kind: str, detail: str, envelopes: Sequence[bytes]) -> bool:
        """Keep evidence of misbehaviour; False if the same evidence is already kept."""
        kept = tuple(envelopes)
        fingerprint = _fingerprint(kind, detail, kept)

        def write() -> bool:
            conn = self._write_conn
            with immediate(conn):
                cursor = conn.execute(
                    "INSERT INTO evidence (kind, detail, fingerprint, recorded_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
                    (kind, detail, fingerprint, self._now_us()),
                )
                if cursor.rowcount == 0:
                    return False
                conn.executemany(
                    "INSERT INTO evidence_envelopes (evidence_id, position, envelope)"
                    " VALUES (?, ?, ?)",
                    [(cursor.lastrowid, i, envelope) for i, envelope in enumerate(kept)],
                )
            self._transactions += 1
            return True

        return await self._write(write)

    async def evidence(self) -> list[Evidence]:
        """Every piece of evidence, oldest first."""

        def read() -> list[Evidence]:
            conn = self._read_conn
            envelopes: dict[int, list[bytes]] = {}
            # One read transaction, so the two queries see the same snapshot.
            conn.execute("BEGIN")
            try:
                rows = conn.execute(
                    "SELECT id, kind, detail, recorded_at FROM evidence ORDER BY id"
                ).fetchall()
                for evidence_id, envelope in conn.execute(
                    "SELECT evidence_id, envelope FROM evidence_envelopes"
                    " ORDER BY evidence_id, position"
                ):
                    envelopes.setdefault(evidence_id, []).append(envelope)
            finally:
                conn.execute("COMMIT")
            return [
                Evidence(
                    id=evidence_id,
                    kind=kind,
                    detail=detail,
                    envelopes=tuple(envelopes.get(evidence_id, ())),
                    recorded_at=sql.from_us(recorded_at),
                )
                for evidence_id, kind, detail, recorded_at in rows
            ]

        return await self._read(read)

    # -- access logs ---------------------------------------------------------------------------

    async def append_log(self, log: str, entry: bytes, key: bytes) -> int:
        """Append one entry to a log and return its index, once durable.

        Appends are group-committed with each other and with nonce claims (see _commit_group
        and _log_writer), so many callers share one transaction. If the caller is cancelled
        the append still happens.
        """
        self._check_open()
        if not log:
            raise ValueError("the log name is empty")
        if not entry:
            raise ValueError("the log entry is empty")
        if not key:
            raise ValueError("the entry's key is empty")
        future: asyncio.Future[int] = self._loop.create_future()
        self._enqueue((log, bytes(entry), bytes(key), future))
        self._appends_submitted += 1
        return await future

    async def log_size(self, log: str) -> int:
        """How many entries the log holds (0 for a log never written)."""

        def read() -> int:
            row = self._read_conn.execute(sql.LOG_SIZE, (log,)).fetchone()
            return 0 if row is None else int(row[0])

        return await self._read(read)

    async def log_nodes(
        self, log: str, nodes: Collection[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        """The hashes of perfect subtrees (level, index) of the log's tree.

        One statement of len(nodes) primary-key lookups.

        Raises:
            StoreError: a node is not stored (it lies beyond the log's size).
        """
        wanted = list(nodes)
        if not wanted:
            return {}
        return await self._read(lambda: load_nodes(self._read_conn, log, wanted))

    async def log_entries(self, log: str, start: int, limit: int) -> list[LogEntry]:
        """Up to limit entries of the log from index start, in index order."""
        if start < 0:
            raise ValueError("start must be 0 or more")
        if limit < 1:
            raise ValueError("limit must be 1 or more")
        return await self._read(
            lambda: [
                LogEntry(
                    log=log,
                    index=int(index),
                    entry=bytes(entry),
                    key=None if key is None else bytes(key),
                )
                for index, entry, key in self._read_conn.execute(
                    sql.LOG_ENTRIES, (log, start, limit)
                ).fetchall()
            ]
        )

    async def logs(self) -> list[str]:
        """The logs that hold at least one entry or checkpoint, by name."""
        return await self._read(
            lambda: [str(row[0]) for row in self._read_conn.execute(sql.LOGS).fetchall()]
        )

    async def erase_log_keys(self, log: str, indexes: Collection[int]) -> int:
        """Delete the commitment keys of these entries (erasure); return how many were held.

        The entries, and so the tree, are untouched.
        """
        rows = [(log, int(index)) for index in dict.fromkeys(indexes)]
        if not rows:
            return 0

        def write() -> int:
            with immediate(self._write_conn):
                erased = self._write_conn.executemany(sql.DELETE_LOG_KEY, rows).rowcount
            self._transactions += 1
            return erased

        return await self._write(write)

    async def put_checkpoint(
        self, log: str, size: int, root: bytes, note: str, signed_at: datetime
    ) -> None:
        """Keep a checkpoint the node signed; one already kept with this size and root is left
        as it is.

        Raises:
            StoreConflictError: a checkpoint of this size is kept with another root, or a
                larger one is kept already (checkpoints only grow).
        """
        if size < 0:
            raise ValueError("a checkpoint's size is 0 or more")
        signed_us = sql.to_us(signed_at)
        name = f"{log}/checkpoints/{size}"

        def write() -> None:
            conn = self._write_conn
            with immediate(conn):
                row = conn.execute(sql.CHECKPOINT_ROOT, (log, size)).fetchone()
                if row is not None:
                    if bytes(row[0]) == root:
                        return  # kept already: a retry
                    raise StoreConflictError(
                        f"a checkpoint of {log!r} at size {size} is kept with another root",
                        [name],
                    )
                (largest,) = conn.execute(sql.LARGEST_CHECKPOINT_SIZE, (log,)).fetchone()
                if largest is not None and largest > size:
                    raise StoreConflictError(
                        f"a larger checkpoint of {log!r} (size {largest}) is kept: "
                        f"checkpoints only grow",
                        [name],
                    )
                conn.execute(sql.INSERT_CHECKPOINT, (log, size, root, note, signed_us))
                conn.execute(sql.ENSURE_LOG_HEAD, (log,))
            self._transactions += 1

        await self._write(write)

    async def checkpoints(self, log: str) -> list[StoredCheckpoint]:
        """Every checkpoint of the log, by size, with its cosignatures."""

        def read() -> list[StoredCheckpoint]:
            conn = self._read_conn
            lines: dict[int, list[str]] = {}
            # One read transaction, so the two queries see the same snapshot.
            conn.execute("BEGIN")
            try:
                rows = conn.execute(sql.CHECKPOINTS, (log,)).fetchall()
                for size, line in conn.execute(sql.COSIGNATURES, (log,)):
                    lines.setdefault(size, []).append(line)
            finally:
                conn.execute("COMMIT")
            return [_checkpoint(log, row, lines.get(row[0], ())) for row in rows]

        return await self._read(read)

    async def latest_checkpoint(self, log: str) -> StoredCheckpoint | None:
        """The largest checkpoint of the log, with its cosignatures; None if none."""

        def read() -> StoredCheckpoint | None:
            conn = self._read_conn
            conn.execute("BEGIN")
            try:
                row = conn.execute(sql.LATEST_CHECKPOINT, (log,)).fetchone()
                if row is None:
                    return None
                lines = [line for (line,) in conn.execute(sql.COSIGNATURES_OF, (log, row[0]))]
            finally:
                conn.execute("COMMIT")
            return _checkpoint(log, row, lines)

        return await self._read(read)

    async def add_cosignature(self, log: str, size: int, witness: str, line: str) -> bool:
        """Keep a witness's cosignature line of the checkpoint of this size (replacing that
        witness's earlier line for it); False if no such checkpoint is kept.

        A replaced line counts as received now; the same line again changes nothing.
        """

        def write() -> bool:
            conn = self._write_conn
            with immediate(conn):
                if conn.execute(sql.CHECKPOINT_ROOT, (log, size)).fetchone() is None:
                    return False
                conn.execute(sql.UPSERT_COSIGNATURE, (log, size, witness, line, self._now_us()))
            self._transactions += 1
            return True

        return await self._write(write)

    async def put_witnessed(self, origin: str, size: int, note: str) -> None:
        """Remember the newest checkpoint of another log this node verified (as a witness)."""
        if size < 0:
            raise ValueError("a checkpoint's size is 0 or more")

        def write() -> None:
            with immediate(self._write_conn):
                self._write_conn.execute(sql.UPSERT_WITNESSED, (origin, size, note, self._now_us()))
            self._transactions += 1

        await self._write(write)

    async def witnessed(self, origin: str) -> tuple[int, str] | None:
        """The (size, note) last remembered by put_witnessed for origin; None if none."""

        def read() -> tuple[int, str] | None:
            row = self._read_conn.execute(sql.WITNESSED, (origin,)).fetchone()
            return None if row is None else (int(row[0]), str(row[1]))

        return await self._read(read)

    # -- outbox --------------------------------------------------------------------------------

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
        if not recipient:
            raise ValueError("the recipient is empty")
        if not topic:
            raise ValueError("the topic is empty")
        data = bytes(payload)

        def write() -> int:
            conn = self._write_conn
            now = self._now_us()
            created, attempts, last_error = now, 0, None
            with immediate(conn):
                if coalesce:
                    row = conn.execute(sql.PENDING_OUTBOX_ITEM, (recipient, topic)).fetchone()
                    if row is not None:
                        # Replaced under a new id rather than updated: see the docstring.
                        old, created, attempts, last_error = row
                        conn.execute(sql.DELETE_OUTBOX_ITEM, (old,))
                cursor = conn.execute(
                    sql.INSERT_OUTBOX_ITEM,
                    (recipient, topic, data, created, attempts, now, last_error),
                )
            self._transactions += 1
            item_id = cursor.lastrowid
            assert item_id is not None  # an INSERT into a rowid table always sets it
            return item_id

        return await self._write(write)

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Up to limit pending items with next_attempt_at <= now, the longest due first (by
        next_attempt_at, then id; items never retried come in the order enqueued).
        """
        if limit < 1:
            raise ValueError("limit must be 1 or more")
        now_us = sql.to_us(now)
        return await self._read(
            lambda: [
                sql.outbox_item(row)
                for row in self._read_conn.execute(sql.DUE_OUTBOX, (now_us, limit)).fetchall()
            ]
        )

    async def outbox_delivered(self, item_id: int) -> None:
        """Mark a pending item delivered now; an unknown or delivered item is left as it is."""

        def write() -> None:
            with immediate(self._write_conn):
                self._write_conn.execute(sql.OUTBOX_DELIVERED, (self._now_us(), item_id))
            self._transactions += 1

        await self._write(write)

    async def outbox_failed(self, item_id: int, *, next_attempt_at: datetime, error: str) -> None:
        """Count a failed delivery of a pending item: attempts + 1, due again at
        next_attempt_at, last_error = error. An unknown or delivered item is left as it is.
        """
        next_us = sql.to_us(next_attempt_at)

        def write() -> None:
            with immediate(self._write_conn):
                self._write_conn.execute(sql.OUTBOX_FAILED, (next_us, error, item_id))
            self._transactions += 1

        await self._write(write)

    async def outbox_pending(self) -> int:
        """How many items of the outbox are not delivered yet, due or not."""
        return await self._read(
            lambda: int(self._read_conn.execute(sql.OUTBOX_PENDING).fetchone()[0])
        )

    async def purge_outbox(self, delivered_before: datetime) -> int:
        """Forget the items delivered before delivered_before; return how many."""
        before_us = sql.to_us(delivered_before)

        def write() -> int:
            with immediate(self._write_conn):
                purged = self._write_conn.execute(sql.PURGE_OUTBOX, (before_us,)).rowcount
            self._transactions += 1
            return purged

        return await self._write(write)

    # -- settings and maintenance --------------------------------------------------------------

    async def get_setting(self, key: str) -> bytes | None:
        """A node setting (e.g. its page-token secret); None if unset."""

        def read() -> bytes | None:
            row = self._read_conn.execute(
                "SELECT value FROM settings WHERE key = ?", (key,)
            ).fetchone()
            return None if row is None else bytes(row[0])

        return await self._read(read)

    async def set_setting(self, key: str, value: bytes) -> None:
        """Set a node setting, replacing any earlier value."""

        def write() -> None:
            with immediate(self._write_conn):
                self._write_conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            self._transactions += 1

        await self._write(write)

    async def change_marker(self) -> int:
        """A number that changes whenever any connection (any process) committed a write.

        PRAGMA data_version of the reader's connection: callers caching reads poll it cheaply.
        """

        def read() -> int:
            (version,) = self._read_conn.execute("PRAGMA data_version").fetchone()
            return int(version)

        return await self._read(read)

    async def integrity_check(self) -> str:
        """PRAGMA integrity_check and foreign_key_check: "ok", else the problems, one per line.

        Runs on the reader's connection, so writes (nonce claims) go on meanwhile.
        """

        def read() -> str:
            conn = self._read_conn
            problems = [
                str(row[0])
                for row in conn.execute("PRAGMA integrity_check").fetchall()
                if row[0] != "ok"
            ]
            problems += [
                f"foreign key: {table} row {rowid} has no {parent} row"
                for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check")
            ]
            return "\n".join(problems) or "ok"

        return await self._read(read)
