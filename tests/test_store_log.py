"""The store's access logs: appends group-committed with nonce claims, every perfect subtree
kept with them (so roots and proofs come from O(log n) nodes), several stores appending to one
file, erasure of keys, checkpoints and cosignatures, witnessed notes, the v1 to v2 migration and
a SIGKILL while appending.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from sseaun.node.store import (
    SCHEMA_VERSION,
    NewRecord,
    SqliteStore,
    StoreClosedError,
    StoreConflictError,
    StoreError,
)
from sseaun.node.store import _schema as store_schema
from sseaun.node.store import _sql as store_sql
from sseaun.sdk.core import merkle

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
YNU, CHULA, UI = "ynu.edu.cn", "chula.ac.th", "ui.ac.id"
WITNESS_A, WITNESS_B = "witness.example.org/a", "witness.example.org/b"


def entry(n: int, log: str = YNU) -> bytes:
    """Distinct, binary entry bytes (opaque to the store)."""
    return f"{log} access #{n}".encode() + bytes([n % 256, 0, 255])


def key(n: int) -> bytes:
    return hashlib.sha256(b"key %d" % n).digest()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "node.db")
    try:
        yield opened
    finally:
        await opened.close()


async def stored_entries(store: SqliteStore, log: str) -> list[bytes]:
    """Every entry of the log, read back in pages."""
    entries: list[bytes] = []
    while page := await store.log_entries(log, len(entries), 97):
        assert [e.index for e in page] == list(range(len(entries), len(entries) + len(page)))
        entries += [e.entry for e in page]
    return entries


async def assert_tree(store: SqliteStore, log: str, entries: Sequence[bytes]) -> None:
    """The stored nodes give the root and the proofs computed from all the leaves."""
    leaves = [merkle.leaf_hash(e) for e in entries]
    n = len(leaves)
    assert await store.log_size(log) == n
    root = merkle.root_plan(n)
    assert root.build(await store.log_nodes(log, root.nodes())) == [merkle.root_hash(leaves)]
    picks = sorted({0, 1, n // 3, n // 2, n - 2, n - 1} & set(range(n)))
    for i in picks:
        plan = merkle.inclusion_plan(i, n)
        nodes = await store.log_nodes(log, plan.nodes())
        assert plan.build(nodes) == merkle.inclusion_proof(i, leaves), i
    for m in sorted({1, 2, 3, n // 2, n - 1, n} & set(range(1, n + 1))):
        plan = merkle.consistency_plan(m, n)
        nodes = await store.log_nodes(log, plan.nodes())
        assert plan.build(nodes) == merkle.consistency_proof(m, leaves), m


def node_rows(path: Path, log: str) -> int:
    conn = read_only(path)
    try:
        return int(
            conn.execute("SELECT count(*) FROM log_nodes WHERE log = ?", (log,)).fetchone()[0]
        )
    finally:
        conn.close()


def perfect_subtrees(n: int) -> int:
    """How many perfect subtrees a tree of n leaves has (every one is stored)."""
    return sum(n >> level for level in range(n.bit_length()))


# -- appends ----------------------------------------------------------------------------------


async def test_appends_are_numbered_from_zero_in_order(store: SqliteStore) -> None:
    assert await store.log_size(YNU) == 0
    assert await store.logs() == []
    assert [await store.append_log(YNU, entry(i), key(i)) for i in range(10)] == list(range(10))
    assert [await store.append_log(CHULA, entry(i, CHULA), key(i)) for i in range(3)] == [0, 1, 2]
    assert await store.log_size(YNU) == 10
    assert await store.log_size(CHULA) == 3
    assert await store.logs() == [CHULA, YNU]
    page = await store.log_entries(YNU, 4, 3)
    assert [(e.log, e.index, e.entry, e.key) for e in page] == [
        (YNU, i, entry(i), key(i)) for i in (4, 5, 6)
    ]
    assert await store.log_entries(YNU, 10, 5) == []
    await assert_tree(store, YNU, [entry(i) for i in range(10)])
    await assert_tree(store, CHULA, [entry(i, CHULA) for i in range(3)])
    stats = store.statistics()
    assert stats.log_entries_appended == 13
    assert stats.pending_log_appends == 0
    assert stats.queued_writes == 0


async def test_an_append_needs_a_log_an_entry_and_a_key(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="entry"):
        await store.append_log(YNU, b"", key(0))
    with pytest.raises(ValueError, match="key"):
        await store.append_log(YNU, entry(0), b"")
    with pytest.raises(ValueError, match="log"):
        await store.append_log("", entry(0), key(0))
    with pytest.raises(ValueError):
        await store.log_entries(YNU, -1, 5)
    with pytest.raises(ValueError):
        await store.log_entries(YNU, 0, 0)
    assert await store.log_size(YNU) == 0


async def test_concurrent_appends_share_transactions_and_build_the_right_tree(
    store: SqliteStore, tmp_path: Path
) -> None:
    n = 300
    before = store.statistics()
    indexes = await asyncio.gather(*(store.append_log(YNU, entry(i), key(i)) for i in range(n)))
    assert sorted(indexes) == list(range(n))
    after = store.statistics()
    assert after.transactions_committed - before.transactions_committed < n
    assert after.log_entries_appended == n
    # Each caller got the index its entry is stored at.
    stored = await stored_entries(store, YNU)
    assert [stored[index] for index in indexes] == [entry(i) for i in range(n)]
    await assert_tree(store, YNU, stored)
    assert node_rows(tmp_path / "node.db", YNU) == perfect_subtrees(n)
    assert await store.integrity_check() == "ok"


async def test_every_batch_size_grows_the_same_tree_as_merkle(
    store: SqliteStore, tmp_path: Path
) -> None:
    # The writer grows its cached frontier inline: batches of every size from 1 to 40, crossing
    # many powers of two, must leave every perfect subtree stored and the roots merkle's.
    leaves: list[bytes] = []
    appended: list[bytes] = []
    for size in range(1, 41):
        batch = [entry(len(appended) + i) for i in range(size)]
        indexes = await asyncio.gather(
            *(store.append_log(YNU, e, key(len(appended) + i)) for i, e in enumerate(batch))
        )
        assert indexes == list(range(len(appended), len(appended) + size))
        appended += batch
        leaves += [merkle.leaf_hash(e) for e in batch]
        n = len(leaves)
        plan = merkle.root_plan(n)
        assert plan.build(await store.log_nodes(YNU, plan.nodes())) == [merkle.root_hash(leaves)]
    assert node_rows(tmp_path / "node.db", YNU) == perfect_subtrees(len(leaves))
    await assert_tree(store, YNU, appended)
    frontier = merkle.TreeFrontier()
    made = [node for leaf in leaves for node in frontier.append(leaf)]
    assert await store.log_nodes(YNU, [(level, i) for level, i, _ in made]) == {
        (level, i): digest for level, i, digest in made
    }


async def test_claims_and_appends_queued_together_commit_in_one_transaction(
    store: SqliteStore,
) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    gate = threading.Event()
    # White box: hold the writer thread so everything queues before the group commit runs.
    store._writer.submit(gate.wait, 10)
    before = store.statistics()
    try:
        claims = [asyncio.create_task(store.claim_nonce(b"n%03d" % i, expires)) for i in range(50)]
        appends = [
            asyncio.create_task(store.append_log(YNU if i % 2 else CHULA, entry(i), key(i)))
            for i in range(50)
        ]
        while store.statistics().pending_log_appends < 50:
            await asyncio.sleep(0)
        stats = store.statistics()
        assert stats.pending_nonce_claims == 50
        assert stats.queued_writes >= 100
    finally:
        gate.set()
    assert all(await asyncio.gather(*claims))
    assert sorted(await asyncio.gather(*appends)) == sorted([*range(25), *range(25)])
    after = store.statistics()
    assert after.transactions_committed - before.transactions_committed == 1
    assert after.nonce_batches_committed - before.nonce_batches_committed == 1
    assert (after.pending_nonce_claims, after.pending_log_appends) == (0, 0)
    assert after.nonces_claimed == 50
    assert after.log_entries_appended == 50
    await assert_tree(store, YNU, [entry(i) for i in range(1, 50, 2)])
    await assert_tree(store, CHULA, [entry(i) for i in range(0, 50, 2)])


async def test_the_batch_limit_counts_claims_and_appends_together(tmp_path: Path) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    async with await SqliteStore.open(tmp_path / "node.db", max_nonce_batch=10) as store:
        gate = threading.Event()
        store._writer.submit(gate.wait, 10)
        try:
            claims = [store.claim_nonce(b"%d" % i, expires) for i in range(15)]
            appends = [store.append_log(YNU, entry(i), key(i)) for i in range(15)]
            waiting = asyncio.gather(*claims, *appends)
            while store.statistics().queued_writes < 30:
                await asyncio.sleep(0)
        finally:
            gate.set()
        results = await waiting
        assert results[:15] == [True] * 15
        assert sorted(results[15:]) == list(range(15))
        assert store.statistics().transactions_committed == 3


async def test_two_stores_on_one_file_append_without_gaps_or_duplicates(tmp_path: Path) -> None:
    # As the CLI appending while the node runs: two writers, each with its cached frontier.
    path = tmp_path / "node.db"
    async with await SqliteStore.open(path) as node, await SqliteStore.open(path) as cli:
        got: dict[int, bytes] = {}

        async def append(store: SqliteStore, n: int) -> None:
            index = await store.append_log(YNU, entry(n), key(n))
            assert index not in got
            got[index] = entry(n)

        n = 0
        for round_ in range(12):
            # Alternating one by one, then both at once (their transactions interleave).
            for store in (node, cli) * 3:
                await append(store, n)
                n += 1
            batch = [(node if i % 2 else cli, n + i) for i in range(round_ * 3)]
            await asyncio.gather(*(append(store, m) for store, m in batch))
            n += len(batch)
        assert sorted(got) == list(range(n))
        entries = [got[i] for i in range(n)]
        for store in (node, cli):
            assert await stored_entries(store, YNU) == entries
            await assert_tree(store, YNU, entries)
        assert node_rows(path, YNU) == perfect_subtrees(n)


async def test_a_store_closed_with_appends_pending_commits_them(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    expires = datetime.now(UTC) + timedelta(minutes=10)
    async with await SqliteStore.open(path, max_nonce_batch=10) as store:
        assert await store.append_log(YNU, entry(0), key(0)) == 0
        gate, holding = threading.Event(), threading.Event()

        def hold() -> None:
            holding.set()
            gate.wait(10)

        store._writer.submit(hold)
        assert holding.wait(10)  # the writer thread runs hold(): its queue is empty
        pending = [
            asyncio.ensure_future(store.append_log(YNU, entry(i), key(i))) for i in range(1, 40)
        ]
        claim = asyncio.ensure_future(store.claim_nonce(b"m" * 32, expires))
        while store.statistics().pending_log_appends < 39:
            await asyncio.sleep(0)
        closing = asyncio.ensure_future(store.close())
        # White box: release the writer once close() queued its last job behind the group
        # commit, so the group commit takes the first 10 and close() commits the rest.
        for _ in range(5000):
            if store._writer._work_queue.qsize() >= 2:  # the group commit, then close()'s job
                break
            await asyncio.sleep(0.001)
        gate.set()
        await closing
    assert sorted(await asyncio.gather(*pending)) == list(range(1, 40))
    assert await claim is True
    with pytest.raises(StoreClosedError):
        await store.append_log(YNU, entry(99), key(99))
    async with await SqliteStore.open(path) as store:
        entries = await stored_entries(store, YNU)
        assert sorted(entries) == sorted(entry(i) for i in range(40))
        await assert_tree(store, YNU, entries)
        assert await store.claim_nonce(b"m" * 32, expires) is False


async def test_a_cancelled_append_still_happens(store: SqliteStore) -> None:
    first = asyncio.create_task(store.append_log(YNU, entry(0), key(0)))
    await asyncio.sleep(0)  # queued for the writer
    first.cancel()
    assert await store.append_log(YNU, entry(1), key(1)) == 1
    assert first.cancelled()
    await assert_tree(store, YNU, [entry(0), entry(1)])


async def test_a_failed_group_commit_fails_every_waiter_and_leaves_the_tree_sound(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    for i in range(5):
        await store.append_log(YNU, entry(i), key(i))
    monkeypatch.setattr(store_sql, "INSERT_LOG_NODE", "INSERT INTO no_such_table VALUES (?,?,?,?)")
    results = await asyncio.gather(
        *(store.append_log(YNU, entry(100 + i), key(i)) for i in range(10)),
        store.claim_nonce(b"lost", expires),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreError) for r in results), results
    assert isinstance(results[0], StoreError)
    assert "log append failed" in str(results[0])
    assert isinstance(results[0].__cause__, sqlite3.OperationalError)
    monkeypatch.undo()
    # Nothing of the group was stored, and the frontier it grew was dropped with it.
    assert await store.log_size(YNU) == 5
    assert await store.claim_nonce(b"lost", expires) is True
    assert await store.append_log(YNU, entry(5), key(5)) == 5
    await assert_tree(store, YNU, [entry(i) for i in range(6)])
    stats = store.statistics()
    assert (stats.pending_log_appends, stats.log_entries_appended) == (0, 6)


# -- reads ------------------------------------------------------------------------------------


async def test_log_nodes_beyond_the_tree_raise(store: SqliteStore) -> None:
    for i in range(5):
        await store.append_log(YNU, entry(i), key(i))
    assert await store.log_nodes(YNU, []) == {}
    nodes = await store.log_nodes(YNU, [(0, 4), (2, 0), (1, 1)])
    assert set(nodes) == {(0, 4), (2, 0), (1, 1)}
    assert nodes[(0, 4)] == merkle.leaf_hash(entry(4))
    with pytest.raises(StoreError, match=r"\(1, 2\)"):
        await store.log_nodes(YNU, [(0, 0), (1, 2)])  # leaves 4 and 5: 5 is not stored
    with pytest.raises(StoreError, match=r"\(3, 0\)"):
        await store.log_nodes(YNU, [(3, 0)])
    with pytest.raises(StoreError):
        await store.log_nodes(CHULA, [(0, 0)])


async def test_log_queries_use_primary_keys(store: SqliteStore, tmp_path: Path) -> None:
    for i in range(3):
        await store.append_log(YNU, entry(i), key(i))
    conn = read_only(tmp_path / "node.db")
    try:
        for query, params in (
            (store_sql.LOG_NODES, (YNU, store_sql.nodes_json([(0, 1), (1, 0)]))),
            (store_sql.LOG_ENTRIES, (YNU, 0, 10)),
        ):
            plan = " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + query, params))
            assert "SCAN n" not in plan, plan
            assert "SCAN e" not in plan, plan
            assert "TEMP B-TREE" not in plan, plan
    finally:
        conn.close()


async def test_erasing_keys_keeps_the_entries_and_the_tree(store: SqliteStore) -> None:
    for i in range(8):
        await store.append_log(YNU, entry(i), key(i))
    assert await store.erase_log_keys(YNU, [1, 3, 3, 99]) == 2
    assert await store.erase_log_keys(YNU, [1]) == 0
    assert await store.erase_log_keys(YNU, []) == 0
    page = await store.log_entries(YNU, 0, 8)
    assert [e.entry for e in page] == [entry(i) for i in range(8)]
    assert [e.key for e in page] == [None if i in (1, 3) else key(i) for i in range(8)]
    await assert_tree(store, YNU, [entry(i) for i in range(8)])


# -- checkpoints, cosignatures, witnessed -----------------------------------------------------


def note(size: int) -> str:
    return f"{YNU}/log\n{size}\nroot{size}=\n\n— {YNU} c2lnbmF0dXJl\n"


def root(size: int, other: bool = False) -> bytes:
    return hashlib.sha256(b"root %d %d" % (size, other)).digest()


async def test_checkpoints_only_grow_and_one_size_has_one_root(store: SqliteStore) -> None:
    assert await store.latest_checkpoint(YNU) is None
    assert await store.checkpoints(YNU) == []
    await store.put_checkpoint(YNU, 5, root(5), note(5), T0)
    await store.put_checkpoint(YNU, 5, root(5), "another note", T0 + timedelta(hours=1))
    with pytest.raises(StoreConflictError, match="another root") as caught:
        await store.put_checkpoint(YNU, 5, root(5, other=True), note(5), T0)
    assert caught.value.names == (f"{YNU}/checkpoints/5",)
    with pytest.raises(StoreConflictError, match="only grow"):
        await store.put_checkpoint(YNU, 3, root(3), note(3), T0)
    await store.put_checkpoint(YNU, 8, root(8), note(8), T0 + timedelta(minutes=1))
    await store.put_checkpoint(YNU, 5, root(5), note(5), T0)  # a retry of a kept one: no-op
    kept = await store.checkpoints(YNU)
    assert [(c.log, c.size, c.root, c.note, c.signed_at) for c in kept] == [
        (YNU, 5, root(5), note(5), T0),
        (YNU, 8, root(8), note(8), T0 + timedelta(minutes=1)),
    ]
    assert await store.latest_checkpoint(YNU) == kept[-1]
    assert await store.checkpoints(CHULA) == []
    # A log with checkpoints but no entries is listed, with size 0.
    assert await store.logs() == [YNU]
    assert await store.log_size(YNU) == 0
    await store.put_checkpoint(UI, 0, merkle.EMPTY_ROOT, note(0), T0)
    assert await store.logs() == [UI, YNU]


async def test_cosignatures_are_kept_in_order_and_replaced_per_witness(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with await SqliteStore.open(tmp_path / "node.db", clock=clock) as store:
        assert await store.add_cosignature(YNU, 4, WITNESS_A, "— a x\n") is False
        await store.put_checkpoint(YNU, 4, root(4), note(4), T0)
        await store.put_checkpoint(YNU, 9, root(9), note(9), T0)
        assert await store.add_cosignature(YNU, 9, WITNESS_B, "— b 1\n") is True
        clock.now += timedelta(seconds=1)
        assert await store.add_cosignature(YNU, 9, WITNESS_A, "— a 1\n") is True
        assert await store.add_cosignature(YNU, 4, WITNESS_A, "— a 0\n") is True
        clock.now += timedelta(seconds=1)
        assert await store.add_cosignature(YNU, 9, WITNESS_A, "— a 1\n") is True  # same: kept
        latest = await store.latest_checkpoint(YNU)
        assert latest is not None
        assert latest.cosignatures == ("— b 1\n", "— a 1\n")
        assert latest.text == note(9) + "— b 1\n— a 1\n"
        clock.now += timedelta(seconds=1)
        assert await store.add_cosignature(YNU, 9, WITNESS_B, "— b 2\n") is True  # replaced
        assert [c.cosignatures for c in await store.checkpoints(YNU)] == [
            ("— a 0\n",),
            ("— a 1\n", "— b 2\n"),
        ]
        assert await store.integrity_check() == "ok"


async def test_witnessed_checkpoints_round_trip(store: SqliteStore) -> None:
    assert await store.witnessed(CHULA) is None
    await store.put_witnessed(CHULA, 10, "chula note 10")
    await store.put_witnessed(UI, 2, "ui note 2")
    assert await store.witnessed(CHULA) == (10, "chula note 10")
    await store.put_witnessed(CHULA, 12, "chula note 12")
    assert await store.witnessed(CHULA) == (12, "chula note 12")
    assert await store.witnessed(UI) == (2, "ui note 2")


# -- schema and crashes -----------------------------------------------------------------------


async def test_a_v1_store_is_migrated_and_keeps_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "node.db"
    expires = datetime.now(UTC) + timedelta(minutes=10)
    record = NewRecord(
        name="institutions/ynu.edu.cn/courses/CS101",
        parent="institutions/ynu.edu.cn/courses",
        version=1,
        issuer=YNU,
        payload_type="application/vnd.sseaun.course.v1+protobuf",
        envelope=b"envelope bytes",
        parties=(),
        deleted=False,
        issued_at=T0,
    )
    monkeypatch.setattr(store_schema, "MIGRATIONS", store_schema.MIGRATIONS[:1])
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", 1)
    async with await SqliteStore.open(path) as store:
        await store.put_records([record])
        assert await store.claim_nonce(b"v1 nonce", expires)
        await store.set_setting("page-token-secret", b"s")
    db = Database(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "log_entries" not in db.table_names()
    db.close()
    monkeypatch.undo()

    async with await SqliteStore.open(path) as store:
        assert await store.get_record(record.name) is not None
        assert await store.claim_nonce(b"v1 nonce", expires) is False
        assert await store.get_setting("page-token-secret") == b"s"
        assert await store.append_log(YNU, entry(0), key(0)) == 0
        await store.put_checkpoint(YNU, 1, root(1), note(1), T0)
        assert await store.integrity_check() == "ok"
    db = Database(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert {
        "log_entries",
        "log_entry_keys",
        "log_nodes",
        "log_heads",
        "log_checkpoints",
        "log_cosignatures",
        "witnessed",
    } <= set(db.table_names())
    db.close()


CRASH_GROUP = 8
CRASH_ACKS = 30


def crash_appender(path: str) -> None:
    """Child process of the crash test: append forever, printing each acknowledged index."""

    async def run() -> None:
        store = await SqliteStore.open(Path(path))
        expires = datetime.now(UTC) + timedelta(hours=1)
        for group in range(1_000_000):
            numbers = range(group * CRASH_GROUP, (group + 1) * CRASH_GROUP)
            results = await asyncio.gather(
                *(store.append_log(YNU, entry(n), key(n)) for n in numbers),
                store.claim_nonce(b"nonce-%d" % group, expires),
            )
            for n, index in zip(numbers, results, strict=False):
                print(n, index, flush=True)

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_sigkill_while_appending_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from tests.test_store_log import crash_appender; "
            "crash_appender(sys.argv[1])",
            str(path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: dict[int, int] = {}
    try:
        assert child.stdout is not None
        for line in child.stdout:
            n, index = map(int, line.split())
            acked[index] = n
            if len(acked) == CRASH_ACKS * CRASH_GROUP:
                child.send_signal(signal.SIGKILL)  # while it appends the next groups
                break
    finally:
        child.kill()
        _, stderr = child.communicate(timeout=30)
    assert len(acked) == CRASH_ACKS * CRASH_GROUP, stderr
    assert child.returncode == -signal.SIGKILL

    async def check() -> None:
        async with await SqliteStore.open(path) as store:
            assert await store.integrity_check() == "ok"
            entries = await stored_entries(store, YNU)
            assert len(entries) >= len(acked)
            for index, n in acked.items():
                assert entries[index] == entry(n)
            assert len(set(entries)) == len(entries)
            await assert_tree(store, YNU, entries)
            for group in range(CRASH_ACKS):
                assert await store.claim_nonce(b"nonce-%d" % group, T0.replace(year=2100)) is False

    asyncio.run(check())
