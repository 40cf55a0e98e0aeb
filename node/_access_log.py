"""One institution's access log on this node: appends, checkpoints and proofs (spec LOG).

The Merkle maths and the entry format are the sdk core's; this class only decides when to
append and sign, and reads the stored perfect subtrees that proofs are built from.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable
from datetime import datetime

from sseaun.sdk.core import (
    Checkpoint,
    ProtocolError,
    Reason,
    Signer,
    access_log,
    merkle,
    sign_checkpoint,
)

from .store import Store, StoreConflictError, StoredCheckpoint, StoreError

__all__ = ["AccessLog"]

log = logging.getLogger("sseaun.node")
_UNSIGNABLE = "the access log cannot be checkpointed"


class AccessLog:
    """The access log of one institution the node serves."""

    def __init__(
        self,
        store: Store,
        *,
        network_id: str,
        institution: str,
        signer: Signer,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.institution = institution
        self.origin = access_log.log_origin(network_id, institution)
        self.signer = signer
        self.clock = clock
        #: Why the node must not sign checkpoints now (LOG-7), or None.
        self.problem: str | None = None
        self._signing = asyncio.Lock()

    async def append(
        self,
        *,
        caller: str,
        method: str,
        purpose: int,
        outcome: str,
        record_names: Iterable[str] = (),
        request_digest: bytes = b"",
    ) -> int:
        """Log one access; its index once durable (LOG-3, LOG-5).

        record_names is read before the first await, so the caller may reuse it.
        """
        key = access_log.new_entry_key()
        entry = access_log.access_entry(
            log_origin=self.origin,
            time=self.clock(),
            caller=caller,
            method=method,
            purpose=purpose,
            outcome=outcome,
            record_names=record_names,
            entry_key=key,
            request_digest=request_digest,
        )
        return await self.store.append_log(self.institution, entry, key)

    async def size(self) -> int:
        return await self.store.log_size(self.institution)

    async def root(self, size: int) -> bytes:
        """The root of the stored tree at size (which must not exceed the log)."""
        if size == 0:
            return merkle.EMPTY_ROOT
        plan = merkle.root_plan(size)
        return plan.build(await self.store.log_nodes(self.institution, plan.nodes()))[0]

    async def _check_size(self, field: str, size: int, least: int) -> None:
        if size < least or size > await self.size():
            raise ProtocolError(
                Reason.OUT_OF_RANGE,
                f"{field} is outside the log",
                metadata={field.replace("_", "-"): str(size)},
            )

    async def _nodes(
        self, field: str, size: int, nodes: Collection[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        """The stored nodes of a plan for a tree of size (>= 1), in one reader round trip.

        The nodes of an inclusion or consistency plan (with the leaf, for inclusion) cover the
        tree's last leaf, so some node is missing exactly when size is beyond the log: the
        log's size is read only then, to tell OUT_OF_RANGE from a node the store lost.

        Raises:
            ProtocolError: OUT_OF_RANGE (size is beyond the log).
            StoreError: a node within the log is not stored.
        """
        try:
            return await self.store.log_nodes(self.institution, nodes)
        except StoreError:
            await self._check_size(field, size, 1)  # raises OUT_OF_RANGE if beyond the log
        # The log has reached size meanwhile (another append), or a node is lost: one more try.
        return await self.store.log_nodes(self.institution, nodes)

    async def inclusion(self, index: int, tree_size: int) -> tuple[bytes, list[bytes]]:
        """The leaf hash of an entry and its audit path in the tree of tree_size.

        Raises:
            ProtocolError: OUT_OF_RANGE.
        """
        if tree_size < 1 or not 0 <= index < tree_size:
            await self._check_size("tree_size", tree_size, 1)  # the size is the first check
            if index >= tree_size:
                raise ProtocolError(
                    Reason.OUT_OF_RANGE,
                    "index is outside the tree",
                    metadata={"index": str(index)},
                )
        plan = merkle.inclusion_plan(index, tree_size)  # MALFORMED for a negative index
        nodes = await self._nodes("tree_size", tree_size, plan.nodes() | {(0, index)})
        return nodes[(0, index)], plan.build(nodes)

    async def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """The consistency proof from old_size to new_size (1 <= old <= new <= size).

        Raises:
            ProtocolError: OUT_OF_RANGE.
        """
        if new_size < 1 or not 1 <= old_size < new_size:
            # Nothing to read (old = new) or a refusal: the size is checked on its own.
            await self._check_size("new_size", new_size, 1)
            if not 1 <= old_size <= new_size:
                raise ProtocolError(
                    Reason.OUT_OF_RANGE,
                    "old_size is outside the tree",
                    metadata={"old-size": str(old_size)},
                )
            return []
        plan = merkle.consistency_plan(old_size, new_size)
        return plan.build(await self._nodes("new_size", new_size, plan.nodes()))

    async def entry(self, index: int) -> bytes | None:
        entries = await self.store.log_entries(self.institution, index, 1)
        return entries[0].entry if entries else None

    async def check_head(self) -> None:
        """Check the stored tree still has the root of the newest checkpoint (LOG-7)."""
        latest = await self.store.latest_checkpoint(self.institution)
        if latest is None:
            return
        size = await self.size()
        if size < latest.size:
            self._refuse(f"the log holds {size} entries but checkpoint {latest.size} was signed")
        elif await self.root(latest.size) != latest.root:
            self._refuse(f"the stored tree no longer has the root of checkpoint {latest.size}")

    def _refuse(self, why: str) -> None:
        self.problem = why
        log.error("access log %s: %s; no checkpoint will be signed", self.institution, why)
        raise ProtocolError(Reason.LOG_INCONSISTENT, _UNSIGNABLE)

    async def checkpoint(self, min_size: int = 0) -> StoredCheckpoint:
        """The newest checkpoint, signing a new one when it is smaller than min_size.

        Raises:
            ProtocolError: OUT_OF_RANGE (min_size beyond the log); LOG_INCONSISTENT (the
                stored tree does not extend the last checkpoint: nothing is signed).
        """
        latest = await self.store.latest_checkpoint(self.institution)
        if latest is not None and latest.size >= min_size:
            return latest
        if min_size > await self.size():
            raise ProtocolError(
                Reason.OUT_OF_RANGE,
                "the log has not reached min_size",
                metadata={"min-size": str(min_size)},
            )
        return await self.sign()

    async def sign(self) -> StoredCheckpoint:
        """Sign a checkpoint of the whole log, unless the newest one already covers it.

        Raises:
            ProtocolError: LOG_INCONSISTENT (see checkpoint).
        """
        async with self._signing:
            if self.problem is not None:
                raise ProtocolError(
                    Reason.LOG_INCONSISTENT, "the access log cannot be checkpointed"
                )
            latest = await self.store.latest_checkpoint(self.institution)
            size = await self.size()
            if latest is not None and latest.size == size:
                return latest
            await self.check_head()
            root = await self.root(size)
            note = sign_checkpoint(Checkpoint(self.origin, size, root), self.origin, self.signer)
            now = self.clock()
            try:
                await self.store.put_checkpoint(self.institution, size, root, note.text(), now)
            except StoreConflictError as exc:
                # Another process sharing the database signed a larger or different one.
                self._refuse(f"checkpoint {size} conflicts with a stored one: {exc}")
            stored = await self.store.latest_checkpoint(self.institution)
            assert stored is not None
            return stored
