"""The node client (sync and async) against a fake node on loopback, correct and misbehaving.

Every networked test runs twice: with AsyncNodeClient on the test's loop, and with NodeClient in
a worker thread (its calls block; the fake node keeps serving on the loop).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from google.protobuf.duration_pb2 import Duration

# googleapis-common-protos ships .pyi files but no py.typed marker
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]

import sseaun.sdk.client as client_api
from sseaun.sdk.client import (
    AnswerVerificationError,
    AsyncNodeClient,
    ClientConfig,
    ClientError,
    NodeClient,
    NodeError,
    RetryPolicy,
    TransportError,
)
from sseaun.sdk.client._config import is_loopback_target
from sseaun.sdk.client._exchange import Exchange, LogicalCall, RawStatus
from sseaun.sdk.client._retry import backoff, retry_delay
from sseaun.sdk.core import (
    AnswerContext,
    ManifestTrust,
    ProtocolError,
    Reason,
    envelope_digest,
    sign_error,
    verify_request,
)
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.envelope_pb2 import Envelope
from sseaun.v1.service_pb2 import (
    ChangeBatch,
    GetManifestResult,
    GetRecordBody,
    GetRecordResult,
    ListRecordsResult,
)
from tests.factories import NETWORK, seeded
from tests.fake_node import (
    CALLER_INSTITUTION,
    COURSES,
    GET_MANIFEST,
    GET_RECORD,
    LIST_RECORDS,
    NODE_INSTITUTION,
    WATCH_CHANGES,
    FakeNode,
    Misbehaviour,
)

MOBILITY = Purpose.PURPOSE_MOBILITY_ADMINISTRATION
FAST_RETRIES = RetryPolicy(max_attempts=4, base_backoff=0.01, max_backoff=0.05)
_T = TypeVar("_T")


class Client:
    """One async face over both flavours, so each test is written once."""

    def __init__(self, native: AsyncNodeClient | NodeClient) -> None:
        self.native = native

    async def _run(self, call: Callable[[], _T]) -> _T:
        return await asyncio.to_thread(call)

    async def get_manifest(self, **kwargs: Any) -> GetManifestResult:
        native = self.native
        if isinstance(native, AsyncNodeClient):
            return await native.get_manifest(**kwargs)
        return await self._run(lambda: native.get_manifest(**kwargs))

    async def get_record(self, name: str, **kwargs: Any) -> GetRecordResult:
        kwargs.setdefault("purpose", MOBILITY)
        native = self.native
        if isinstance(native, AsyncNodeClient):
            return await native.get_record(name, **kwargs)
        return await self._run(lambda: native.get_record(name, **kwargs))

    async def list_records_page(self, parent: str, **kwargs: Any) -> ListRecordsResult:
        kwargs.setdefault("purpose", MOBILITY)
        native = self.native
        if isinstance(native, AsyncNodeClient):
            return await native.list_records_page(parent, **kwargs)
        return await self._run(lambda: native.list_records_page(parent, **kwargs))

    async def list_records(self, parent: str, **kwargs: Any) -> list[Envelope]:
        kwargs.setdefault("purpose", MOBILITY)
        native = self.native
        if isinstance(native, AsyncNodeClient):
            return [r async for r in native.list_records(parent, **kwargs)]
        return await self._run(lambda: list(native.list_records(parent, **kwargs)))

    async def watch_changes(self, parent: str, **kwargs: Any) -> list[ChangeBatch]:
        kwargs.setdefault("purpose", MOBILITY)
        native = self.native
        if isinstance(native, AsyncNodeClient):
            return [b async for b in native.watch_changes(parent, **kwargs)]
        return await self._run(lambda: list(native.watch_changes(parent, **kwargs)))


def config_for(node: FakeNode, **overrides: Any) -> ClientConfig:
    options: dict[str, Any] = {
        "network_id": NETWORK,
        "sender": CALLER_INSTITUTION,
        "signer": node.network.by_id(CALLER_INSTITUTION).transport,
        "deadline": 5.0,
        "retry": FAST_RETRIES,
        "plaintext": True,
    }
    options.update(overrides)
    return ClientConfig(**options)


@asynccontextmanager
async def connect(
    flavour: str, node: FakeNode, target: str, **overrides: Any
) -> AsyncIterator[Client]:
    config = config_for(node, **overrides)
    if flavour == "async":
        async with AsyncNodeClient(config, node.keyring, target, NODE_INSTITUTION) as native:
            yield Client(native)
    else:
        with NodeClient(config, node.keyring, target, NODE_INSTITUTION) as blocking:
            yield Client(blocking)


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    fake = FakeNode.create()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture(params=["async", "sync"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def client_of(flavour: str, node: FakeNode, **overrides: Any) -> AsyncIterator[Client]:
    async with connect(flavour, node, node.target, **overrides) as client:
        yield client


def course(number: int) -> str:
    return f"{COURSES}/c{number}"


# -- correct answers ---------------------------------------------------------------------------


async def test_the_manifest_verifies_and_parses(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        result = await client.get_manifest()
    assert result.manifest == node.manifest
    assert ManifestTrust.bootstrap(result.manifest, envelope_digest(node.manifest)).current
    (seen,) = node.requests(GET_MANIFEST)
    assert seen.purpose == Purpose.PURPOSE_NETWORK_OPERATIONS


async def test_a_record_comes_back_exactly_as_its_issuer_signed_it(
    flavour: str, node: FakeNode
) -> None:
    async with client_of(flavour, node) as client:
        result = await client.get_record(course(3), purpose=Purpose.PURPOSE_RECOGNITION)
    assert result.record == node.records[2]
    assert result.latest_version == 1
    assert node.requests(GET_RECORD)[0].purpose == Purpose.PURPOSE_RECOGNITION


async def test_listing_follows_page_tokens_to_the_end(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        records = await client.list_records(COURSES, page_size=2)
    assert records == node.records
    pages = node.requests(LIST_RECORDS)
    assert len(pages) == 3
    assert len({p.request_id for p in pages}) == 3  # each page is its own logical call


async def test_one_page_of_a_listing(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        first = await client.list_records_page(COURSES, page_size=3)
        second = await client.list_records_page(
            COURSES, page_size=3, page_token=first.next_page_token
        )
    assert list(first.records) + list(second.records) == node.records
    assert first.next_page_token
    assert second.next_page_token == ""


async def test_the_change_feed_verifies_page_by_page(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        batches = await client.watch_changes(COURSES, page_size=2)
    assert [len(b.changes) for b in batches] == [2, 2, 1]
    assert [c.record for b in batches for c in b.changes] == node.records
    assert batches[-1].caught_up
    assert batches[-1].cursor == "5"


async def test_the_change_feed_resumes_from_a_cursor(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        batches = await client.watch_changes(COURSES, cursor="4")
        empty = await client.watch_changes(COURSES, cursor="5")
    assert [c.sequence for b in batches for c in b.changes] == [5]
    assert len(empty) == 1
    assert not empty[0].changes
    assert empty[0].caught_up


async def test_following_ends_quietly_at_the_deadline(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        batches = await client.watch_changes(COURSES, page_size=5, follow=True, timeout=0.5)
    assert [len(b.changes) for b in batches] == [5]


# -- the node's signed errors ------------------------------------------------------------------


async def test_a_signed_not_found_is_the_nodes_error(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        with pytest.raises(NodeError) as info:
            await client.get_record(course(99))
    error = info.value
    assert error.signed
    assert error.reason is Reason.NOT_FOUND
    assert error.code == error.transport_code == "NOT_FOUND"
    assert error.request_id == node.requests(GET_RECORD)[0].request_id
    assert isinstance(error, ProtocolError)
    assert len(node.requests(GET_RECORD)) == 1  # not retried


async def test_a_signed_error_carries_its_field_problems(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        with pytest.raises(NodeError) as info:
            await client.list_records_page(COURSES, page_size=-1)
    assert info.value.reason is Reason.MALFORMED
    assert info.value.code == "INVALID_ARGUMENT"
    assert [p.field for p in info.value.field_problems] == ["page_size"]


async def test_a_purpose_the_method_refuses(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        with pytest.raises(NodeError) as info:
            await client.get_manifest(purpose=MOBILITY)
    assert info.value.reason is Reason.PURPOSE_NOT_ALLOWED
    assert info.value.code == "PERMISSION_DENIED"


async def test_a_request_signed_by_an_unknown_key_gets_a_signed_refusal(
    flavour: str, node: FakeNode
) -> None:
    async with client_of(flavour, node, signer=seeded("stranger")) as client:
        with pytest.raises(NodeError) as info:
            await client.get_manifest()
    assert info.value.reason is Reason.KEY_UNKNOWN
    assert info.value.code == "UNAUTHENTICATED"


async def test_a_signed_error_in_the_feed(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        with pytest.raises(NodeError) as info:
            await client.watch_changes("institutions/nowhere/courses")
    assert info.value.reason is Reason.NOT_FOUND


# -- answers that must not verify --------------------------------------------------------------


@pytest.mark.parametrize(
    ("misbehaviour", "reason"),
    [
        (Misbehaviour.FORGED_SIGNATURE, Reason.KEY_UNKNOWN),
        (Misbehaviour.TAMPERED, Reason.SIGNATURE_INVALID),
        (Misbehaviour.OTHER_MEMBER_KEY, Reason.SIGNER_MISMATCH),
        (Misbehaviour.UNBOUND, Reason.RESPONSE_UNBOUND),
    ],
)
async def test_a_bad_answer_is_rejected(
    flavour: str, node: FakeNode, misbehaviour: Misbehaviour, reason: Reason
) -> None:
    node.misbehaviour = misbehaviour
    async with client_of(flavour, node) as client:
        with pytest.raises(AnswerVerificationError) as info:
            await client.get_record(course(1))
        with pytest.raises(AnswerVerificationError) as in_feed:
            await client.watch_changes(COURSES)
    assert info.value.reason is reason
    assert in_feed.value.reason is reason
    assert not info.value.signed
    assert len(node.requests(GET_RECORD)) == 1  # tampering is never retried


async def test_a_replayed_answer_is_unbound(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        await client.get_record(course(1))
        node.misbehaviour = Misbehaviour.REPLAYED
        with pytest.raises(AnswerVerificationError) as info:
            await client.get_record(course(2))
    assert info.value.reason is Reason.RESPONSE_UNBOUND
    assert info.value.code == "DATA_LOSS"


@pytest.mark.parametrize("misbehaviour", [Misbehaviour.TRUNCATED_FEED, Misbehaviour.BROKEN_CHAIN])
async def test_a_cut_feed_is_a_broken_chain(
    flavour: str, node: FakeNode, misbehaviour: Misbehaviour
) -> None:
    node.misbehaviour = misbehaviour
    async with client_of(flavour, node) as client:
        with pytest.raises(AnswerVerificationError) as info:
            await client.watch_changes(COURSES, page_size=2)
    assert info.value.reason is Reason.FEED_CHAIN_BROKEN


async def test_a_cut_feed_still_delivers_the_pages_that_verified(node: FakeNode) -> None:
    node.misbehaviour = Misbehaviour.TRUNCATED_FEED
    received: list[ChangeBatch] = []
    async with client_of("async", node) as client:
        assert isinstance(client.native, AsyncNodeClient)
        with pytest.raises(AnswerVerificationError):
            async for batch in client.native.watch_changes(COURSES, page_size=2, purpose=MOBILITY):
                received.append(batch)
    assert len(received) == 2  # the caller can resume from received[-1].cursor


# -- errors that are not the node's ------------------------------------------------------------


async def test_an_unsigned_error_status_is_a_transport_error(flavour: str, node: FakeNode) -> None:
    node.misbehaviour = Misbehaviour.UNSIGNED_ERROR
    async with client_of(flavour, node) as client:
        with pytest.raises(TransportError) as info:
            await client.get_record(course(1))
    error = info.value
    assert not error.signed
    assert not isinstance(error, ProtocolError)
    assert error.code == "NOT_FOUND"
    assert error.claimed_reason == "NOT_FOUND"
    assert error.rejection is None
    assert "unsigned" in str(error)


async def test_a_forged_error_is_a_transport_error(flavour: str, node: FakeNode) -> None:
    node.misbehaviour = Misbehaviour.FORGED_ERROR
    async with client_of(flavour, node) as client:
        with pytest.raises(TransportError) as info:
            await client.get_record(course(1))
    assert info.value.code == "NOT_FOUND"
    assert info.value.rejection is not None
    assert info.value.rejection.reason is Reason.KEY_UNKNOWN


async def test_a_replayed_signed_error_is_a_transport_error(flavour: str, node: FakeNode) -> None:
    async with client_of(flavour, node) as client:
        with pytest.raises(NodeError):
            await client.get_record(course(99))
        node.misbehaviour = Misbehaviour.REPLAYED_ERROR
        with pytest.raises(TransportError) as info:
            await client.get_record(course(1))
    assert info.value.code == "NOT_FOUND"
    assert info.value.rejection is not None
    assert info.value.rejection.reason is Reason.RESPONSE_UNBOUND


# -- retries and deadlines ---------------------------------------------------------------------


async def test_rate_limiting_is_retried_with_the_same_id_and_a_fresh_nonce(
    flavour: str, node: FakeNode
) -> None:
    node.misbehaviour = Misbehaviour.RATE_LIMITED_ONCE
    async with client_of(flavour, node) as client:
        result = await client.get_record(course(1))
    assert result.record == node.records[0]
    first, second = node.requests(GET_RECORD)
    assert first.request_id == second.request_id
    assert first.nonce != second.nonce


async def test_rate_limiting_without_retries_raises_the_signed_error(
    flavour: str, node: FakeNode
) -> None:
    node.misbehaviour = Misbehaviour.RATE_LIMITED_ONCE
    async with client_of(flavour, node, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(NodeError) as info:
            await client.get_record(course(1))
    assert info.value.reason is Reason.RATE_LIMITED
    assert info.value.code == "RESOURCE_EXHAUSTED"
    assert info.value.retry_after == node.retry_delay


async def test_a_retry_delay_beyond_the_deadline_is_not_waited_for(
    flavour: str, node: FakeNode
) -> None:
    node.misbehaviour = Misbehaviour.RATE_LIMITED_ONCE
    node.retry_delay = timedelta(minutes=5)
    async with client_of(flavour, node, deadline=2.0) as client:
        with pytest.raises(NodeError) as info:
            await client.get_record(course(1))
    assert info.value.reason is Reason.RATE_LIMITED
    assert len(node.requests(GET_RECORD)) == 1


async def test_unavailable_is_retried_with_fresh_nonces(flavour: str, node: FakeNode) -> None:
    node.misbehaviour = Misbehaviour.UNAVAILABLE_TWICE
    async with client_of(flavour, node) as client:
        result = await client.get_manifest()
        batches = await client.watch_changes(COURSES)
    assert result.manifest == node.manifest
    assert len(batches) == 3
    for method in (GET_MANIFEST, WATCH_CHANGES):
        attempts = node.requests(method)
        assert len(attempts) == 3
        assert len({a.request_id for a in attempts}) == 1
        assert len({a.nonce for a in attempts}) == 3


async def test_retries_stop_after_max_attempts(flavour: str, node: FakeNode) -> None:
    node.misbehaviour = Misbehaviour.UNAVAILABLE_TWICE
    retry = RetryPolicy(max_attempts=2, base_backoff=0.01, max_backoff=0.01)
    async with client_of(flavour, node, retry=retry) as client:
        with pytest.raises(TransportError) as info:
            await client.get_record(course(1))
    assert info.value.code == "UNAVAILABLE"
    assert len(node.requests(GET_RECORD)) == 2


async def test_a_slow_node_meets_the_deadline(flavour: str, node: FakeNode) -> None:
    node.misbehaviour = Misbehaviour.SLOW
    async with client_of(flavour, node) as client:
        with pytest.raises(TransportError) as info:
            await client.get_record(course(1), timeout=0.3)
        with pytest.raises(TransportError) as in_feed:
            await client.watch_changes(COURSES, timeout=0.3)
        with pytest.raises(TransportError) as following:  # no page: nothing proves it got through
            await client.watch_changes(COURSES, follow=True, timeout=0.3)
    assert info.value.code == "DEADLINE_EXCEEDED"
    assert in_feed.value.code == "DEADLINE_EXCEEDED"
    assert following.value.code == "DEADLINE_EXCEEDED"
    assert len(node.requests(GET_RECORD)) == 1


async def test_an_unreachable_node_is_a_transport_error(flavour: str, node: FakeNode) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    retry = RetryPolicy(max_attempts=2, base_backoff=0.01, max_backoff=0.01)
    async with connect(flavour, node, f"127.0.0.1:{port}", retry=retry, deadline=2.0) as client:
        with pytest.raises(TransportError) as info:
            await client.get_manifest()
    assert info.value.code in {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
    assert not info.value.signed


# -- the client's own rules (no network) -------------------------------------------------------


def test_the_public_api() -> None:
    assert sorted(client_api.__all__) == [
        "AnswerVerificationError",
        "AsyncNodeClient",
        "ClientConfig",
        "ClientError",
        "DEFAULT_MAX_MESSAGE_SIZE",
        "Keepalive",
        "NodeClient",
        "NodeError",
        "Receipt",
        "RetryPolicy",
        "TransportError",
    ]
    for error in (NodeError, AnswerVerificationError, TransportError):
        assert issubclass(error, ClientError)


def test_full_jitter_stays_under_its_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_backoff=0.1, max_backoff=1.0)
    assert backoff(policy, 1, lambda: 0.0) == 0.0
    assert backoff(policy, 1, lambda: 0.999) <= 0.1
    assert backoff(policy, 3, lambda: 0.999) <= 0.4
    assert backoff(policy, 9, lambda: 0.999) <= 1.0


def _transport(code: str, retry_after: timedelta | None = None) -> TransportError:
    return TransportError(code, "", request_id="r", retry_after=retry_after)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (_transport("UNAVAILABLE"), True),
        (_transport("RESOURCE_EXHAUSTED"), False),  # e.g. a message above the size limit
        (_transport("RESOURCE_EXHAUSTED", timedelta(seconds=1)), True),
        (_transport("ABORTED"), False),
        (_transport("DEADLINE_EXCEEDED"), False),
        (_transport("NOT_FOUND"), False),
        (
            AnswerVerificationError(
                ProtocolError(Reason.RESPONSE_UNBOUND, "unbound"), request_id="r"
            ),
            False,
        ),
    ],
)
def test_what_is_retried(error: ClientError, retried: bool) -> None:
    policy = RetryPolicy(max_attempts=3)
    delay = retry_delay(policy, attempts_made=1, error=error, remaining=10.0, random=lambda: 0.5)
    assert (delay is not None) is retried


def test_retries_honour_retry_info_and_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=3)
    asked = _transport("UNAVAILABLE", timedelta(seconds=2))
    assert retry_delay(policy, attempts_made=1, error=asked, remaining=10, random=lambda: 0) == 2
    assert (
        retry_delay(policy, attempts_made=1, error=asked, remaining=1.5, random=lambda: 0) is None
    )
    plain = _transport("UNAVAILABLE")
    assert retry_delay(policy, attempts_made=3, error=plain, remaining=10, random=lambda: 0) is None


@pytest.mark.parametrize(
    ("target", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.8.0.1:1", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("dns:///localhost:443", True),
        ("ipv4:127.0.0.1:80", True),
        ("unix:/run/sseaun.sock", True),
        ("node.chula.ac.th:443", False),
        ("10.0.0.1:443", False),
        ("[2001:db8::1]:443", False),
        ("localhost.evil.example:443", False),
    ],
)
def test_loopback_targets(target: str, loopback: bool) -> None:
    assert is_loopback_target(target) is loopback


def test_plaintext_only_to_loopback() -> None:
    node = FakeNode.create()
    with pytest.raises(ValueError, match="loopback"):
        NodeClient(config_for(node), node.keyring, "node.chula.ac.th:443", NODE_INSTITUTION)
    with pytest.raises(ValueError, match="loopback"):
        AsyncNodeClient(config_for(node), node.keyring, "10.1.2.3:443", NODE_INSTITUTION)


def test_the_config_and_the_peer_are_checked_up_front() -> None:
    node = FakeNode.create()
    with pytest.raises(ValueError, match="network"):
        NodeClient(config_for(node, network_id="other"), node.keyring, "127.0.0.1:1", "du.ac.bd")
    with pytest.raises(ValueError, match="member"):
        NodeClient(config_for(node), node.keyring, "127.0.0.1:1", "nowhere.edu")
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        config_for(node, plaintext=True, root_certificates=b"pem")


async def test_the_async_client_must_be_opened_first() -> None:
    node = FakeNode.create()
    native = AsyncNodeClient(config_for(node), node.keyring, "127.0.0.1:1", NODE_INSTITUTION)
    with pytest.raises(RuntimeError, match="open"):
        await native.get_manifest()


def _failure(trailers: list[tuple[str, str | bytes]], code: str = "NOT_FOUND") -> ClientError:
    node = FakeNode.create()
    exchange = Exchange(config_for(node), node.keyring, NODE_INSTITUTION)
    call = LogicalCall.new(GET_RECORD, GetRecordBody(name="x"), MOBILITY)
    return exchange.failure(call, exchange.sign(call), RawStatus(code, "gone", trailers))


def test_undecodable_status_details_are_a_transport_error() -> None:
    error = _failure([("grpc-status-details-bin", b"\xff\xff not a status")])
    assert isinstance(error, TransportError)
    assert error.claimed_reason is None


def test_a_foreign_domain_is_not_claimed_as_a_reason() -> None:
    status = status_pb2.Status(code=5, message="gone")
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason="NOT_FOUND", domain="proxy.io"))
    delay = Duration(seconds=3)
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    error = _failure([("grpc-status-details-bin", status.SerializeToString())])
    assert isinstance(error, TransportError)
    assert error.claimed_reason is None
    assert error.retry_after == timedelta(seconds=3)


def test_the_signed_code_decides_not_the_transport_code() -> None:
    node = FakeNode.create()
    exchange = Exchange(config_for(node), node.keyring, NODE_INSTITUTION)
    call = LogicalCall.new(GET_RECORD, GetRecordBody(name="x"), MOBILITY)
    request = exchange.sign(call)
    verified = verify_request(
        request,
        node.keyring,
        now=datetime.now(UTC),
        method=GET_RECORD,
        audiences={NODE_INSTITUTION},
        allowed_purposes={MOBILITY},
    )
    signed = sign_error(
        AnswerContext.for_request(verified),
        ProtocolError(Reason.NOT_FOUND, "no such record"),
        signer=node.network.by_id(NODE_INSTITUTION).transport,
        now=datetime.now(UTC),
    )
    status = status_pb2.Status(code=14, message="gone")
    status.details.add().Pack(signed)
    # A proxy relabels the node's NOT_FOUND as UNAVAILABLE to provoke retries.
    raw = RawStatus(
        "UNAVAILABLE", "gone", [("grpc-status-details-bin", status.SerializeToString())]
    )
    error = exchange.failure(call, request, raw)
    assert isinstance(error, NodeError)
    assert (error.code, error.transport_code) == ("NOT_FOUND", "UNAVAILABLE")
    assert error.answer_digest == envelope_digest(signed)
    policy = RetryPolicy()
    assert retry_delay(policy, attempts_made=1, error=error, remaining=9, random=lambda: 0) is None
