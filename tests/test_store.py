"""The node's SQLite store: schema, nonces and group commit, records, feeds, crash safety."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

import sseaun.node.store as store_api
from sseaun.node.store import (
    SCHEMA_VERSION,
    NewRecord,
    PutStatus,
    SqliteStore,
    Store,
    StoreClosedError,
    StoreConflictError,
    StoredRecord,
    StoreError,
    StoreVersionError,
    VersionProblem,
)
from sseaun.node.store import _schema as store_schema
from sseaun.node.store import _sql as store_sql
from sseaun.node.store._schema import APPLICATION_ID, migrate
from sseaun.v1.envelope_pb2 import Envelope, Signature

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
COURSES = "institutions/ynu.edu.cn/courses"
OTHER = "institutions/chula.ac.th/courses"
COURSE_TYPE = "application/vnd.sseaun.course.v1+protobuf"
YNU, CHULA, UI, NUS = "ynu.edu.cn", "chula.ac.th", "ui.ac.id", "nus.edu.sg"


def envelope(name: str, version: int, note: str = "") -> bytes:
    """Real serialized Envelope bytes, distinct per (name, version, note)."""
    return Envelope(
        payload=f"{name}@{version}{note}".encode(),
        payload_type=COURSE_TYPE,
        signatures=[Signature(sig=bytes(64), keyid="k1")],
    ).SerializeToString()


def rec(
    code: str,
    version: int = 1,
    *,
    parent: str = COURSES,
    parties: tuple[str, ...] = (),
    deleted: bool = False,
    note: str = "",
) -> NewRecord:
    name = f"{parent}/{code}"
    return NewRecord(
        name=name,
        parent=parent,
        version=version,
        issuer=YNU,
        payload_type=COURSE_TYPE,
        envelope=envelope(name, version, note),
        parties=parties,
        deleted=deleted,
        issued_at=T0 + timedelta(minutes=version, microseconds=7),
    )


def codes(records: list[StoredRecord]) -> list[str]:
    return [r.name.rpartition("/")[2] for r in records]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


def count_rows(path: Path, table: str) -> int:
    conn = read_only(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "node.db")
    try:
        yield opened
    finally:
        await opened.close()


# -- the interface ----------------------------------------------------------------------------


def test_sqlite_store_has_the_store_signatures() -> None:
    engine: type[Store] = SqliteStore  # mypy checks the Protocol structurally here
    members = [n for n, v in vars(Store).items() if callable(v) and not n.startswith("_")]
    assert "claim_nonce" in members
    for name in members:
        assert inspect.signature(getattr(engine, name)) == inspect.signature(
            getattr(Store, name)
        ), name


def test_public_names_exist_and_are_documented() -> None:
    for name in store_api.__all__:
        obj = getattr(store_api, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name
    assert not [n for n in store_api.__all__ if n.startswith("_")]


def test_new_record_refuses_inconsistent_columns() -> None:
    good = rec("CS101")
    with pytest.raises(ValueError, match="not in collection"):
        replace(good, parent=OTHER)
    with pytest.raises(ValueError, match="not in collection"):
        replace(good, name=COURSES + "/")
    with pytest.raises(ValueError, match="version"):
        replace(good, version=0)
    with pytest.raises(ValueError, match="aware"):
        replace(good, issued_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="party"):
        replace(good, parties=(YNU, ""))


# -- schema -----------------------------------------------------------------------------------


async def test_open_creates_the_schema_and_reopening_migrates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "node.db"
    async with await SqliteStore.open(path) as store:
        await store.set_setting("page-token-secret", b"s3cret")
    db = Database(path)
    assert {
        "record_versions",
        "records",
        "change_parties",
        "record_parties",
        "import_batches",
        "nonces",
        "manifests",
        "statements",
        "evidence",
        "evidence_envelopes",
        "settings",
    } <= set(db.table_names())
    assert db.journal_mode == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    schema = db.schema
    db.close()
    assert os.stat(path).st_mode & 0o777 == 0o600  # student data: owner only

    for _ in range(2):
        async with await SqliteStore.open(path) as store:
            assert await store.get_setting("page-token-secret") == b"s3cret"
            assert await store.integrity_check() == "ok"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(conn) == SCHEMA_VERSION  # running the migrations again is a no-op
    finally:
        conn.close()
    db = Database(path)
    assert db.schema == schema
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


async def test_a_new_migration_runs_once_and_a_failing_one_leaves_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "node.db"
    async with await SqliteStore.open(path) as store:
        await store.set_setting("kept", b"1")
    runs: list[int] = []

    def broken(db: Database) -> None:
        db["settings"].add_column("half_done", str)  # type: ignore[union-attr]
        raise RuntimeError("migration bug")

    def add_note(db: Database) -> None:
        runs.append(1)
        db["settings"].add_column("note", str)  # type: ignore[union-attr]

    monkeypatch.setattr(store_schema, "MIGRATIONS", (*store_schema.MIGRATIONS, broken))
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(RuntimeError, match="migration bug"):
        await SqliteStore.open(path)
    db = Database(path)
    assert "half_done" not in db["settings"].columns_dict  # rolled back with its version
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()

    monkeypatch.setattr(store_schema, "MIGRATIONS", (*store_schema.MIGRATIONS[:-1], add_note))
    for _ in range(2):
        async with await SqliteStore.open(path) as store:
            assert await store.get_setting("kept") == b"1"
    assert runs == [1]
    db = Database(path)
    assert "note" in db["settings"].columns_dict
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    db.close()


async def test_open_refuses_a_newer_schema_and_foreign_files(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    async with await SqliteStore.open(newer):
        pass
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        await SqliteStore.open(newer)

    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(StoreError, match="not an SSEAUN store"):
        await SqliteStore.open(foreign)


async def test_closed_store_refuses_calls_and_close_is_idempotent(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "node.db")
    await asyncio.gather(store.close(), store.close())
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.claim_nonce(b"k" * 32, T0)
    with pytest.raises(StoreClosedError):
        await store.get_record(COURSES + "/CS101")
    with pytest.raises(StoreClosedError):
        await store.put_records([rec("CS101")])


async def test_query_plans_use_index_ranges_without_sorting(
    store: SqliteStore, tmp_path: Path
) -> None:
    await store.put_records([rec("A"), rec("B", parties=(YNU, CHULA))])
    conn = read_only(tmp_path / "node.db")
    try:
        for sql, params in (
            (
                store_sql.LIST,
                {"parent": COURSES, "reader": CHULA, "after": "", "since": 0, "limit": 5},
            ),
            (store_sql.CHANGES, {"parent": COURSES, "reader": CHULA, "after": 0, "limit": 5}),
        ):
            plan = " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert "MERGE (UNION ALL)" in plan
            assert "TEMP B-TREE" not in plan, plan
            assert "SCAN" not in plan, plan
    finally:
        conn.close()


# -- nonces -----------------------------------------------------------------------------------


async def test_claim_nonce_is_true_once_then_false(store: SqliteStore) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    assert await store.claim_nonce(b"a" * 32, expires) is True
    assert await store.claim_nonce(b"a" * 32, expires) is False
    assert await store.claim_nonce(b"b" * 32, expires) is True
    stats = store.statistics()
    assert (stats.nonces_claimed, stats.nonces_refused) == (2, 1)
    assert stats.queued_writes == 0


async def test_concurrent_claims_give_exactly_one_true_per_key(store: SqliteStore) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    keys = [f"key-{i % 17}".encode() for i in range(100)]
    results = await asyncio.gather(*(store.claim_nonce(k, expires) for k in keys))
    wins = Counter(k for k, ok in zip(keys, results, strict=True) if ok)
    assert wins == dict.fromkeys(set(keys), 1)
    assert store.statistics().nonces_claimed == 17
    assert store.statistics().nonces_refused == 83


async def test_claims_queued_together_commit_in_one_transaction(store: SqliteStore) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    gate = threading.Event()
    # White box: hold the writer thread so all claims queue before the group commit runs.
    store._writer.submit(gate.wait, 10)
    before = store.statistics()
    try:
        claims = [asyncio.create_task(store.claim_nonce(b"%03d" % i, expires)) for i in range(100)]
        while store.statistics().pending_nonce_claims < 100:
            await asyncio.sleep(0)
        assert store.statistics().queued_writes >= 100
    finally:
        gate.set()
    assert all(await asyncio.gather(*claims))
    after = store.statistics()
    assert after.nonce_batches_committed - before.nonce_batches_committed == 1
    assert after.transactions_committed - before.transactions_committed == 1
    assert after.pending_nonce_claims == 0


async def test_a_cancelled_claim_still_stands(store: SqliteStore) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    first = asyncio.create_task(store.claim_nonce(b"c" * 32, expires))
    await asyncio.sleep(0)  # queued for the writer
    first.cancel()
    assert await store.claim_nonce(b"c" * 32, expires) is False
    assert first.cancelled()


async def test_a_failed_group_commit_answers_every_claim_with_an_error(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    monkeypatch.setattr(store_sql, "CLAIM", "INSERT INTO no_such_table VALUES (?, ?, ?)")
    results = await asyncio.gather(
        *(store.claim_nonce(b"%d" % i, expires) for i in range(10)), return_exceptions=True
    )
    assert all(isinstance(r, StoreError) for r in results)
    assert isinstance(results[0], StoreError)
    assert isinstance(results[0].__cause__, sqlite3.OperationalError)
    monkeypatch.undo()
    assert await store.claim_nonce(b"0", expires) is True  # nothing of the batch was stored
    assert store.statistics().pending_nonce_claims == 0


async def test_claimed_nonces_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    expires = datetime.now(UTC) + timedelta(minutes=10)
    async with await SqliteStore.open(path) as store:
        assert await store.claim_nonce(b"n" * 32, expires)
        pending = asyncio.ensure_future(store.claim_nonce(b"m" * 32, expires))
        await asyncio.sleep(0)  # queued, not committed yet
    assert await pending is True  # close() committed the claim still queued
    async with await SqliteStore.open(path) as store:
        assert await store.claim_nonce(b"n" * 32, expires) is False
        assert await store.claim_nonce(b"m" * 32, expires) is False
        assert await store.claim_nonce(b"o" * 32, expires) is True


async def test_expired_nonces_are_purged_so_the_table_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    clock = FakeClock(T0)
    async with await SqliteStore.open(path, clock=clock, purge_interval=1.0) as store:
        for round_ in range(6):
            keys = [f"{round_}-{i}".encode() for i in range(50)]
            expires = clock.now + timedelta(seconds=10)
            assert all(await asyncio.gather(*(store.claim_nonce(k, expires) for k in keys)))
            # The first batch of each round purged the previous rounds' expired keys.
            assert count_rows(path, "nonces") == 50
            clock.now += timedelta(minutes=1)
        # An expired key may be claimed again; a claim that has already expired is refused.
        assert await store.claim_nonce(b"5-0", clock.now + timedelta(seconds=10)) is True
        assert await store.claim_nonce(b"late", clock.now - timedelta(seconds=1)) is False
        assert await store.claim_nonce(b"late", clock.now) is False
        assert count_rows(path, "nonces") == 1  # that claim's batch purged round 5
        assert await store.purge_expired_nonces(clock.now + timedelta(hours=1)) == 1
        assert count_rows(path, "nonces") == 0


async def test_nonces_expired_while_closed_are_purged_on_open(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    clock = FakeClock(T0)
    async with await SqliteStore.open(path, clock=clock) as store:
        keys = [b"%d" % i for i in range(20)]
        await asyncio.gather(*(store.claim_nonce(k, T0 + timedelta(seconds=5)) for k in keys))
    assert count_rows(path, "nonces") == 20
    clock.now += timedelta(minutes=5)
    async with await SqliteStore.open(path, clock=clock):
        assert count_rows(path, "nonces") == 0


async def test_nonce_linger_collects_a_larger_batch(tmp_path: Path) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    async with await SqliteStore.open(tmp_path / "node.db", nonce_linger=0.002) as store:
        results = await asyncio.gather(*(store.claim_nonce(b"%d" % i, expires) for i in range(50)))
        assert all(results)
        assert store.statistics().nonce_batches_committed < 50


# -- records ----------------------------------------------------------------------------------


async def test_put_and_get_round_trip_the_exact_bytes(store: SqliteStore) -> None:
    record = rec("CS101", parties=(CHULA, YNU))
    odd = replace(record, envelope=record.envelope + bytes(range(256)))  # opaque to the store
    [outcome] = await store.put_records([odd])
    assert outcome.status is PutStatus.INSERTED
    assert outcome.sequence >= 1
    got = await store.get_record(odd.name)
    assert got == StoredRecord(
        name=odd.name,
        parent=COURSES,
        version=1,
        issuer=YNU,
        payload_type=COURSE_TYPE,
        envelope=odd.envelope,
        parties=(CHULA, YNU),
        deleted=False,
        issued_at=odd.issued_at,
        sequence=outcome.sequence,
    )
    assert await store.get_record(odd.name, 1) == got
    assert await store.get_record(odd.name, 2) is None
    assert await store.get_record(COURSES + "/nope") is None
    assert await store.latest_version(odd.name) == 1
    assert await store.latest_version(COURSES + "/nope") == 0


async def test_concurrent_reads_each_get_their_own_answer(store: SqliteStore) -> None:
    await store.put_records([rec(f"R{i:03d}") for i in range(200)])

    async def fail() -> None:
        await store._read(lambda: 1 // 0)  # white box: a read that raises on the reader thread

    results = await asyncio.gather(
        *(store.get_record(f"{COURSES}/R{i:03d}") for i in range(200)),
        fail(),
        store.latest_version(f"{COURSES}/R007"),
        return_exceptions=True,
    )
    names = [r.name for r in results[:200] if isinstance(r, StoredRecord)]
    assert names == [f"{COURSES}/R{i:03d}" for i in range(200)]
    assert isinstance(results[200], ZeroDivisionError)
    assert results[201] == 1


async def test_versions_must_step_by_one(store: SqliteStore) -> None:
    with pytest.raises(StoreVersionError) as caught:
        await store.put_records([rec("A", 2)])
    assert caught.value.problems == (VersionProblem(COURSES + "/A", 2, 1),)

    outcomes = await store.put_records([rec("A", 1), rec("A", 2), rec("A", 3)])
    assert [o.version for o in outcomes] == [1, 2, 3]
    assert [o.sequence for o in outcomes] == sorted({o.sequence for o in outcomes})
    assert (await store.get_record(COURSES + "/A")) is not None

    with pytest.raises(StoreVersionError, match="A@5 \\(expected 4\\)"):
        await store.put_records([rec("B", 1), rec("A", 5)])
    assert await store.get_record(COURSES + "/B") is None  # the whole batch was rejected
    assert await store.latest_version(COURSES + "/A") == 3


async def test_reputting_the_same_bytes_changes_nothing(store: SqliteStore) -> None:
    [first] = await store.put_records([rec("A")])
    await store.put_records([rec("A", 2)])
    head = await store.head_sequence(COURSES)
    again = await store.put_records([rec("A", 1), rec("A", 2), rec("A", 3)])
    assert [o.status for o in again] == [
        PutStatus.UNCHANGED,
        PutStatus.UNCHANGED,
        PutStatus.INSERTED,
    ]
    assert again[0].sequence == first.sequence
    changes = await store.changes(COURSES, reader=NUS, after_sequence=0, limit=10)
    assert [(c.version, c.sequence) for c in changes] == [
        (1, first.sequence),
        (2, again[1].sequence),
        (3, again[2].sequence),
    ]
    assert again[1].sequence == head
    assert store.statistics().records_inserted == 3


async def test_different_bytes_for_a_stored_version_reject_the_batch(store: SqliteStore) -> None:
    await store.put_records([rec("A"), rec("B")])
    with pytest.raises(StoreConflictError) as caught:
        await store.put_records(
            [rec("C"), rec("A", note="re-signed"), rec("B", note="x")], batch_id="b1"
        )
    assert caught.value.names == (COURSES + "/A@1", COURSES + "/B@1")
    assert await store.get_record(COURSES + "/C") is None
    stored = await store.get_record(COURSES + "/A")
    assert stored is not None
    assert stored.envelope == rec("A").envelope
    assert await store.batch_done("b1") is False  # rolled back with the batch


async def test_a_completed_import_batch_is_a_no_op_when_rerun(store: SqliteStore) -> None:
    batch = [rec("A"), rec("B")]
    assert await store.batch_done("import-2026-11-01#1") is False
    first = await store.put_records(batch, batch_id="import-2026-11-01#1")
    assert {o.status for o in first} == {PutStatus.INSERTED}
    assert await store.batch_done("import-2026-11-01#1") is True
    # After a crash the importer re-signs the same rows (new bytes) and puts them again.
    resigned = [replace(r, envelope=r.envelope + b"\x00") for r in batch]
    again = await store.put_records(resigned, batch_id="import-2026-11-01#1")
    assert [(o.name, o.status, o.sequence) for o in again] == [
        (r.name, PutStatus.BATCH_DONE, 0) for r in batch
    ]
    assert [
        r.envelope for r in await store.changes(COURSES, reader=NUS, after_sequence=0, limit=9)
    ] == [r.envelope for r in batch]
    assert await store.put_records([], batch_id="empty") == []
    assert await store.batch_done("empty") is True


async def test_list_shows_each_reader_only_what_it_may_read(store: SqliteStore) -> None:
    await store.put_records(
        [
            rec("C1"),
            rec("C2"),
            rec("C3", parties=(YNU, CHULA)),
            rec("C4", parties=(YNU, UI)),
            rec("C5", deleted=True),
            rec("X1", parent=OTHER),
        ]
    )

    async def listed(reader: str, after: str = "", limit: int = 100) -> list[str]:
        page = await store.list_records(COURSES, reader=reader, after_name=after, limit=limit)
        return codes(page)

    assert await listed(CHULA) == ["C1", "C2", "C3"]
    assert await listed(UI) == ["C1", "C2", "C4"]
    assert await listed(YNU) == ["C1", "C2", "C3", "C4"]
    assert await listed(NUS) == ["C1", "C2"]
    # Pages by name: each next page starts after the last name of the previous one.
    assert await listed(YNU, limit=3) == ["C1", "C2", "C3"]
    assert await listed(YNU, after=COURSES + "/C3", limit=3) == ["C4"]
    assert await listed(YNU, after=COURSES + "/C4", limit=3) == []
    assert await listed(CHULA, after=COURSES + "/C1", limit=1) == ["C2"]

    # Visibility follows the latest version: C3 loses CHULA, C4 becomes public.
    await store.put_records([rec("C3", 2, parties=(YNU,)), rec("C4", 2)])
    assert await listed(CHULA) == ["C1", "C2", "C4"]
    assert await listed(UI) == ["C1", "C2", "C4"]
    assert await listed(YNU) == ["C1", "C2", "C3", "C4"]
    latest = await store.list_records(COURSES, reader=YNU, limit=10)
    assert [r.version for r in latest] == [1, 1, 2, 2]


async def test_list_changed_since_keeps_records_changed_at_or_after(store: SqliteStore) -> None:
    await store.put_records([rec("A"), rec("B"), rec("C")])
    [update] = await store.put_records([rec("B", 2)])
    await store.put_records([rec("D")])
    page = await store.list_records(COURSES, reader=NUS, limit=10, changed_since=update.sequence)
    assert [(r.name.rpartition("/")[2], r.version) for r in page] == [("B", 2), ("D", 1)]


async def test_changes_come_in_sequence_order_and_resume_exactly_once(store: SqliteStore) -> None:
    await store.put_records([rec("A"), rec("P", parties=(YNU, CHULA)), rec("X1", parent=OTHER)])
    await store.put_records([rec("Q", parties=(YNU, UI)), rec("A", 2)])
    await store.put_records([rec("P", 2, parties=(YNU,)), rec("B"), rec("X1", 2, parent=OTHER)])
    await store.put_records([rec("A", 3, deleted=True), rec("P", 3, parties=(CHULA,))])

    seen: list[StoredRecord] = []
    cursor = 0
    while page := await store.changes(COURSES, reader=CHULA, after_sequence=cursor, limit=2):
        assert len(page) <= 2
        seen += page
        cursor = page[-1].sequence
    assert [(r.name.rpartition("/")[2], r.version) for r in seen] == [
        ("A", 1),
        ("P", 1),
        ("A", 2),
        ("B", 1),
        ("A", 3),
        ("P", 3),
    ]
    sequences = [r.sequence for r in seen]
    assert sequences == sorted(set(sequences))
    assert {r.parent for r in seen} == {COURSES}
    ynu = await store.changes(COURSES, reader=YNU, after_sequence=0, limit=100)
    assert len(ynu) == 7  # all 8 changes but P@3, whose only party is CHULA
    assert await store.head_sequence(COURSES) == seen[-1].sequence
    assert await store.head_sequence(OTHER) > 0
    assert await store.head_sequence("institutions/none/courses") == 0


async def test_tombstones_are_in_the_feed_but_not_in_the_list(store: SqliteStore) -> None:
    await store.put_records([rec("A"), rec("B", parties=(YNU, CHULA))])
    await store.put_records(
        [rec("A", 2, deleted=True), rec("B", 2, parties=(YNU, CHULA), deleted=True)]
    )
    assert await store.list_records(COURSES, reader=CHULA, limit=10) == []
    feed = await store.changes(COURSES, reader=CHULA, after_sequence=0, limit=10)
    assert [(r.version, r.deleted) for r in feed] == [(1, False), (1, False), (2, True), (2, True)]
    tombstone = await store.get_record(COURSES + "/B")
    assert tombstone is not None
    assert tombstone.deleted
    assert tombstone.version == 2
    await store.put_records([rec("B", 3, parties=(YNU, CHULA))])  # re-issued after withdrawal
    assert codes(await store.list_records(COURSES, reader=CHULA, limit=10)) == ["B"]


# -- manifests, statements, evidence, settings ------------------------------------------------


async def test_manifests_round_trip_and_equivocation_is_refused(store: SqliteStore) -> None:
    assert await store.get_manifest() is None
    assert await store.put_manifest(1, b"m1", b"d1") is True
    assert await store.put_manifest(2, b"m2", b"d2") is True
    assert await store.put_manifest(2, b"m2", b"d2") is False
    with pytest.raises(StoreConflictError) as caught:
        await store.put_manifest(2, b"m2-other", b"d2-other")
    assert caught.value.names == ("manifests/2",)
    assert await store.get_manifest() == b"m2"
    assert await store.get_manifest(1) == b"m1"
    assert await store.get_manifest(3) is None
    assert await store.manifest_versions() == [1, 2]


async def test_statements_evidence_and_settings_round_trip(store: SqliteStore) -> None:
    await store.put_statement("delegation", YNU, "7", b"del-7")
    await store.put_statement("revocation", CHULA, "key-abc", b"rev")
    await store.put_statement("delegation", CHULA, "1", b"del-1")
    await store.put_statement("delegation", YNU, "7", b"del-7-refreshed")
    assert await store.statements() == [
        ("delegation", b"del-1"),
        ("delegation", b"del-7-refreshed"),
        ("revocation", b"rev"),
    ]

    assert await store.put_evidence("manifest-equivocation", "version 4 twice", [b"a", b"b"])
    assert not await store.put_evidence("manifest-equivocation", "version 4 twice", [b"a", b"b"])
    assert await store.put_evidence("manifest-equivocation", "version 4 twice", [b"ab"])
    kept = await store.evidence()
    assert [(e.kind, e.envelopes) for e in kept] == [
        ("manifest-equivocation", (b"a", b"b")),
        ("manifest-equivocation", (b"ab",)),
    ]
    assert kept[0].id < kept[1].id
    assert kept[0].recorded_at.tzinfo is not None

    assert await store.get_setting("page-token-secret") is None
    await store.set_setting("page-token-secret", b"\x00" * 32)
    await store.set_setting("page-token-secret", b"\x01" * 32)
    assert await store.get_setting("page-token-secret") == b"\x01" * 32
    assert await store.integrity_check() == "ok"


# -- the event loop and crashes ---------------------------------------------------------------


async def test_the_event_loop_runs_while_a_big_batch_commits(store: SqliteStore) -> None:
    loop = asyncio.get_running_loop()
    events: list[str] = []
    ticks = 0
    batch = [rec(f"BIG{i:05d}", note="x" * 1000) for i in range(5000)]

    async def put() -> None:
        assert len(await store.put_records(batch)) == 5000
        events.append("put done")

    putting = asyncio.create_task(put())
    loop.call_later(0.001, events.append, "timer")
    while not putting.done():
        ticks += 1
        await asyncio.sleep(0)
    await putting
    # Ordering only, never a duration: the timer fired while the writer thread worked.
    assert events == ["timer", "put done"]
    assert ticks > 1


def crash_writer(path: str) -> None:
    """Child process of the crash test: write batches forever, printing each acknowledgement."""

    async def run() -> None:
        store = await SqliteStore.open(Path(path))
        expires = datetime.now(UTC) + timedelta(hours=1)
        for batch in range(1_000_000):
            records = [rec(f"B{batch:05d}-{i:03d}", note="x" * 2000) for i in range(CRASH_BATCH)]
            outcomes = await store.put_records(records, batch_id=f"batch-{batch}")
            assert await store.claim_nonce(b"nonce-%d" % batch, expires)
            print(batch, outcomes[-1].sequence, flush=True)

    asyncio.run(run())


CRASH_BATCH = 200
CRASH_ACKS = 20


def test_sigkill_mid_batch_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from tests.test_store import crash_writer; crash_writer(sys.argv[1])",
            str(path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[tuple[int, int]] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            batch, sequence = map(int, line.split())
            acked.append((batch, sequence))
            if len(acked) == CRASH_ACKS:
                child.send_signal(signal.SIGKILL)  # while it writes the next batch
                break
    finally:
        child.kill()
        _, stderr = child.communicate(timeout=30)
    assert len(acked) == CRASH_ACKS, stderr
    assert child.returncode == -signal.SIGKILL

    async def check() -> None:
        async with await SqliteStore.open(path) as store:
            assert await store.integrity_check() == "ok"
            parent = COURSES
            stored = await store.changes(parent, reader=NUS, after_sequence=0, limit=100_000)
            per_batch = Counter(r.name.rpartition("/")[2].split("-")[0] for r in stored)
            # All or nothing: every batch present is whole, and no batch is missing before it.
            assert set(per_batch.values()) == {CRASH_BATCH}
            assert sorted(per_batch) == [f"B{b:05d}" for b in range(len(per_batch))]
            assert len(per_batch) >= CRASH_ACKS
            for batch, sequence in acked:
                assert await store.batch_done(f"batch-{batch}")
                record = await store.get_record(f"{parent}/B{batch:05d}-{CRASH_BATCH - 1:03d}")
                assert record is not None
                assert record.sequence == sequence
                assert await store.claim_nonce(b"nonce-%d" % batch, T0.replace(year=2100)) is False

    asyncio.run(check())
