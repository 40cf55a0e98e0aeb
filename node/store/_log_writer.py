"""The writer thread's half of access-log appends: a batch of appends staged inside the group
commit's transaction, with each log's Merkle frontier kept in memory between batches.

An append inserts its entry, its key and the perfect subtrees it completes (the leaf hash and
one node per trailing 1 bit of its index: 2 rows on average), and the batch advances each
log's head once. The frontier, the at most log2(n) roots of the tree's perfect subtrees on its
right edge, is all it takes to compute those nodes, so an append reads no node from the file.

The frontier is only a cache. Each batch reads the log's size from log_heads inside its
BEGIN IMMEDIATE transaction, which no other writer (thread or process) can interleave with; a
cached frontier of another size (another process appended, say the CLI while the node runs) is
rebuilt from the stored nodes of merkle.range_nodes(0, size), O(log n) lookups. A frontier is
taken out of the cache while a batch grows it and put back only after COMMIT, so a failed
transaction leaves no frontier ahead of the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from sseaun.sdk.core import merkle

from . import _sql as sql
from ._errors import StoreError

__all__ = ["LogAppend", "LogWriter", "load_nodes"]


@dataclass(slots=True)
class LogAppend:
    """One queued append_log call, answered with its index after COMMIT."""

    log: str
    entry: bytes
    key: bytes
    future: asyncio.Future[int]


def load_nodes(
    conn: sqlite3.Connection, log: str, nodes: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """The hashes of the log's nodes, in one statement of O(len(nodes)) lookups.

    Raises:
        StoreError: a node is not stored (it lies beyond the log's size).
    """
    if not nodes:
        return {}
    found = {
        (level, index): bytes(digest)
        for level, index, digest in conn.execute(sql.LOG_NODES, (log, sql.nodes_json(nodes)))
    }
    if len(found) < len(set(nodes)):
        missing = next(node for node in nodes if node not in found)
        raise StoreError(f"log {log!r} holds no node (level, index) = {missing}")
    return found


class LogWriter:
    """Stages appends in the writer's transaction; used on the writer thread only."""

    __slots__ = ("_frontiers",)

    def __init__(self) -> None:
        self._frontiers: dict[str, merkle.TreeFrontier] = {}

    def stage(
        self, conn: sqlite3.Connection, appends: Sequence[LogAppend], leaves: Sequence[bytes]
    ) -> tuple[list[int], dict[str, merkle.TreeFrontier]]:
        """Inside an open write transaction: insert the appends, in order, and advance the heads.

        leaves[i] is merkle.leaf_hash(appends[i].entry) (hashed before the transaction, so the
        write lock is held for less time). Returns each append's index and the grown frontiers,
        to be handed to keep() once the transaction committed. Statements: one read of the head
        per log touched (plus O(log n) lookups to rebuild a stale frontier), then one
        executemany per table.
        """
        frontiers: dict[str, merkle.TreeFrontier] = {}
        for log in dict.fromkeys(append.log for append in appends):
            row = conn.execute(sql.LOG_SIZE, (log,)).fetchone()
            size = 0 if row is None else int(row[0])
            frontier = self._frontiers.pop(log, None)  # put back by keep() after COMMIT
            if frontier is None or frontier.size != size:
                frontier = self._rebuild(conn, log, size)
            frontiers[log] = frontier
        indexes: list[int] = []
        entries: list[tuple[str, int, bytes]] = []
        keys: list[tuple[str, int, bytes]] = []
        nodes: list[tuple[str, int, int, bytes]] = []
        for append, leaf in zip(appends, leaves, strict=True):
            frontier = frontiers[append.log]
            index = frontier.size
            indexes.append(index)
            entries.append((append.log, index, append.entry))
            keys.append((append.log, index, append.key))
            nodes += [(append.log, level, i, digest) for level, i, digest in frontier.append(leaf)]
        conn.executemany(sql.INSERT_LOG_ENTRY, entries)
        conn.executemany(sql.INSERT_LOG_KEY, keys)
        conn.executemany(sql.INSERT_LOG_NODE, nodes)
        conn.executemany(sql.UPSERT_LOG_SIZE, [(log, f.size) for log, f in frontiers.items()])
        return indexes, frontiers

    def keep(self, frontiers: dict[str, merkle.TreeFrontier]) -> None:
        """After COMMIT: cache the frontiers a committed batch grew."""
        self._frontiers.update(frontiers)

    @staticmethod
    def _rebuild(conn: sqlite3.Connection, log: str, size: int) -> merkle.TreeFrontier:
        if size == 0:
            return merkle.TreeFrontier()
        wanted = merkle.range_nodes(0, size)
        found = load_nodes(conn, log, wanted)
        return merkle.TreeFrontier(size, [found[node] for node in wanted])
