"""What the checks of envelopes, authentication, errors, manifests and gRPC share.

A raw unary call that keeps the whole ``google.rpc.Status`` of a refusal (ErrorInfo, BadRequest
and the signed error, which Context.raw reduces to the envelopes), the verification of an answer
against what was actually sent (AUTH-14 binds errors to the method called and to the envelope as
received, even when that is not a request a client would sign), and small request builders.
Nothing here trusts the content of an answer before it verified.
"""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

# googleapis-common-protos ships .pyi files but no py.typed marker
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]

from sseaun.sdk.core import (
    DOMAIN,
    Answer,
    Ed25519Signer,
    Envelope,
    FieldProblem,
    ProtocolError,
    Reason,
    envelope_digest,
    from_timestamp,
    payload_types,
    verify_answer,
)
from sseaun.v1 import service_pb2 as svc
from sseaun.v1.auth_pb2 import (
    Purpose,
    ResponseHeader,
    SignedError,
    SignedFeedPage,
    SignedRequest,
    SignedResponse,
)
from sseaun.v1.manifest_pb2 import EndpointKind, KeyPurpose, MemberStatus

from .._context import Context
from .._framework import CheckFailed, CheckSkipped

__all__ = [
    "EMPTY_ENVELOPE_DIGEST",
    "GET_MANIFEST",
    "GET_RECORD",
    "LIST_RECORDS",
    "MOBILITY",
    "NETWORK_OPERATIONS",
    "Refusal",
    "Reply",
    "Sample",
    "accepted",
    "another_sender",
    "answered",
    "call",
    "code_problems",
    "describe",
    "detail_problems",
    "get_manifest",
    "get_record",
    "header_problems",
    "http_fetch",
    "list_records",
    "metadata_problems",
    "missing_name",
    "only_error",
    "other_member",
    "parse_result",
    "refusal",
    "refuse_samples",
    "same_envelope",
    "sample_refusals",
    "stranger",
    "tampered",
    "verify_bound",
]

GET_MANIFEST = "/sseaun.v1.ManifestService/GetManifest"
GET_RECORD = "/sseaun.v1.RecordService/GetRecord"
LIST_RECORDS = "/sseaun.v1.RecordService/ListRecords"
NETWORK_OPERATIONS = Purpose.PURPOSE_NETWORK_OPERATIONS
MOBILITY = Purpose.PURPOSE_MOBILITY_ADMINISTRATION
#: SHA-256("DSSEv1 0  0 "): what an answer to an undecodable request message is bound to (AUTH-14).
EMPTY_ENVELOPE_DIGEST = bytes.fromhex(
    "956e625084667c50b492ede8cbd6475245288079498c3ef6d433f3abd913f636"
)
_STATUS_DETAILS = "grpc-status-details-bin"
_ERROR_INFO = "google.rpc.ErrorInfo"
_BAD_REQUEST = "google.rpc.BadRequest"
_ENVELOPE = "sseaun.v1.Envelope"


# --- raw calls ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """What one raw unary call got, nothing of it trusted yet.

    On success, answer is the envelope of the response message. On failure, status is the
    decoded ``grpc-status-details-bin`` (None when absent or undecodable) and the detail fields
    are the first detail of each kind; detail_types lists every detail's type, in order.
    """

    code: str
    message: str
    answer: Envelope | None
    status: status_pb2.Status | None
    detail_types: tuple[str, ...]
    error_info: error_details_pb2.ErrorInfo | None
    bad_request: error_details_pb2.BadRequest | None
    envelopes: tuple[Envelope, ...]

    @property
    def ok(self) -> bool:
        return self.code == "OK"


def _request_bytes(request: Envelope | bytes) -> bytes:
    if isinstance(request, bytes):
        return request
    # Every XxxRequest of the contract is `Envelope request = 1`; any of them encodes the same.
    return svc.GetRecordRequest(request=request).SerializeToString()


async def call(ctx: Context, method: str, request: Envelope | bytes) -> Reply:
    """Send one request envelope (or raw request-message bytes) to a unary method.

    A RATE_LIMITED refusal (which no check here provokes) is waited out and the same bytes sent
    again, at most twice: the node refuses it before the nonce check (AUTH-20), so the request
    stays fresh, and the checks stay independent of what ran just before them.

    Raises:
        CheckFailed: an OK status whose message does not decode.
    """
    data = _request_bytes(request)
    for _ in range(_RATE_LIMIT_ATTEMPTS):
        reply = await _call_once(ctx, method, data)
        delay = _rate_limited_delay(reply)
        if delay is None:
            break
        await asyncio.sleep(delay)
    return reply


_RATE_LIMIT_ATTEMPTS = 3
_RATE_LIMIT_WAIT = 2.0  # seconds, at most, per wait


def _rate_limited_delay(reply: Reply) -> float | None:
    info = reply.error_info
    if reply.code != "RESOURCE_EXHAUSTED" or info is None or info.reason != "RATE_LIMITED":
        return None
    try:
        milliseconds = int(info.metadata.get("retry-after-ms", "100"))
    except ValueError:
        milliseconds = 100
    return min(max(milliseconds, 1) / 1000, _RATE_LIMIT_WAIT)


async def _call_once(ctx: Context, method: str, data: bytes) -> Reply:
    async with ctx.channel() as channel:
        stub = channel.unary_unary(
            method, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        try:
            reply: bytes = await stub(data, timeout=ctx.deadline)
        except grpc.RpcError as exc:
            return _refused(exc)
    try:
        answer = svc.GetRecordResponse.FromString(reply).response  # any `Envelope response = 1`
    except DecodeError as exc:
        raise CheckFailed(f"{method} answered OK with a message that does not decode") from exc
    return Reply("OK", "", answer, None, (), None, None, ())


def _refused(error: grpc.RpcError) -> Reply:
    failed: Any = error  # an aio call error: code(), details(), trailing_metadata()
    status: status_pb2.Status | None = None
    for key, value in tuple(failed.trailing_metadata() or ()):
        if key == _STATUS_DETAILS and isinstance(value, bytes):
            try:
                status = status_pb2.Status.FromString(value)
            except DecodeError:
                status = None
            break
    types: list[str] = []
    info: error_details_pb2.ErrorInfo | None = None
    bad: error_details_pb2.BadRequest | None = None
    envelopes: list[Envelope] = []
    for detail in status.details if status is not None else ():
        name = detail.TypeName()
        types.append(name)
        try:
            if name == _ERROR_INFO and info is None:
                info = error_details_pb2.ErrorInfo.FromString(detail.value)
            elif name == _BAD_REQUEST and bad is None:
                bad = error_details_pb2.BadRequest.FromString(detail.value)
            elif name == _ENVELOPE:
                envelopes.append(Envelope.FromString(detail.value))
        except DecodeError:
            continue  # reported by the checks as a missing detail
    return Reply(
        failed.code().name,
        failed.details() or "",
        None,
        status,
        tuple(types),
        info,
        bad,
        tuple(envelopes),
    )


# --- requests -------------------------------------------------------------------------------


def get_record(ctx: Context, name: str, **options: Any) -> Envelope:
    """A signed GetRecord request (purpose MOBILITY_ADMINISTRATION unless given)."""
    options.setdefault("purpose", MOBILITY)
    return ctx.request(GET_RECORD, svc.GetRecordBody(name=name), **options)


def list_records(ctx: Context, parent: str, page_size: int = 1, **options: Any) -> Envelope:
    """A signed ListRecords request (purpose MOBILITY_ADMINISTRATION unless given)."""
    options.setdefault("purpose", MOBILITY)
    body = svc.ListRecordsBody(parent=parent, page_size=page_size)
    return ctx.request(LIST_RECORDS, body, **options)


def get_manifest(ctx: Context, version: int = 0, **options: Any) -> Envelope:
    """A signed GetManifest request (purpose NETWORK_OPERATIONS unless given)."""
    options.setdefault("purpose", NETWORK_OPERATIONS)
    return ctx.request(GET_MANIFEST, svc.GetManifestBody(version=version), **options)


def missing_name(ctx: Context) -> str:
    """A well-formed course name of the audience that names nothing (REC-3)."""
    return f"institutions/{ctx.audience}/courses/NOPE-{uuid.uuid4().hex[:12].upper()}"


def tampered(envelope: Envelope) -> Envelope:
    """A copy whose payload's last byte is changed after signing (it still parses when the
    payload ends inside the body bytes, as every request of build_request does)."""
    out = Envelope()
    out.CopyFrom(envelope)
    out.payload = envelope.payload[:-1] + bytes([envelope.payload[-1] ^ 0x01])
    return out


def stranger() -> Ed25519Signer:
    """A key no manifest lists (fresh for every call)."""
    return Ed25519Signer.generate()


def other_member(ctx: Context, *, exclude: Collection[str] = ()) -> str:
    """An active member of the manifest the node under test does not serve (no gRPC endpoint of
    it is the target), for wrong-audience and other-namespace requests.

    Raises:
        CheckSkipped: the manifest lists none.
    """
    auditors = {a.institution for a in ctx.auditors}
    candidates = []
    for member in ctx.keyring.manifest.manifest.members:
        name = member.institution_id
        if name == ctx.audience or name in exclude:
            continue
        if member.status != MemberStatus.MEMBER_STATUS_ACTIVE:
            continue
        if any(
            e.kind == EndpointKind.ENDPOINT_KIND_GRPC and e.address == ctx.target
            for e in member.endpoints
        ):
            continue  # possibly served by the same node
        candidates.append((name in auditors, name))
    if not candidates:
        raise CheckSkipped("the manifest lists no other active member than the node's")
    return sorted(candidates)[0][1]


def another_sender(ctx: Context) -> str:
    """An institution other than the first auditor, to claim as sender with its key."""
    if len(ctx.auditors) > 1:
        return ctx.auditor(1).institution
    return other_member(ctx, exclude={ctx.auditor().institution})


# --- verifying answers ----------------------------------------------------------------------

_ANSWER_TYPES: dict[str, type[SignedResponse] | type[SignedError] | type[SignedFeedPage]] = {
    payload_types.RESPONSE: SignedResponse,
    payload_types.ERROR: SignedError,
    payload_types.FEED_PAGE: SignedFeedPage,
}


def _signed_method(request: Envelope) -> str | None:
    try:
        return SignedRequest.FromString(request.payload).header.method
    except DecodeError:
        return None


def verify_bound(
    ctx: Context,
    envelope: Envelope,
    request: Envelope | None,
    *,
    method: str,
    responder: str | None = None,
) -> Answer:
    """Verify an answer of the node (AUTH-17 steps 1-5) against what was sent to method.

    The SDK's verify_answer is used whenever it applies: the request parses and was signed for
    the method called. Otherwise (a request presented to another method, a payload that does not
    parse, or a request message that did not decode: request None) the same checks run here, with
    the binding AUTH-14 asks of the node: the digest of the envelope as received (the empty
    envelope's for None) and the method called.

    Raises:
        CheckFailed: the answer does not verify, naming the reason.
    """
    responder = responder or ctx.audience
    if request is not None and _signed_method(request) == method:
        try:
            return verify_answer(envelope, ctx.keyring, request=request, responder=responder)
        except ProtocolError as exc:
            raise CheckFailed(
                f"the node's answer does not verify: {exc.reason.value}: {exc.message}"
            ) from exc
    digest = envelope_digest(request) if request is not None else EMPTY_ENVELOPE_DIGEST
    try:
        return _verify_manually(ctx, envelope, digest=digest, method=method, responder=responder)
    except ProtocolError as exc:
        raise CheckFailed(
            f"the node's answer does not verify: {exc.reason.value}: {exc.message}"
        ) from exc


def _answer_signer(message: Any) -> tuple[str, str, datetime]:
    header: ResponseHeader = message.header
    if not message.HasField("header") or not header.HasField("issued_at"):
        raise ValueError("header.issued_at")
    return header.network_id, header.responder, from_timestamp(header.issued_at)


def _verify_manually(
    ctx: Context, envelope: Envelope, *, digest: bytes, method: str, responder: str
) -> Answer:
    message_type = _ANSWER_TYPES.get(envelope.payload_type, SignedResponse)
    verified = ctx.keyring.verify(
        envelope,
        allowed_types=payload_types.RESPONSE_KINDS,
        message_type=message_type,
        signer_of=_answer_signer,
        purpose=KeyPurpose.KEY_PURPOSE_TRANSPORT,
        new_call=True,
    )
    message: Any = verified.message
    header: ResponseHeader = message.header
    if header.responder != responder:
        raise ProtocolError(Reason.SIGNER_MISMATCH, "answered by another institution")
    if header.request_digest != digest:
        raise ProtocolError(Reason.RESPONSE_UNBOUND, "answer is bound to another request")
    if header.method != method:
        raise ProtocolError(Reason.RESPONSE_UNBOUND, "answer is for another method")
    if isinstance(message, SignedError):
        error = ProtocolError(
            Reason.from_wire(message.reason),
            message.message,
            field_problems=[FieldProblem(v.field, v.description) for v in message.field_violations],
            metadata=dict(message.metadata),
        )
        return Answer(envelope.payload_type, header, b"", verified.envelope.digest, error=error)
    return Answer(envelope.payload_type, header, message.body, verified.envelope.digest)


# --- refusals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A refused call whose signed error verified and is bound to what was sent."""

    reply: Reply
    answer: Answer
    error: SignedError
    envelope: Envelope

    @property
    def reason(self) -> Reason:
        return Reason.from_wire(self.error.reason)


def describe(reply: Reply, error: SignedError | None = None) -> str:
    """One line of what came back, for failure messages."""
    if reply.ok:
        return "OK (a signed response)"
    text = f"status {reply.code} {reply.message!r}"
    if error is not None:
        text += f", signed reason {Reason.from_wire(error.reason).value}"
    elif reply.error_info is not None:
        text += f", unsigned ErrorInfo reason {reply.error_info.reason!r}"
    return text


def only_error(reply: Reply) -> Envelope:
    errors = [e for e in reply.envelopes if e.payload_type == payload_types.ERROR]
    if not reply.envelopes:
        raise CheckFailed(f"{describe(reply)} carries no signed error envelope (AUTH-15)")
    if len(reply.envelopes) != 1 or len(errors) != 1:
        raise CheckFailed(
            f"{describe(reply)} carries {len(reply.envelopes)} envelopes of types "
            f"{[e.payload_type for e in reply.envelopes]}, not one signed error"
        )
    return errors[0]


async def refusal(
    ctx: Context,
    method: str,
    request: Envelope | bytes,
    expected: Reason | None,
    *,
    what: str = "the request",
) -> Refusal:
    """Send request; it must be refused with a signed error that verifies and is bound to what
    was sent, with the expected reason (if given) and that reason's status code (ERR-3).

    Raises:
        CheckFailed: it was accepted, or refused otherwise, saying what came back.
    """
    reply = await call(ctx, method, request)
    wanted = f"{expected.value} ({expected.status_code})" if expected else "a refusal"
    if reply.ok:
        raise CheckFailed(f"{what} was accepted (OK); expected {wanted}")
    envelope = only_error(reply)
    sent = request if isinstance(request, Envelope) else None
    answer = verify_bound(ctx, envelope, sent, method=method)
    error = SignedError.FromString(envelope.payload)  # the bytes that verified
    got = Reason.from_wire(error.reason)
    if expected is not None and (got is not expected or reply.code != expected.status_code):
        raise CheckFailed(f"{what}: expected {wanted}, got {describe(reply, error)}")
    return Refusal(reply, answer, error, envelope)


async def answered(
    ctx: Context, method: str, request: Envelope, *, what: str = "the request"
) -> tuple[Reply, Answer]:
    """Send request; whatever the outcome, the signed answer (response or error) must verify
    and be bound to it. Answer.error holds the signed reason of a refusal.

    Raises:
        CheckFailed: no signed answer, or it does not verify.
    """
    reply = await call(ctx, method, request)
    if reply.ok:
        assert reply.answer is not None
        return reply, verify_bound(ctx, reply.answer, request, method=method)
    try:
        envelope = only_error(reply)
    except CheckFailed as exc:
        raise CheckFailed(f"{what}: {exc}") from exc
    return reply, verify_bound(ctx, envelope, request, method=method)


async def accepted(
    ctx: Context, method: str, request: Envelope, *, what: str = "the request"
) -> Answer:
    """Send request; it must be answered OK with a signed response bound to it.

    Raises:
        CheckFailed: refused, or the response does not verify.
    """
    reply = await call(ctx, method, request)
    if not reply.ok:
        error = None
        if len(reply.envelopes) == 1:
            try:
                verify_bound(ctx, reply.envelopes[0], request, method=method)
                error = SignedError.FromString(reply.envelopes[0].payload)
            except CheckFailed:
                error = None
        raise CheckFailed(f"{what} was refused: {describe(reply, error)}")
    assert reply.answer is not None
    answer = verify_bound(ctx, reply.answer, request, method=method)
    if answer.error is not None or answer.payload_type != payload_types.RESPONSE:
        raise CheckFailed(
            f"{what}: an OK status carried a {answer.payload_type} envelope, not a response"
        )
    return answer


# --- wire form of errors (ERR-2, ERR-3) -----------------------------------------------------

_STATUS_NUMBERS = {code.name: code.value[0] for code in grpc.StatusCode}
_METADATA_KEY = re.compile(r"[a-z][a-zA-Z0-9\-_]+")


def code_problems(refused: Refusal) -> list[str]:
    """Where a refusal's status code or SignedError.code differs from ERR-3 for its reason."""
    reply, error = refused.reply, refused.error
    reason = Reason.from_wire(error.reason)
    problems = []
    if reply.code != reason.status_code:
        problems.append(f"status {reply.code}; ERR-3 maps {reason.value} to {reason.status_code}")
    if error.code != _STATUS_NUMBERS.get(reason.status_code):
        problems.append(f"SignedError.code is {error.code}, not the number of {reason.status_code}")
    return problems


def detail_problems(refused: Refusal) -> list[str]:
    """Where the google.rpc.Status of a refusal breaks ERR-2 or disagrees with its signed error
    (the code aside: code_problems)."""
    reply, error = refused.reply, refused.error
    reason = Reason.from_wire(error.reason)
    status = reply.status
    if status is None:
        return ["no google.rpc.Status in grpc-status-details-bin"]
    problems = []
    if status.code != _STATUS_NUMBERS.get(reply.code):
        problems.append(f"Status.code {status.code} differs from the call's status {reply.code}")
    if status.message != error.message:
        problems.append(f"Status.message {status.message!r} ≠ signed message {error.message!r}")
    duplicated = sorted({t for t in reply.detail_types if reply.detail_types.count(t) > 1})
    if duplicated:
        problems.append(f"detail types appear more than once: {duplicated}")
    info = reply.error_info
    if info is None:
        problems.append("no google.rpc.ErrorInfo detail")
    else:
        if info.domain != DOMAIN:
            problems.append(f"ErrorInfo.domain is {info.domain!r}, not {DOMAIN!r}")
        if info.reason != reason.value:
            problems.append(f"ErrorInfo.reason {info.reason!r} ≠ signed reason {reason.value}")
        if dict(info.metadata) != dict(error.metadata):
            problems.append(
                f"ErrorInfo.metadata {dict(info.metadata)} ≠ signed {dict(error.metadata)}"
            )
    signed_fields = [(v.field, v.description) for v in error.field_violations]
    if signed_fields and reply.bad_request is None:
        problems.append("field violations were signed but no google.rpc.BadRequest was sent")
    if reply.bad_request is not None:
        sent = [(v.field, v.description) for v in reply.bad_request.field_violations]
        if sent != signed_fields:
            problems.append(f"BadRequest {sent} ≠ signed field violations {signed_fields}")
    return problems


def metadata_problems(refused: Refusal, expected: Mapping[str, str] | None) -> list[str]:
    """Where a refusal's signed metadata breaks ERR-6: keys of the AIP-193 form, and the
    expected keys with their values ({} expects none at all)."""
    metadata = dict(refused.error.metadata)
    problems = []
    bad_keys = sorted(k for k in metadata if not _METADATA_KEY.fullmatch(k))
    if bad_keys:
        problems.append(f"metadata keys not of the form [a-z][a-zA-Z0-9-_]+: {bad_keys}")
    if expected is not None and not expected and metadata:
        problems.append(f"metadata {metadata}, expected none")
    for key, value in (expected or {}).items():
        if metadata.get(key) != value:
            problems.append(f"metadata {key}={metadata.get(key)!r}, expected {value!r}")
    return problems


@dataclass(frozen=True)
class Sample:
    """A request the node must refuse, with the reason it must give and the metadata ERR-6
    expects with it (None: no expectation; {}: none at all)."""

    label: str
    method: str
    request: Envelope
    reason: Reason
    metadata: Mapping[str, str] | None = None


def sample_refusals(ctx: Context) -> list[Sample]:
    """One freshly signed request per reason the node can be made to give without changing its
    state (REPLAYED_NONCE needs the request sent once before: see refuse_samples)."""
    me, name = ctx.auditor(), missing_name(ctx)
    skewed = datetime.now(UTC) - timedelta(minutes=10)
    short = get_record(ctx, name)
    short.signatures[0].sig = short.signatures[0].sig[:63]
    retyped = get_record(ctx, name)
    retyped.payload_type = payload_types.RESPONSE
    elsewhere, claimed = ctx.network_id + "-elsewhere", another_sender(ctx)
    courses = f"institutions/{ctx.audience}/courses"
    return [
        Sample("a 63-byte signature", GET_RECORD, short, Reason.MALFORMED),
        Sample(
            "a response-typed request",
            GET_RECORD,
            retyped,
            Reason.PAYLOAD_TYPE_UNSUPPORTED,
            {"payload-type": payload_types.RESPONSE},
        ),
        Sample(
            "a key no manifest lists",
            GET_RECORD,
            get_record(ctx, name, signer=stranger()),
            Reason.KEY_UNKNOWN,
        ),
        Sample(
            "a payload changed after signing",
            GET_RECORD,
            tampered(get_record(ctx, name)),
            Reason.SIGNATURE_INVALID,
        ),
        Sample(
            "another network",
            GET_RECORD,
            get_record(ctx, name, network_id=elsewhere),
            Reason.WRONG_NETWORK,
            {"network-id": elsewhere},
        ),
        Sample(
            "issued 10 minutes ago",
            GET_RECORD,
            get_record(ctx, name, now=skewed),
            Reason.CLOCK_SKEW,
            {"window-seconds": "300"},
        ),
        Sample(
            "another institution as sender",
            GET_RECORD,
            get_record(ctx, name, sender=claimed),
            Reason.SIGNER_MISMATCH,
            {"signer": claimed},
        ),
        Sample(
            "signed by the ISSUING key",
            GET_RECORD,
            get_record(ctx, name, signer=me.issuing),
            Reason.KEY_WRONG_PURPOSE,
            {"key-id": me.issuing.key_id},
        ),
        Sample(
            "addressed to another institution",
            GET_RECORD,
            get_record(ctx, name, audience=other_member(ctx)),
            Reason.WRONG_AUDIENCE,
        ),
        Sample(
            "signed for GetRecord, sent to ListRecords",
            LIST_RECORDS,
            get_record(ctx, name),
            Reason.METHOD_MISMATCH,
        ),
        Sample(
            "GetManifest for RECOGNITION",
            GET_MANIFEST,
            get_manifest(ctx, purpose=Purpose.PURPOSE_RECOGNITION),
            Reason.PURPOSE_NOT_ALLOWED,
        ),
        Sample("a missing record", GET_RECORD, get_record(ctx, name), Reason.NOT_FOUND, {}),
        Sample(
            "page_size -1",
            LIST_RECORDS,
            list_records(ctx, courses, page_size=-1),
            Reason.MALFORMED,
        ),
    ]


async def refuse_samples(ctx: Context) -> list[tuple[Sample, Refusal]]:
    """Send every sample (and one replay) and collect the verified refusals.

    Raises:
        CheckFailed: a sample was accepted or refused with another reason.
    """
    out = []
    for sample in sample_refusals(ctx):
        refused = await refusal(
            ctx, sample.method, sample.request, sample.reason, what=sample.label
        )
        out.append((sample, refused))
    replayed = get_manifest(ctx)
    await accepted(ctx, GET_MANIFEST, replayed, what="a fresh GetManifest")
    sample = Sample("a replayed request", GET_MANIFEST, replayed, Reason.REPLAYED_NONCE)
    out.append((sample, await refusal(ctx, GET_MANIFEST, replayed, sample.reason)))
    return out


# --- HTTP -----------------------------------------------------------------------------------


async def http_fetch(ctx: Context, path: str) -> tuple[int, str, bytes]:
    """GET the node's HTTP base + path: (status, Content-Type, body), 4xx/5xx included.

    Raises:
        CheckSkipped: the manifest lists no HTTP endpoint for the audience.
    """
    url = ctx.http_base() + path

    def fetch() -> tuple[int, str, bytes]:
        request = urllib.request.Request(url)  # noqa: S310 - the manifest's URL
        try:
            with urllib.request.urlopen(request, timeout=ctx.deadline) as reply:  # noqa: S310
                return int(reply.status), reply.headers.get("Content-Type", ""), reply.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.headers.get("Content-Type", ""), exc.read()

    return await asyncio.to_thread(fetch)


def same_envelope(a: Envelope, b: Envelope) -> bool:
    """Same payload bytes, payload type and signatures (in order)."""
    return (
        a.payload == b.payload
        and a.payload_type == b.payload_type
        and [(s.keyid, s.sig) for s in a.signatures] == [(s.keyid, s.sig) for s in b.signatures]
    )


def parse_result(answer: Answer, result_type: type[Message], what: str) -> Any:
    """Parse a verified response body as its result message."""
    result = result_type()
    try:
        result.ParseFromString(answer.body)
    except DecodeError as exc:
        raise CheckFailed(
            f"{what}: the verified response body is not a {result_type.__name__}"
        ) from exc
    return result


def header_problems(
    header: ResponseHeader, request: Envelope | None, *, method: str, verified: bool
) -> list[str]:
    """Where a verified answer's header differs from AUTH-13's table for this request."""
    problems: list[str] = []
    sent: Sequence[str] = ()
    if request is not None:
        try:
            h = SignedRequest.FromString(request.payload).header
            sent = (h.network_id, h.sender, h.request_id)
        except DecodeError:
            sent = ()
    if method != header.method:
        problems.append(f"method {header.method!r}, called {method!r}")
    if sent and header.network_id != sent[0]:
        problems.append(f"network_id {header.network_id!r}, not {sent[0]!r}")
    if verified and sent:
        if header.requester != sent[1]:
            problems.append(f"requester {header.requester!r}, not the sender {sent[1]!r}")
        if header.request_id != sent[2]:
            problems.append(f"request_id {header.request_id!r}, not {sent[2]!r}")
    if not verified and (header.requester or header.request_id):
        problems.append(
            f"requester {header.requester!r} / request_id {header.request_id!r} of a request "
            "that did not verify (must be empty)"
        )
    return problems
