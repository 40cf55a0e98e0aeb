"""The SQLite schema as a list of versioned migrations, applied on open.

The schema version is ``PRAGMA user_version`` (kept in the file header, so it needs no table and
is written in the same transaction as the schema change it records). Migration N brings the
file from version N-1 to N; each runs in its own BEGIN IMMEDIATE transaction that re-reads the
version first, so running the list again, or from two processes at once, is a no-op. A
migration is a function of a sqlite_utils Database: plain DDL where we need SQLite features
sqlite-utils cannot express (STRICT, WITHOUT ROWID, AUTOINCREMENT, partial indexes), sqlite-utils
``transform()`` and ``add_column()`` for later changes, since SQLite's ALTER TABLE is limited.
Never edit a released migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from sqlite_utils import Database

from ._errors import StoreError

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "immediate", "migrate"]

#: ``PRAGMA application_id`` of an SSEAUN store ("SSEA"), so tools and we can recognise the file.
APPLICATION_ID: Final = 0x53534541

Migration = Callable[[Database], None]

# Times are INTEGER microseconds since the Unix epoch (UTC): exact, ordered and cheap to index.
_V1 = """
-- Every stored version of every record. The rowid is the change-feed sequence: AUTOINCREMENT
-- so a sequence is never reused, even if the newest row is ever deleted (a cursor must not
-- silently skip or repeat).
CREATE TABLE record_versions (
    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    parent TEXT NOT NULL,
    issuer TEXT NOT NULL,
    payload_type TEXT NOT NULL,
    envelope BLOB NOT NULL,
    parties TEXT NOT NULL,  -- JSON array as in the record header, for answering
    public INTEGER NOT NULL CHECK (public IN (0, 1)),  -- parties is empty
    deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    issued_at INTEGER NOT NULL,
    UNIQUE (name, version)
) STRICT;
CREATE INDEX record_versions_feed ON record_versions (parent, sequence);
CREATE INDEX record_versions_public_feed ON record_versions (parent, sequence) WHERE public = 1;

-- Who may read each private version, keyed for the feed of one reader: an index range per
-- (reader, collection) in sequence order, so a page costs O(page), not O(collection).
CREATE TABLE change_parties (
    party TEXT NOT NULL,
    parent TEXT NOT NULL,
    sequence INTEGER NOT NULL REFERENCES record_versions (sequence),
    PRIMARY KEY (party, parent, sequence)
) STRICT, WITHOUT ROWID;

-- The latest version of each record.
CREATE TABLE records (
    name TEXT PRIMARY KEY,
    parent TEXT NOT NULL,
    version INTEGER NOT NULL,
    sequence INTEGER NOT NULL UNIQUE REFERENCES record_versions (sequence),
    public INTEGER NOT NULL CHECK (public IN (0, 1)),
    deleted INTEGER NOT NULL CHECK (deleted IN (0, 1))
) STRICT, WITHOUT ROWID;
CREATE INDEX records_listed_public ON records (parent, name, sequence)
    WHERE public = 1 AND deleted = 0;

-- Who may read each live private record: as change_parties, in name order for listing.
CREATE TABLE record_parties (
    party TEXT NOT NULL,
    parent TEXT NOT NULL,
    name TEXT NOT NULL REFERENCES records (name),
    PRIMARY KEY (party, parent, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE import_batches (
    batch_id TEXT PRIMARY KEY,
    completed_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE nonces (
    key BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX nonces_expiry ON nonces (expires_at);

CREATE TABLE manifests (
    version INTEGER PRIMARY KEY CHECK (version >= 1),
    envelope BLOB NOT NULL,
    digest BLOB NOT NULL
) STRICT;

CREATE TABLE statements (
    kind TEXT NOT NULL,
    institution TEXT NOT NULL,
    serial_or_key TEXT NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (kind, institution, serial_or_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    fingerprint BLOB NOT NULL UNIQUE,  -- SHA-256 of kind, detail and envelopes: kept once
    recorded_at INTEGER NOT NULL
) STRICT;
CREATE TABLE evidence_envelopes (
    evidence_id INTEGER NOT NULL REFERENCES evidence (id),
    position INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    PRIMARY KEY (evidence_id, position)
) STRICT, WITHOUT ROWID;

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT, WITHOUT ROWID;
"""


def _v1_initial(db: Database) -> None:
    """Records and their change feed, nonces, manifests, statements, evidence, settings."""
    db.executescript(_V1)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")


# Access logs (spec LOG). Entries are numbered per log from 0; log_heads.size is the number of
# entries, read and advanced in the appending transaction, so two processes appending to one
# file never share an index. log_nodes holds every perfect subtree (level 0: the leaf hashes),
# about 2 rows per entry, so a proof or a root is O(log n) point lookups. The keys live apart
# from the entries: erasing one deletes a key row and never touches the entry the tree commits
# to. No foreign keys on the append path's tables: each would cost a lookup per row on every
# call's path, and the appending transaction writes all of them together anyway.
_V2 = """
CREATE TABLE log_entries (
    log TEXT NOT NULL,
    idx INTEGER NOT NULL CHECK (idx >= 0),
    entry BLOB NOT NULL,  -- the Merkle leaf data, exactly as appended
    PRIMARY KEY (log, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE log_entry_keys (
    log TEXT NOT NULL,
    idx INTEGER NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (log, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE log_nodes (
    log TEXT NOT NULL,
    level INTEGER NOT NULL CHECK (level >= 0),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    hash BLOB NOT NULL,
    PRIMARY KEY (log, level, idx)
) STRICT, WITHOUT ROWID;

-- One row per log with entries or checkpoints (size 0 for a log with checkpoints only).
CREATE TABLE log_heads (
    log TEXT PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0)
) STRICT, WITHOUT ROWID;

-- Checkpoints the node signed: kept forever, one per size.
CREATE TABLE log_checkpoints (
    log TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    signed_at INTEGER NOT NULL,
    PRIMARY KEY (log, size)
) STRICT, WITHOUT ROWID;

CREATE TABLE log_cosignatures (
    log TEXT NOT NULL,
    size INTEGER NOT NULL,
    witness TEXT NOT NULL,
    line TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (log, size, witness),
    FOREIGN KEY (log, size) REFERENCES log_checkpoints (log, size)
) STRICT, WITHOUT ROWID;

-- As a witness: the newest checkpoint of another node's log this node verified.
CREATE TABLE witnessed (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    note TEXT NOT NULL,
    seen_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"""


def _v2_access_logs(db: Database) -> None:
    """Access logs: entries, their keys, Merkle nodes, heads, checkpoints, cosignatures, and
    the checkpoints witnessed for other logs.
    """
    db.executescript(_V2)


# Replication between nodes and the outbox. change_parties_by_party is the exchange feed: every
# private version a reader is a party of, across collections, is one index range in sequence
# order (the primary key groups by collection first). The index holds the whole key, so the
# range itself answers which sequences to read. The outbox keeps notifications to partners until
# they are delivered; a pending item is found by when it is due (outbox_due, which also counts
# the pending ones) and by whom and what it is about (outbox_coalesce), a delivered one by when
# it was delivered, for purging. The partial indexes stay as small as the pending work.
_V3 = """
CREATE INDEX change_parties_by_party ON change_parties (party, sequence);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error TEXT
) STRICT;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX outbox_coalesce ON outbox (recipient, topic) WHERE delivered_at IS NULL;
CREATE INDEX outbox_delivered ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;

-- Which stored records are about another record (a decision names the record it decides on), so
-- the inputs of a record's state are found without reading every decision.
CREATE TABLE record_subjects (
    subject TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (subject, name)
) STRICT, WITHOUT ROWID;
"""


def _v3_exchange(db: Database) -> None:
    """The exchange feed's index (each reader's private versions across collections), the
    outbox of notifications to partners, and the records about other records (decisions).
    """
    db.executescript(_V3)


#: Migration N (1-based) brings the schema from version N-1 to N.
MIGRATIONS: Final[tuple[Migration, ...]] = (_v1_initial, _v2_access_logs, _v3_exchange)

#: The schema version this code writes and reads.
SCHEMA_VERSION: Final = len(MIGRATIONS)


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taking the write lock at BEGIN; rolled back if the block raises.

    IMMEDIATE rather than DEFERRED: a deferred transaction that reads first and another process
    commits in between fails with SQLITE_BUSY_SNAPSHOT at its first write, without waiting;
    taking the lock up front lets busy_timeout apply instead.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # Some errors (SQLITE_FULL, SQLITE_IOERR) already rolled the transaction back.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the pending migrations; return the schema version.

    Raises:
        StoreError: the file belongs to another application, or was written by a newer node.
    """
    db = Database(conn, execute_plugins=False)
    while True:
        with immediate(conn):
            version = _pragma_int(conn, "user_version")
            application_id = _pragma_int(conn, "application_id")
            if version == 0 and application_id == 0:
                if conn.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchone() is not None:
                    raise StoreError("the database file has tables but is not an SSEAUN store")
            elif application_id != APPLICATION_ID:
                raise StoreError("the database file is not an SSEAUN store")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database has schema version {version}, newer than this node's "
                    f"{SCHEMA_VERSION}: upgrade the node (never downgrade past a migration)"
                )
            if version == SCHEMA_VERSION:
                return version
            MIGRATIONS[version](db)
            conn.execute(f"PRAGMA user_version = {version + 1}")


def _pragma_int(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute(f"PRAGMA {name}").fetchone()
    return int(row[0])
