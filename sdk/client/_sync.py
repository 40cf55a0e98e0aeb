"""The blocking node client: the same calls as AsyncNodeClient over a plain ``grpc`` channel.

Example::

    config = ClientConfig(network_id="sseaun", sender="ynu.edu.cn", signer=transport_key)
    with NodeClient(config, keyring, "node.chula.ac.th:443", "chula.ac.th") as node:
        result = node.get_record(
            "institutions/chula.ac.th/courses/2110101",
            purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
        )
        for batch in node.watch_changes(
            "institutions/chula.ac.th/courses", purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION
        ):
            ...

It holds no aio object, so it may be shared between threads (a sync gRPC channel is
thread-safe). Signing, verification, error decoding and the retry schedule are the pure helpers
the async client uses too (Exchange, Attempts, FeedChain); only the transport differs.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self, TypeVar

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

__all__ = ["NodeClient"]

_M = TypeVar("_M", bound=Message)
_NETWORK_OPERATIONS = Purpose.PURPOSE_NETWORK_OPERATIONS


class NodeClient:
    """Calls one member's node over a blocking gRPC channel, verifying every answer.

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
        credentials = channel_credentials(config, target)
        options = channel_options(config)
        if credentials is None:
            channel = grpc.insecure_channel(target, options=options)
        else:
            channel = grpc.secure_channel(target, credentials, options=options)
        self._channel: grpc.Channel | None = channel
        self._manifests = ManifestServiceStub(channel)
        self._records = RecordServiceStub(channel)
        self._logs = AccessLogServiceStub(channel)
        self._random = secrets.SystemRandom().random

    @property
    def audience(self) -> str:
        """The institution this client calls."""
        return self._exchange.audience

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; calls in flight are cancelled. Closing twice is harmless."""
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    def _stubs(self) -> tuple[ManifestServiceStub, RecordServiceStub]:
        if self._channel is None:
            raise RuntimeError("the client is closed")
        return self._manifests, self._records

    def _attempts(self, call: LogicalCall, timeout: float | None) -> Attempts:
        return Attempts(self._exchange, call, timeout=timeout, random=self._random)

    def _unary(
        self,
        call: LogicalCall,
        send: Callable[[Envelope, float], Envelope],
        result_type: type[_M],
        timeout: float | None,
        receipt: Receipt | None = None,
    ) -> _M:
        attempts = self._attempts(call, timeout)
        while True:
            request, remaining = attempts.start()
            try:
                answer = send(request, remaining)
            except grpc.RpcError as exc:
                try:
                    delay = attempts.failed(raw_status(exc), exc)
                except NodeError as error:
                    if receipt is not None:
                        receipt.fill_error(request, error)
                    raise
                time.sleep(delay)
                continue
            return attempts.open(answer, result_type, receipt)

    def get_manifest(
        self,
        version: int = 0,
        *,
        purpose: int = _NETWORK_OPERATIONS,
        timeout: float | None = None,
        receipt: Receipt | None = None,
    ) -> GetManifestResult:
        """A manifest version the node holds (0: the newest it trusts), with its statements.

        The manifest inside is returned as signed: verify it with ``ManifestTrust`` before use.
        receipt, if given, is filled with the request and the node's log index of this call.

        Raises:
            NodeError: the node's signed error (e.g. NOT_FOUND for a version it lacks).
            AnswerVerificationError: the answer did not verify or is not bound to the request.
            TransportError: no signed answer (network, proxy, deadline, forged error status).
        """
        manifests, _ = self._stubs()
        call = LogicalCall.new(GET_MANIFEST, GetManifestBody(version=version), purpose)

        def send(request: Envelope, remaining: float) -> Envelope:
            reply = manifests.GetManifest(GetManifestRequest(request=request), timeout=remaining)
            return reply.response

        return self._unary(call, send, GetManifestResult, timeout, receipt)

    def get_record(
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

        def send(request: Envelope, remaining: float) -> Envelope:
            reply = records.GetRecord(GetRecordRequest(request=request), timeout=remaining)
            return reply.response

        return self._unary(call, send, GetRecordResult, timeout, receipt)

    def list_records_page(
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

        def send(request: Envelope, remaining: float) -> Envelope:
            reply = records.ListRecords(ListRecordsRequest(request=request), timeout=remaining)
            return reply.response

        result = self._unary(call, send, ListRecordsResult, timeout, receipt)
        self._exchange.next_page_token(call, page_token, result)
        return result

    def list_records(
        self,
        parent: str,
        page_size: int = 0,
        changed_since_sequence: int = 0,
        *,
        purpose: int,
        timeout: float | None = None,
    ) -> Iterator[Envelope]:
        """Every record of a collection, page after page, as signed by its issuers.

        Each page is its own call with its own request ID and deadline (timeout).

        Raises:
            NodeError, AnswerVerificationError, TransportError: as for list_records_page.
        """
        token = ""
        while True:
            result = self.list_records_page(
                parent,
                page_size,
                token,
                changed_since_sequence,
                purpose=purpose,
                timeout=timeout,
            )
            yield from result.records
            token = result.next_page_token
            if not token:
                return

    def _log_stub(self) -> AccessLogServiceStub:
        self._stubs()
        return self._logs

    def get_checkpoint(
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

        def send(request: Envelope, remaining: float) -> Envelope:
            reply = logs.GetCheckpoint(GetCheckpointRequest(request=request), timeout=remaining)
            return reply.response

        return self._unary(call, send, GetCheckpointResult, timeout, receipt)

    def get_inclusion_proof(
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

        def send(request: Envelope, remaining: float) -> Envelope:
            reply = logs.GetInclusionProof(
                GetInclusionProofRequest(request=request), timeout=remaining
            )
            return reply.response

        return self._unary(call, send, GetInclusionProofResult, timeout)

    def get_consistency_proof(
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

        def send(request: Envelope, remaining: float) -> Envelope:
            reply = logs.GetConsistencyProof(
                GetConsistencyProofRequest(request=request), timeout=remaining
            )
            if answer is not None:
                answer.append(reply.response)
            return reply.response

        return self._unary(call, send, GetConsistencyProofResult, timeout)

    def notify(self, body: NotifyBody, *, timeout: float | None = None) -> NotifyResult:
        """Tell the audience this caller holds changes for it (a hint, spec XCH-4).

        Raises:
            NodeError, AnswerVerificationError, TransportError.
        """
        self._stubs()
        assert self._channel is not None
        stub = NotificationServiceStub(self._channel)
        call = LogicalCall.new(NOTIFY, body, _NETWORK_OPERATIONS)

        def send(request: Envelope, remaining: float) -> Envelope:
            reply = stub.Notify(NotifyRequest(request=request), timeout=remaining)
            return reply.response

        return self._unary(call, send, NotifyResult, timeout)

    def add_cosignature(
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

        def send(request: Envelope, remaining: float) -> Envelope:
            reply = logs.AddCosignature(AddCosignatureRequest(request=request), timeout=remaining)
            return reply.response

        return self._unary(call, send, AddCosignatureResult, timeout)

    def watch_changes(
        self,
        parent: str,
        cursor: str = "",
        page_size: int = 0,
        follow: bool = False,
        *,
        purpose: int,
        timeout: float | None = None,
    ) -> Iterator[ChangeBatch]:
        """The change feed of a collection from cursor, one verified page (ChangeBatch) at a time.

        Every page must chain to the one before. Without follow the feed must end with a page
        marked last. With follow the node sends its first page at once (empty when nothing is
        new) and then keeps the stream open; the deadline (timeout) ends the iteration quietly
        once at least one page came. A follow stream with no page by its deadline raises
        TransportError (DEADLINE_EXCEEDED): nothing proves it ever reached the node. Resume with
        the last batch's cursor. A failure before the first page is retried like any read;
        after it, it is raised (resume from the cursor you have). Leaving the loop early leaves
        the stream open until the generator is closed: wrap it in ``contextlib.closing`` to
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
                for message in stream:
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
                stream.cancel()  # type: ignore[no-untyped-call, unused-ignore]
            time.sleep(delay)
