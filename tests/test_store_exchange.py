"""The store's part of replication between nodes: merged envelopes (spec LC-13) moving to the end
of the feeds, the exchange feed of each partner across collections and namespaces, copies of
other institutions' private records, the outbox, and the v2 to v3 migration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from sseaun.node.store import (
    SCHEMA_VERSION,
    NewRecord,
    OutboxItem,
    PutStatus,
    SqliteStore,
    StoreConflictError,
    StoredRecord,
    StoreError,
)
from sseaun.node.store import _schema as store_schema
from sseaun.node.store import _sql as store_sql
from sseaun.v1.envelope_pb2 import Envelope, Signature

T0 = datetime(2026, 11, 1, tzinfo=UTC)
YNU, CHULA, UI, NUS = "ynu.edu.cn", "chula.ac.th", "ui.ac.id", "nus.edu.sg"
AGREEMENTS = f"institutions/{YNU}/agreements"
NOMINATIONS = f"institutions/{YNU}/nominations"
COURSES = f"institutions/{YNU}/courses"
CHULA_LAS = f"institutions/{CHULA}/learning-agreements"
CHULA_DECISIONS = f"institutions/{CHULA}/decisions"
UI_TRANSCRIPTS = f"institutions/{UI}/transcripts"
RECORD_TYPE = "application/vnd.sseaun.record.v1+protobuf"


def envelope(name: str, version: int, *signers: str, note: str = "") -> bytes:
    """Real serialized Envelope bytes: one payload per (name, version, note), one signature per
    signer (a merged copy has the same payload and more signatures).
    """
    return Envelope(
        payload=f"{name}@{version}{note}".encode(),
        payload_type=RECORD_TYPE,
        signatures=[
            Signature(sig=bytes([i]) * 64, keyid=signer) for i, signer in enumerate(signers)
        ],
    ).SerializeToString()


def rec(
    parent: str,
    code: str,
    version: int = 1,
    *,
    parties: tuple[str, ...] = (),
    deleted: bool = False,
    note: str = "",
) -> NewRecord:
    """A version issued (and signed) by the institution whose namespace parent is in."""
    name = f"{parent}/{code}"
    issuer = parent.split("/")[1]
    return NewRecord(
        name=name,
        parent=parent,
        version=version,
        issuer=issuer,
        payload_type=RECORD_TYPE,
        envelope=envelope(name, version, issuer, note=note),
        parties=parties,
        deleted=deleted,
        issued_at=T0 + timedelta(minutes=version, microseconds=3),
    )


def merged(record: NewRecord, *cosigners: str) -> bytes:
    """The copy of record's version carrying the cosigners' signatures too."""
    return envelope(record.name, record.version, record.issuer, *cosigners)


def ids(records: list[StoredRecord]) -> list[tuple[str, int]]:
    """(collection/id, version) of each record, e.g. ("agreements/A1", 2)."""
    return [("/".join(r.name.split("/")[-2:]), r.version) for r in records]


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "node.db", clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


async def whole_feed(store: SqliteStore, parent: str, reader: str) -> list[StoredRecord]:
    return await store.changes(parent, reader=reader, after_sequence=0, limit=1000)


async def whole_exchange(store: SqliteStore, reader: str, after: int = 0) -> list[StoredRecord]:
    return await store.exchange_changes(reader, after_sequence=after, limit=1000)


# -- merge_version ----------------------------------------------------------------------------


async def test_a_merge_moves_the_version_to_the_end_of_both_feeds(
    store: SqliteStore, tmp_path: Path
) -> None:
    a1 = rec(AGREEMENTS, "A1", parties=(YNU, CHULA))
    a2 = rec(AGREEMENTS, "A1", 2, parties=(YNU, CHULA))
    b1 = rec(AGREEMENTS, "B1", parties=(YNU, CHULA))
    public = rec(COURSES, "CS101")
    await store.put_records([a1, b1, public])
    await store.put_records([a2])
    cursor = await store.head_sequence(AGREEMENTS)
    exchange_cursor = await store.exchange_head(CHULA)
    assert cursor == exchange_cursor
    old_a1 = await store.get_record(a1.name, 1)
    assert old_a1 is not None

    # An older version (not the latest) is merged: it comes again after every cursor.
    cosigned = merged(a1, CHULA)
    stored = await store.merge_version(a1.name, 1, cosigned)
    assert stored is not None
    assert stored == replace(old_a1, envelope=cosigned, sequence=stored.sequence)
    assert stored.sequence > cursor
    assert await store.get_record(a1.name, 1) == stored
    feed = await store.changes(AGREEMENTS, reader=CHULA, after_sequence=cursor, limit=10)
    assert feed == [stored]
    assert await whole_exchange(store, CHULA, exchange_cursor) == [stored]
    # Its old position is gone from the feeds: from the start, every version comes once.
    assert ids(await whole_feed(store, AGREEMENTS, CHULA)) == [
        ("agreements/B1", 1),
        ("agreements/A1", 2),
        ("agreements/A1", 1),
    ]
    assert old_a1.sequence not in [r.sequence for r in await whole_exchange(store, YNU)]
    assert await store.head_sequence(AGREEMENTS) == stored.sequence
    assert await store.exchange_head(CHULA) == stored.sequence
    assert await store.exchange_head(YNU) == stored.sequence
    # The list still shows the latest version, which did not change.
    listed = await store.list_records(AGREEMENTS, reader=CHULA, limit=10)
    assert [(r.name, r.version, r.envelope) for r in listed] == [
        (a1.name, 2, a2.envelope),
        (b1.name, 1, b1.envelope),
    ]
    latest = await store.get_record(a1.name)
    assert latest is not None
    assert latest.version == 2
    assert latest.envelope == a2.envelope

    # The latest version is merged: the list shows it, changed since its new sequence.
    cosigned2 = merged(a2, CHULA)
    stored2 = await store.merge_version(a2.name, 2, cosigned2)
    assert stored2 is not None
    assert stored2.sequence > stored.sequence
    since = await store.list_records(
        AGREEMENTS, reader=CHULA, limit=10, changed_since=stored2.sequence
    )
    assert [(r.version, r.envelope, r.sequence) for r in since] == [
        (2, cosigned2, stored2.sequence)
    ]
    assert codes_listed(await store.list_records(AGREEMENTS, reader=CHULA, limit=10)) == [
        "A1",
        "B1",
    ]
    # Visibility is unchanged: a reader that is no party sees none of it.
    assert await store.list_records(AGREEMENTS, reader=UI, limit=10) == []
    assert await whole_feed(store, AGREEMENTS, UI) == []
    assert await whole_exchange(store, UI) == []

    # A new version comes after the merged ones; sequences are never reused.
    [b2] = await store.put_records([rec(AGREEMENTS, "B1", 2, parties=(YNU, CHULA))])
    assert b2.sequence > stored2.sequence
    sequences = [r.sequence for r in await whole_exchange(store, CHULA)]
    assert sequences == sorted(set(sequences))
    assert len(sequences) == 4  # A1@1, A1@2, B1@1, B1@2: each version once
    assert store.statistics().records_merged == 2
    assert await store.integrity_check() == "ok"  # foreign keys included

    # The stored bytes are now the merged ones: they are UNCHANGED, the first copy conflicts.
    [again] = await store.put_records([replace(a1, envelope=cosigned)])
    assert (again.status, again.sequence) == (PutStatus.UNCHANGED, stored.sequence)
    with pytest.raises(StoreConflictError):
        await store.put_records([a1])

    conn = read_only(tmp_path / "node.db")
    try:
        referenced = {
            row[0] for row in conn.execute("SELECT sequence FROM change_parties").fetchall()
        } | {row[0] for row in conn.execute("SELECT sequence FROM records").fetchall()}
        stored_sequences = {
            row[0] for row in conn.execute("SELECT sequence FROM record_versions").fetchall()
        }
        assert referenced <= stored_sequences
        assert old_a1.sequence not in referenced | stored_sequences
    finally:
        conn.close()


def codes_listed(records: list[StoredRecord]) -> list[str]:
    return [r.name.rpartition("/")[2] for r in records]


async def test_a_merge_keeps_everything_but_the_bytes_and_the_position(
    store: SqliteStore,
) -> None:
    withdrawn = rec(NOMINATIONS, "N1", 2, parties=(YNU, CHULA), deleted=True)
    await store.put_records([rec(NOMINATIONS, "N1", parties=(YNU, CHULA)), withdrawn])
    before = await store.get_record(withdrawn.name)
    assert before is not None
    after = await store.merge_version(withdrawn.name, 2, merged(withdrawn, CHULA))
    assert after is not None
    assert replace(after, envelope=before.envelope, sequence=before.sequence) == before
    assert after.deleted
    assert await store.list_records(NOMINATIONS, reader=CHULA, limit=10) == []  # still withdrawn
    # The newest row itself moved: its sequence is the next one, the old one stays unused.
    assert after.sequence == before.sequence + 1
    [new] = await store.put_records([rec(NOMINATIONS, "N2", parties=(YNU, CHULA))])
    assert new.sequence == after.sequence + 1


async def test_merging_an_unknown_version_or_the_same_bytes_changes_nothing(
    store: SqliteStore,
) -> None:
    a1 = rec(AGREEMENTS, "A1", parties=(YNU, CHULA))
    [put] = await store.put_records([a1])
    before = store.statistics()
    assert await store.merge_version(a1.name, 2, merged(a1, CHULA)) is None
    assert await store.merge_version(f"{AGREEMENTS}/nope", 1, merged(a1, CHULA)) is None
    same = await store.merge_version(a1.name, 1, a1.envelope)
    assert same == await store.get_record(a1.name)
    assert same is not None
    assert same.sequence == put.sequence
    assert await store.head_sequence(AGREEMENTS) == put.sequence
    assert await store.exchange_head(CHULA) == put.sequence
    assert store.statistics().records_merged == before.records_merged == 0
    with pytest.raises(ValueError, match="version"):
        await store.merge_version(a1.name, 0, merged(a1, CHULA))
    with pytest.raises(ValueError, match="empty"):
        await store.merge_version(a1.name, 1, b"")


async def test_a_failed_merge_leaves_no_trace(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    a1 = rec(AGREEMENTS, "A1", parties=(YNU, CHULA))
    await store.put_records([a1])
    before = await store.get_record(a1.name)
    # White box: the head is not moved, so the record points at the deleted row at COMMIT.
    monkeypatch.setattr(store_sql, "MOVE_HEAD", "SELECT ?, ?, ?")
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        await store.merge_version(a1.name, 1, merged(a1, CHULA))
    monkeypatch.undo()
    assert await store.get_record(a1.name) == before
    assert await whole_exchange(store, CHULA) == [before]
    assert await store.integrity_check() == "ok"
    # Foreign keys are checked at once again after the rollback.
    assert await store.merge_version(a1.name, 1, merged(a1, CHULA)) is not None
    assert await store.integrity_check() == "ok"


# -- the exchange feed ------------------------------------------------------------------------


async def test_the_exchange_feed_holds_a_readers_private_versions_of_every_collection(
    store: SqliteStore,
) -> None:
    await store.put_records(
        [
            rec(AGREEMENTS, "A1", parties=(YNU, CHULA)),
            rec(COURSES, "CS101"),  # public: never in an exchange feed
            rec(NOMINATIONS, "N1", parties=(YNU, CHULA)),
            rec(NOMINATIONS, "N2", parties=(YNU, UI)),
            rec(CHULA_LAS, "LA1", parties=(CHULA, YNU)),  # a copy pulled from CHULA
        ]
    )
    await store.put_records(
        [
            rec(CHULA_DECISIONS, "D1", parties=(CHULA, YNU)),
            rec(UI_TRANSCRIPTS, "T1", parties=(UI, YNU, CHULA)),
            rec(NOMINATIONS, "N3", parties=(YNU,)),
            rec(COURSES, "CS101", 2),
        ]
    )
    await store.put_records(
        [
            rec(NOMINATIONS, "N1", 2, parties=(YNU, CHULA), deleted=True),  # tombstones come
            rec(AGREEMENTS, "A1", 2, parties=(YNU,)),  # CHULA no longer a party of this version
            rec(NOMINATIONS, "N2", 2),  # made public: out of the feed from this version on
        ]
    )
    chula = await whole_exchange(store, CHULA)
    assert ids(chula) == [
        ("agreements/A1", 1),
        ("nominations/N1", 1),
        ("learning-agreements/LA1", 1),
        ("decisions/D1", 1),
        ("transcripts/T1", 1),
        ("nominations/N1", 2),
    ]
    assert all(CHULA in r.parties for r in chula)
    assert chula[-1].deleted
    assert [r.issuer for r in chula] == [YNU, YNU, CHULA, CHULA, UI, YNU]
    sequences = [r.sequence for r in chula]
    assert sequences == sorted(set(sequences))
    assert await store.exchange_head(CHULA) == sequences[-1]
    assert ids(await whole_exchange(store, UI)) == [
        ("nominations/N2", 1),
        ("transcripts/T1", 1),
    ]
    assert len(await whole_exchange(store, YNU)) == 9  # every private version
    assert await whole_exchange(store, NUS) == []
    assert await store.exchange_head(NUS) == 0

    # Pages of any size, resumed after the last sequence, give each version exactly once.
    for limit in (1, 2, 4):
        seen: list[StoredRecord] = []
        cursor = 0
        while page := await store.exchange_changes(CHULA, after_sequence=cursor, limit=limit):
            assert len(page) <= limit
            seen += page
            cursor = page[-1].sequence
        assert seen == chula
    assert await whole_exchange(store, CHULA, sequences[2]) == chula[3:]
    assert await whole_exchange(store, CHULA, sequences[-1]) == []
    with pytest.raises(ValueError, match="limit"):
        await store.exchange_changes(CHULA, after_sequence=0, limit=0)


async def test_a_copy_of_another_institutions_private_record_is_stored_as_pulled(
    store: SqliteStore,
) -> None:
    la1 = rec(CHULA_LAS, "LA1", parties=(CHULA, YNU))
    la2 = rec(CHULA_LAS, "LA1", 2, parties=(CHULA, YNU))
    [outcome] = await store.put_records([la1])
    assert outcome.status is PutStatus.INSERTED
    got = await store.get_record(la1.name)
    assert got is not None
    assert (got.issuer, got.parent, got.envelope, got.parties) == (
        CHULA,
        CHULA_LAS,
        la1.envelope,
        (CHULA, YNU),
    )
    # Pulled again (a retry), then the next version: the same rules as for own records.
    again = await store.put_records([la1, la2])
    assert [o.status for o in again] == [PutStatus.UNCHANGED, PutStatus.INSERTED]
    assert await store.latest_version(la1.name) == 2
    assert ids(await store.list_records(CHULA_LAS, reader=YNU, limit=10)) == [
        ("learning-agreements/LA1", 2)
    ]
    assert await store.list_records(CHULA_LAS, reader=UI, limit=10) == []
    assert ids(await whole_feed(store, CHULA_LAS, YNU)) == [
        ("learning-agreements/LA1", 1),
        ("learning-agreements/LA1", 2),
    ]
    assert ids(await whole_exchange(store, YNU)) == ids(await whole_exchange(store, CHULA))


async def test_exchange_and_outbox_queries_use_their_indexes(
    store: SqliteStore, tmp_path: Path
) -> None:
    await store.put_records(
        [rec(AGREEMENTS, "A1", parties=(YNU, CHULA)), rec(CHULA_LAS, "LA1", parties=(CHULA, YNU))]
    )
    await store.enqueue(CHULA, "exchange", b"look")
    conn = read_only(tmp_path / "node.db")
    now = store_sql.to_us(T0)
    try:

        def plan(sql: str, params: tuple[object, ...] | dict[str, object]) -> str:
            return " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))

        exchange = plan(store_sql.EXCHANGE_CHANGES, {"reader": CHULA, "after": 0, "limit": 5})
        assert "USING COVERING INDEX change_parties_by_party (party=? AND sequence>?)" in exchange
        assert "TEMP B-TREE" not in exchange, exchange
        assert "SCAN" not in exchange, exchange
        assert "change_parties_by_party" in plan(store_sql.EXCHANGE_HEAD, (CHULA,))
        for sql, params, index in (
            (store_sql.DUE_OUTBOX, (now, 5), "outbox_due"),
            (store_sql.PENDING_OUTBOX_ITEM, (CHULA, "exchange"), "outbox_coalesce"),
            (store_sql.PURGE_OUTBOX, (now,), "outbox_delivered"),
        ):
            found = plan(sql, params)
            assert f"INDEX {index}" in found, found
            assert "TEMP B-TREE" not in found, found
    finally:
        conn.close()


# -- the outbox -------------------------------------------------------------------------------


async def test_the_outbox_coalesces_hints_and_keeps_items_until_delivered(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "node.db"
    async with await SqliteStore.open(path, clock=clock) as store:
        first = await store.enqueue(CHULA, "exchange", b"head 5")
        assert await store.due_outbox(T0, 10) == [
            OutboxItem(
                id=first,
                recipient=CHULA,
                topic="exchange",
                payload=b"head 5",
                created_at=T0,
                attempts=0,
                next_attempt_at=T0,
                delivered_at=None,
                last_error=None,
            )
        ]
        clock.now = T0 + timedelta(seconds=1)
        # The same hint again replaces the pending one (a new id, the first time kept).
        second = await store.enqueue(CHULA, "exchange", b"head 7")
        assert second > first
        [item] = await store.due_outbox(clock.now, 10)
        assert (item.id, item.payload, item.created_at, item.next_attempt_at) == (
            second,
            b"head 7",
            T0,
            clock.now,
        )
        # Other recipients and topics, and coalesce=False, add items.
        ui = await store.enqueue(UI, "exchange", b"head 7")
        notice = await store.enqueue(CHULA, "notice", b"n1")
        notice2 = await store.enqueue(CHULA, "notice", b"n2", coalesce=False)
        assert await store.outbox_pending() == 4
        assert [i.id for i in await store.due_outbox(clock.now, 10)] == [
            second,
            ui,
            notice,
            notice2,
        ]
        assert [i.id for i in await store.due_outbox(clock.now, 2)] == [second, ui]
        assert await store.due_outbox(T0, 10) == []  # none was due then any more

        # A failed delivery: due again later, counted, its error kept.
        retry_at = clock.now + timedelta(minutes=5)
        await store.outbox_failed(second, next_attempt_at=retry_at, error="503 unavailable")
        assert [i.id for i in await store.due_outbox(clock.now, 10)] == [ui, notice, notice2]
        [failed] = [i for i in await store.due_outbox(retry_at, 10) if i.id == second]
        assert (failed.attempts, failed.last_error, failed.next_attempt_at) == (
            1,
            "503 unavailable",
            retry_at,
        )
        assert [i.id for i in await store.due_outbox(retry_at, 10)] == [ui, notice, notice2, second]

        # Delivered: no longer due or pending; again, or failed afterwards, changes nothing.
        clock.now += timedelta(seconds=1)
        delivered_at = clock.now
        await store.outbox_delivered(ui)
        await store.outbox_delivered(ui)
        await store.outbox_failed(ui, next_attempt_at=retry_at, error="late")
        await store.outbox_delivered(12345)  # unknown
        assert await store.outbox_pending() == 3
        assert ui not in [i.id for i in await store.due_outbox(retry_at, 10)]

        # A hint coalesced while its old payload is being delivered stays pending.
        [taken] = [i for i in await store.due_outbox(retry_at, 10) if i.id == second]
        clock.now += timedelta(seconds=1)
        third = await store.enqueue(CHULA, "exchange", b"head 9")
        await store.outbox_delivered(taken.id)  # the old payload arrived
        [pending] = [i for i in await store.due_outbox(clock.now, 10) if i.topic == "exchange"]
        assert (pending.id, pending.payload, pending.attempts, pending.last_error) == (
            third,
            b"head 9",
            1,
            "503 unavailable",
        )
        assert pending.next_attempt_at == clock.now  # due now, despite the earlier retry time
        assert await store.outbox_pending() == 3

        with pytest.raises(ValueError, match="recipient"):
            await store.enqueue("", "exchange", b"")
        with pytest.raises(ValueError, match="topic"):
            await store.enqueue(CHULA, "", b"")
        with pytest.raises(ValueError, match="limit"):
            await store.due_outbox(clock.now, 0)
        with pytest.raises(ValueError, match="naive"):
            await store.due_outbox(datetime(2026, 1, 1), 1)  # naive

    # Everything survives a restart: pending items stay due, delivered ones stay delivered.
    async with await SqliteStore.open(path, clock=clock) as store:
        assert await store.outbox_pending() == 3
        assert [i.id for i in await store.due_outbox(clock.now, 10)] == [notice, notice2, third]
        assert await store.enqueue(CHULA, "exchange", b"head 10") > third
        assert await store.outbox_pending() == 3
        # Purge forgets delivered items only, and only those delivered before the time given.
        assert await store.purge_outbox(delivered_at) == 0
        assert await store.purge_outbox(delivered_at + timedelta(microseconds=1)) == 1
        assert await store.purge_outbox(clock.now + timedelta(days=1)) == 0
        assert await store.outbox_pending() == 3
        for item in await store.due_outbox(clock.now, 10):
            await store.outbox_delivered(item.id)
        assert await store.outbox_pending() == 0
        assert await store.due_outbox(clock.now + timedelta(days=1), 10) == []
        assert await store.purge_outbox(clock.now + timedelta(seconds=1)) == 3
        assert await store.integrity_check() == "ok"


# -- schema -----------------------------------------------------------------------------------


async def test_a_v2_store_is_migrated_and_keeps_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "node.db"
    expires = datetime.now(UTC) + timedelta(minutes=10)
    nomination = rec(NOMINATIONS, "N1", parties=(YNU, CHULA))
    agreement = rec(AGREEMENTS, "A1", parties=(YNU, CHULA))
    monkeypatch.setattr(store_schema, "MIGRATIONS", store_schema.MIGRATIONS[:2])
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", 2)
    async with await SqliteStore.open(path) as store:
        await store.put_records([agreement, rec(COURSES, "CS101"), nomination])
        assert await store.claim_nonce(b"v2 nonce", expires)
        assert await store.append_log(YNU, b"entry 0", b"k" * 32) == 0
        await store.set_setting("page-token-secret", b"s")
    db = Database(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert "outbox" not in db.table_names()
    db.close()
    monkeypatch.undo()

    async with await SqliteStore.open(path) as store:
        # The index is built over the rows already stored.
        assert ids(await whole_exchange(store, CHULA)) == [
            ("agreements/A1", 1),
            ("nominations/N1", 1),
        ]
        assert await store.claim_nonce(b"v2 nonce", expires) is False
        assert await store.log_size(YNU) == 1
        assert await store.get_setting("page-token-secret") == b"s"
        moved = await store.merge_version(agreement.name, 1, merged(agreement, CHULA))
        assert moved is not None
        assert ids(await whole_exchange(store, CHULA)) == [
            ("nominations/N1", 1),
            ("agreements/A1", 1),
        ]
        assert await store.enqueue(CHULA, "exchange", b"look") == 1
        assert await store.outbox_pending() == 1
        assert await store.integrity_check() == "ok"
    db = Database(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert "outbox" in db.table_names()
    assert {"change_parties_by_party"} <= {i.name for i in db["change_parties"].indexes}  # type: ignore[union-attr]
    assert {"outbox_due", "outbox_coalesce", "outbox_delivered"} <= {
        i.name
        for i in db["outbox"].indexes  # type: ignore[union-attr]
    }
    db.close()
