"""Real nodes on loopback (real gRPC, aiohttp and SQLite), called by the SDK client and by hand."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped, unused-ignore]
from grpc_status import rpc_status

from sseaun.node._config import NodeConfig
from sseaun.node._keys import InstitutionKeys
from sseaun.node.store import NewRecord, SqliteStore
from sseaun.sdk.cli import main as sseaun
from sseaun.sdk.client import ClientConfig, NodeClient, NodeError, RetryPolicy
from sseaun.sdk.core import (
    DOMAIN,
    Envelope,
    KeyRing,
    ManifestTrust,
    Reason,
    build_request,
    catalogue,
    envelope_from_json,
    payload_types,
    sign_envelope,
    sign_revocation,
    to_timestamp,
    verify_answer,
    verify_envelope,
)
from sseaun.v1 import service_pb2 as svc
from sseaun.v1.auth_pb2 import Purpose, SignedError
from sseaun.v1.catalogue_pb2 import Course, RecordHeader
from sseaun.v1.types_pb2 import LocalizedText
from tests.live_network import (
    NETWORK,
    LiveNetwork,
    NodeDir,
    build,
    keys_of,
    node_client,
    running,
    trusted_keyring,
)

pytestmark = pytest.mark.timeout(180)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalogue"
YNU, CHULA, DU = "ynu.edu.cn", "chula.ac.th", "du.ac.bd"
GET = "/sseaun.v1.RecordService/GetRecord"
LIST = "/sseaun.v1.RecordService/ListRecords"
MOBILITY = Purpose.PURPOSE_MOBILITY_ADMINISTRATION
#: A course-like record ynu shares with chula only (parties = chula), stored before ynu starts.
PRIVATE = catalogue.course_record_name(YNU, "XCH9001")
COURSES = f"institutions/{YNU}/courses"


def store_private_record(net: LiveNetwork) -> Envelope:
    """Sign a course with header.parties = (chula,) by ynu's issuing key and put it straight
    into ynu's database (the node is not running)."""
    now = datetime.now(UTC)
    course = Course(
        header=RecordHeader(
            network_id=NETWORK,
            name=PRIVATE,
            version=1,
            issuer=YNU,
            issued_at=to_timestamp(now),
            parties=[CHULA],
        ),
        code="XCH9001",
    )
    course.titles.texts.append(LocalizedText(lang="en", text="Joint seminar (partners only)"))
    envelope = sign_envelope(
        course.SerializeToString(deterministic=True),
        payload_types.COURSE,
        [keys_of(net, YNU).issuing],
    )
    record = NewRecord(
        name=PRIVATE,
        parent=COURSES,
        version=1,
        issuer=YNU,
        payload_type=payload_types.COURSE,
        envelope=envelope.SerializeToString(),
        parties=(CHULA,),
        deleted=False,
        issued_at=now,
    )

    async def put() -> None:
        store = await SqliteStore.open(NodeConfig.load(net.nodes[YNU].config).database)
        try:
            await store.put_records([record])
        finally:
            await store.close()

    asyncio.run(put())
    return envelope


async def revoke_transport_key_of(institution: str, *, at: NodeDir) -> None:
    """Store institution's signed revocation of its transport key in a node, before it starts."""
    net_root = at.folder.parent
    keys = InstitutionKeys.load(net_root / institution / "keys", institution, None)
    now = datetime.now(UTC)
    envelope = sign_revocation(
        keys.root,
        network_id=NETWORK,
        institution=institution,
        key_id=keys.transport.key_id,
        revoked_at=now - timedelta(minutes=1),
        issued_at=now,
        reason="test: key compromised",
    )
    store = await SqliteStore.open(at.folder / "node.db")
    try:
        await store.put_statement(
            "revocation", institution, keys.transport.key_id, envelope.SerializeToString()
        )
    finally:
        await store.close()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    net = build(tmp_path_factory.mktemp("net"))
    ynu = net.nodes[YNU]
    for what, name in (("profile", "ynu-profile.json"), ("courses", "ynu-courses.csv")):
        status = sseaun(
            [
                "node",
                "import",
                what,
                "--config",
                str(ynu.config),
                "--file",
                str(EXAMPLES / name),
                "--quiet",
            ]
        )
        assert status == 0
    store_private_record(net)
    asyncio.run(revoke_transport_key_of(DU, at=ynu))
    # Refresh often, so ynu fetches chula's statements soon after both are up.
    ynu.configure(**{"manifest.refresh_seconds": 1.0})
    with running(net, YNU, CHULA):
        yield net


def keyring(net: LiveNetwork) -> KeyRing:
    return KeyRing(
        ManifestTrust.bootstrap(envelope_from_json(net.manifest.read_bytes()), None).current
    )


def caller_keys(net: LiveNetwork) -> InstitutionKeys:
    return InstitutionKeys.load(net.tester.folder / "keys", net.tester.institution, None)


def client(net: LiveNetwork, audience: str = YNU) -> NodeClient:
    config = ClientConfig(
        network_id=NETWORK,
        sender=net.tester.institution,
        signer=caller_keys(net).transport,
        plaintext=True,
        deadline=15,
    )
    return NodeClient(config, keyring(net), net.nodes[audience].target, audience)


def test_manifest_is_served_over_grpc_and_http(network: LiveNetwork) -> None:
    with client(network) as node:
        result = node.get_manifest()
    on_disk = envelope_from_json(network.manifest.read_bytes())
    assert result.manifest.payload == on_disk.payload
    with urllib.request.urlopen(f"{network.nodes[YNU].http}/.well-known/sseaun/manifest") as r:
        assert envelope_from_json(r.read()).payload == on_disk.payload
    with urllib.request.urlopen(f"{network.nodes[YNU].http}/.well-known/sseaun/manifest/1") as r:
        assert envelope_from_json(r.read()).payload == on_disk.payload


def test_a_course_is_fetched_with_its_issuers_signature(network: LiveNetwork) -> None:
    ring = keyring(network)
    with client(network) as node:
        first = next(iter(node.list_records(f"institutions/{YNU}/courses", purpose=MOBILITY)))
        course = Course.FromString(first.payload)
        result = node.get_record(course.header.name, purpose=MOBILITY)
    assert result.record == first
    issuing = {k.key_id: k.public_key for k in ring.keys_for(YNU, 4, datetime.now(UTC))}
    verified = verify_envelope(result.record, issuing, {payload_types.COURSE})
    assert Course.FromString(verified.payload).header.issuer == YNU


def test_listing_pages_through_every_course_once(network: LiveNetwork) -> None:
    with client(network) as node:
        records = list(
            node.list_records(f"institutions/{YNU}/courses", page_size=4, purpose=MOBILITY)
        )
    names = [Course.FromString(r.payload).header.name for r in records]
    assert len(names) == 13 == len(set(names))
    assert names == sorted(names)


def test_the_change_feed_resumes_from_a_cursor_exactly_once(network: LiveNetwork) -> None:
    parent = f"institutions/{YNU}/courses"
    with client(network) as node:
        everything = [
            c for b in node.watch_changes(parent, page_size=5, purpose=MOBILITY) for c in b.changes
        ]
        cursor = everything[5].cursor
        rest = [
            c
            for b in node.watch_changes(parent, cursor=cursor, purpose=MOBILITY)
            for c in b.changes
        ]
    assert [c.sequence for c in rest] == [c.sequence for c in everything[6:]]
    assert len(everything) == 13


def test_a_missing_record_and_another_institutions_are_both_not_found(network: LiveNetwork) -> None:
    with client(network) as node:
        with pytest.raises(NodeError) as missing:
            node.get_record(f"institutions/{YNU}/courses/NOPE", purpose=MOBILITY)
        with pytest.raises(NodeError) as elsewhere:
            node.get_record(f"institutions/{CHULA}/courses/X", purpose=MOBILITY)
    assert missing.value.reason is elsewhere.value.reason is Reason.NOT_FOUND
    assert missing.value.message == elsewhere.value.message


def raw(net: LiveNetwork, envelope: Envelope, method: str = GET) -> tuple[grpc.StatusCode, str]:
    """Send a hand-made request envelope; return the status code and the ErrorInfo reason."""
    kind = svc.GetRecordRequest if method == GET else svc.ListRecordsRequest
    with grpc.insecure_channel(net.nodes[YNU].target) as channel:
        call = channel.unary_unary(
            method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b,
        )
        try:
            call(kind(request=envelope), timeout=10)
        except grpc.RpcError as err:
            status = rpc_status.from_call(err)  # type: ignore[arg-type]
            assert status is not None, err
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return err.code(), info.reason
            return err.code(), ""
    return grpc.StatusCode.OK, ""


def signed(net: LiveNetwork, **overrides: object) -> Envelope:
    keys = caller_keys(net)
    body = svc.GetRecordBody(name=f"institutions/{YNU}/courses/NOPE").SerializeToString()
    args: dict[str, object] = dict(
        signer=keys.transport,
        network_id=NETWORK,
        method=GET,
        sender=net.tester.institution,
        audience=YNU,
        purpose=MOBILITY,
        body=body,
        request_id="r1",
        now=datetime.now(UTC),
    )
    args.update(overrides)
    return build_request(**args)  # type: ignore[arg-type]


def test_every_bad_request_gets_its_status_and_reason(network: LiveNetwork) -> None:
    keys = caller_keys(network)
    ynu = InstitutionKeys.load(network.nodes[YNU].folder / "keys", YNU, None)
    unauth, invalid = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT
    good = signed(network)
    assert raw(network, good) == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")
    assert raw(network, good) == (unauth, "REPLAYED_NONCE")
    assert raw(network, signed(network), LIST) == (unauth, "METHOD_MISMATCH")
    tampered = signed(network)
    tampered.payload = tampered.payload[:-1] + bytes([tampered.payload[-1] ^ 1])
    retyped = signed(network)
    retyped.payload_type = payload_types.RESPONSE
    stranger = InstitutionKeys.generate(network.root / "strangers", "x.example.org", None)
    now = datetime.now(UTC)
    cases = {
        "wrong audience": (signed(network, audience=CHULA), unauth, "WRONG_AUDIENCE"),
        "expired": (signed(network, now=now - timedelta(minutes=6)), unauth, "CLOCK_SKEW"),
        "future": (signed(network, now=now + timedelta(minutes=6)), unauth, "CLOCK_SKEW"),
        "unknown key": (signed(network, signer=stranger.transport), unauth, "KEY_UNKNOWN"),
        "another's key": (signed(network, signer=ynu.transport), unauth, "SIGNER_MISMATCH"),
        "wrong purpose": (signed(network, signer=keys.issuing), unauth, "KEY_WRONG_PURPOSE"),
        "wrong network": (signed(network, network_id="elsewhere"), unauth, "WRONG_NETWORK"),
        "tampered payload": (tampered, unauth, "SIGNATURE_INVALID"),
        "tampered type": (retyped, invalid, "PAYLOAD_TYPE_UNSUPPORTED"),
        "truncated": (
            Envelope(
                payload=good.payload[:10],
                payload_type=good.payload_type,
                signatures=good.signatures,
            ),
            unauth,
            "SIGNATURE_INVALID",
        ),
        "garbage": (
            sign_envelope(b"\xff\x00garbage", payload_types.REQUEST, [keys.transport]),
            invalid,
            "MALFORMED",
        ),
        "empty": (Envelope(), invalid, "MALFORMED"),
    }
    for name, (envelope, code, reason) in cases.items():
        assert raw(network, envelope) == (code, reason), name


def test_garbage_bytes_and_oversized_messages(network: LiveNetwork) -> None:
    with grpc.insecure_channel(network.nodes[YNU].target) as channel:
        call = channel.unary_unary(
            GET, request_serializer=lambda b: b, response_deserializer=lambda b: b
        )
        with pytest.raises(grpc.RpcError) as garbage:
            call(b"\xff\xff\xff\xff not protobuf", timeout=10)
        assert garbage.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as huge:
            call(b"\x0a" + b"\xff\xff\xff\x03" + b"x" * (5 * 1024 * 1024), timeout=10)
        assert huge.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_health_and_metrics(network: LiveNetwork) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(network.nodes[YNU].target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with urllib.request.urlopen(f"{network.nodes[YNU].http}/healthz") as r:
        assert json.loads(r.read())["status"] == "SERVING"
    with urllib.request.urlopen(f"{network.nodes[YNU].http}/metrics") as r:
        text = r.read().decode()
    assert 'sseaun_calls_total{method="/sseaun.v1.RecordService/GetRecord",code="OK"}' in text
    assert "sseaun_call_seconds_bucket" in text


# --- records a caller is not a party to (spec ERR-4) --------------------------------------


def test_a_party_reads_the_private_record(network: LiveNetwork) -> None:
    with node_client(network, YNU, sender=CHULA) as node:
        result = node.get_record(PRIVATE, purpose=MOBILITY)
        listed = [
            Course.FromString(r.payload).header.name
            for r in node.list_records(COURSES, purpose=MOBILITY)
        ]
        fed = [
            Course.FromString(c.record.payload).header.name
            for b in node.watch_changes(COURSES, purpose=MOBILITY)
            for c in b.changes
        ]
    ring = keyring(network)
    issuing = {k.key_id: k.public_key for k in ring.keys_for(YNU, 4, datetime.now(UTC))}
    verified = verify_envelope(result.record, issuing, {payload_types.COURSE})
    assert list(Course.FromString(verified.payload).header.parties) == [CHULA]
    assert result.latest_version == 1
    assert PRIVATE in listed and len(listed) == 14
    assert PRIVATE in fed and len(fed) == 14


def raw_error(net: LiveNetwork, name: str, version: int = 0) -> tuple[object, ...]:
    """GetRecord by the tester; everything of the error answer except what differs per call
    (the signed header's time, request digest and ID; the signature): status code and message,
    the detail types, the ErrorInfo, and the signed error's reason, code, message, field
    violations and metadata."""
    body = svc.GetRecordBody(name=name, version=version).SerializeToString()
    request = signed(net, body=body, request_id=f"probe-{name}")
    with grpc.insecure_channel(net.nodes[YNU].target) as channel:
        call = channel.unary_unary(
            GET,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as failed:
            call(svc.GetRecordRequest(request=request), timeout=10)
    err = failed.value
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    info, answer, kinds = error_details_pb2.ErrorInfo(), Envelope(), []
    for detail in status.details:
        kinds.append(detail.type_url)
        detail.Unpack(info if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR) else answer)
    verified = verify_answer(answer, keyring(net), request=request, responder=YNU)
    assert verified.error is not None  # the node's own, signed and bound to this request
    error = SignedError.FromString(answer.payload)
    assert error.header.requester == net.tester.institution
    error.ClearField("header")
    return (
        err.code(),
        status.message,
        tuple(kinds),
        info.SerializeToString(deterministic=True),
        error.SerializeToString(deterministic=True),
    )


def test_a_non_party_gets_exactly_the_answer_for_a_missing_record(network: LiveNetwork) -> None:
    private = raw_error(network, PRIVATE)
    assert private[0] is grpc.StatusCode.NOT_FOUND
    info = error_details_pb2.ErrorInfo.FromString(private[3])
    assert (info.reason, info.domain, dict(info.metadata)) == ("NOT_FOUND", DOMAIN, {})
    assert raw_error(network, catalogue.course_record_name(YNU, "XCH9002")) == private
    assert raw_error(network, PRIVATE, version=1) == private
    with client(network) as node:
        with pytest.raises(NodeError) as hidden:
            node.get_record(PRIVATE, purpose=MOBILITY)
        with pytest.raises(NodeError) as missing:
            node.get_record(catalogue.course_record_name(YNU, "XCH9002"), purpose=MOBILITY)
    for error in (hidden.value, missing.value):
        assert (error.code, error.transport_code, error.reason) == (
            "NOT_FOUND",
            "NOT_FOUND",
            Reason.NOT_FOUND,
        )
    assert hidden.value.message == missing.value.message
    assert hidden.value.metadata == missing.value.metadata == {}
    assert hidden.value.field_problems == missing.value.field_problems == ()


def test_a_non_party_does_not_see_the_private_record_listed_or_in_the_feed(
    network: LiveNetwork,
) -> None:
    with client(network) as node:
        listed = [
            Course.FromString(r.payload).header.name
            for r in node.list_records(COURSES, page_size=3, purpose=MOBILITY)
        ]
        fed = [
            c for b in node.watch_changes(COURSES, page_size=3, purpose=MOBILITY) for c in b.changes
        ]
    assert PRIVATE not in listed and len(listed) == 13
    assert PRIVATE not in {Course.FromString(c.record.payload).header.name for c in fed}
    assert len(fed) == 13


# --- per-caller rate limits (spec AUTH-19) -------------------------------------------------

RATE_BURST = 3


@pytest.fixture(scope="module")
def limited(network: LiveNetwork) -> Iterator[LiveNetwork]:
    """du with a small per-caller bucket: 3 calls at once, then one a second."""
    du = network.nodes[DU]
    du.configure(**{"limits.rate_per_second": 1.0, "limits.rate_burst": RATE_BURST})
    du.start()
    try:
        yield network
    finally:
        du.stop()


def test_a_caller_over_its_rate_is_refused_with_a_signed_retry_delay(
    limited: LiveNetwork,
) -> None:
    du = limited.nodes[DU]
    once = RetryPolicy(max_attempts=1)
    with (
        node_client(limited, DU, retry=once) as tester,
        node_client(limited, DU, sender=CHULA, retry=once) as chula,
    ):
        answered = 0
        with pytest.raises(NodeError) as refused:
            for _ in range(RATE_BURST + 3):  # the burst passes, then the bucket is empty
                tester.get_manifest()
                answered += 1
        assert answered >= RATE_BURST
        assert chula.get_manifest().manifest.payload  # another caller is unaffected
    error = refused.value
    assert error.signed
    assert (error.code, error.transport_code, error.reason) == (
        "RESOURCE_EXHAUSTED",
        "RESOURCE_EXHAUSTED",
        Reason.RATE_LIMITED,
    )
    delay_ms = int(error.metadata["retry-after-ms"])
    assert 0 < delay_ms <= 1000
    assert error.retry_after is not None
    assert abs(error.retry_after.total_seconds() * 1000 - delay_ms) <= 1

    # On the wire: ErrorInfo, RetryInfo and the signed error; a refused request keeps its nonce.
    def fresh(number: int) -> Envelope:
        return build_request(
            signer=caller_keys(limited).transport,
            network_id=NETWORK,
            method="/sseaun.v1.ManifestService/GetManifest",
            sender=limited.tester.institution,
            audience=DU,
            purpose=Purpose.PURPOSE_NETWORK_OPERATIONS,
            body=svc.GetManifestBody().SerializeToString(),
            request_id=f"rate-{number}",
            now=datetime.now(UTC),
        )

    with grpc.insecure_channel(du.target) as channel:
        call = channel.unary_unary(
            "/sseaun.v1.ManifestService/GetManifest",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=svc.GetManifestResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as failed:
            for number in range(RATE_BURST + 2):  # empties the bucket, however long ago it did
                request = fresh(number)
                call(svc.GetManifestRequest(request=request), timeout=10)
        status = rpc_status.from_call(failed.value)  # type: ignore[arg-type]
        assert status is not None and failed.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        info, retry, answer = (
            error_details_pb2.ErrorInfo(),
            error_details_pb2.RetryInfo(),
            Envelope(),
        )
        for detail in status.details:
            for message in (info, retry, answer):
                if detail.Is(message.DESCRIPTOR):
                    detail.Unpack(message)
        assert (info.reason, info.domain) == ("RATE_LIMITED", DOMAIN)
        delay = retry.retry_delay.ToMilliseconds()
        assert 0 < delay <= 1000
        assert abs(int(info.metadata["retry-after-ms"]) - delay) <= 1
        checked = verify_answer(
            answer, trusted_keyring(limited.manifest), request=request, responder=DU
        )
        assert checked.error is not None and checked.error.reason is Reason.RATE_LIMITED
        assert checked.error.metadata == dict(info.metadata)
        time.sleep(delay / 1000 + 0.05)
        reply = call(svc.GetManifestRequest(request=request), timeout=10)
        assert reply.response.payload  # the same signed request, now within the rate


def test_a_node_serves_its_own_fresh_delegation(network: LiveNetwork) -> None:
    with urllib.request.urlopen(f"{network.nodes[YNU].http}/.well-known/sseaun/statements") as r:
        statements = json.loads(r.read())["statements"]
    ring = keyring(network)
    accepted = [
        ring.accept_delegation(envelope_from_json(json.dumps(s)), datetime.now(UTC))
        for s in statements
        if s["payloadType"] == payload_types.DELEGATION
    ]
    mine = [d for d in accepted if d.institution_id == YNU]
    assert mine and mine[-1].expires_at.ToDatetime(tzinfo=UTC) > datetime.now(UTC) + timedelta(
        days=6
    )


def test_a_revoked_transport_key_is_refused_over_the_wire(network: LiveNetwork) -> None:
    du = InstitutionKeys.load(network.root / DU / "keys", DU, None)
    request = signed(network, signer=du.transport, sender=DU)
    assert raw(network, request) == (grpc.StatusCode.UNAUTHENTICATED, "KEY_REVOKED")


def test_server_reflection_lists_the_services(network: LiveNetwork) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(network.nodes[YNU].target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {
        "sseaun.v1.RecordService",
        "sseaun.v1.ManifestService",
        "grpc.health.v1.Health",
    } <= names


def test_a_node_learns_its_partners_delegations(network: LiveNetwork) -> None:
    ring = keyring(network)

    def learned() -> bool:
        with urllib.request.urlopen(
            f"{network.nodes[YNU].http}/.well-known/sseaun/statements"
        ) as r:
            statements = json.loads(r.read())["statements"]
        issuers = {
            ring.accept_delegation(
                envelope_from_json(json.dumps(s)), datetime.now(UTC)
            ).institution_id
            for s in statements
            if s["payloadType"] == payload_types.DELEGATION
        }
        return CHULA in issuers

    deadline = time.monotonic() + 20
    while not learned():
        assert time.monotonic() < deadline, "ynu never fetched chula's delegation"
        time.sleep(0.2)
