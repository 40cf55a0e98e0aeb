"""Fuzzing a running node: hypothesis sends random and mutated requests to the record services.

What is sent, for GetRecord, ListRecords and WatchChanges (and GetManifest):

- random bytes as the whole gRPC request message;
- a freshly signed, valid request with its bytes mutated (bit flips, truncation, insertion,
  deletion, repetition) or its envelope's fields swapped, dropped or replaced;
- requests signed with the tester's valid transport key whose header fields are random or
  swapped (times out of range, unknown purposes, odd nonces, other methods and audiences);
- random bodies under a valid signature: random bytes, random names and versions, random page
  sizes, random, forged, mutated and foreign page tokens and feed cursors.

What must hold (spec ERR-1..ERR-3, AUTH-15, AUTH-18): the node never answers INTERNAL or UNKNOWN
to bad input; every error carries exactly one ErrorInfo whose reason is in the taxonomy and
travels with its own status code, and the node's signed error (SignedError, signed by its
transport key, agreeing with the status); gRPC's own RESOURCE_EXHAUSTED is allowed only for a
message over the size limit. After each batch the node process is alive, still answers a good
request, and has logged no internal error.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sseaun.node._keys import InstitutionKeys
from sseaun.sdk.cli import main as sseaun
from sseaun.sdk.core import (
    DOMAIN,
    Envelope,
    KeyRing,
    Reason,
    build_request,
    payload_types,
    sign_envelope,
    verify_answer,
    verify_envelope,
)
from sseaun.v1 import service_pb2 as svc
from sseaun.v1.auth_pb2 import Purpose, RequestHeader, SignedError, SignedRequest
from sseaun.v1.envelope_pb2 import Signature
from sseaun.v1.manifest_pb2 import KeyPurpose
from tests.live_network import (
    NETWORK,
    LiveNetwork,
    NodeDir,
    build,
    http_json,
    keys_of,
    node_client,
    trusted_keyring,
)

pytestmark = pytest.mark.timeout(300)
YNU, CHULA = "ynu.edu.cn", "chula.ac.th"
GET = "/sseaun.v1.RecordService/GetRecord"
LIST = "/sseaun.v1.RecordService/ListRecords"
WATCH = "/sseaun.v1.RecordService/WatchChanges"
MANIFEST = "/sseaun.v1.ManifestService/GetManifest"
METHODS = (GET, LIST, WATCH, MANIFEST)
REQUESTS: dict[str, type[Message]] = {
    MANIFEST: svc.GetManifestRequest,
    GET: svc.GetRecordRequest,
    LIST: svc.ListRecordsRequest,
    WATCH: svc.WatchChangesRequest,
}
COURSES = f"institutions/{YNU}/courses"
PARENTS = (COURSES, f"institutions/{YNU}", f"institutions/{CHULA}/courses", "institutions", "")
MOBILITY = Purpose.PURPOSE_MOBILITY_ADMINISTRATION
EXAMPLES = "examples/catalogue/ynu-courses.csv"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
UINT64 = st.integers(0, 2**64 - 1)
INT32 = st.integers(-(2**31), 2**31 - 1)


def purpose_of(method: str) -> int:
    return Purpose.PURPOSE_NETWORK_OPERATIONS if method == MANIFEST else MOBILITY


@dataclass
class Target:
    """The node under fuzz and what a caller knows about it."""

    net: LiveNetwork
    node: NodeDir
    channel: grpc.Channel
    tester: InstitutionKeys
    ring: KeyRing
    #: Valid tokens the node issued: next-page tokens and feed cursors.
    tokens: tuple[str, ...]
    cursors: tuple[str, ...]

    def request(self, method: str, body: Message | bytes, **header: Any) -> Envelope:
        """A valid signed request (fresh nonce) unless header overrides say otherwise."""
        args: dict[str, Any] = {
            "signer": self.tester.transport,
            "network_id": NETWORK,
            "method": method,
            "sender": self.net.tester.institution,
            "audience": YNU,
            "purpose": purpose_of(method),
            "body": body if isinstance(body, bytes) else body.SerializeToString(),
            "request_id": "fuzz",
            # Whole seconds: the request's length, and so what hypothesis draws from it, does
            # not depend on the clock.
            "now": datetime.now(UTC).replace(microsecond=0),
            **header,
        }
        return build_request(**args)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    net = build(tmp_path_factory.mktemp("fuzz"))
    ynu = net.nodes[YNU]
    status = sseaun(["node", "import", "courses", "--config", str(ynu.config), "--file",
                     EXAMPLES, "--quiet"])  # fmt: skip
    assert status == 0
    # Only authenticated calls count against the rate; keep the fuzzer's well above it.
    ynu.configure(**{"limits.rate_per_second": 100_000, "limits.rate_burst": 100_000})
    ynu.start(drain=True)
    channel = grpc.insecure_channel(ynu.target)
    try:
        with node_client(net, YNU) as client:
            first = client.list_records_page(COURSES, page_size=2, purpose=MOBILITY)
            other = client.list_records_page(
                COURSES, page_size=3, changed_since_sequence=2, purpose=MOBILITY
            )
            changes = [
                c for b in client.watch_changes(COURSES, page_size=4, purpose=MOBILITY)
                for c in b.changes
            ]  # fmt: skip
        yield Target(
            net=net,
            node=ynu,
            channel=channel,
            tester=keys_of(net, net.tester.institution),
            ring=trusted_keyring(net.manifest),
            tokens=(first.next_page_token, other.next_page_token),
            cursors=tuple(c.cursor for c in changes[:3]),
        )
    finally:
        channel.close()
        ynu.stop()


@dataclass
class Outcome:
    code: grpc.StatusCode
    status: status_pb2.Status | None
    replies: list[bytes]


def send(target: Target, method: str, data: bytes, timeout: float = 30.0) -> Outcome:
    """Send raw bytes as the request message; for the feed, read its first page only (a
    follow stream stays open)."""
    identity = (lambda b: b), (lambda b: b)
    if method != WATCH:
        call = target.channel.unary_unary(
            method, request_serializer=identity[0], response_deserializer=identity[1]
        )
        try:
            return Outcome(grpc.StatusCode.OK, None, [call(data, timeout=timeout)])
        except grpc.RpcError as err:
            return Outcome(err.code(), rpc_status.from_call(err), [])  # type: ignore[arg-type]
    stream = target.channel.unary_stream(
        method, request_serializer=identity[0], response_deserializer=identity[1]
    )(data, timeout=timeout)
    try:
        for reply in stream:
            return Outcome(grpc.StatusCode.OK, None, [reply])
        return Outcome(grpc.StatusCode.OK, None, [])
    except grpc.RpcError as err:
        return Outcome(err.code(), rpc_status.from_call(err), [])  # type: ignore[arg-type]
    finally:
        stream.cancel()  # type: ignore[no-untyped-call, unused-ignore]


def check(
    target: Target, outcome: Outcome, request: Envelope | None = None, *, oversized: bool = False
) -> Reason | None:
    """The answer is a success or a well-formed taxonomy error; returns the reason, if any."""
    code = outcome.code
    if code is grpc.StatusCode.OK:
        return None
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), outcome
    if oversized and code is grpc.StatusCode.RESOURCE_EXHAUSTED and outcome.status is None:
        return None
    status = outcome.status
    assert status is not None, f"{code.name} without google.rpc.Status details"
    infos, signed = [], []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
        elif detail.Is(Envelope.DESCRIPTOR):
            envelope = Envelope()
            detail.Unpack(envelope)
            signed.append(envelope)
    assert len(infos) == 1 and len(signed) == 1, status
    reason = Reason(infos[0].reason)  # ValueError: not in the taxonomy
    assert infos[0].domain == DOMAIN
    assert reason.status_code == code.name, (reason, code)
    assert reason is not Reason.INTERNAL
    transport = target.ring.keys_for(YNU, KeyPurpose.KEY_PURPOSE_TRANSPORT, datetime.now(UTC))
    verified = verify_envelope(
        signed[0], {k.key_id: k.public_key for k in transport}, {payload_types.ERROR}
    )
    error = SignedError.FromString(verified.payload)
    assert Reason.from_wire(error.reason) is reason
    assert error.code == code.value[0]
    assert error.message == status.message
    assert dict(error.metadata) == dict(infos[0].metadata)
    if request is not None and error.header.requester:
        answer = verify_answer(signed[0], target.ring, request=request, responder=YNU)
        assert answer.error is not None and answer.error.reason is reason
    return reason


def wrap(method: str, envelope: Envelope) -> bytes:
    return REQUESTS[method](request=envelope).SerializeToString()


def healthy(target: Target) -> None:
    """The node is alive, answers a good request, and logged no internal error."""
    assert target.node.alive
    with node_client(target.net, YNU) as client:
        page = client.list_records_page(COURSES, page_size=2, purpose=MOBILITY)
    assert len(page.records) == 2
    log = target.node.log_text()
    assert "Traceback" not in log and "internal error" not in log, log[-4000:]


# --- strategies ----------------------------------------------------------------------------


def _mutate_token(token: str, data: st.DataObject) -> str:
    kind = data.draw(st.sampled_from(["char", "truncate", "append", "b64", "swap"]))
    if kind == "char" and token:
        i = data.draw(st.integers(0, len(token) - 1))
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="
        return token[:i] + data.draw(st.sampled_from(alphabet)) + token[i + 1 :]
    if kind == "truncate":
        return token[: data.draw(st.integers(0, len(token)))]
    if kind == "append":
        return token + data.draw(st.text(max_size=8))
    if kind == "b64":
        raw = data.draw(st.binary(max_size=96))
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return token[::-1]


def tokens(target: Target, data: st.DataObject, valid: tuple[str, ...]) -> str:
    """A page token or cursor: empty, valid, another kind's, mutated, or random text."""
    known = (*target.tokens, *target.cursors)
    return data.draw(
        st.one_of(
            st.just(""),
            st.sampled_from(valid),
            st.sampled_from(known),  # a cursor as page token, or the reverse
            st.sampled_from(known).map(lambda t: _mutate_token(t, data)),
            st.text(max_size=200),
        )
    )


def parents(data: st.DataObject) -> str:
    return data.draw(st.one_of(st.sampled_from(PARENTS), st.text(max_size=80)))


def body_for(target: Target, method: str, data: st.DataObject) -> bytes:
    """A body: random bytes, or the method's body message with random fields."""
    if data.draw(st.integers(0, 5)) == 0:
        return data.draw(st.binary(max_size=300))
    body: Message
    if method == MANIFEST:
        body = svc.GetManifestBody(version=data.draw(UINT64 | st.integers(0, 3)))
    elif method == GET:
        name = data.draw(
            st.one_of(
                st.text(max_size=100),
                st.text(max_size=40).map(lambda t: f"{COURSES}/{t}"),
                st.just(f"{COURSES}/SISE1001"),
            )
        )
        body = svc.GetRecordBody(name=name, version=data.draw(UINT64 | st.integers(0, 3)))
    elif method == LIST:
        body = svc.ListRecordsBody(
            parent=parents(data),
            page_size=data.draw(INT32 | st.integers(-2, 5)),
            page_token=tokens(target, data, target.tokens),
            changed_since_sequence=data.draw(UINT64 | st.integers(0, 20)),
        )
    else:
        body = svc.WatchChangesBody(
            parent=parents(data),
            cursor=tokens(target, data, target.cursors),
            page_size=data.draw(INT32 | st.integers(-2, 5)),
            follow=data.draw(st.booleans()),
        )
    return body.SerializeToString()


def mutate_bytes(raw: bytes, data: st.DataObject) -> bytes:
    """Bit flips, truncation, insertion, deletion and repetition of a message's bytes."""
    out = bytearray(raw)
    for op in data.draw(
        st.lists(
            st.sampled_from(["flip", "truncate", "insert", "delete", "repeat"]),
            min_size=1,
            max_size=4,
        )
    ):
        at = data.draw(st.integers(0, max(len(out) - 1, 0)))
        if op == "flip" and out:
            out[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "truncate":
            del out[at:]
        elif op == "insert":
            out[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del out[at : at + data.draw(st.integers(1, 16))]
        else:
            out += out[at : at + data.draw(st.integers(1, 64))]
    return bytes(out)


def mutate_envelope(target: Target, envelope: Envelope, data: st.DataObject) -> Envelope:
    """Swap, drop, duplicate or replace the envelope's fields."""
    out = Envelope()
    out.CopyFrom(envelope)
    others = [
        keys_of(target.net, YNU).transport,
        target.tester.issuing,
        target.tester.root,
    ]
    for op in data.draw(
        st.lists(
            st.sampled_from(
                [
                    "swap-payload-type",
                    "swap-sig-keyid",
                    "other-type",
                    "other-keyid",
                    "drop-signatures",
                    "many-signatures",
                    "cosign",
                    "random-sig",
                    "random-payload",
                ]
            ),
            min_size=1,
            max_size=3,
        )
    ):
        if op == "swap-payload-type":
            out.payload, out.payload_type = (
                out.payload_type.encode(),
                out.payload.decode("latin-1"),
            )
        elif op == "swap-sig-keyid" and out.signatures:
            sig = out.signatures[0]
            sig.sig, sig.keyid = sig.keyid.encode(), sig.sig.hex()
        elif op == "other-type":
            out.payload_type = data.draw(
                st.sampled_from(
                    [
                        payload_types.RESPONSE,
                        payload_types.ERROR,
                        payload_types.FEED_PAGE,
                        payload_types.MANIFEST,
                        payload_types.COURSE,
                        payload_types.REQUEST.upper(),
                    ]
                )
            )
        elif op == "other-keyid" and out.signatures:
            out.signatures[0].keyid = data.draw(st.sampled_from(others)).key_id
        elif op == "drop-signatures":
            del out.signatures[:]
        elif op == "many-signatures" and out.signatures:
            out.signatures.extend([out.signatures[0]] * data.draw(st.integers(1, 40)))
        elif op == "cosign":
            signer = data.draw(st.sampled_from(others))
            out.signatures.append(Signature(sig=signer.sign(b"not the PAE"), keyid=signer.key_id))
        elif op == "random-sig" and out.signatures:
            out.signatures[0].sig = data.draw(st.binary(min_size=64, max_size=64))
        else:
            out.payload = data.draw(st.binary(max_size=200))
    return out


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[int, int]:
    return draw(
        st.tuples(
            st.one_of(
                st.integers(-(2**63), 2**63 - 1),
                st.integers(-62135596800, 253402300799),
                st.integers(int(datetime.now(UTC).timestamp()) - 400, 2**31),
            ),
            st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(0, 999_999_999)),
        )
    )


def signed_header(target: Target, method: str, data: st.DataObject) -> Envelope:
    """A request signed with the tester's transport key whose header fields are random or
    swapped; the body is a valid one."""
    now = datetime.now(UTC)
    header = RequestHeader(
        network_id=NETWORK,
        method=method,
        sender=target.net.tester.institution,
        audience=YNU,
        nonce=data.draw(st.binary(min_size=32, max_size=32)),
        request_id="fuzz",
        purpose=purpose_of(method),  # type: ignore[arg-type]
    )
    header.issued_at.FromDatetime(now)
    text = st.one_of(st.text(max_size=60), st.sampled_from([YNU, CHULA, NETWORK, *METHODS]))
    for field in data.draw(
        st.lists(
            st.sampled_from(
                [
                    "network_id",
                    "method",
                    "sender",
                    "audience",
                    "issued_at",
                    "nonce",
                    "request_id",
                    "purpose",
                    "swap",
                    "clear",
                ]
            ),
            min_size=1,
            max_size=4,
        )
    ):
        if field == "issued_at":
            header.issued_at.seconds, header.issued_at.nanos = data.draw(timestamps())
        elif field == "nonce":
            header.nonce = data.draw(st.binary(max_size=100))
        elif field == "purpose":
            header.purpose = data.draw(st.integers(-(2**31), 2**31 - 1))  # type: ignore[assignment]
        elif field == "swap":
            header.sender, header.audience = header.audience, header.sender
        elif field == "clear":
            header.ClearField(
                data.draw(st.sampled_from(["issued_at", "sender", "nonce", "network_id"]))
            )
        else:
            setattr(header, field, data.draw(text))
    body = {
        GET: svc.GetRecordBody(name=f"{COURSES}/SISE1001"),
        LIST: svc.ListRecordsBody(parent=COURSES),
        WATCH: svc.WatchChangesBody(parent=COURSES),
        MANIFEST: svc.GetManifestBody(),
    }[method]
    request = SignedRequest(header=header, body=body.SerializeToString())
    if data.draw(st.booleans()):
        payload = request.SerializeToString()
    else:  # fields swapped: the body's bytes where the header goes, or the header as body
        payload = SignedRequest(
            header=RequestHeader.FromString(b"") if data.draw(st.booleans()) else header,
            body=header.SerializeToString(),
        ).SerializeToString()
    return sign_envelope(payload, payload_types.REQUEST, [target.tester.transport])


# --- the fuzz tests ------------------------------------------------------------------------


@FUZZ
@given(method=st.sampled_from(METHODS), raw=st.binary(max_size=2048))
def test_random_bytes_as_the_whole_message(target: Target, method: str, raw: bytes) -> None:
    check(target, send(target, method, raw))


def test_random_bytes_leave_the_node_healthy(target: Target) -> None:
    healthy(target)


@FUZZ
@given(method=st.sampled_from(METHODS), data=st.data())
def test_mutated_bytes_of_a_valid_request(target: Target, method: str, data: st.DataObject) -> None:
    request = target.request(method, body_for(target, method, data))
    check(target, send(target, method, mutate_bytes(wrap(method, request), data)))


@FUZZ
@given(method=st.sampled_from(METHODS), data=st.data())
def test_mutated_envelope_fields(target: Target, method: str, data: st.DataObject) -> None:
    request = mutate_envelope(target, target.request(method, body_for(target, method, data)), data)
    check(target, send(target, method, wrap(method, request)), request)


@FUZZ
@given(method=st.sampled_from(METHODS), data=st.data())
def test_random_headers_under_a_valid_signature(
    target: Target, method: str, data: st.DataObject
) -> None:
    request = signed_header(target, method, data)
    check(target, send(target, method, wrap(method, request)), request)


def test_mutated_requests_leave_the_node_healthy(target: Target) -> None:
    healthy(target)


@FUZZ
@given(data=st.data())
def test_random_get_record_bodies(target: Target, data: st.DataObject) -> None:
    request = target.request(GET, body_for(target, GET, data))
    reason = check(target, send(target, GET, wrap(GET, request)), request)
    assert reason in (None, Reason.MALFORMED, Reason.NOT_FOUND)


@FUZZ
@given(data=st.data())
def test_random_get_manifest_bodies(target: Target, data: st.DataObject) -> None:
    request = target.request(MANIFEST, body_for(target, MANIFEST, data))
    reason = check(target, send(target, MANIFEST, wrap(MANIFEST, request)), request)
    assert reason in (None, Reason.MALFORMED, Reason.NOT_FOUND)


@FUZZ
@given(data=st.data())
def test_random_list_records_bodies_and_page_tokens(target: Target, data: st.DataObject) -> None:
    request = target.request(LIST, body_for(target, LIST, data))
    reason = check(target, send(target, LIST, wrap(LIST, request)), request)
    assert reason in (None, Reason.MALFORMED, Reason.NOT_FOUND)


@FUZZ
@given(data=st.data())
def test_random_watch_changes_bodies_and_cursors(target: Target, data: st.DataObject) -> None:
    request = target.request(WATCH, body_for(target, WATCH, data))
    outcome = send(target, WATCH, wrap(WATCH, request))
    reason = check(target, outcome, request)
    assert reason in (None, Reason.MALFORMED, Reason.NOT_FOUND)


def test_an_oversized_message_is_refused_by_grpc(target: Target) -> None:
    huge = wrap(GET, Envelope(payload=b"x" * (5 * 1024 * 1024)))
    for method in METHODS:
        outcome = send(target, method, huge)
        assert outcome.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        check(target, outcome, oversized=True)


def test_random_bodies_leave_the_node_healthy(target: Target) -> None:
    healthy(target)


@FUZZ
@given(suffix=st.one_of(st.text(max_size=40), st.integers().map(str), st.binary(max_size=20)))
def test_random_manifest_versions_over_http(target: Target, suffix: str | bytes) -> None:
    path = urllib.parse.quote(suffix, safe="")
    status, _ = http_json(f"{target.node.http}/.well-known/sseaun/manifest/{path}")
    assert status in (200, 400, 404), (suffix, status)


def test_http_fuzz_leaves_the_node_healthy(target: Target) -> None:
    healthy(target)
