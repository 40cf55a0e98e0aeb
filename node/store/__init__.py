"""The node's storage: a narrow async interface (Store) and its SQLite engine (SqliteStore).

Example::

    from sseaun.node.store import NewRecord, SqliteStore

    async with await SqliteStore.open(Path("node.db")) as store:
        if not await store.claim_nonce(verified.nonce_key, verified.nonce_expires_at):
            ...  # refuse: REPLAYED_NONCE
        await store.put_records([NewRecord(...)])
        page = await store.list_records(
            "institutions/ynu.edu.cn/courses", reader="chula.ac.th", limit=100
        )
"""

from ._errors import (
    StoreClosedError,
    StoreConflictError,
    StoreError,
    StoreVersionError,
    VersionProblem,
)
from ._interface import Store
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
from ._schema import SCHEMA_VERSION
from ._sqlite import SqliteStore

__all__ = [
    "SCHEMA_VERSION",
    "Evidence",
    "LogEntry",
    "NewRecord",
    "OutboxItem",
    "PutOutcome",
    "PutStatus",
    "SqliteStore",
    "Store",
    "StoreClosedError",
    "StoreConflictError",
    "StoreError",
    "StoreStatistics",
    "StoreVersionError",
    "StoredCheckpoint",
    "StoredRecord",
    "VersionProblem",
]
