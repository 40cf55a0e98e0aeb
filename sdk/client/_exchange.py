"""The transport-free half of a node client: sign requests, open answers, decode failures.

Both clients (sync and async) do exactly this and differ only in how bytes move. Nothing here
imports grpc or asyncio: a failed call arrives as a :class:`RawStatus` (code name, message and
trailing metadata as received), an answer as the Envelope the response carried.

Rules (DESIGN §5, spec AUTH-17):

- every attempt is a freshly signed request: same request ID, fresh nonce and issue time;
- an answer counts only if it verifies against the key ring, names the called institution as
  responder and is bound to the digest and method of the request this attempt sent — so an old
  answer replayed for a new request fails (RESPONSE_UNBOUND);
- results are parsed from the verified payload bytes only;
- an error status is the node's answer only if its ``sseaun.v1.Envelope`` detail verifies as a
  SignedError bound to the request; anything else is a :class:`TransportError`, whatever code and
  ErrorInfo it claims.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

# googleapis-common-protos ships .pyi files but no py.typed marker
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]

from sseaun.sdk.core import (
    DOMAIN,
    Answer,
    KeyRing,
    ProtocolError,
    Reason,
    build_request,
    verify_answer,
)
from sseaun.v1.auth_pb2 import SignedError
from sseaun.v1.envelope_pb2 import Envelope
from sseaun.v1.service_pb2 import ChangeBatch, ListRecordsResult

from ._config import ClientConfig
from ._errors import AnswerVerificationError, ClientError, NodeError, TransportError
from ._receipt import Receipt

__all__ = [
    "ADD_COSIGNATURE",
    "GET_CHECKPOINT",
    "GET_CONSISTENCY_PROOF",
    "GET_INCLUSION_PROOF",
    "GET_MANIFEST",
    "GET_RECORD",
    "LIST_RECORDS",
    "NOTIFY",
    "STATUS_DETAILS_KEY",
    "WATCH_CHANGES",
    "Exchange",
    "FeedChain",
    "LogicalCall",
    "RawStatus",
    "code_name",
]

GET_MANIFEST = "/sseaun.v1.ManifestService/GetManifest"
GET_RECORD = "/sseaun.v1.RecordService/GetRecord"
LIST_RECORDS = "/sseaun.v1.RecordService/ListRecords"
WATCH_CHANGES = "/sseaun.v1.RecordService/WatchChanges"
GET_CHECKPOINT = "/sseaun.v1.AccessLogService/GetCheckpoint"
GET_INCLUSION_PROOF = "/sseaun.v1.AccessLogService/GetInclusionProof"
GET_CONSISTENCY_PROOF = "/sseaun.v1.AccessLogService/GetConsistencyProof"
ADD_COSIGNATURE = "/sseaun.v1.AccessLogService/AddCosignature"
NOTIFY = "/sseaun.v1.NotificationService/Notify"

#: The trailer that carries a serialised google.rpc.Status (gRPC proposal L44).
STATUS_DETAILS_KEY = "grpc-status-details-bin"

_CODE_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)

_M = TypeVar("_M", bound=Message)


def code_name(number: int) -> str | None:
    """The gRPC status code name of a code number, or None for an unknown number."""
    return _CODE_NAMES[number] if 0 <= number < len(_CODE_NAMES) else None


@dataclass(frozen=True)
class LogicalCall:
    """One logical call: what stays the same across its attempts."""

    method: str
    body: bytes
    purpose: int
    request_id: str

    @classmethod
    def new(cls, method: str, body: Message, purpose: int) -> LogicalCall:
        """A call with a fresh request ID (a UUID4, as AIP-155 suggests)."""
        return cls(method, body.SerializeToString(deterministic=True), purpose, str(uuid.uuid4()))


@dataclass(frozen=True)
class RawStatus:
    """A failed call's status as received: nothing in it is trusted yet."""

    code: str
    details: str
    trailing_metadata: Sequence[tuple[str, str | bytes]] = ()


_ERROR_INFO = "google.rpc.ErrorInfo"
_RETRY_INFO = "google.rpc.RetryInfo"
_ENVELOPE = "sseaun.v1.Envelope"


@dataclass(frozen=True)
class _Details:
    error_info: error_details_pb2.ErrorInfo | None
    retry_after: timedelta | None
    envelopes: tuple[Envelope, ...]


def _status_details(trailing_metadata: Sequence[tuple[str, str | bytes]]) -> _Details:
    status: status_pb2.Status | None = None
    for key, value in trailing_metadata:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                status = status_pb2.Status.FromString(value)
            except DecodeError:
                status = None
            break
    info: error_details_pb2.ErrorInfo | None = None
    retry_after: timedelta | None = None
    envelopes: list[Envelope] = []
    for detail in status.details if status is not None else ():
        name = detail.TypeName()
        try:
            if name == _ERROR_INFO and info is None:
                info = error_details_pb2.ErrorInfo.FromString(detail.value)
            elif name == _RETRY_INFO and retry_after is None:
                retry = error_details_pb2.RetryInfo.FromString(detail.value)
                retry_after = max(retry.retry_delay.ToTimedelta(), timedelta(0))
            elif name == _ENVELOPE:
                envelopes.append(Envelope.FromString(detail.value))
        except (DecodeError, ValueError, OverflowError):
            continue  # an undecodable detail is ignored, like an unknown one
    return _Details(info, retry_after, tuple(envelopes))


@dataclass(frozen=True)
class Exchange:
    """Who calls, whom it calls, and whom it trusts: the pure core of a node client."""

    config: ClientConfig
    keyring: KeyRing
    audience: str

    def __post_init__(self) -> None:
        if self.keyring.network_id != self.config.network_id:
            raise ValueError(
                f"the key ring is for network {self.keyring.network_id!r}, "
                f"the config for {self.config.network_id!r}"
            )
        if self.keyring.member(self.audience) is None:
            raise ValueError(f"{self.audience!r} is not a member of the manifest")

    def sign(self, call: LogicalCall, now: datetime | None = None) -> Envelope:
        """The signed request of one attempt: fresh nonce and issue time, same request ID."""
        config = self.config
        return build_request(
            signer=config.signer,
            network_id=config.network_id,
            method=call.method,
            sender=config.sender,
            audience=self.audience,
            purpose=call.purpose,
            body=call.body,
            request_id=call.request_id,
            now=now if now is not None else datetime.now(UTC),
        )

    def verify(
        self, call: LogicalCall, request: Envelope, answer: Envelope, previous: bytes | None
    ) -> Answer:
        """Verify an answer to request (a feed page when previous is not None).

        Raises:
            AnswerVerificationError: with the core's reason.
        """
        try:
            return verify_answer(
                answer,
                self.keyring,
                request=request,
                responder=self.audience,
                previous_page_digest=previous,
            )
        except ProtocolError as exc:
            raise AnswerVerificationError(exc, request_id=call.request_id) from exc

    def node_error(
        self,
        call: LogicalCall,
        answer: Answer,
        envelope: Envelope,
        *,
        transport_code: str,
        retry_after: timedelta | None,
    ) -> NodeError:
        """The exception for a verified signed error."""
        assert answer.error is not None
        # verify_answer verified exactly envelope.payload: reading the signed code from it is
        # reading verified bytes.
        signed_code = code_name(SignedError.FromString(envelope.payload).code)
        code = signed_code if signed_code not in (None, "OK") else answer.error.reason.status_code
        assert code is not None
        return NodeError(
            answer.error,
            code=code,
            transport_code=transport_code,
            retry_after=retry_after,
            request_id=call.request_id,
            answer_digest=answer.digest,
            log_index=answer.log_index,
        )

    def open_response(
        self,
        call: LogicalCall,
        request: Envelope,
        answer: Envelope,
        result_type: type[_M],
        receipt: Receipt | None = None,
    ) -> _M:
        """The result of a unary answer, parsed from the verified body.

        receipt, if given, is filled from the verified answer, signed error included.

        Raises:
            AnswerVerificationError: the answer did not verify, is unbound, or does not parse.
            NodeError: the answer is a verified signed error.
        """
        opened = self.verify(call, request, answer, None)
        if receipt is not None:
            receipt.fill(request, opened)
        if opened.error is not None:
            raise self.node_error(call, opened, answer, transport_code="OK", retry_after=None)
        result = result_type()
        try:
            result.ParseFromString(opened.body)
        except DecodeError as exc:
            raise AnswerVerificationError(
                ProtocolError(Reason.MALFORMED, "the result does not parse"),
                request_id=call.request_id,
            ) from exc
        return result

    def failure(self, call: LogicalCall, request: Envelope, status: RawStatus) -> ClientError:
        """The exception for a failed attempt: NodeError only if a signed error verifies."""
        details = _status_details(status.trailing_metadata)
        rejection: ProtocolError | None = None
        for envelope in details.envelopes:
            try:
                opened = verify_answer(
                    envelope, self.keyring, request=request, responder=self.audience
                )
            except ProtocolError as exc:
                rejection = rejection or exc
                continue
            if opened.error is None:
                rejection = rejection or ProtocolError(
                    Reason.PAYLOAD_TYPE_UNSUPPORTED, "an error status carried a non-error answer"
                )
                continue
            return self.node_error(
                call,
                opened,
                envelope,
                transport_code=status.code,
                retry_after=details.retry_after,
            )
        info = details.error_info
        claimed = info.reason if info is not None and info.domain == DOMAIN else None
        return TransportError(
            status.code,
            status.details,
            request_id=call.request_id,
            claimed_reason=claimed or None,
            rejection=rejection,
            retry_after=details.retry_after,
        )

    def feed(self, call: LogicalCall, request: Envelope, *, follow: bool) -> FeedChain:
        """A verifier for the pages of one WatchChanges attempt."""
        return FeedChain(self, call, request, follow=follow)

    def next_page_token(self, call: LogicalCall, sent: str, result: ListRecordsResult) -> str:
        """The token of the next page ("" after the last page).

        Raises:
            AnswerVerificationError: MALFORMED when the node hands back the token it was sent
                (the listing would never end).
        """
        token = result.next_page_token
        if token and token == sent:
            raise AnswerVerificationError(
                ProtocolError(Reason.MALFORMED, "the page token did not advance"),
                request_id=call.request_id,
            )
        return token


class FeedChain:
    """Verifies the pages of one feed answer in order: each must chain to the one before.

    The first page chains to b"", each next page to the digest of the page before (spec
    AUTH-16), page numbers count up from 0, and nothing may follow the page marked ``last``.

    A feed that ends without its ``last`` page (when not following) is refused with
    FEED_CHAIN_BROKEN: a chain cut short is a broken chain, whoever cut it — the pages received
    did verify, so the answer is bound, but it is incomplete. (RESPONSE_UNBOUND is kept for
    answers bound to another request.)
    """

    def __init__(
        self, exchange: Exchange, call: LogicalCall, request: Envelope, *, follow: bool
    ) -> None:
        self._exchange = exchange
        self._call = call
        self._request = request
        self.follow = follow
        self._previous = b""
        self.pages = 0
        self.complete = False

    def _broken(self, message: str) -> AnswerVerificationError:
        return AnswerVerificationError(
            ProtocolError(Reason.FEED_CHAIN_BROKEN, message), request_id=self._call.request_id
        )

    def accept(self, envelope: Envelope) -> ChangeBatch:
        """Verify the next page and return its batch, parsed from the verified body.

        Raises:
            AnswerVerificationError: the page does not verify, is unbound, does not chain, is out
                of order, follows the last page, or does not parse.
            NodeError: the node sent a signed error in place of a page.
        """
        if self.complete:
            raise self._broken("a page followed the last page")
        opened = self._exchange.verify(self._call, self._request, envelope, self._previous)
        if opened.error is not None:
            raise self._exchange.node_error(
                self._call, opened, envelope, transport_code="OK", retry_after=None
            )
        page = opened.page
        assert page is not None
        if page.page_number != self.pages:
            raise self._broken("page numbers are out of order")
        batch = ChangeBatch()
        try:
            batch.ParseFromString(opened.body)
        except DecodeError as exc:
            raise AnswerVerificationError(
                ProtocolError(Reason.MALFORMED, "the page body does not parse"),
                request_id=self._call.request_id,
            ) from exc
        self._previous = opened.digest
        self.pages += 1
        self.complete = page.last
        return batch

    def end(self) -> None:
        """The stream closed with OK: refuse it if the chain is incomplete.

        Raises:
            AnswerVerificationError: FEED_CHAIN_BROKEN when the last page is missing (or, when
                following, when not even one page came).
        """
        if self.complete:
            return
        if not self.follow:
            raise self._broken("the feed ended without its last page")
        if self.pages == 0:
            raise self._broken("the feed ended without any page")
