"""The SQL the SQLite store runs, and how its rows and columns map to Python values.

Queries are constant strings, so sqlite3 prepares each once per connection and keeps it in its
statement cache. The comments say which index each query relies on; tests check the plans.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ._model import OutboxItem, StoredRecord

__all__ = [
    "BATCH_DONE",
    "CHANGES",
    "CHECKPOINTS",
    "CHECKPOINT_ROOT",
    "CLAIM",
    "COSIGNATURES",
    "COSIGNATURES_OF",
    "DELETE_LOG_KEY",
    "DELETE_OUTBOX_ITEM",
    "DELETE_RECORD_PARTY",
    "DELETE_VERSION",
    "DUE_OUTBOX",
    "ENSURE_LOG_HEAD",
    "EXCHANGE_CHANGES",
    "EXCHANGE_HEAD",
    "GET_LATEST",
    "GET_VERSION",
    "HEAD",
    "HEAD_SEQUENCE",
    "INSERT_BATCH",
    "INSERT_CHANGE_PARTY",
    "INSERT_CHECKPOINT",
    "INSERT_LOG_ENTRY",
    "INSERT_LOG_KEY",
    "INSERT_LOG_NODE",
    "INSERT_OUTBOX_ITEM",
    "INSERT_RECORD_PARTY",
    "INSERT_SUBJECT",
    "INSERT_VERSION",
    "LARGEST_CHECKPOINT_SIZE",
    "LATEST_CHECKPOINT",
    "LATEST_VERSION",
    "LIST",
    "LOGS",
    "LOG_ENTRIES",
    "LOG_NODES",
    "LOG_SIZE",
    "MERGE_SOURCE",
    "MOVE_CHANGE_PARTY",
    "MOVE_HEAD",
    "NAMES_ABOUT",
    "OUTBOX_DELIVERED",
    "OUTBOX_FAILED",
    "OUTBOX_PENDING",
    "PENDING_OUTBOX_ITEM",
    "PURGE",
    "PURGE_OUTBOX",
    "STORED",
    "UPSERT_COSIGNATURE",
    "UPSERT_HEAD",
    "UPSERT_LOG_SIZE",
    "UPSERT_WITNESSED",
    "WITNESSED",
    "from_us",
    "nodes_json",
    "outbox_item",
    "parties_from_json",
    "parties_json",
    "record",
    "to_us",
    "utcnow",
]

# Every query that answers records selects these columns in this order (see record()).
GET_VERSION: Final = """
SELECT sequence, name, version, parent, issuer, payload_type, envelope, parties, deleted,
       issued_at
FROM record_versions WHERE name = ? AND version = ?
"""
GET_LATEST: Final = """
SELECT sequence, name, version, parent, issuer, payload_type, envelope, parties, deleted,
       issued_at
FROM record_versions WHERE name = ? ORDER BY version DESC LIMIT 1
"""
LATEST_VERSION: Final = "SELECT version FROM records WHERE name = ?"
# Public live records and the reader's live private records are two index ranges in name
# order (records_listed_public and record_parties' key); the compound SELECT merges them and
# stops at the limit. Each part selects the name from the table whose index orders it, so the
# planner sees the order it needs. The parts are disjoint: a record is public or has parties.
LIST: Final = """
SELECT r.sequence AS sequence, r.name AS name, v.version, v.parent, v.issuer, v.payload_type,
       v.envelope, v.parties, v.deleted, v.issued_at
FROM records AS r JOIN record_versions AS v ON v.sequence = r.sequence
WHERE r.parent = :parent AND r.public = 1 AND r.deleted = 0 AND r.name > :after
  AND r.sequence >= :since
UNION ALL
SELECT r.sequence, p.name, v.version, v.parent, v.issuer, v.payload_type,
       v.envelope, v.parties, v.deleted, v.issued_at
FROM record_parties AS p
JOIN records AS r ON r.name = p.name
JOIN record_versions AS v ON v.sequence = r.sequence
WHERE p.party = :reader AND p.parent = :parent AND p.name > :after AND r.sequence >= :since
ORDER BY name LIMIT :limit
"""
# As LIST, over every version in sequence order (record_versions_public_feed and
# change_parties' key).
CHANGES: Final = """
SELECT v.sequence AS sequence, v.name, v.version, v.parent, v.issuer, v.payload_type,
       v.envelope, v.parties, v.deleted, v.issued_at
FROM record_versions AS v
WHERE v.parent = :parent AND v.public = 1 AND v.sequence > :after
UNION ALL
SELECT p.sequence, v.name, v.version, v.parent, v.issuer, v.payload_type,
       v.envelope, v.parties, v.deleted, v.issued_at
FROM change_parties AS p JOIN record_versions AS v ON v.sequence = p.sequence
WHERE p.party = :reader AND p.parent = :parent AND p.sequence > :after
ORDER BY sequence LIMIT :limit
"""
HEAD_SEQUENCE: Final = "SELECT max(sequence) FROM record_versions WHERE parent = ?"

# The exchange feed of one reader: its private versions of every collection, one range of
# change_parties_by_party in sequence order (the index holds the whole key, so it answers the
# range alone); then one primary-key lookup per version.
EXCHANGE_CHANGES: Final = """
SELECT p.sequence AS sequence, v.name, v.version, v.parent, v.issuer, v.payload_type,
       v.envelope, v.parties, v.deleted, v.issued_at
FROM change_parties AS p JOIN record_versions AS v ON v.sequence = p.sequence
WHERE p.party = :reader AND p.sequence > :after
ORDER BY p.sequence LIMIT :limit
"""
EXCHANGE_HEAD: Final = "SELECT max(sequence) FROM change_parties WHERE party = ?"

# merge_version: the version's row is read, deleted and inserted again with the merged envelope
# (a fresh AUTOINCREMENT sequence), and the rows that reference it follow it.
MERGE_SOURCE: Final = """
SELECT sequence, name, version, parent, issuer, payload_type, envelope, parties, public, deleted,
       issued_at
FROM record_versions WHERE name = ? AND version = ?
"""
DELETE_VERSION: Final = "DELETE FROM record_versions WHERE sequence = ?"
MOVE_CHANGE_PARTY: Final = (
    "UPDATE change_parties SET sequence = ? WHERE party = ? AND parent = ? AND sequence = ?"
)
MOVE_HEAD: Final = "UPDATE records SET sequence = ? WHERE name = ? AND sequence = ?"

STORED: Final = "SELECT sequence, envelope FROM record_versions WHERE name = ? AND version = ?"
HEAD: Final = """
SELECT r.version, r.public, r.deleted, v.parties
FROM records AS r JOIN record_versions AS v ON v.sequence = r.sequence
WHERE r.name = ?
"""
INSERT_VERSION: Final = """
INSERT INTO record_versions
    (name, version, parent, issuer, payload_type, envelope, parties, public, deleted, issued_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
INSERT_CHANGE_PARTY: Final = "INSERT INTO change_parties (party, parent, sequence) VALUES (?, ?, ?)"
DELETE_RECORD_PARTY: Final = (
    "DELETE FROM record_parties WHERE party = ? AND parent = ? AND name = ?"
)
INSERT_RECORD_PARTY: Final = "INSERT INTO record_parties (party, parent, name) VALUES (?, ?, ?)"
UPSERT_HEAD: Final = """
INSERT INTO records (name, parent, version, sequence, public, deleted)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    version = excluded.version, sequence = excluded.sequence,
    public = excluded.public, deleted = excluded.deleted
"""
BATCH_DONE: Final = "SELECT 1 FROM import_batches WHERE batch_id = ?"
INSERT_BATCH: Final = "INSERT INTO import_batches (batch_id, completed_at) VALUES (?, ?)"

# Inserts an unseen key; replaces a key whose row expired but was not purged yet; otherwise
# changes nothing, so the statement's row count (1 or 0) is the answer.
CLAIM: Final = """
INSERT INTO nonces (key, expires_at) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
WHERE nonces.expires_at <= ?
"""
PURGE: Final = "DELETE FROM nonces WHERE expires_at <= ?"

# -- outbox -----------------------------------------------------------------------------------

# The newest pending item of (recipient, topic): outbox_coalesce, whose entries end in the id.
PENDING_OUTBOX_ITEM: Final = """
SELECT id, created_at, attempts, last_error FROM outbox
WHERE recipient = ? AND topic = ? AND delivered_at IS NULL
ORDER BY id DESC LIMIT 1
"""
INSERT_OUTBOX_ITEM: Final = """
INSERT INTO outbox (recipient, topic, payload, created_at, attempts, next_attempt_at, last_error)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
DELETE_OUTBOX_ITEM: Final = "DELETE FROM outbox WHERE id = ?"
# A range of outbox_due in (next_attempt_at, id) order: the index's entries end in the id.
# It selects the columns outbox_item() reads, in its order.
DUE_OUTBOX: Final = """
SELECT id, recipient, topic, payload, created_at, attempts, next_attempt_at, delivered_at,
       last_error
FROM outbox
WHERE delivered_at IS NULL AND next_attempt_at <= ?
ORDER BY next_attempt_at, id LIMIT ?
"""
OUTBOX_DELIVERED: Final = "UPDATE outbox SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL"
OUTBOX_FAILED: Final = """
UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
WHERE id = ? AND delivered_at IS NULL
"""
OUTBOX_PENDING: Final = "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
PURGE_OUTBOX: Final = "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?"

# -- access logs ------------------------------------------------------------------------------

LOG_SIZE: Final = "SELECT size FROM log_heads WHERE log = ?"
# Several nodes in one statement: ?2 is a JSON array of [level, idx] pairs. CROSS JOIN keeps
# json_each as the outer loop, so each pair is one primary-key lookup (O(len(nodes))), never a
# scan of the log's nodes.
LOG_NODES: Final = """
SELECT n.level, n.idx, n.hash
FROM json_each(?2) AS j
CROSS JOIN log_nodes AS n
    ON n.log = ?1 AND n.level = json_extract(j.value, '$[0]')
    AND n.idx = json_extract(j.value, '$[1]')
"""
INSERT_LOG_ENTRY: Final = "INSERT INTO log_entries (log, idx, entry) VALUES (?, ?, ?)"
INSERT_LOG_KEY: Final = "INSERT INTO log_entry_keys (log, idx, key) VALUES (?, ?, ?)"
INSERT_LOG_NODE: Final = "INSERT INTO log_nodes (log, level, idx, hash) VALUES (?, ?, ?, ?)"
UPSERT_LOG_SIZE: Final = """
INSERT INTO log_heads (log, size) VALUES (?, ?)
ON CONFLICT (log) DO UPDATE SET size = excluded.size
"""
# A log with checkpoints only still gets a head (size 0), so LOGS reads one small table.
ENSURE_LOG_HEAD: Final = (
    "INSERT INTO log_heads (log, size) VALUES (?, 0) ON CONFLICT (log) DO NOTHING"
)
LOGS: Final = "SELECT log FROM log_heads ORDER BY log"
LOG_ENTRIES: Final = """
SELECT e.idx, e.entry, k.key
FROM log_entries AS e
LEFT JOIN log_entry_keys AS k ON k.log = e.log AND k.idx = e.idx
WHERE e.log = ? AND e.idx >= ?
ORDER BY e.idx LIMIT ?
"""
DELETE_LOG_KEY: Final = "DELETE FROM log_entry_keys WHERE log = ? AND idx = ?"
CHECKPOINT_ROOT: Final = "SELECT root FROM log_checkpoints WHERE log = ? AND size = ?"
LARGEST_CHECKPOINT_SIZE: Final = "SELECT max(size) FROM log_checkpoints WHERE log = ?"
INSERT_CHECKPOINT: Final = """
INSERT INTO log_checkpoints (log, size, root, note, signed_at) VALUES (?, ?, ?, ?, ?)
"""
CHECKPOINTS: Final = """
SELECT size, root, note, signed_at FROM log_checkpoints WHERE log = ? ORDER BY size
"""
LATEST_CHECKPOINT: Final = """
SELECT size, root, note, signed_at FROM log_checkpoints WHERE log = ? ORDER BY size DESC LIMIT 1
"""
# Cosignatures in the order received (a witness's replaced line counts as received anew; the
# same line again changes nothing).
COSIGNATURES: Final = """
SELECT size, line FROM log_cosignatures WHERE log = ? ORDER BY size, recorded_at, witness
"""
COSIGNATURES_OF: Final = """
SELECT line FROM log_cosignatures WHERE log = ? AND size = ? ORDER BY recorded_at, witness
"""
UPSERT_COSIGNATURE: Final = """
INSERT INTO log_cosignatures (log, size, witness, line, recorded_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (log, size, witness) DO UPDATE SET
    line = excluded.line, recorded_at = excluded.recorded_at
WHERE log_cosignatures.line != excluded.line
"""
UPSERT_WITNESSED: Final = """
INSERT INTO witnessed (origin, size, note, seen_at) VALUES (?, ?, ?, ?)
ON CONFLICT (origin) DO UPDATE SET
    size = excluded.size, note = excluded.note, seen_at = excluded.seen_at
"""
WITNESSED: Final = "SELECT size, note FROM witnessed WHERE origin = ?"


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def to_us(value: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return (value - _EPOCH) // _MICROSECOND


def from_us(value: int) -> datetime:
    """The aware UTC datetime of microseconds since the Unix epoch."""
    return _EPOCH + timedelta(microseconds=value)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def parties_json(parties: tuple[str, ...]) -> str:
    """The parties column: a compact JSON array in the header's order."""
    return json.dumps(list(parties), separators=(",", ":"))


def parties_from_json(text: str) -> tuple[str, ...]:
    """The parties of a parties column; public records skip the JSON parser."""
    return () if text == "[]" else tuple(json.loads(text))


def nodes_json(nodes: Iterable[tuple[int, int]]) -> str:
    """LOG_NODES' parameter: the (level, index) pairs as a JSON array of pairs."""
    return json.dumps([[int(level), int(index)] for level, index in nodes], separators=(",", ":"))


def record(row: tuple[Any, ...]) -> StoredRecord:
    """The StoredRecord of a row of the record columns (in GET_VERSION's order)."""
    sequence, name, version, parent, issuer, payload_type, envelope, parties, deleted, at = row
    return StoredRecord(
        name=name,
        parent=parent,
        version=version,
        issuer=issuer,
        payload_type=payload_type,
        envelope=envelope,
        parties=parties_from_json(parties),
        deleted=bool(deleted),
        issued_at=from_us(at),
        sequence=sequence,
    )


def outbox_item(row: tuple[Any, ...]) -> OutboxItem:
    """The OutboxItem of a row of the outbox's columns (in DUE_OUTBOX's order)."""
    item_id, recipient, topic, payload, created, attempts, next_at, delivered, last_error = row
    return OutboxItem(
        id=item_id,
        recipient=recipient,
        topic=topic,
        payload=bytes(payload),
        created_at=from_us(created),
        attempts=attempts,
        next_attempt_at=from_us(next_at),
        delivered_at=None if delivered is None else from_us(delivered),
        last_error=last_error,
    )


INSERT_SUBJECT: Final = "INSERT OR IGNORE INTO record_subjects (subject, name) VALUES (?, ?)"
# The primary key's range for one subject.
NAMES_ABOUT: Final = "SELECT name FROM record_subjects WHERE subject = ? ORDER BY name"
