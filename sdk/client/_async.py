"""The asyncio node client: one ``grpc.aio`` channel, owned by an async context manager.

Example::

    config = ClientConfig(network_id="sseaun", sender="ynu.edu.cn", signer=transport_key)
    async with AsyncNodeClient(config, keyring, "node.chula.ac.th:443", "chula.ac.th") as node:
        result = await node.get_record(
            "institutions/chula.ac.th/courses/2110101",
            purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
        )
        async for batch in node.watch_changes(
            "institutions/chula.ac.th/courses", purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION
        ):
            ...

The channel is created in ``__aenter__``, inside the running loop, and the client refuses to be
used from any other loop (aio objects never cross loops or threads; grpc/grpc#25364, #32480).
From threads or sync code use :class:`~sseaun.sdk.client.NodeClient`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import grpc
from google.protobuf.message import Message

from sseaun.sdk.core import KeyRing
from sseaun.v1.access_log_pb2 import (
    AddCosignatureBody,
    AddCosignatureRequest,
    AddCosignatureResult,
    GetCheckpointBody,
    GetCheckpointRequest,
    GetCheckpointResult,
    GetConsistencyProofBody,
    GetConsistencyProofRequest,
    GetConsistencyProofResult,
    GetInclusionProofBody,
    GetInclusionProofRequest,
    GetInclusionProofResult,
)
from sseaun.v1.access_log_pb2_grpc import AccessLogServiceStub
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.envelope_pb2 import Envelope
from sseaun.v1.service_pb2 import (
    ChangeBatch,
    GetManifestBody,
    GetManifestRequest,
    GetManifestResult,
    GetRecordBody,
    GetRecordRequest,
    GetRecordResult,
    ListRecordsBody,
    ListRecordsRequest,
    ListRecordsResult,
    NotifyBody,
    NotifyRequest,
    NotifyResult,
    WatchChangesBody,
    WatchChangesRequest,
)
from sseaun.v1.service_pb2_grpc import (
    ManifestServiceStub,
    NotificationServiceStub,
    RecordServiceStub,
)

from ._attempts import Attempts
from ._channel import channel_credentials, channel_options, raw_status
from ._config import ClientConfig
from ._errors import NodeError
from ._exchange import (
    ADD_COSIGNATURE,
    GET_CHECKPOINT,
    GET_CONSISTENCY_PROOF,
    GET_INCLUSION_PROOF,
    GET_MANIFEST,
    GET_RECORD,
    LIST_RECORDS,
    NOTIFY,
    WATCH_CHANGES,
    Exchange,
    LogicalCall,
)
from ._receipt import Receipt

if TYPE_CHECKING:
    from sseaun.v1.access_log_pb2_grpc import AccessLogServiceAsyncStub
    from sseaun.v1.service_pb2_grpc import ManifestServiceAsyncStub, RecordServiceAsyncStub

__all__ = ["AsyncNodeClient"]

_M = TypeVar("_M", bound=Message)
_NETWORK_OPERATIONS = Purpose.PURPOSE_NETWORK_OPERATIONS


class AsyncNodeClient:
    """Calls one member's node over ``grpc.aio``, verifying every answer.

    Args:
        config: who calls, deadlines, retries, TLS.
        keyring: the trusted keys (manifest plus accepted delegations and revocations).
        target: the node's gRPC address (``host:port``).
        audience: the institution called (the node may serve several).

    Raises:
        ValueError: the key ring is for another network, the audience is not a member, or
            plaintext was asked for a target that is not loopback.
    """

    def __init__(self, config: ClientConfig, keyring: KeyRing, target: str, audience: str) -> None:
        self._exchange = Exchange(config, keyring, audience)
        self._config = config
        self._target = target
        self._credentials = channel_credentials(config, target)
        self._channel: grpc.aio.Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._manifests: ManifestServiceAsyncStub | None = None
        self._records: RecordServiceAsyncStub | None = None
        self._logs: AccessLogServiceAsyncStub | None = None
        self._random = secrets.SystemRandom().random

    @property
    def audience(self) -> str:
        """The institution this client calls."""
        return self._exchange.audience

    async def __aenter__(self) -> Self:
        if self._channel is not None:
            raise RuntimeError("the client is already open")
        options = channel_options(self._config)
        if self._credentials is None:
            channel = grpc.aio.insecure_channel(self._target, options=options)
        else:
            channel = grpc.aio.secure_channel(self._target, self._credentials, options=options)
        self._loop = asyncio.get_running_loop()
        self._channel = channel
        self._manifests = ManifestServiceStub(channel)
        self._records = RecordServiceStub(channel)
        self._logs = AccessLogServiceStub(channel)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        channel, self._channel = self._channel, None
        self._manifests = self._records = None
        self._logs = None
        if channel is not None:
            await channel.close(grace=None)

    def _stubs(self) -> tuple[ManifestServiceAsyncStub, RecordServiceAsyncStub]:
        if self._manifests is None or self._records is None:
            raise RuntimeError("open the client first: 'async with AsyncNodeClient(...) as node'")
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError("an AsyncNodeClient is used only in the event loop that opened it")
        return self._manifests, self._records

    def _attempts(self, call: LogicalCall, timeout: float | None) -> Attempts:
        return Attempts(self._exchange, call, timeout=timeout, random=self._random)

    async def _unary(
        self,
        call: LogicalCall,
        send: Callable[[Envelope, float], Awaitable[Envelope]],
        result_type: type[_M],
        timeout: float | None,
        receipt: Receipt | None = None,
    ) -> _M:
        attempts = self._attempts(call, timeout)
        while True:
            request, remaining = attempts.start()
            try:
                answer = await send(request, remaining)
            except grpc.RpcError as exc:
                try:
                    delay = attempts.failed(raw_status(exc), exc)
                except NodeError as error:
                    if receipt is not None:
                        receipt.fill_error(request, error)
                    raise
                await asyncio.sleep(delay)
                continue
            return attempts.open(answer, result_type, receipt)

    async def get_manifest(
        self,
        version: int = 0,
        *,
        purpose: int = _NETWORK_OPERATIONS,
        timeout: float | None = None,
        receipt: Receipt | None = None,
    ) -> GetManifestResult:
        """A manifest version the node holds (0: the newest it trusts), with its statements.

        The manifest inside is returned as signed: verify it with ``ManifestTrust`` before use.

        Raises:
            NodeError: the node's signed error (e.g. NOT_FOUND for a version it lacks).
            AnswerVerificationError: the answer did not verify or is not bound to the request.
            TransportError: no signed answer (network, proxy, deadline, forged error status).
        """
        manifests, _ = self._stubs()
        call = LogicalCall.new(GET_MANIFEST, GetManifestBody(version=version), purpose)

        async def send(request: Envelope, remaining: float) -> Envelope:
            reply = await manifests.GetManifest(
                GetManifestRequest(request=request), timeout=remaining
            )
            return reply.response

        return await self._unary(call, send, GetManifestResult, timeout, receipt)

    async def get_record(
        self,
        name: str,
        version: int = 0,
        *,
        purpose: int,
        timeout: float | None = None,
        receipt: Receipt | None = None,
    ) -> GetRecordResult:
        """One record by name (version 0: the newest), exactly as its issuer signed it.

        Args:
            purpose: why the caller asks (a ``sseaun.v1.Purpose``); the caller must choose.
            receipt: filled with the request and the node's log index of this call.

        Raises:
            NodeError, AnswerVerificationError, TransportError: as for get_manifest.
        """
        _, records = self._stubs()
        call = LogicalCall.new(GET_RECORD, GetRecordBody(name=name, version=version), purpose)

        async def send(request: Envelope, remaining: float) -> Envelope:
            reply = await records.GetRecord(GetRecordRequest(request=request), timeout=remaining)
            return reply.response

        return await self._unary(call, send, GetRecordResult, timeout, receipt)

    async def list_records_page(
        self,
        parent: str,
        page_size: int = 0,
        page_token: str = "",
        changed_since_sequence: int = 0,
        *,
        purpose: int,
        timeout: float | None = None,
        receipt: Receipt | None = None,
    ) -> ListRecordsResult:
        """One page of a collection (AIP-158); pass its next_page_token for the next page.

        receipt, if given, is filled with the request and the node's log index of this call.

        Raises:
            NodeError, AnswerVerificationError, TransportError: as for get_manifest;
                AnswerVerificationError (MALFORMED) also when the token does not advance.
        """
        _, records = self._stubs()
        body = ListRecordsBody(
            parent=parent,
            page_size=page_size,
            page_token=page_token,
            changed_since_sequence=changed_since_sequence,
        )
        call = LogicalCall.new(LIST_RECORDS, body, purpose)

        async def send(request: Envelope, remaining: float) -> Envelope:
            reply = await records.ListRecords(
                ListRecordsRequest(request=request), timeout=remaining
            )
            return reply.response

        result = await self._unary(call, send, ListRecordsResult, timeout, receipt)
        self._exchange.next_page_token(call, page_token, result)
        return result

    async def list_records(
        self,
        parent: str,
        page_size: int = 0,
        changed_since_sequence: int = 0,
        *,
        purpose: int,
        timeout: float | None = None,
    ) -> AsyncIterator[Envelope]:
        """Every record of a collection, page after page, as signed by its issuers.

        Each page is its own call with its own request ID and deadline (timeout).

        Raises:
            NodeError, AnswerVerificationError, TransportError: as for list_records_page.
        """
        token = ""
        while True:
            result = await self.list_records_page(
                parent,
                page_size,
                token,
                changed_since_sequence,
                purpose=purpose,
                timeout=timeout,
            )
            for record in result.records:
                yield record
            token = result.next_page_token
            if not token:
                return

    def _log_stub(self) -> AccessLogServiceAsyncStub:
        self._stubs()
        assert self._logs is not None
        return self._logs

    async def get_checkpoint(
        self,
        min_size: int = 0,
        *,
        purpose: int = _NETWORK_OPERATIONS,
        timeout: float | None = None,
        receipt: Receipt | None = None,
    ) -> GetCheckpointResult:
        """The newest checkpoint of the audience's access log, with its cosignatures (LOG-8).

        With min_size the node signs a fresh one if its newest is smaller. The note is returned
        as signed: verify it with ``verify_checkpoint`` and the log's LOG key.

        Raises:
            NodeError (e.g. OUT_OF_RANGE), AnswerVerificationError, TransportError.
        """
        logs = self._log_stub()
        call = LogicalCall.new(GET_CHECKPOINT, GetCheckpointBody(min_size=min_size), purpose)

        async def send(request: Envelope, remaining: float) -> Envelope:
            reply = await logs.GetCheckpoint(
                GetCheckpointRequest(request=request), timeout=remaining
            )
            return reply.response

        return await self._unary(call, send, GetCheckpointResult, timeout, receipt)

    async def get_inclusion_proof(
        self,
        index: int,
        tree_size: int,
        *,
        purpose: int = _NETWORK_OPERATIONS,
        timeout: float | None = None,
    ) -> GetInclusionProofResult:
        """The audit path of log entry index in the tree of tree_size; the entry itself when
        it records this caller's own call.

        Raises:
            NodeError (e.g. OUT_OF_RANGE), AnswerVerificationError, TransportError.
        """
        logs = self._log_stub()
        body = GetInclusionProofBody(index=index, tree_size=tree_size)
        call = LogicalCall.new(GET_INCLUSION_PROOF, body, purpose)

        async def send(request: Envelope, remaining: float) -> Envelope:
            reply = await logs.GetInclusionProof(
                GetInclusionProofRequest(request=request), timeout=remaining
            )
            return reply.response

        return await self._unary(call, send, GetInclusionProofResult, timeout)

    async def get_consistency_proof(
        self,
        old_size: int,
        new_size: int,
        *,
        purpose: int = _NETWORK_OPERATIONS,
        timeout: float | None = None,
        answer: list[Envelope] | None = None,
    ) -> GetConsistencyProofResult:
        """The consistency proof between two sizes of the audience's log.

        Args:
            answer: if given, the node's signed answer envelope is appended to it (evidence,
                should the proof not verify).

        Raises:
            NodeError (e.g. OUT_OF_RANGE), AnswerVerificationError, TransportError.
        """
        logs = self._log_stub()
        body = GetConsistencyProofBody(old_size=old_size, new_size=new_size)
        call = LogicalCall.new(GET_CONSISTENCY_PROOF, body, purpose)

        async def send(request: Envelope, remaining: float) -> Envelope:
            reply = await logs.GetConsistencyProof(
                GetConsistencyProofRequest(request=request), timeout=remaining
            )
            if answer is not None:
                answer.append(reply.response)
            return reply.response

        return await self._unary(call, send, GetConsistencyProofResult, timeout)

    async def notify(self, body: NotifyBody, *, timeout: float | None = None) -> NotifyResult:
        """Tell the audience this caller holds changes for it (a hint, spec XCH-4).

        Raises:
            NodeError, AnswerVerificationError, TransportError.
        """
        self._stubs()
        assert self._channel is not None
        stub = NotificationServiceStub(self._channel)
        call = LogicalCall.new(NOTIFY, body, _NETWORK_OPERATIONS)

        async def send(request: Envelope, remaining: float) -> Envelope:
            reply = await stub.Notify(NotifyRequest(request=request), timeout=remaining)
            return reply.response

        return await self._unary(call, send, NotifyResult, timeout)

    async def add_cosignature(
        self, checkpoint: str, *, timeout: float | None = None
    ) -> AddCosignatureResult:
        """Hand the audience a cosignature of its checkpoint (this caller as witness, LOG-10).

        Raises:
            NodeError (e.g. PROOF_INVALID, NOT_FOUND), AnswerVerificationError, TransportError.
        """
        logs = self._log_stub()
        call = LogicalCall.new(
            ADD_COSIGNATURE, AddCosignatureBody(checkpoint=checkpoint), _NETWORK_OPERATIONS
        )

        async def send(request: Envelope, remaining: float) -> Envelope:
            reply = await logs.AddCosignature(
                AddCosignatureRequest(request=request), timeout=remaining
            )
            return reply.response

        return await self._unary(call, send, AddCosignatureResult, timeout)

    async def watch_changes(
        self,
        parent: str,
        cursor: str = "",
        page_size: int = 0,
        follow: bool = False,
        *,
        purpose: int,
        timeout: float | None = None,
    ) -> AsyncIterator[ChangeBatch]:
        """The change feed of a collection from cursor, one verified page (ChangeBatch) at a time.

        Every page must chain to the one before. Without follow the feed must end with a page
        marked last. With follow the node sends its first page at once (empty when nothing is
        new) and then keeps the stream open; the deadline (timeout) ends the iteration quietly
        once at least one page came. A follow stream with no page by its deadline raises
        TransportError (DEADLINE_EXCEEDED): nothing proves it ever reached the node. Resume with
        the last batch's cursor. A failure before the first page is retried like any read;
        after it, it is raised (resume from the cursor you have). Leaving the loop early leaves
        the stream open until the generator is closed: wrap it in ``contextlib.aclosing`` to
        close it at once.

        Raises:
            AnswerVerificationError: FEED_CHAIN_BROKEN for a broken, reordered or truncated
                chain; any other reason of a page that does not verify.
            NodeError, TransportError: as for get_manifest.
        """
        _, records = self._stubs()
        body = WatchChangesBody(parent=parent, cursor=cursor, page_size=page_size, follow=follow)
        attempts = self._attempts(LogicalCall.new(WATCH_CHANGES, body, purpose), timeout)
        while True:
            request, remaining, chain = attempts.start_feed(follow=follow)
            stream = records.WatchChanges(WatchChangesRequest(request=request), timeout=remaining)
            try:
                async for message in stream:
                    yield chain.accept(message.page)
                    if chain.complete:
                        return
                chain.end()
                return
            except grpc.RpcError as exc:
                delay = attempts.feed_failed(raw_status(exc), exc)
                if delay is None:
                    return
            finally:
                stream.cancel()
            await asyncio.sleep(delay)
