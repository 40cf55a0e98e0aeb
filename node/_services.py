"""The gRPC services: each call authenticated, answered with a signed, bound envelope."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from sseaun.sdk.core import (
    AnswerContext,
    Envelope,
    FieldProblem,
    ProtocolError,
    Reason,
    VerifiedRequest,
    envelope_digest,
    envelope_from_bytes,
    records,
    sign_error,
    sign_feed_page,
    sign_response,
)
from sseaun.v1 import service_pb2 as svc
from sseaun.v1 import service_pb2_grpc as svc_grpc
from sseaun.v1.auth_pb2 import Purpose

from ._exchange import EXCHANGE, is_exchange_parent
from ._runtime import Node, RateLimitedError
from ._wire_errors import status_for
from .store import StoredRecord

__all__ = ["ManifestService", "RecordService"]

log = logging.getLogger("sseaun.node")
_B = TypeVar("_B", bound=Message)
ALL_PURPOSES = frozenset(
    {
        Purpose.PURPOSE_NETWORK_OPERATIONS,
        Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
        Purpose.PURPOSE_RECOGNITION,
        Purpose.PURPOSE_CREDENTIAL_VERIFICATION,
        Purpose.PURPOSE_AUDIT,
    }
)
NETWORK_OPERATIONS = frozenset({Purpose.PURPOSE_NETWORK_OPERATIONS})
_NOT_FOUND = "no such record"  # one text for absent and not-a-party alike (spec ERR-4)
_FEED_POLL_SECONDS = 0.2
#: Versions and sequences are SQLite integers; a uint64 above this names nothing stored.
_MAX_STORED_NUMBER = 2**63 - 1


def _parse_body(body_type: type[_B], data: bytes) -> _B:
    body = body_type()
    try:
        body.ParseFromString(data)
    except DecodeError as exc:
        raise ProtocolError(
            Reason.MALFORMED,
            "request body does not parse",
            field_problems=[FieldProblem("body", f"not a {body_type.DESCRIPTOR.full_name}")],
        ) from exc
    return body


def _envelope_of(request: Any) -> Envelope:
    envelope: Envelope = request.request
    return envelope


class _Base:
    def __init__(self, node: Node) -> None:
        self.node = node

    async def _fail(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        error: ProtocolError,
        answer: AnswerContext,
        log_index: int | None = None,
    ) -> None:
        node = self.node
        signer = node.transport_signer(answer.responder).transport
        signed = sign_error(answer, error, signer=signer, now=node.clock(), log_index=log_index)
        retry = error.retry_after if isinstance(error, RateLimitedError) else None
        # The concrete aio context has abort_with_status; its abstract type lacks it (grpc#42733).
        await context.abort_with_status(status_for(error, signed, retry))  # type: ignore[attr-defined]

    async def _unary(
        self,
        request: Any,
        context: grpc.aio.ServicerContext[Any, Any],
        method: str,
        purposes: frozenset[int],
        body_type: type[_B],
        handle: Callable[[VerifiedRequest, _B, list[str]], Awaitable[Message]],
        *,
        data: bool = True,
    ) -> Envelope:
        """Authenticate, handle, log (spec LOG-3) and answer one unary call.

        handle appends to its list the names of the records the call names or answers with;
        they go into the log entry as commitments. No answer leaves before its entry is durable.
        """
        node, started = self.node, time.perf_counter()
        envelope = _envelope_of(request)
        # The unverified context (a digest of the raw request) is built only on failure.
        answer: AnswerContext | None = None
        index: int | None = None
        code = "OK"
        try:
            verified = await node.authenticate(envelope, method, purposes, data=data)
            answer = AnswerContext.for_request(verified)
            touched: list[str] = []
            try:
                result = await handle(verified, _parse_body(body_type, verified.body), touched)
            except ProtocolError as exc:
                index = await node.log_call(verified, exc.reason.value, touched)
                raise
            index = await node.log_call(verified, "OK", touched)
            signer = node.transport_signer(answer.responder).transport
            return sign_response(
                answer,
                result.SerializeToString(),
                signer=signer,
                now=node.clock(),
                log_index=index,
            )
        except ProtocolError as exc:
            code = exc.reason.status_code
            await self._fail(
                context, exc, answer or node.context_for_unverified(envelope, method), index
            )
            raise AssertionError("unreachable") from exc  # abort_with_status raises
        except Exception as exc:
            if isinstance(exc, asyncio.CancelledError | grpc.aio.AbortError):
                raise
            code = "INTERNAL"
            log.exception("internal error in %s", method)
            await self._fail(
                context,
                ProtocolError(Reason.INTERNAL, "internal error"),
                answer or node.context_for_unverified(envelope, method),
            )
            raise AssertionError("unreachable") from exc
        finally:
            node.metrics.observe(method, code, time.perf_counter() - started)


class ManifestService(_Base, svc_grpc.ManifestServiceServicer):
    """Manifest distribution (spec MAN-14)."""

    METHOD = "/sseaun.v1.ManifestService/GetManifest"

    async def GetManifest(  # noqa: N802 - generated name
        self, request: svc.GetManifestRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> svc.GetManifestResponse:
        async def handle(_: VerifiedRequest, body: svc.GetManifestBody, __: list[str]) -> Message:
            trusted = (
                self.node.trust.current
                if body.version == 0
                else self.node.trust.version(body.version)
            )
            if trusted is None:
                raise ProtocolError(Reason.NOT_FOUND, "no such manifest version")
            result = svc.GetManifestResult(manifest=trusted.envelope)
            for _kind, statement in await self.node.store.statements():
                result.statements.append(envelope_from_bytes(statement))
            return result

        envelope = await self._unary(
            request,
            context,
            self.METHOD,
            NETWORK_OPERATIONS,
            svc.GetManifestBody,
            handle,
            data=False,
        )
        return svc.GetManifestResponse(response=envelope)


#: The collections of an institution a node serves besides its profile (REC-3, LC-1, XCH-2).
_COLLECTIONS = frozenset({"courses", EXCHANGE, *(kind.collection for kind in records.RecordKind)})


def _check_parent(parent: str, audience: str) -> str:
    parts = parent.split("/")
    collection = len(parts) == 2 or (len(parts) == 3 and parts[2] in _COLLECTIONS)
    if not collection or parts[0] != "institutions":
        raise ProtocolError(
            Reason.MALFORMED,
            "parent is not a collection",
            field_problems=[
                FieldProblem("parent", "institutions/{id} or institutions/{id}/{collection}")
            ],
        )
    if parts[1] != audience:
        raise ProtocolError(Reason.NOT_FOUND, _NOT_FOUND)
    return parent


def _page_size(node: Node, requested: int) -> int:
    if requested < 0:
        raise ProtocolError(
            Reason.MALFORMED,
            "page_size must not be negative",
            field_problems=[FieldProblem("page_size", "must be 0 or more")],
        )
    if requested == 0:
        return node.config.default_page_size
    return min(requested, node.config.max_page_size)


def _visible(record: StoredRecord, reader: str) -> bool:
    return not record.parties or reader in record.parties or record.issuer == reader


_LIFECYCLE_TYPES = frozenset(
    kind.payload_type for kind in records.RecordKind if kind is not records.RecordKind.DECISION
)


class RecordService(_Base, svc_grpc.RecordServiceServicer):
    """Records by name, pages of a collection, and the change feed (spec PAGE-*, FEED-*)."""

    GET = "/sseaun.v1.RecordService/GetRecord"
    LIST = "/sseaun.v1.RecordService/ListRecords"
    WATCH = "/sseaun.v1.RecordService/WatchChanges"

    async def GetRecord(  # noqa: N802
        self, request: svc.GetRecordRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> svc.GetRecordResponse:
        async def handle(
            verified: VerifiedRequest, body: svc.GetRecordBody, touched: list[str]
        ) -> Message:
            touched.append(body.name)
            audience = verified.header.audience
            store = self.node.store
            latest = await self.node.latest_record(body.name)
            if latest is None or not await self._may_read(latest, verified):
                raise ProtocolError(Reason.NOT_FOUND, _NOT_FOUND)
            # A node answers for its own institutions' records, and for copies it holds of
            # records its institutions are parties to (a host's copy of a nomination).
            own = body.name.startswith(f"institutions/{audience}/")
            if not own and audience not in latest.parties:
                raise ProtocolError(Reason.NOT_FOUND, _NOT_FOUND)
            if body.version > _MAX_STORED_NUMBER:
                raise ProtocolError(Reason.NOT_FOUND, _NOT_FOUND)
            record = (
                latest
                if body.version in (0, latest.version)
                else await store.get_record(body.name, body.version)
            )
            if record is None:
                raise ProtocolError(Reason.NOT_FOUND, _NOT_FOUND)
            result = svc.GetRecordResult(
                record=envelope_from_bytes(record.envelope), latest_version=latest.version
            )
            if record.payload_type in _LIFECYCLE_TYPES:
                await self._add_status(result, body.name)
                # The decisions carried are records read too (LOG-3, XCH-8).
                touched.extend(await self.node.store.names_about(body.name))
            return result

        envelope = await self._unary(
            request, context, self.GET, ALL_PURPOSES, svc.GetRecordBody, handle
        )
        return svc.GetRecordResponse(response=envelope)

    async def _may_read(self, record: StoredRecord, verified: VerifiedRequest) -> bool:
        """A party may read; anyone else only under a consent in force (CONSENT-6)."""
        if _visible(record, verified.sender):
            return True
        if record.payload_type not in _LIFECYCLE_TYPES:
            return False
        return await self.node.consents.permit(record, verified.sender, verified.header.purpose)

    async def _add_status(self, result: svc.GetRecordResult, name: str) -> None:
        """The decisions held and the state computed from them (LC-5, LC-6)."""
        exchange = self.node.exchange
        try:
            state = await exchange.state(name)
        except ProtocolError as exc:
            log.warning("state of a held record does not compute: %s", exc.reason.value)
            return
        if state is None:
            return
        result.decisions.extend(state.decisions)
        result.status.state = state.state.value
        if state.in_force_version is not None:
            result.status.in_force_version = state.in_force_version
        result.status.awaiting.extend(state.awaiting)

    async def ListRecords(  # noqa: N802
        self, request: svc.ListRecordsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> svc.ListRecordsResponse:
        async def handle(
            verified: VerifiedRequest, body: svc.ListRecordsBody, touched: list[str]
        ) -> Message:
            node = self.node
            parent = _check_parent(body.parent, verified.header.audience)
            if is_exchange_parent(parent):
                raise ProtocolError(
                    Reason.MALFORMED,
                    "the exchange collection is a feed only",
                    field_problems=[FieldProblem("parent", "use WatchChanges")],
                )
            size = _page_size(node, body.page_size)
            # A sequence above the largest storable one matches nothing, as the largest does.
            since = min(body.changed_since_sequence, _MAX_STORED_NUMBER)
            query = {"p": parent, "r": verified.sender, "c": since}
            after = ""
            if body.page_token:
                state = node.tokens.open("list", body.page_token, field="page_token")
                if {k: state.get(k) for k in query} != query:
                    raise ProtocolError(
                        Reason.MALFORMED,
                        "request changed between pages",
                        field_problems=[FieldProblem("page_token", "other fields changed")],
                    )
                after = str(state["a"])
            records = await node.store.list_records(
                parent,
                reader=verified.sender,
                after_name=after,
                limit=size + 1,
                changed_since=since,
            )
            touched.extend(r.name for r in records[:size])
            result = svc.ListRecordsResult(
                records=[envelope_from_bytes(r.envelope) for r in records[:size]]
            )
            if len(records) > size:
                result.next_page_token = node.tokens.seal(
                    "list", {**query, "a": records[size - 1].name}
                )
            return result

        envelope = await self._unary(
            request, context, self.LIST, ALL_PURPOSES, svc.ListRecordsBody, handle
        )
        return svc.ListRecordsResponse(response=envelope)

    async def WatchChanges(  # noqa: N802
        self, request: svc.WatchChangesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[svc.WatchChangesResponse]:
        node, started = self.node, time.perf_counter()
        envelope = _envelope_of(request)
        answer = node.context_for_unverified(envelope, self.WATCH)
        verified: VerifiedRequest | None = None
        index: int | None = None
        code = "OK"
        try:
            verified = await node.authenticate(envelope, self.WATCH, ALL_PURPOSES)
            answer = AnswerContext.for_request(verified)
            body = _parse_body(svc.WatchChangesBody, verified.body)
            parent = _check_parent(body.parent, verified.header.audience)
            size = _page_size(node, body.page_size)
            after = 0
            if body.cursor:
                state = node.tokens.open("feed", body.cursor, field="cursor")
                if state.get("p") != parent or state.get("r") != verified.sender:
                    raise ProtocolError(
                        Reason.MALFORMED,
                        "cursor belongs to another feed",
                        field_problems=[FieldProblem("cursor", "another feed's cursor")],
                    )
                after = int(str(state["s"]))
            signer = node.transport_signer(answer.responder).transport
            previous, number = b"", 0
            async for batch, last, names in self._batches(
                parent, verified.sender, after, size, body.follow
            ):
                # One entry per page, with the records it carries (spec LOG-3).
                index = await node.log_call(verified, "OK", names)
                page = sign_feed_page(
                    answer,
                    batch.SerializeToString(),
                    previous_digest=previous,
                    page_number=number,
                    last=last,
                    signer=signer,
                    now=node.clock(),
                    log_index=index,
                )
                previous, number = envelope_digest(page), number + 1
                yield svc.WatchChangesResponse(page=page)
        except ProtocolError as exc:
            code = exc.reason.status_code
            if verified is not None:
                index = await node.log_call(verified, exc.reason.value, [])
            await self._fail(context, exc, answer, index if verified is not None else None)
        except Exception as exc:
            if isinstance(exc, asyncio.CancelledError | grpc.aio.AbortError):
                raise
            code = "INTERNAL"
            log.exception("internal error in %s", self.WATCH)
            await self._fail(context, ProtocolError(Reason.INTERNAL, "internal error"), answer)
        finally:
            node.metrics.observe(self.WATCH, code, time.perf_counter() - started)

    async def _batches(
        self, parent: str, reader: str, after: int, size: int, follow: bool
    ) -> AsyncIterator[tuple[svc.ChangeBatch, bool, list[str]]]:
        node = self.node
        first = True
        while True:
            problem = node.manifest_problem()  # a follow stream outliving its manifest ends
            if problem is not None:
                raise problem
            if is_exchange_parent(parent):
                records = await node.store.exchange_changes(
                    reader, after_sequence=after, limit=size
                )
            else:
                records = await node.store.changes(
                    parent, reader=reader, after_sequence=after, limit=size
                )
            batch = svc.ChangeBatch()
            for record in records:
                after = record.sequence
                batch.changes.append(
                    svc.Change(
                        sequence=record.sequence,
                        kind=svc.CHANGE_KIND_DELETE if record.deleted else svc.CHANGE_KIND_UPSERT,
                        record=envelope_from_bytes(record.envelope),
                        cursor=self._cursor(parent, reader, record.sequence),
                    )
                )
            batch.cursor = self._cursor(parent, reader, after)
            batch.caught_up = len(records) < size
            names = [record.name for record in records]
            if batch.caught_up and not follow:
                yield batch, True, names
                return
            if records or first:  # a follower hears at once that the stream is open
                yield batch, False, names
            first = False
            if batch.caught_up:
                await asyncio.sleep(_FEED_POLL_SECONDS)

    def _cursor(self, parent: str, reader: str, sequence: int) -> str:
        return self.node.tokens.seal("feed", {"p": parent, "r": reader, "s": sequence})
