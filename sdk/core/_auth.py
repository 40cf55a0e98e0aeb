"""Message-level authentication of calls: signed requests, and answers bound to them."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sseaun.v1.auth_pb2 import (
    RequestHeader,
    ResponseHeader,
    SignedError,
    SignedFeedPage,
    SignedRequest,
    SignedResponse,
)
from sseaun.v1.envelope_pb2 import Envelope
from sseaun.v1.errors_pb2 import FieldViolation
from sseaun.v1.manifest_pb2 import KeyPurpose

from . import _payload_types as types
from ._envelope import envelope_digest, sign_envelope
from ._errors import FieldProblem, ProtocolError, Reason
from ._keyring import KeyRing, TrustedKey
from ._keys import Signer
from ._time import from_timestamp, to_timestamp, utc

__all__ = [
    "CLOCK_WINDOW",
    "MAX_NONCE_SIZE",
    "MIN_NONCE_SIZE",
    "Answer",
    "AnswerContext",
    "VerifiedRequest",
    "build_request",
    "sign_error",
    "sign_feed_page",
    "sign_response",
    "verify_answer",
    "verify_request",
]

#: Requests must be issued within this much of the verifier's clock (spec AUTH-8).
CLOCK_WINDOW = timedelta(minutes=5)
MIN_NONCE_SIZE = 16
MAX_NONCE_SIZE = 64
_TRANSPORT = KeyPurpose.KEY_PURPOSE_TRANSPORT


def build_request(
    *,
    signer: Signer,
    network_id: str,
    method: str,
    sender: str,
    audience: str,
    purpose: int,
    body: bytes,
    request_id: str,
    now: datetime,
    nonce: bytes | None = None,
) -> Envelope:
    """Sign a request bound to network, method, sender, audience, time, nonce, ID and purpose.

    A retry keeps request_id and gets a fresh nonce (spec AUTH-3).
    """
    header = RequestHeader(
        network_id=network_id,
        method=method,
        sender=sender,
        audience=audience,
        issued_at=to_timestamp(now),
        nonce=nonce if nonce is not None else secrets.token_bytes(32),
        request_id=request_id,
        purpose=purpose,  # type: ignore[arg-type]
    )
    payload = SignedRequest(header=header, body=body).SerializeToString(deterministic=True)
    return sign_envelope(payload, types.REQUEST, [signer])


@dataclass(frozen=True)
class VerifiedRequest:
    """A request that passed every pure check; the node still has to check the nonce.

    nonce_key must be stored (atomically with the check that it is unseen) until nonce_expires_at;
    after that the clock window refuses the request anyway.
    """

    header: RequestHeader
    body: bytes
    digest: bytes
    key: TrustedKey
    nonce_key: bytes
    nonce_expires_at: datetime

    @property
    def sender(self) -> str:
        return self.header.sender


def _request_signer(request: SignedRequest) -> tuple[str, str, datetime]:
    header = request.header
    if not request.HasField("header") or not header.HasField("issued_at"):
        raise ValueError("header.issued_at")
    if not header.sender:
        raise ValueError("header.sender")
    return header.network_id, header.sender, from_timestamp(header.issued_at)


def verify_request(
    envelope: Envelope,
    keyring: KeyRing,
    *,
    now: datetime,
    method: str,
    audiences: Collection[str],
    allowed_purposes: Collection[int],
    clock_window: timedelta = CLOCK_WINDOW,
) -> VerifiedRequest:
    """Check a signed request in the order of spec AUTH-5 and return it verified.

    Raises:
        ProtocolError: the reason of the first failing check: MALFORMED,
            PAYLOAD_TYPE_UNSUPPORTED, KEY_UNKNOWN, SIGNATURE_INVALID, MALFORMED (payload),
            WRONG_NETWORK, CLOCK_SKEW, SIGNER_MISMATCH, KEY_REVOKED, KEY_WRONG_PURPOSE,
            KEY_EXPIRED, MALFORMED (nonce size), WRONG_AUDIENCE, METHOD_MISMATCH,
            PURPOSE_NOT_ALLOWED.
    """
    now = utc(now)

    def within_window(_: SignedRequest, issued: datetime) -> None:
        if abs(issued - now) > clock_window:
            raise ProtocolError(
                Reason.CLOCK_SKEW,
                "request time is outside the clock window",
                metadata={"window-seconds": str(int(clock_window.total_seconds()))},
            )

    verified = keyring.verify(
        envelope,
        allowed_types={types.REQUEST},
        message_type=SignedRequest,
        signer_of=_request_signer,
        purpose=_TRANSPORT,
        new_call=True,
        precheck=within_window,
    )
    request = verified.message
    assert isinstance(request, SignedRequest)
    header = request.header
    issued = verified.signed_at
    if not MIN_NONCE_SIZE <= len(header.nonce) <= MAX_NONCE_SIZE:
        raise ProtocolError(
            Reason.MALFORMED,
            "nonce must be 16 to 64 bytes",
            field_problems=[FieldProblem("header.nonce", "16 to 64 bytes")],
        )
    if header.audience not in audiences:
        raise ProtocolError(Reason.WRONG_AUDIENCE, "request is addressed to another institution")
    if header.method != method:
        raise ProtocolError(Reason.METHOD_MISMATCH, "request was signed for another method")
    if header.purpose not in allowed_purposes:
        raise ProtocolError(Reason.PURPOSE_NOT_ALLOWED, "purpose not allowed for this method")
    nonce_key = hashlib.sha256(header.sender.encode() + b"\x00" + header.nonce).digest()
    return VerifiedRequest(
        header=header,
        body=request.body,
        digest=verified.envelope.digest,
        key=verified.key,
        nonce_key=nonce_key,
        nonce_expires_at=issued + clock_window,
    )


@dataclass(frozen=True)
class AnswerContext:
    """What an answer is bound to: the request (verified or not) and who answers."""

    network_id: str
    method: str
    responder: str
    requester: str
    request_digest: bytes
    request_id: str

    @classmethod
    def for_request(cls, request: VerifiedRequest) -> AnswerContext:
        """The context of an answer to a verified request."""
        h = request.header
        return cls(h.network_id, h.method, h.audience, h.sender, request.digest, h.request_id)

    @classmethod
    def for_unverified(
        cls, envelope: Envelope, *, network_id: str, method: str, responder: str
    ) -> AnswerContext:
        """The context of an error answering a request that did not verify.

        Only the digest of the envelope as received is bound; nothing in it is trusted.
        """
        return cls(network_id, method, responder, "", envelope_digest(envelope), "")

    def header(self, now: datetime, log_index: int | None = None) -> ResponseHeader:
        """The answer's header; log_index is the responder's log entry of this call."""
        header = ResponseHeader(
            network_id=self.network_id,
            method=self.method,
            responder=self.responder,
            requester=self.requester,
            issued_at=to_timestamp(now),
            request_digest=self.request_digest,
            request_id=self.request_id,
        )
        if log_index is not None:
            header.log_index = log_index
        return header


def sign_response(
    context: AnswerContext,
    body: bytes,
    *,
    signer: Signer,
    now: datetime,
    log_index: int | None = None,
) -> Envelope:
    """Sign a successful answer bound to the request's digest (spec AUTH-14, LOG-6)."""
    payload = SignedResponse(header=context.header(now, log_index), body=body)
    return sign_envelope(payload.SerializeToString(deterministic=True), types.RESPONSE, [signer])


def sign_error(
    context: AnswerContext,
    error: ProtocolError,
    *,
    signer: Signer,
    now: datetime,
    log_index: int | None = None,
) -> Envelope:
    """Sign an error answer bound to the request's digest (spec AUTH-15, LOG-6)."""
    payload = SignedError(
        header=context.header(now, log_index),
        reason=error.reason.wire,  # type: ignore[arg-type]
        code=_STATUS_NUMBERS[error.reason.status_code],
        message=error.message,
        field_violations=[
            FieldViolation(field=p.field, description=p.description) for p in error.field_problems
        ],
        metadata=error.metadata,
    )
    return sign_envelope(payload.SerializeToString(deterministic=True), types.ERROR, [signer])


def sign_feed_page(
    context: AnswerContext,
    body: bytes,
    *,
    previous_digest: bytes,
    page_number: int,
    last: bool,
    signer: Signer,
    now: datetime,
    log_index: int | None = None,
) -> Envelope:
    """Sign one page of a change feed, chained to the digest of the page before (AUTH-16)."""
    payload = SignedFeedPage(
        header=context.header(now, log_index),
        previous_page_digest=previous_digest,
        body=body,
        page_number=page_number,
        last=last,
    )
    return sign_envelope(payload.SerializeToString(deterministic=True), types.FEED_PAGE, [signer])


@dataclass(frozen=True)
class Answer:
    """A verified answer: a response or feed page body, or the error the node signed."""

    payload_type: str
    header: ResponseHeader
    body: bytes
    digest: bytes
    error: ProtocolError | None = None
    page: SignedFeedPage | None = None

    @property
    def log_index(self) -> int | None:
        """The responder's access-log entry for this call, if it logged it (spec LOG-6)."""
        return self.header.log_index if self.header.HasField("log_index") else None


_STATUS_NUMBERS: Mapping[str, int] = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}


def _answer_signer(
    message: SignedResponse | SignedError | SignedFeedPage,
) -> tuple[str, str, datetime]:
    header = message.header
    if not message.HasField("header") or not header.HasField("issued_at"):
        raise ValueError("header.issued_at")
    return header.network_id, header.responder, from_timestamp(header.issued_at)


_ANSWER_MESSAGES: Mapping[str, type[SignedResponse] | type[SignedError] | type[SignedFeedPage]] = {
    types.RESPONSE: SignedResponse,
    types.ERROR: SignedError,
    types.FEED_PAGE: SignedFeedPage,
}


def verify_answer(
    envelope: Envelope,
    keyring: KeyRing,
    *,
    request: Envelope,
    responder: str,
    previous_page_digest: bytes | None = None,
) -> Answer:
    """Verify an answer to the request this client sent (spec AUTH-17).

    Checks the responder's transport key, that the answer is bound to the digest of request and
    its method, and for a feed page that it chains to previous_page_digest (empty for the first
    page). A signed error is returned in Answer.error, not raised, so the caller sees it was
    genuinely the node's answer.

    Raises:
        ProtocolError: any reason of KeyRing.verify, RESPONSE_UNBOUND, FEED_CHAIN_BROKEN.
    """
    payload_type = envelope.payload_type
    message_type = _ANSWER_MESSAGES.get(payload_type, SignedResponse)
    verified = keyring.verify(
        envelope,
        allowed_types=types.RESPONSE_KINDS,
        message_type=message_type,
        signer_of=_answer_signer,
        purpose=_TRANSPORT,
        new_call=True,
    )
    message = verified.message
    assert isinstance(message, SignedResponse | SignedError | SignedFeedPage)
    header = message.header
    if header.responder != responder:
        raise ProtocolError(Reason.SIGNER_MISMATCH, "answered by another institution")
    if header.request_digest != envelope_digest(request):
        raise ProtocolError(Reason.RESPONSE_UNBOUND, "answer is bound to another request")
    sent = SignedRequest.FromString(request.payload).header
    if header.method != sent.method:
        raise ProtocolError(Reason.RESPONSE_UNBOUND, "answer is for another method")
    digest = verified.envelope.digest
    if isinstance(message, SignedError):
        error = ProtocolError(
            Reason.from_wire(message.reason),
            message.message,
            field_problems=[FieldProblem(v.field, v.description) for v in message.field_violations],
            metadata=dict(message.metadata),
        )
        return Answer(payload_type, header, b"", digest, error=error)
    if isinstance(message, SignedFeedPage):
        if previous_page_digest is None:
            raise ProtocolError(Reason.PAYLOAD_TYPE_UNSUPPORTED, "a feed page was not expected")
        if message.previous_page_digest != previous_page_digest:
            raise ProtocolError(
                Reason.FEED_CHAIN_BROKEN, "page does not chain to the page before it"
            )
        return Answer(payload_type, header, message.body, digest, page=message)
    if previous_page_digest is not None:
        raise ProtocolError(Reason.PAYLOAD_TYPE_UNSUPPORTED, "a feed page was expected")
    return Answer(payload_type, header, message.body, digest)
