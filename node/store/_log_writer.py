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

The append path is the hottest write of the node (one per call), so it is written for few
Python objects: an append is a plain tuple, the frontier is grown inline (the same hashing as
merkle.TreeFrontier.append, which tests/test_store_log.py checks against merkle.root_hash), and
the rows go to SQLite in one executemany per table.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import Sequence

from sseaun.sdk.core import merkle

from . import _sql as sql
from ._errors import StoreError

__all__ = ["LogAppend", "LogFrontier", "LogWriter", "leaf_hashes", "load_nodes"]

#: One queued append_log call: (log, entry, key, future answered with its index after COMMIT).
LogAppend = tuple[str, bytes, bytes, asyncio.Future[int]]

_sha256 = hashlib.sha256


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


class LogFrontier:
    """A log's size and the roots of its right-edge perfect subtrees, largest (leftmost) first:
    the hashes of merkle.range_nodes(0, size)."""

    __slots__ = ("nodes", "size")

    def __init__(self, size: int, nodes: list[bytes]) -> None:
        self.size = size
        self.nodes = nodes


def leaf_hashes(appends: Sequence[LogAppend]) -> list[bytes]:
    """merkle.leaf_hash of each append's entry (computed before the transaction begins)."""
    return [_sha256(b"\x00" + append[1]).digest() for append in appends]


class LogWriter:
    """Stages appends in the writer's transaction; used on the writer thread only."""

    __slots__ = ("_frontiers",)

    def __init__(self) -> None:
        self._frontiers: dict[str, LogFrontier] = {}

    def stage(
        self, conn: sqlite3.Connection, appends: Sequence[LogAppend], leaves: Sequence[bytes]
    ) -> tuple[list[int], dict[str, LogFrontier]]:
        """Inside an open write transaction: insert the appends, in order, and advance the heads.

        leaves[i] is merkle.leaf_hash of appends[i]'s entry (leaf_hashes, before the
        transaction, so the write lock is held for less time). Returns each append's index and
        the grown frontiers, to be handed to keep() once the transaction committed. Statements:
        one read of the head per log touched (plus O(log n) lookups to rebuild a stale
        frontier), then one executemany per table.
        """
        frontiers: dict[str, LogFrontier] = {}
        for log in {append[0]: None for append in appends}:
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
        sha256 = _sha256
        for (log, entry, key, _), leaf in zip(appends, leaves, strict=True):
            frontier = frontiers[log]
            index = frontier.size
            indexes.append(index)
            entries.append((log, index, entry))
            keys.append((log, index, key))
            nodes.append((log, 0, index, leaf))
            # As merkle.TreeFrontier.append: each set low bit of the index is a left sibling
            # of the same level waiting on the frontier; merging them makes one node per level.
            stack, current, level, position = frontier.nodes, leaf, 0, index
            while position & 1:
                current = sha256(b"\x01" + stack.pop() + current).digest()
                level += 1
                position >>= 1
                nodes.append((log, level, position, current))
            stack.append(current)
            frontier.size = index + 1
        conn.executemany(sql.INSERT_LOG_ENTRY, entries)
        conn.executemany(sql.INSERT_LOG_KEY, keys)
        conn.executemany(sql.INSERT_LOG_NODE, nodes)
        conn.executemany(sql.UPSERT_LOG_SIZE, [(log, f.size) for log, f in frontiers.items()])
        return indexes, frontiers

    def keep(self, frontiers: dict[str, LogFrontier]) -> None:
        """After COMMIT: cache the frontiers a committed batch grew."""
        self._frontiers.update(frontiers)

    @staticmethod
    def _rebuild(conn: sqlite3.Connection, log: str, size: int) -> LogFrontier:
        if size == 0:
            return LogFrontier(0, [])
        wanted = merkle.range_nodes(0, size)
        found = load_nodes(conn, log, wanted)
        return LogFrontier(size, [found[node] for node in wanted])
