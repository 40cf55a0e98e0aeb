"""Real nodes on loopback (real gRPC, aiohttp and SQLite), called by the SDK client and by hand."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped, unused-ignore]
from grpc_status import rpc_status

from sseaun.node._keys import InstitutionKeys
from sseaun.sdk.cli import main as sseaun
from sseaun.sdk.client import ClientConfig, NodeClient, NodeError
from sseaun.sdk.core import (
    Envelope,
    KeyRing,
    ManifestTrust,
    Reason,
    build_request,
    envelope_from_json,
    payload_types,
    sign_envelope,
    verify_envelope,
)
from sseaun.v1 import service_pb2 as svc
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.catalogue_pb2 import Course
from tests.live_network import NETWORK, LiveNetwork, build, running

pytestmark = pytest.mark.timeout(180)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalogue"
YNU, CHULA = "ynu.edu.cn", "chula.ac.th"
GET = "/sseaun.v1.RecordService/GetRecord"
LIST = "/sseaun.v1.RecordService/ListRecords"
MOBILITY = Purpose.PURPOSE_MOBILITY_ADMINISTRATION


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
