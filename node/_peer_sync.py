"""Peer sync: a verified copy of partners' public catalogues, read from their change feeds.

For each peer institution named in ``[sync] peers`` the node follows two collections of the
peer's node: ``institutions/{id}`` (the institution profile) and ``institutions/{id}/courses``.
It calls the peer with the SDK's AsyncNodeClient, as the first institution it serves (its
transport key), at the peer's gRPC endpoint from the trusted manifest; the client verifies every
feed page and the chain of pages (spec AUTH-16).

Every change is then checked on its own, because a page signed by the peer's node only proves
what that node sent, not that the record is genuine:

1. the record's envelope verifies with an ISSUING key of the institution its header names as
   issuer (``KeyRing.verify``, ``new_call=False``: a key revoked later still counts for what it
   signed before the compromise time), under the payload type of the collection;
2. the header: the issuer is the peer, the name is in the collection, the version is 1 or more;
3. the content follows the catalogue rules (``validate_course`` / ``validate_profile``). Credit
   scheme IDs are checked for form only: a peer may use a scheme of a newer manifest than ours,
   and refusing it would skip the record for good.

A record that passes is stored with ``put_records`` as the envelope bytes received (serialised
from the received Envelope message, never re-signed), so this node serves the issuer's own
signature on. A record that fails is not stored; it is counted by reason and logged with the
peer, the collection, its feed position and the reason, never its content. A later version of a
refused record cannot be stored either (versions are stored without gaps): it is refused as
STALE_VERSION. Two different envelopes for one (name, version) are the issuer's equivocation: the
second is refused and both are kept as evidence.

Exactly once. Pages are processed in order, each page's records committed in one transaction,
and the page's cursor saved (``set_setting``) only after that commit. A crash between the two
re-fetches one page, which put_records stores idempotently (UNCHANGED), so the store receives
every change exactly once and the sync resumes where it stopped. A report counts committed
pages only, so what it (and the progress of ``sseaun node sync``) says is done is stored.

Throughput and memory. The records of a page are checked on two worker threads (the event loop
stays free to answer calls; one thread's Ed25519 verify releases the GIL while the other runs
Python), and the next page is checked while the previous one commits on the store's writer
thread. At most one page is in flight, so memory is bounded by two pages (plus gRPC's receive
window) whatever the length of the feed.

Catch-up streams are closed after PAGES_PER_STREAM pages and re-opened from the cursor, so no
call needs an unbounded deadline; a stream that breaks after progress is resumed the same way.
A cursor the peer no longer accepts (its database restored, say) restarts the feed from the
beginning once: what is held already counts as unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, cast

from google.protobuf.message import Message

from sseaun.sdk.client import (
    AsyncNodeClient,
    ClientConfig,
    ClientError,
    NodeError,
    TransportError,
)
from sseaun.sdk.core import (
    Envelope,
    KeyRing,
    ProtocolError,
    Reason,
    catalogue,
    from_timestamp,
    payload_types,
)
from sseaun.v1 import service_pb2 as svc
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.catalogue_pb2 import Course, InstitutionProfile, RecordHeader
from sseaun.v1.manifest_pb2 import EndpointKind, KeyPurpose, MemberStatus

from ._runtime import Node
from .store import NewRecord, PutStatus, StoreConflictError, StoreError, StoreVersionError

__all__ = [
    "CollectionReport",
    "PeerEndpoint",
    "PeerSync",
    "SyncError",
    "active_partners",
    "check_record",
    "collections_of",
    "cursor_setting",
    "partner_client",
    "peer_endpoint",
]

log = logging.getLogger("sseaun.node.sync")

#: Why the node reads a peer's catalogue (a closed list; spec AUTH-3).
PURPOSE: Final = Purpose.PURPOSE_NETWORK_OPERATIONS
#: A catch-up stream is closed after this many pages and re-opened from its cursor, so no
#: single call needs an unbounded deadline.
PAGES_PER_STREAM: Final = 50
#: Deadline of one catch-up stream (at most PAGES_PER_STREAM pages).
STREAM_SECONDS: Final = 120.0
#: Deadline of one following stream; it is re-opened (with the current key ring) afterwards.
FOLLOW_SECONDS: Final = 300.0
#: Worker threads checking a page's records, each a part of the page. Two: a record's check is
#: about 100 us of Ed25519 verify (which releases the GIL) and 75 us of Python, so two threads
#: keep two cores busy; a third only adds GIL hand-offs.
_CHECK_THREADS: Final = min(2, os.cpu_count() or 1)
_ISSUING: Final = KeyPurpose.KEY_PURPOSE_ISSUING
_COURSE_TYPES: Final = frozenset({payload_types.COURSE})
_PROFILE_TYPES: Final = frozenset({payload_types.INSTITUTION_PROFILE})


class SyncError(Exception):
    """A peer cannot be synced at all (not a member, no usable endpoint); one line, no secrets."""


@dataclass
class CollectionReport:
    """What syncing one collection of one peer did (so far)."""

    peer: str
    parent: str
    #: Changes received in verified pages.
    received: int = 0
    #: Record versions stored now.
    stored: int = 0
    #: Record versions already held with the same bytes (a page fetched again).
    unchanged: int = 0
    #: Changes refused, by reason (``Reason`` values).
    refusals: Counter[str] = field(default_factory=Counter)
    #: Pages committed (their records stored and the cursor saved).
    pages: int = 0
    #: The feed was read up to the newest change the peer held.
    caught_up: bool = False
    #: Why the sync stopped early, if it did.
    error: str | None = None

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())

    def summary(self) -> str:
        """One line of counts, e.g. for the CLI."""
        refused = ", ".join(f"{k}: {v}" for k, v in sorted(self.refusals.items()))
        text = (
            f"{self.peer} {self.parent}: {self.received} change(s) received, {self.stored} "
            f"stored, {self.unchanged} unchanged, {self.refused} refused"
            + (f" ({refused})" if refused else "")
        )
        if self.error:
            return f"{text}; stopped: {self.error}"
        return f"{text}{', caught up' if self.caught_up else ''}"


@dataclass(frozen=True)
class PeerEndpoint:
    """Where a peer's node answers gRPC, and whether over TLS."""

    target: str
    tls: bool


def peer_endpoint(keyring: KeyRing, peer: str) -> PeerEndpoint:
    """The peer's gRPC endpoint: from its newest accepted delegation, else its manifest entry.

    Raises:
        SyncError: the peer is not an active member or lists no gRPC endpoint.
    """
    member = keyring.member(peer)
    if member is None:
        raise SyncError(f"{peer} is not a member of network {keyring.network_id}")
    if member.status != MemberStatus.MEMBER_STATUS_ACTIVE:
        raise SyncError(f"{peer} is not an active member")
    delegation = keyring.delegation(peer)
    endpoints = list(delegation.endpoints) if delegation and delegation.endpoints else []
    endpoints += list(member.endpoints)
    for endpoint in endpoints:
        if endpoint.kind == EndpointKind.ENDPOINT_KIND_GRPC and endpoint.address:
            return PeerEndpoint(endpoint.address, endpoint.tls)
    raise SyncError(f"{peer} lists no gRPC endpoint")


def active_partners(node: Node) -> list[str]:
    """Every other active member of the trusted manifest with a gRPC endpoint."""
    served = set(node.config.institutions)
    return [
        m.institution_id
        for m in node.keyring.manifest.manifest.members
        if m.institution_id not in served
        and m.status == MemberStatus.MEMBER_STATUS_ACTIVE
        and any(e.kind == EndpointKind.ENDPOINT_KIND_GRPC for e in m.endpoints)
    ]


def partner_client(node: Node, partner: str, *, deadline: float, **options: Any) -> AsyncNodeClient:
    """An SDK client calling partner's node as the first institution this node serves, at the
    endpoint the key ring knows, with TLS roots from sync.tls_roots (options: ClientConfig).

    Raises:
        SyncError: no usable endpoint, unreadable roots, or plaintext to a non-loopback address.
    """
    config = node.config
    caller = config.institutions[0]
    endpoint = peer_endpoint(node.keyring, partner)
    try:
        roots = config.sync_tls_roots.read_bytes() if config.sync_tls_roots else None
    except OSError as exc:
        raise SyncError(f"cannot read sync.tls_roots: {exc.strerror or exc}") from exc
    try:
        client_config = ClientConfig(
            network_id=config.network_id,
            sender=caller,
            signer=node.keys[caller].transport,
            deadline=deadline,
            plaintext=not endpoint.tls,
            root_certificates=roots if endpoint.tls else None,
            max_message_size=config.max_message_bytes,
            **options,
        )
        return AsyncNodeClient(client_config, node.keyring, endpoint.target, partner)
    except ValueError as exc:  # plaintext to a non-loopback address, for one
        raise SyncError(f"{partner}: {exc}") from exc


def cursor_setting(caller: str, parent: str) -> str:
    """The setting that holds the feed cursor of a collection read as caller."""
    return f"sync-cursor/{caller}/{parent}"


def collections_of(peer: str) -> tuple[str, str]:
    """The collections of a peer that are synced: its profile's, then its courses."""
    return (
        catalogue.profile_record_name(peer).rpartition("/")[0],
        catalogue.COURSES_PARENT(peer),
    )


def _signer_of(record: Message) -> tuple[str, str, datetime]:
    header: RecordHeader = record.header  # type: ignore[attr-defined]  # Course or profile
    return header.network_id, header.issuer, from_timestamp(header.issued_at)


def check_record(
    keyring: KeyRing, peer: str, parent: str, envelope: Envelope, *, deleted: bool = False
) -> NewRecord:
    """Verify one received catalogue record of peer's collection parent; the record to store.

    Raises:
        ProtocolError: the first check that fails (see the module docstring).
    """
    courses = parent.endswith("/courses")
    message_type, allowed, validate = (
        (Course, _COURSE_TYPES, catalogue.validate_course)
        if courses
        else (InstitutionProfile, _PROFILE_TYPES, catalogue.validate_profile)
    )
    verified = keyring.verify(
        envelope,
        allowed_types=allowed,
        message_type=message_type,
        signer_of=_signer_of,
        purpose=_ISSUING,
        new_call=False,
    )
    record = verified.message
    assert isinstance(record, Course | InstitutionProfile)
    header = _check_header(record.HasField("header"), record.header, peer, parent)
    validate(record)  # type: ignore[arg-type]
    return NewRecord(
        name=header.name,
        parent=parent,
        version=header.version,
        issuer=header.issuer,
        payload_type=envelope.payload_type,
        envelope=envelope.SerializeToString(),
        parties=(),
        deleted=deleted,
        issued_at=verified.signed_at,
    )


def _check_header(present: bool, header: RecordHeader, peer: str, parent: str) -> RecordHeader:
    if not present:
        raise ProtocolError(Reason.MALFORMED, "the record has no header")
    if header.issuer != peer:
        raise ProtocolError(
            Reason.SIGNER_MISMATCH, "the record is not issued by the peer whose feed it is in"
        )
    collection, _, record_id = header.name.rpartition("/")
    if collection != parent or not record_id:
        raise ProtocolError(Reason.MALFORMED, "the record is not in the collection of the feed")
    if header.version < 1:
        raise ProtocolError(Reason.MALFORMED, "the record version must be 1 or more")
    return header


Progress = Callable[[CollectionReport], None]


@dataclass
class _Page:
    """The records of one feed page that passed the checks, with their feed positions, and the
    counts the collection's report takes over once the page is committed."""

    records: list[NewRecord] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)
    received: int = 0
    refusals: Counter[str] = field(default_factory=Counter)

    def without(self, versions: set[tuple[str, int]]) -> _Page:
        """The page without these (name, version) pairs."""
        kept = [
            (r, s)
            for r, s in zip(self.records, self.sequences, strict=True)
            if (r.name, r.version) not in versions
        ]
        return _Page([r for r, _ in kept], [s for _, s in kept], self.received, self.refusals)


class PeerSync:
    """Follows the public catalogues of peers into this node's store (see the module docstring).

    Args:
        node: the running (or opened) node: its store, key ring, keys and config.
        progress: called after every committed page with the collection's report.
        page_size: changes per page to ask for; the config's sync.page_size by default.
    """

    def __init__(
        self, node: Node, *, progress: Progress | None = None, page_size: int | None = None
    ) -> None:
        self.node = node
        self.progress = progress
        self.page_size = page_size or node.config.sync_page_size
        self.caller = node.config.institutions[0]
        self.totals: Counter[str] = Counter()
        self._pool: ThreadPoolExecutor | None = None

    # -- one peer ------------------------------------------------------------------------------

    def _client(self, peer: str, *, deadline: float) -> AsyncNodeClient:
        return partner_client(self.node, peer, deadline=deadline, receive_window=1 << 20)

    async def sync_peer(self, peer: str, *, follow: bool = False) -> list[CollectionReport]:
        """Read the peer's collections up to their newest change (with follow: until the stream
        deadline, receiving changes as they happen). Errors of one collection are reported in
        its report and do not stop the other.

        Raises:
            SyncError: the peer cannot be synced (not a member, no usable endpoint, or this
                node's own manifest is not fresh).
        """
        if peer in self.node.config.institutions:
            raise SyncError(f"{peer} is served by this node itself")
        problem = self.node.manifest_problem()
        if problem is not None:
            raise SyncError(f"this node's manifest is not usable: {problem.message}")
        reports = [CollectionReport(peer, parent) for parent in collections_of(peer)]
        deadline = FOLLOW_SECONDS if follow else STREAM_SECONDS
        pairs = list(zip(collections_of(peer), reports, strict=True))
        async with self._client(peer, deadline=deadline) as client:
            if follow:
                await asyncio.gather(
                    *(self._guarded(client, peer, c, r, follow=True) for c, r in pairs)
                )
            else:
                for parent, report in pairs:
                    await self._guarded(client, peer, parent, report, follow=False)
        return reports

    async def _guarded(
        self,
        client: AsyncNodeClient,
        peer: str,
        parent: str,
        report: CollectionReport,
        *,
        follow: bool,
    ) -> None:
        try:
            await self._sync_collection(client, peer, parent, report, follow=follow)
        except (ClientError, StoreError) as exc:
            report.error = _describe(exc)
            log.warning("sync of %s from %s stopped: %s", parent, peer, report.error)

    async def forget_cursors(self, peer: str) -> None:
        """Start the peer's feeds from the beginning next time (stored records are kept, and
        re-received ones count as unchanged): after this node learned keys it lacked, say."""
        for parent in collections_of(peer):
            await self.node.store.set_setting(cursor_setting(self.caller, parent), b"")

    async def _sync_collection(
        self,
        client: AsyncNodeClient,
        peer: str,
        parent: str,
        report: CollectionReport,
        *,
        follow: bool,
    ) -> None:
        store = self.node.store
        key = cursor_setting(self.caller, parent)
        cursor = (await store.get_setting(key) or b"").decode()
        restarted = False
        while True:
            pages = 0
            caught_up = False
            pending: asyncio.Task[None] | None = None
            try:
                # watch_changes is an async generator (typed as an iterator): close it at once
                # when leaving early, which cancels the stream.
                feed = cast(
                    AsyncGenerator[svc.ChangeBatch, None],
                    client.watch_changes(parent, cursor, self.page_size, follow, purpose=PURPOSE),
                )
                async with contextlib.aclosing(feed):
                    async for batch in feed:
                        page = await self._check_batch(peer, parent, batch, report)
                        if pending is not None:
                            await asyncio.shield(pending)
                        if batch.changes or batch.cursor != cursor:
                            pending = asyncio.create_task(
                                self._commit(key, page, batch.cursor, report)
                            )
                        cursor, pages = batch.cursor, pages + 1
                        caught_up = batch.caught_up
                        if not follow and (caught_up or pages >= PAGES_PER_STREAM):
                            break
            except NodeError as exc:
                await _settle(pending)
                cursor_refused = exc.reason is Reason.MALFORMED and any(
                    p.field == "cursor" for p in exc.field_problems
                )
                if not cursor_refused or restarted or not cursor:
                    raise
                # The peer no longer knows our cursor (its database was restored, say): read
                # the feed again from the start; what is held already counts as unchanged.
                log.warning("%s refused the cursor of %s; starting over", peer, parent)
                cursor, restarted = "", True
                continue
            except TransportError:
                await _settle(pending)
                if pages == 0 or follow:
                    raise
                continue  # the stream broke after progress: resume from the cursor
            except BaseException:
                await _settle(pending)
                raise
            if pending is not None:
                await asyncio.shield(pending)
            if follow:
                return
            if caught_up:
                report.caught_up = True
                # Feed lag: now minus this gauge is how old the copy of the peer's feed may be.
                self.node.metrics.set_gauge(
                    f'sseaun_sync_caught_up_timestamp_seconds{{peer="{peer}",collection="{parent}"}}',
                    time.time(),
                )
                return

    async def _check_batch(
        self, peer: str, parent: str, batch: svc.ChangeBatch, report: CollectionReport
    ) -> _Page:
        """The page's records that pass every check, in feed order; the rest counted, logged.

        The checks run on the sync's worker threads, a part of the page each: the event loop
        stays free to answer calls, and one thread's Ed25519 verify (which releases the GIL)
        overlaps the other's Python work.
        """
        changes = list(batch.changes)
        size = -(-len(changes) // _CHECK_THREADS) or 1
        loop = asyncio.get_running_loop()
        keyring = self.node.keyring
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(
                    self._workers(), _check_changes, keyring, peer, parent, changes[i : i + size]
                )
                for i in range(0, len(changes), size)
            )
        )
        page = _Page(received=len(changes))
        for part in parts:
            page.records += part.records
            page.sequences += part.sequences
            for sequence, reason, why in part.refused:
                _refuse(page, report, reason, sequence, why)
        return page

    def _workers(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_CHECK_THREADS, thread_name_prefix="sseaun-sync-check")
        return self._pool

    def close(self) -> None:
        """Stop the worker threads (after the sync; a later sync starts new ones)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def _commit(self, key: str, page: _Page, cursor: str, report: CollectionReport) -> None:
        """Store a page's records in one transaction, then save its cursor."""
        store = self.node.store
        records = page.records
        while records:
            try:
                outcomes = await store.put_records(records)
            except StoreVersionError as exc:
                # A record whose earlier version was refused: versions are kept without gaps.
                gaps = {(p.name, p.version) for p in exc.problems}
                if not gaps:
                    raise
                for record, sequence in zip(records, page.sequences, strict=True):
                    if (record.name, record.version) in gaps:
                        why = "an earlier version of the record was not stored"
                        _refuse(page, report, Reason.STALE_VERSION.value, sequence, why)
                page = page.without(gaps)
                records = page.records
                continue
            except StoreConflictError as exc:
                conflicts = {(r.name, r.version) for r in records} & {
                    (name, int(version))
                    for name, _, version in (n.rpartition("@") for n in exc.names)
                }
                if not conflicts:
                    raise
                for record, sequence in zip(records, page.sequences, strict=True):
                    if (record.name, record.version) in conflicts:
                        await self._equivocation(record, sequence, page, report)
                page = page.without(conflicts)
                records = page.records
                continue
            inserted = sum(o.status is PutStatus.INSERTED for o in outcomes)
            report.stored += inserted
            report.unchanged += len(outcomes) - inserted
            self.totals["stored"] += inserted
            break
        await store.set_setting(key, cursor.encode())
        # The report counts committed pages only (a page is checked while the one before it
        # commits), so whatever it says is done is in the store.
        report.pages += 1
        report.received += page.received
        report.refusals.update(page.refusals)
        self.totals["refused"] += page.refusals.total()
        metrics = self.node.metrics
        metrics.set_gauge("sseaun_sync_records_stored", self.totals["stored"])
        metrics.set_gauge("sseaun_sync_records_refused", self.totals["refused"])
        metrics.set_gauge("sseaun_sync_last_page_timestamp_seconds", time.time())
        if self.progress is not None:
            self.progress(report)

    async def _equivocation(
        self, record: NewRecord, sequence: int, page: _Page, report: CollectionReport
    ) -> None:
        held = await self.node.store.get_record(record.name, record.version)
        detail = (
            f"{record.issuer} signed two different envelopes of {record.name} "
            f"version {record.version}"
        )
        _refuse(page, report, "EQUIVOCATION", sequence, "another envelope of this version is held")
        envelopes = [record.envelope] + ([held.envelope] if held else [])
        await self.node.store.put_evidence("record-equivocation", detail, envelopes)

    # -- every peer, in the background ---------------------------------------------------------

    async def run_forever(self) -> None:
        """Sync every configured peer until cancelled: polling every sync.interval_seconds, or
        following the feeds (sync.follow). A peer that fails is tried again after the
        interval; one peer never holds up another."""
        try:
            await asyncio.gather(*(self._run_peer(p) for p in self.node.config.sync_peers))
        finally:
            self.close()

    async def _run_peer(self, peer: str) -> None:
        config = self.node.config
        while True:
            failed = True
            try:
                reports = await self.sync_peer(peer, follow=config.sync_follow)
                failed = any(r.error for r in reports)
            except SyncError as exc:
                log.warning("cannot sync %s: %s", peer, exc)
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception:
                log.exception("sync of %s failed", peer)
            if failed or not config.sync_follow:
                await asyncio.sleep(config.sync_interval_seconds)


@dataclass
class _Checked:
    records: list[NewRecord] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)
    #: (feed position, reason, why) of each refused change.
    refused: list[tuple[int, str, str]] = field(default_factory=list)


def _check_changes(
    keyring: KeyRing, peer: str, parent: str, changes: Sequence[svc.Change]
) -> _Checked:
    """Check changes of one feed page (pure; runs on a worker thread)."""
    checked = _Checked()
    upsert, delete = svc.CHANGE_KIND_UPSERT, svc.CHANGE_KIND_DELETE
    for change in changes:
        kind = change.kind
        try:
            if kind not in (upsert, delete):
                raise ProtocolError(Reason.MALFORMED, "unknown change kind")
            record = check_record(keyring, peer, parent, change.record, deleted=kind == delete)
        except ProtocolError as exc:
            checked.refused.append((change.sequence, exc.reason.value, exc.message))
            continue
        checked.records.append(record)
        checked.sequences.append(change.sequence)
    return checked


def _refuse(page: _Page, report: CollectionReport, reason: str, sequence: int, why: str) -> None:
    page.refusals[reason] += 1
    # Peer, collection, feed position and reason only: never a record's content.
    log.warning(
        "refused change %d of %s from %s: %s: %s", sequence, report.parent, report.peer, reason, why
    )


async def _settle(task: asyncio.Task[None] | None) -> None:
    """Wait for a page's commit to end (without raising), so its cursor is saved before the
    sync stops; an error of the commit is logged."""
    if task is None:
        return
    await asyncio.wait([task])
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("a page of the sync was not committed: %s", error)


def _describe(exc: ClientError | StoreError) -> str:
    if isinstance(exc, ProtocolError):
        return f"{exc.reason.value}: {exc.message}"
    if isinstance(exc, StoreError):
        return f"store: {exc}"
    return f"{exc.code or 'error'}: {exc}"
