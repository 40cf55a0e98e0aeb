"""A small fake node on loopback: correct by default, with one switchable misbehaviour at a time.

The suite plays this server to show that the SDK shipped with it refuses what a client must refuse
(the "client" area, spec AUTH-16, AUTH-17, FEED-10, PAGE-4); the SDK's own tests use it too
(``tests/fake_node.py`` re-exports it). It is self-contained: it builds its own small test network
(governance keys, members, a signed manifest; TEST KEYS ONLY, derived from public labels) and never
needs the node under test.

It implements ManifestService and RecordService with the protocol core exactly as a node must
(verify the request, check the nonce, sign every answer and error bound to the request, chain
feed pages) over one collection of signed courses, and can be told to misbehave in the ways a
client must detect. Each misbehaviour is one documented switch, never a special case spread over
the handlers. It keeps no access log: its answers carry no ``log_index``.

Error statuses follow the node's error transport: the gRPC code of the reason, and in
``grpc-status-details-bin`` a ``google.rpc.Status`` with an ErrorInfo, a BadRequest when fields
are wrong, the SignedError as an ``Any`` of ``sseaun.v1.Envelope``, and a RetryInfo when rate
limiting.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import grpc
from google.protobuf.duration_pb2 import Duration

# googleapis-common-protos ships .pyi files but no py.typed marker
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]

from sseaun.sdk.core import (
    DOMAIN,
    AnswerContext,
    Ed25519Signer,
    Envelope,
    FieldProblem,
    KeyRing,
    ManifestTrust,
    ProtocolError,
    Reason,
    VerifiedRequest,
    envelope_digest,
    listed_key,
    payload_types,
    sign_envelope,
    sign_error,
    sign_feed_page,
    sign_manifest,
    sign_response,
    to_timestamp,
    verify_request,
)
from sseaun.v1 import service_pb2_grpc
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.catalogue_pb2 import Course, RecordHeader
from sseaun.v1.manifest_pb2 import KeyPurpose, Member, MemberStatus, NetworkManifest, PublicKey
from sseaun.v1.service_pb2 import (
    Change,
    ChangeBatch,
    ChangeKind,
    GetManifestBody,
    GetManifestRequest,
    GetManifestResponse,
    GetManifestResult,
    GetRecordBody,
    GetRecordRequest,
    GetRecordResponse,
    GetRecordResult,
    ListRecordsBody,
    ListRecordsRequest,
    ListRecordsResponse,
    ListRecordsResult,
    WatchChangesBody,
    WatchChangesRequest,
    WatchChangesResponse,
)
from sseaun.v1.types_pb2 import LocalizedText, MultilingualText

from ._context import Auditor, Context

__all__ = [
    "CALLER_INSTITUTION",
    "COURSES",
    "DEFAULT_PAGE_SIZE",
    "GET_MANIFEST",
    "GET_RECORD",
    "LIST_RECORDS",
    "MAX_PAGE_SIZE",
    "NETWORK",
    "NODE_INSTITUTION",
    "OTHER_INSTITUTION",
    "OUTSIDER",
    "WATCH_CHANGES",
    "FakeInstitution",
    "FakeNetwork",
    "FakeNode",
    "Misbehaviour",
    "Received",
    "seeded",
    "trusted_network",
]

GET_MANIFEST = "/sseaun.v1.ManifestService/GetManifest"
GET_RECORD = "/sseaun.v1.RecordService/GetRecord"
LIST_RECORDS = "/sseaun.v1.RecordService/ListRecords"
WATCH_CHANGES = "/sseaun.v1.RecordService/WatchChanges"

NETWORK = "sseaun-test"
NODE_INSTITUTION = "chula.ac.th"
CALLER_INSTITUTION = "ynu.edu.cn"
#: A third member: whose transport key signs the OTHER_MEMBER_KEY and OTHER_RESPONDER answers.
OTHER_INSTITUTION = "du.ac.bd"
COURSES = f"institutions/{NODE_INSTITUTION}/courses"
DEFAULT_PAGE_SIZE = 2
MAX_PAGE_SIZE = 100


def seeded(label: str) -> Ed25519Signer:
    """A deterministic test key (anyone can derive it from the label: TEST KEYS ONLY)."""
    return Ed25519Signer.from_seed(hashlib.sha256(label.encode()).digest())


#: A key no manifest lists: what a forger holds.
OUTSIDER = seeded("outsider/transport")

_RECORD_PURPOSES = frozenset(
    {
        Purpose.PURPOSE_NETWORK_OPERATIONS,
        Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
        Purpose.PURPOSE_RECOGNITION,
        Purpose.PURPOSE_CREDENTIAL_VERIFICATION,
        Purpose.PURPOSE_AUDIT,
    }
)
_PURPOSES: dict[str, frozenset[int]] = {
    GET_MANIFEST: frozenset({Purpose.PURPOSE_NETWORK_OPERATIONS}),
    GET_RECORD: _RECORD_PURPOSES,
    LIST_RECORDS: _RECORD_PURPOSES,
    WATCH_CHANGES: _RECORD_PURPOSES,
}
_STATUS_DETAILS_KEY = "grpc-status-details-bin"

ServicerContext = grpc.aio.ServicerContext[Any, Any]


# -- the test network --------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeInstitution:
    """A member of the fake network with its keys (LOG is held but listed nowhere)."""

    id: str
    country: str
    name: str
    root: Ed25519Signer
    transport: Ed25519Signer
    issuing: Ed25519Signer
    log: Ed25519Signer

    @classmethod
    def seeded(cls, id: str, country: str, name: str) -> FakeInstitution:
        keys = (seeded(f"{id}/{role}") for role in ("root", "transport", "issuing", "log"))
        return cls(id, country, name, *keys)

    def member(self, not_before: datetime, not_after: datetime) -> Member:
        def key(signer: Ed25519Signer, purpose: int) -> PublicKey:
            return listed_key(
                signer.public_key, self.id, purpose, not_before=not_before, not_after=not_after
            )

        return Member(
            institution_id=self.id,
            country=self.country,
            status=MemberStatus.MEMBER_STATUS_ACTIVE,
            names=MultilingualText(texts=[LocalizedText(lang="en", text=self.name)]),
            keys=[
                key(self.root, KeyPurpose.KEY_PURPOSE_ROOT),
                key(self.transport, KeyPurpose.KEY_PURPOSE_TRANSPORT),
                key(self.issuing, KeyPurpose.KEY_PURPOSE_ISSUING),
            ],
            api_versions=["sseaun.v1"],
        )


def _governance() -> dict[str, Ed25519Signer]:
    return {holder: seeded(f"gov/{short}") for holder, short in _GOVERNANCE}


def _members() -> list[FakeInstitution]:
    return [FakeInstitution.seeded(*m) for m in _MEMBERS]


_GOVERNANCE = (("ynu.edu.cn", "ynu"), ("chula.ac.th", "chula"), ("du.ac.bd", "du"))
_MEMBERS = (
    ("ynu.edu.cn", "CN", "Yunnan University"),
    ("chula.ac.th", "TH", "Chulalongkorn University"),
    ("du.ac.bd", "BD", "University of Dhaka"),
    ("um.edu.my", "MY", "Universiti Malaya"),
)


@dataclass
class FakeNetwork:
    """Three governance institutions (threshold 2) and four members (same seeds as the SDK's
    test factories, so the keys match theirs)."""

    governance: dict[str, Ed25519Signer] = field(default_factory=_governance)
    members: list[FakeInstitution] = field(default_factory=_members)

    def manifest(self, version: int = 1, *, issued: datetime, days: int = 90) -> NetworkManifest:
        """A manifest issued at issued, its keys valid from 30 days before to a year after."""
        not_before, not_after = issued - timedelta(days=30), issued + timedelta(days=365)
        return NetworkManifest(
            network_id=NETWORK,
            version=version,
            issued_at=to_timestamp(issued),
            expires_at=to_timestamp(issued + timedelta(days=days)),
            governance_keys=[
                listed_key(
                    s.public_key,
                    holder,
                    KeyPurpose.KEY_PURPOSE_GOVERNANCE,
                    not_before=not_before,
                    not_after=not_after,
                )
                for holder, s in self.governance.items()
            ],
            governance_threshold=2,
            members=[m.member(not_before, not_after) for m in self.members],
        )

    def sign(self, manifest: NetworkManifest, *holders: str) -> Envelope:
        chosen = holders or ("ynu.edu.cn", "chula.ac.th")
        return sign_manifest(manifest, [self.governance[h] for h in chosen])

    def by_id(self, id: str) -> FakeInstitution:
        return next(m for m in self.members if m.id == id)


def trusted_network(now: datetime) -> tuple[FakeNetwork, Envelope, KeyRing]:
    """The fake network with a manifest current at now, its signed envelope and its key ring."""
    network = FakeNetwork()
    envelope = network.sign(network.manifest(issued=now - timedelta(days=1)))
    return network, envelope, KeyRing(ManifestTrust.bootstrap(envelope, None).current)


# -- misbehaviours -----------------------------------------------------------------------------


class Misbehaviour(enum.Enum):
    """What the node does wrong; CORRECT does nothing wrong."""

    CORRECT = "correct"
    #: Answers (responses, pages, errors in the body) signed by a key outside the manifest.
    FORGED_SIGNATURE = "forged-signature"
    #: A correctly signed answer whose payload is altered afterwards.
    TAMPERED = "tampered"
    #: Answers signed with another member's transport key (naming this node as responder).
    OTHER_MEMBER_KEY = "other-member-key"
    #: Answers genuinely signed by another member, naming that member as responder.
    OTHER_RESPONDER = "other-responder"
    #: Answers bound to the digest of a different request.
    UNBOUND = "unbound"
    #: Answers bound to the request's digest but naming another method.
    WRONG_METHOD = "wrong-method"
    #: The answer given to the previous request of the same method, replayed.
    REPLAYED = "replayed"
    #: Unary calls answered with a (correctly signed and bound) feed page.
    FEED_PAGE_AS_RESPONSE = "feed-page-as-response"
    #: Feed pages sent as (correctly signed and bound) unary responses.
    RESPONSE_AS_FEED_PAGE = "response-as-feed-page"
    #: A feed whose final page (the one marked last) is never sent.
    TRUNCATED_FEED = "truncated-feed"
    #: A feed that skips its second page.
    BROKEN_CHAIN = "broken-chain"
    #: A feed whose second and third pages are swapped.
    REORDERED_CHAIN = "reordered-chain"
    #: A feed whose pages chain by digest but are numbered from 1.
    WRONG_PAGE_NUMBER = "wrong-page-number"
    #: A feed stream that ends with status OK and no page at all.
    EMPTY_FEED = "empty-feed"
    #: ListRecords hands back the page token it was sent (a listing that never ends).
    STALLED_TOKEN = "stalled-token"  # noqa: S105 - a name, not a secret
    #: NOT_FOUND with an ErrorInfo but no signed error (what a proxy can produce).
    UNSIGNED_ERROR = "unsigned-error"
    #: NOT_FOUND whose SignedError is signed by a key outside the manifest.
    FORGED_ERROR = "forged-error"
    #: The last error status the node sent (signed, for an earlier request), replayed.
    REPLAYED_ERROR = "replayed-error"
    #: A signed RATE_LIMITED with RetryInfo on the first attempt of each request ID, then correct.
    RATE_LIMITED_ONCE = "rate-limited-once"
    #: A plain UNAVAILABLE on the first two attempts of each request ID, then correct.
    UNAVAILABLE_TWICE = "unavailable-twice"
    #: Sleeps for slow_seconds before answering.
    SLOW = "slow"


@dataclass(frozen=True)
class Received:
    """A request that verified, as the node saw it."""

    method: str
    request_id: str
    nonce: bytes
    purpose: int


def _course(number: int, institution: str, issuer: Ed25519Signer, now: datetime) -> Envelope:
    course = Course(
        header=RecordHeader(
            network_id=NETWORK,
            name=f"institutions/{institution}/courses/c{number}",
            version=1,
            issuer=institution,
            issued_at=to_timestamp(now),
        ),
        code=f"C{number}",
        titles=MultilingualText(texts=[LocalizedText(lang="en", text=f"Course {number}")]),
    )
    return sign_envelope(course.SerializeToString(), payload_types.COURSE, [issuer])


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _page_size(requested: int) -> int:
    if requested < 0:
        raise ProtocolError(
            Reason.MALFORMED,
            "page_size must not be negative",
            field_problems=[FieldProblem("page_size", "must not be negative")],
        )
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


# -- the node ----------------------------------------------------------------------------------


@dataclass
class FakeNode:
    """A node for one institution holding one collection of courses; start() serves it."""

    network: FakeNetwork
    manifest: Envelope
    keyring: KeyRing
    institution: str = NODE_INSTITUTION
    misbehaviour: Misbehaviour = Misbehaviour.CORRECT
    courses: int = 5
    #: The delay RATE_LIMITED_ONCE asks for.
    retry_delay: timedelta = timedelta(milliseconds=50)
    slow_seconds: float = 30.0
    #: Where start() serves: "127.0.0.1:<port>".
    target: str = ""
    received: list[Received] = field(default_factory=list)
    _records: list[Envelope] = field(default_factory=list)
    _nonces: set[bytes] = field(default_factory=set)
    _attempts: Counter[str] = field(default_factory=Counter)
    _last_answer: dict[str, Envelope] = field(default_factory=dict)
    _last_error: status_pb2.Status | None = None
    _server: grpc.aio.Server | None = None

    @classmethod
    def create(cls, **options: Any) -> FakeNode:
        now = _utcnow()
        network, manifest, keyring = trusted_network(now)
        node = cls(network, manifest, keyring, **options)
        issuer = network.by_id(node.institution).issuing
        node._records = [
            _course(n, node.institution, issuer, now) for n in range(1, node.courses + 1)
        ]
        return node

    @property
    def collection(self) -> str:
        """The name of the node's one collection."""
        return f"institutions/{self.institution}/courses"

    def auditor(self, institution: str = CALLER_INSTITUTION) -> Auditor:
        """A member of the fake network as the suite's auditor, with its keys."""
        member = self.network.by_id(institution)
        return Auditor(member.id, member.root, member.transport, member.issuing, member.log)

    def context(self, *auditors: str, **options: Any) -> Context:
        """A suite Context that takes this (started) node as the node under test."""
        chosen = auditors or (CALLER_INSTITUTION, OTHER_INSTITUTION)
        return Context(
            self.target,
            self.institution,
            self.manifest,
            self.keyring,
            [self.auditor(a) for a in chosen],
            plaintext=True,
            **options,
        )

    # -- serving -----------------------------------------------------------------------------

    async def start(self) -> str:
        """Serve on 127.0.0.1 at a free port; return the target."""
        server = grpc.aio.server()
        service_pb2_grpc.add_ManifestServiceServicer_to_server(_Manifests(self), server)
        service_pb2_grpc.add_RecordServiceServicer_to_server(_Records(self), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        self.target = f"127.0.0.1:{port}"
        return self.target

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace=None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def records(self) -> list[Envelope]:
        return list(self._records)

    def requests(self, method: str) -> list[Received]:
        """The verified requests of one method, in order of arrival."""
        return [r for r in self.received if r.method == method]

    # -- the protocol, with the misbehaviours as switches ------------------------------------

    @property
    def _transport(self) -> Ed25519Signer:
        return self.network.by_id(self.institution).transport

    def _answer_signer(self) -> Ed25519Signer:
        if self.misbehaviour is Misbehaviour.FORGED_SIGNATURE:
            return OUTSIDER
        if self.misbehaviour in (Misbehaviour.OTHER_MEMBER_KEY, Misbehaviour.OTHER_RESPONDER):
            return self.network.by_id(OTHER_INSTITUTION).transport
        return self._transport

    def _answer_context(self, context: AnswerContext) -> AnswerContext:
        m = self.misbehaviour
        if m is Misbehaviour.UNBOUND:
            return replace(context, request_digest=hashlib.sha256(b"another request").digest())
        if m is Misbehaviour.OTHER_RESPONDER:
            return replace(context, responder=OTHER_INSTITUTION)
        if m is Misbehaviour.WRONG_METHOD:
            other = GET_MANIFEST if context.method != GET_MANIFEST else GET_RECORD
            return replace(context, method=other)
        return context

    def _finish(self, envelope: Envelope) -> Envelope:
        if self.misbehaviour is Misbehaviour.TAMPERED:
            envelope.payload = envelope.payload + b"\x00"
        return envelope

    async def _abort(
        self,
        context: ServicerContext,
        answer: AnswerContext,
        error: ProtocolError,
        *,
        signer: Ed25519Signer | None = None,
        signed: bool = True,
        retry_delay: timedelta | None = None,
    ) -> None:
        code = grpc.StatusCode[error.reason.status_code]
        status = status_pb2.Status(code=code.value[0], message=error.message)
        status.details.add().Pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason.value, domain=DOMAIN, metadata=error.metadata
            )
        )
        if error.field_problems:
            status.details.add().Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=p.field, description=p.description
                        )
                        for p in error.field_problems
                    ]
                )
            )
        if signed:
            envelope = sign_error(answer, error, signer=signer or self._transport, now=_utcnow())
            status.details.add().Pack(envelope)
        if retry_delay is not None:
            delay = Duration()
            delay.FromTimedelta(retry_delay)
            status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        self._last_error = status
        await self._abort_with(context, status)

    @staticmethod
    async def _abort_with(context: ServicerContext, status: Any) -> None:
        code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
        await context.abort(
            code,
            status.message,
            trailing_metadata=((_STATUS_DETAILS_KEY, status.SerializeToString()),),
        )

    async def _admit(
        self, method: str, envelope: Envelope, context: ServicerContext
    ) -> VerifiedRequest:
        """Verify a request and its nonce (AUTH-5), or abort with a signed error."""
        try:
            verified = verify_request(
                envelope,
                self.keyring,
                now=_utcnow(),
                method=method,
                audiences={self.institution},
                allowed_purposes=_PURPOSES[method],
            )
            if verified.nonce_key in self._nonces:
                raise ProtocolError(Reason.REPLAYED_NONCE, "nonce already seen")
        except ProtocolError as exc:
            unverified = AnswerContext.for_unverified(
                envelope,
                network_id=self.keyring.network_id,
                method=method,
                responder=self.institution,
            )
            await self._abort(context, unverified, exc)
            raise AssertionError("unreachable") from exc  # abort raises
        self._nonces.add(verified.nonce_key)
        header = verified.header
        self.received.append(Received(method, header.request_id, header.nonce, header.purpose))
        return verified

    async def _misbehave_before_answer(
        self, verified: VerifiedRequest, answer: AnswerContext, context: ServicerContext
    ) -> None:
        m = self.misbehaviour
        self._attempts[verified.header.request_id] += 1
        attempt = self._attempts[verified.header.request_id]
        if m is Misbehaviour.SLOW:
            await asyncio.sleep(self.slow_seconds)
        elif m is Misbehaviour.UNAVAILABLE_TWICE and attempt <= 2:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        elif m is Misbehaviour.RATE_LIMITED_ONCE and attempt == 1:
            error = ProtocolError(Reason.RATE_LIMITED, "too many requests")
            await self._abort(context, answer, error, retry_delay=self.retry_delay)
        elif m is Misbehaviour.UNSIGNED_ERROR:
            error = ProtocolError(Reason.NOT_FOUND, "no such record")
            await self._abort(context, answer, error, signed=False)
        elif m is Misbehaviour.FORGED_ERROR:
            error = ProtocolError(Reason.NOT_FOUND, "no such record")
            await self._abort(context, answer, error, signer=OUTSIDER)
        elif m is Misbehaviour.REPLAYED_ERROR and self._last_error is not None:
            await self._abort_with(context, self._last_error)

    async def unary(
        self,
        method: str,
        envelope: Envelope,
        context: ServicerContext,
        handle: Callable[[bytes], bytes],
    ) -> Envelope:
        """Admit a request, run handle(body) → result bytes, and sign the answer."""
        verified = await self._admit(method, envelope, context)
        answer = AnswerContext.for_request(verified)
        await self._misbehave_before_answer(verified, answer, context)
        try:
            result = handle(verified.body)
        except ProtocolError as exc:
            await self._abort(context, answer, exc)
            raise AssertionError("unreachable") from exc
        if self.misbehaviour is Misbehaviour.REPLAYED and method in self._last_answer:
            return self._last_answer[method]
        bound = self._answer_context(answer)
        if self.misbehaviour is Misbehaviour.FEED_PAGE_AS_RESPONSE:
            signed = sign_feed_page(
                bound,
                result,
                previous_digest=b"",
                page_number=0,
                last=True,
                signer=self._answer_signer(),
                now=_utcnow(),
            )
        else:
            signed = sign_response(bound, result, signer=self._answer_signer(), now=_utcnow())
        self._last_answer[method] = signed
        return self._finish(signed)

    async def feed(
        self, envelope: Envelope, context: ServicerContext
    ) -> AsyncIterator[WatchChangesResponse]:
        verified = await self._admit(WATCH_CHANGES, envelope, context)
        answer = AnswerContext.for_request(verified)
        await self._misbehave_before_answer(verified, answer, context)
        body = WatchChangesBody.FromString(verified.body)
        try:
            batches = self._batches(body)
        except ProtocolError as exc:
            await self._abort(context, answer, exc)
            raise AssertionError("unreachable") from exc
        if self.misbehaviour is Misbehaviour.EMPTY_FEED:
            return
        pages: list[Envelope] = []
        previous = b""
        first = 1 if self.misbehaviour is Misbehaviour.WRONG_PAGE_NUMBER else 0
        for number, batch in enumerate(batches):
            if self.misbehaviour is Misbehaviour.RESPONSE_AS_FEED_PAGE:
                page = sign_response(
                    self._answer_context(answer),
                    batch.SerializeToString(),
                    signer=self._answer_signer(),
                    now=_utcnow(),
                )
            else:
                page = sign_feed_page(
                    self._answer_context(answer),
                    batch.SerializeToString(),
                    previous_digest=previous,
                    page_number=first + number,
                    last=number == len(batches) - 1 and not body.follow,
                    signer=self._answer_signer(),
                    now=_utcnow(),
                )
            previous = envelope_digest(page)
            pages.append(self._finish(page))
        if self.misbehaviour is Misbehaviour.TRUNCATED_FEED:
            pages = pages[:-1]
        if self.misbehaviour is Misbehaviour.BROKEN_CHAIN and len(pages) > 2:
            del pages[1]
        if self.misbehaviour is Misbehaviour.REORDERED_CHAIN and len(pages) > 2:
            pages[1], pages[2] = pages[2], pages[1]
        for page in pages:
            yield WatchChangesResponse(page=page)
        if body.follow:  # nothing new will happen: hold the stream open until the deadline
            await asyncio.sleep(context.time_remaining() + 1)

    # -- the data ----------------------------------------------------------------------------

    def get_manifest(self, body: bytes) -> bytes:
        request = GetManifestBody.FromString(body)
        if request.version not in (0, self.keyring.manifest.version):
            raise ProtocolError(Reason.NOT_FOUND, "no such manifest version")
        return GetManifestResult(manifest=self.manifest).SerializeToString()

    def get_record(self, body: bytes) -> bytes:
        request = GetRecordBody.FromString(body)
        names = [Course.FromString(r.payload).header.name for r in self._records]
        if request.name not in names or request.version not in (0, 1):
            raise ProtocolError(Reason.NOT_FOUND, "no such record")
        record = self._records[names.index(request.name)]
        return GetRecordResult(record=record, latest_version=1).SerializeToString()

    def list_records(self, body: bytes) -> bytes:
        # Its page tokens ("o" and an offset) are neither authenticated nor bound (PAGE-2): a
        # correct client never looks inside them, which is all the SDK's tests need.
        request = ListRecordsBody.FromString(body)
        size = _page_size(request.page_size)
        if request.parent != self.collection:
            raise ProtocolError(Reason.NOT_FOUND, "no such collection")
        start = 0
        if request.page_token:
            if not request.page_token.startswith("o") or not request.page_token[1:].isdigit():
                raise ProtocolError(
                    Reason.MALFORMED,
                    "page_token is not one this node issued",
                    field_problems=[FieldProblem("page_token", "unknown token")],
                )
            start = int(request.page_token[1:])
        chosen = [
            r
            for sequence, r in enumerate(self._records, start=1)
            if sequence >= request.changed_since_sequence
        ]
        page = chosen[start : start + size]
        token = f"o{start + size}" if start + size < len(chosen) else ""
        if self.misbehaviour is Misbehaviour.STALLED_TOKEN and request.page_token:
            token = request.page_token
        return ListRecordsResult(records=page, next_page_token=token).SerializeToString()

    def _batches(self, body: WatchChangesBody) -> list[ChangeBatch]:
        size = _page_size(body.page_size)
        if body.parent != self.collection:
            raise ProtocolError(Reason.NOT_FOUND, "no such collection")
        if body.cursor and not body.cursor.isdigit():
            raise ProtocolError(
                Reason.MALFORMED,
                "cursor is not one this node issued",
                field_problems=[FieldProblem("cursor", "unknown cursor")],
            )
        after = int(body.cursor or 0)
        changes = [
            Change(
                sequence=sequence,
                kind=ChangeKind.CHANGE_KIND_UPSERT,
                record=record,
                cursor=str(sequence),
            )
            for sequence, record in enumerate(self._records, start=1)
            if sequence > after
        ]
        if not changes:
            return [ChangeBatch(cursor=body.cursor, caught_up=True)]
        chunks = [changes[i : i + size] for i in range(0, len(changes), size)]
        return [
            ChangeBatch(changes=chunk, cursor=chunk[-1].cursor, caught_up=number == len(chunks) - 1)
            for number, chunk in enumerate(chunks)
        ]


class _Manifests(service_pb2_grpc.ManifestServiceServicer):
    def __init__(self, node: FakeNode) -> None:
        self._node = node

    async def GetManifest(  # noqa: N802 - generated name
        self, request: GetManifestRequest, context: ServicerContext
    ) -> GetManifestResponse:
        node = self._node
        answer = await node.unary(GET_MANIFEST, request.request, context, node.get_manifest)
        return GetManifestResponse(response=answer)


class _Records(service_pb2_grpc.RecordServiceServicer):
    def __init__(self, node: FakeNode) -> None:
        self._node = node

    async def GetRecord(  # noqa: N802
        self, request: GetRecordRequest, context: ServicerContext
    ) -> GetRecordResponse:
        node = self._node
        answer = await node.unary(GET_RECORD, request.request, context, node.get_record)
        return GetRecordResponse(response=answer)

    async def ListRecords(  # noqa: N802
        self, request: ListRecordsRequest, context: ServicerContext
    ) -> ListRecordsResponse:
        node = self._node
        answer = await node.unary(LIST_RECORDS, request.request, context, node.list_records)
        return ListRecordsResponse(response=answer)

    async def WatchChanges(  # noqa: N802
        self, request: WatchChangesRequest, context: ServicerContext
    ) -> AsyncIterator[WatchChangesResponse]:
        async for page in self._node.feed(request.request, context):
            yield page
