"""Manifest distribution between real nodes (spec MAN-9..MAN-14): a node adopts a newer version
from its manifest file, serves every version it holds over HTTP and gRPC, catches up from a
peer one +1 step at a time, refuses a rollback, reports an equivocating version and keeps the
first; a node whose manifest expired serves no data (MAN-13) but still serves the manifest."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped, unused-ignore]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from sseaun.node._config import NodeConfig
from sseaun.node._runtime import Node
from sseaun.node._services import RecordService
from sseaun.node.store import SqliteStore
from sseaun.sdk.client import NodeError, RetryPolicy
from sseaun.sdk.core import (
    DOMAIN,
    Envelope,
    ProtocolError,
    Reason,
    build_request,
    envelope_digest,
    envelope_from_json,
    verify_answer,
)
from sseaun.v1 import service_pb2 as svc
from sseaun.v1.auth_pb2 import Purpose
from tests.live_network import (
    NETWORK,
    LiveNetwork,
    NodeDir,
    build,
    keys_of,
    next_manifest,
    node_client,
    trusted_keyring,
    wait_for,
    write_atomically,
)

pytestmark = pytest.mark.timeout(120)
YNU, CHULA, DU = "ynu.edu.cn", "chula.ac.th", "du.ac.bd"
MANIFEST = "/.well-known/sseaun/manifest"
REFRESH = 0.2  # seconds between a node's looks for a newer manifest
MOBILITY = Purpose.PURPOSE_MOBILITY_ADMINISTRATION
COURSES_OF_CHULA = f"institutions/{CHULA}/courses"


@dataclass
class Chain:
    """A network and the manifests governance signed for it."""

    net: LiveNetwork
    v1: Path
    v2: Path
    v2_other: Path  # a different v2, validly signed by the threshold: equivocation
    v3: Path

    def node(self, institution: str) -> NodeDir:
        return self.net.nodes[institution]

    def file_of(self, institution: str) -> Path:
        return self.net.root / f"{institution}-manifest.json"


def payload(path: Path) -> bytes:
    return envelope_from_json(path.read_bytes()).payload


def served(node: NodeDir, suffix: str = "") -> bytes:
    with urllib.request.urlopen(f"{node.http}{MANIFEST}{suffix}", timeout=10) as reply:
        return envelope_from_json(reply.read()).payload


def bring_ynu_to(chain: Chain, version: int) -> None:
    """Step ynu's manifest file (and so ynu) up to version, if it is not there yet, so each test
    also runs on its own."""
    ynu = chain.node(YNU)
    for number, path in ((2, chain.v2), (3, chain.v3))[: version - 1]:
        if version_of(ynu) >= number:
            continue
        write_atomically(chain.file_of(YNU), path.read_bytes())

        def adopted(wanted: int = number) -> bool:
            return version_of(ynu) == wanted

        wait_for(adopted, what=f"ynu to adopt v{number}")


def version_of(node: NodeDir) -> int:
    status, body = node.healthz()
    version = body["manifest_version"]
    assert isinstance(version, int), (status, body)
    return version


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """ynu follows a manifest file, du too (for equivocation), chula follows ynu over HTTP
    (started by its test); v2, an equivocating v2 and v3 are signed by two governance holders
    each with the `sseaun manifest` commands."""
    net = build(tmp_path_factory.mktemp("manifests"))
    root = net.root
    v2 = next_manifest(net, net.manifest, root / "v2.json")
    # Same version, other content (a shorter lifetime), signed by the threshold: equivocation.
    v2_other = next_manifest(net, net.manifest, root / "v2-other.json", signers=(1, 2),
                             extra=("--expires-days", "200"))  # fmt: skip
    v3 = next_manifest(net, v2, root / "v3.json", signers=(0, 2))
    result = Chain(net, net.manifest, v2, v2_other, v3)
    for institution in (YNU, DU):
        shutil.copy(net.manifest, result.file_of(institution))
        result.node(institution).configure(
            **{
                "manifest.file": str(result.file_of(institution)),
                "manifest.refresh_seconds": REFRESH,
            }
        )
    result.node(CHULA).configure(
        **{"manifest.peers": [result.node(YNU).http], "manifest.refresh_seconds": REFRESH}
    )
    started = [result.node(YNU), result.node(DU)]
    try:
        for node in started:
            node.start(drain=True)
        yield result
    finally:
        for node in (*started, result.node(CHULA)):
            node.stop()


def test_the_node_adopts_a_newer_version_from_its_file_and_serves_every_version(
    chain: Chain,
) -> None:
    ynu = chain.node(YNU)
    assert version_of(ynu) == 1
    write_atomically(chain.file_of(YNU), chain.v2.read_bytes())
    wait_for(lambda: version_of(ynu) == 2, what="ynu to adopt v2")
    assert served(ynu) == served(ynu, "/2") == payload(chain.v2)
    assert served(ynu, "/1") == payload(chain.v1)
    with pytest.raises(urllib.error.HTTPError) as missing:
        served(ynu, "/3")
    assert missing.value.code == 404
    with node_client(chain.net, YNU) as client:
        assert client.get_manifest().manifest.payload == payload(chain.v2)
        assert client.get_manifest(2).manifest.payload == payload(chain.v2)
        assert client.get_manifest(1).manifest.payload == payload(chain.v1)
        with pytest.raises(NodeError) as absent:
            client.get_manifest(3)
    assert (absent.value.code, absent.value.reason) == ("NOT_FOUND", Reason.NOT_FOUND)
    status, body = ynu.healthz()
    assert (status, body["status"], body["problems"]) == (200, "SERVING", {})
    assert "adopted manifest version 2" in ynu.log_text()


def test_a_rolled_back_file_is_not_adopted(chain: Chain) -> None:
    ynu = chain.node(YNU)
    bring_ynu_to(chain, 2)
    lines = len(ynu.log)
    write_atomically(chain.file_of(YNU), chain.v1.read_bytes())
    wait_for(
        lambda: any("MANIFEST_ROLLBACK" in line for line in ynu.log[lines:]),
        what="the rollback to be refused",
    )
    assert version_of(ynu) == 2
    assert served(ynu) == payload(chain.v2)
    status, body = ynu.healthz()
    assert (status, body["problems"]) == (200, {})  # a rollback offered is refused, not a fault


def test_a_peer_catches_up_one_version_at_a_time(chain: Chain) -> None:
    chula = chain.node(CHULA)
    bring_ynu_to(chain, 3)
    # chula trusts v1 only and asks ynu for v2, then v3, before it serves.
    chula.start(drain=True)
    assert version_of(chula) == 3
    assert served(chula, "/2") == payload(chain.v2)
    assert served(chula) == served(chula, "/3") == payload(chain.v3)
    log = chula.log_text()
    assert 0 <= log.index("adopted manifest version 2") < log.index("adopted manifest version 3")
    with node_client(chain.net, CHULA) as client:
        assert client.get_manifest().manifest.payload == payload(chain.v3)


def test_an_equivocating_version_is_reported_and_the_first_one_kept(chain: Chain) -> None:
    du = chain.node(DU)
    write_atomically(chain.file_of(DU), chain.v2.read_bytes())
    wait_for(lambda: version_of(du) == 2, what="du to adopt v2")
    write_atomically(chain.file_of(DU), chain.v2_other.read_bytes())
    wait_for(lambda: du.healthz()[0] == 503, what="du to report the equivocation")
    _, body = du.healthz()
    problems = body["problems"]
    assert isinstance(problems, dict)
    assert list(problems) == ["manifest-equivocation"]
    assert "version 2" in problems["manifest-equivocation"]
    assert body["manifest_version"] == 2
    assert served(du) == served(du, "/2") == payload(chain.v2)
    with node_client(chain.net, DU) as client:
        assert client.get_manifest(2).manifest.payload == payload(chain.v2)
    assert "manifest equivocation" in du.log_text()
    du.stop()

    async def evidence() -> list[tuple[str, tuple[bytes, ...]]]:
        store = await SqliteStore.open(NodeConfig.load(du.config).database)
        try:
            return [(e.kind, e.envelopes) for e in await store.evidence()]
        finally:
            await store.close()

    kept = asyncio.run(evidence())
    assert len(kept) == 1  # refreshes keep offering it; the evidence is kept once
    kind, envelopes = kept[0]
    assert kind == "manifest-equivocation"
    assert [Envelope.FromString(e).payload for e in envelopes] == [
        payload(chain.v2_other),
        payload(chain.v2),
    ]
    # The warning outlives a restart, even once nobody offers the other v2 any more.
    write_atomically(chain.file_of(DU), chain.v2.read_bytes())
    du.start()
    try:
        status, body = du.healthz()
        assert status == 503
        assert isinstance(body["problems"], dict)
        assert "manifest-equivocation" in body["problems"]
    finally:
        du.stop()


# --- an expired manifest ------------------------------------------------------------------


@pytest.fixture(scope="module")
def expired(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    """A network whose only manifest was issued 400 days ago for 365 days; ynu runs."""
    issued = datetime.now(UTC) - timedelta(days=400)
    net = build(tmp_path_factory.mktemp("expired"), issued_at=issued, expires_days=365)
    net.nodes[YNU].start(drain=True)
    try:
        yield net
    finally:
        net.nodes[YNU].stop()


def raw_call(
    net: LiveNetwork, method: str, body: bytes, request_type: type[svc.GetRecordRequest]
) -> tuple[grpc.StatusCode, error_details_pb2.ErrorInfo | None, Envelope, Envelope | None]:
    """A hand-signed call by the tester: the code, ErrorInfo, request, signed error detail."""
    request = build_request(
        signer=keys_of(net, net.tester.institution).transport,
        network_id=NETWORK,
        method=method,
        sender=net.tester.institution,
        audience=YNU,
        purpose=MOBILITY,
        body=body,
        request_id="expired-1",
        now=datetime.now(UTC),
    )
    with grpc.insecure_channel(net.nodes[YNU].target) as channel:
        call = channel.unary_unary(
            method, request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=lambda b: b,
        )  # fmt: skip
        try:
            call(request_type(request=request), timeout=10)
        except grpc.RpcError as err:
            status = rpc_status.from_call(err)  # type: ignore[arg-type]
            assert status is not None
            info, signed = None, None
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                elif detail.Is(Envelope.DESCRIPTOR):
                    signed = Envelope()
                    detail.Unpack(signed)
            return err.code(), info, request, signed
    return grpc.StatusCode.OK, None, request, None


def test_an_expired_manifest_stops_data_calls_with_a_signed_error(expired: LiveNetwork) -> None:
    parent = f"institutions/{YNU}/courses"
    with node_client(expired, YNU, retry=RetryPolicy(max_attempts=1)) as client:
        calls: dict[str, Callable[[], object]] = {
            "get": lambda: client.get_record(f"{parent}/X", purpose=MOBILITY),
            "list": lambda: list(client.list_records(parent, purpose=MOBILITY)),
            "watch": lambda: list(client.watch_changes(parent, purpose=MOBILITY)),
        }
        for name, call in calls.items():
            with pytest.raises(NodeError) as refused:
                call()
            error = refused.value
            assert error.signed, name
            assert (error.code, error.reason) == ("FAILED_PRECONDITION", Reason.MANIFEST_EXPIRED)
            assert error.metadata == {"version": "1"}, name
    code, info, request, signed = raw_call(
        expired,
        "/sseaun.v1.RecordService/GetRecord",
        svc.GetRecordBody(name=f"{parent}/X").SerializeToString(),
        svc.GetRecordRequest,
    )
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert info is not None and (info.reason, info.domain) == ("MANIFEST_EXPIRED", DOMAIN)
    assert signed is not None
    answer = verify_answer(signed, trusted_keyring(expired.manifest), request=request,
                           responder=YNU)  # fmt: skip
    assert answer.error is not None and answer.error.reason is Reason.MANIFEST_EXPIRED


def test_an_expired_manifest_is_still_served_and_health_says_why(expired: LiveNetwork) -> None:
    ynu = expired.nodes[YNU]
    with node_client(expired, YNU) as client:
        assert client.get_manifest().manifest.payload == payload(expired.manifest)
    assert served(ynu) == payload(expired.manifest)
    status, body = ynu.healthz()
    assert (status, body["status"]) == (503, "NOT_SERVING")
    problems = body["problems"]
    assert isinstance(problems, dict)
    assert "MANIFEST_EXPIRED" in problems["manifest"]
    assert "version 1 has expired" in problems["manifest"]
    with grpc.insecure_channel(ynu.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "sseaun.v1.RecordService", "sseaun.v1.ManifestService"):
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING, service


# --- the node's adoption step, in process -----------------------------------------------


async def open_node(chain: Chain, database: Path) -> Node:
    """A Node (no servers) for chula's keys on a fresh database that trusts v1."""
    config = dataclasses.replace(NodeConfig.load(chain.node(CHULA).config), database=database)
    store = await SqliteStore.open(database)
    v1 = envelope_from_json(chain.v1.read_bytes())
    await store.put_manifest(1, v1.SerializeToString(), envelope_digest(v1))
    keys = {CHULA: keys_of(chain.net, CHULA)}
    return await Node.open(config, store, keys)


async def test_a_version_the_store_holds_with_other_bytes_is_equivocation(
    chain: Chain, tmp_path: Path
) -> None:
    node = await open_node(chain, tmp_path / "node.db")
    try:
        # Another process sharing the database kept the other v2 first.
        other = envelope_from_json(chain.v2_other.read_bytes())
        await node.store.put_manifest(2, other.SerializeToString(), envelope_digest(other))
        with pytest.raises(ProtocolError) as refused:
            await node.adopt_manifest(envelope_from_json(chain.v2.read_bytes()))
        assert refused.value.reason is Reason.MANIFEST_EQUIVOCATION
        assert refused.value.metadata == {"version": "2"}
        assert node.trust.current.version == 1  # not trusted: the store did not keep it
        assert node.keyring.network_id == NETWORK
        assert "manifest-equivocation" in node.problems
        [evidence] = await node.store.evidence()
        assert [Envelope.FromString(e).payload for e in evidence.envelopes] == [
            payload(chain.v2),
            payload(chain.v2_other),
        ]
        assert await node.store.get_manifest(2) == other.SerializeToString()
    finally:
        await node.store.close()


async def test_a_version_the_store_cannot_keep_is_not_trusted(chain: Chain, tmp_path: Path) -> None:
    node = await open_node(chain, tmp_path / "node.db")
    await node.store.close()
    with pytest.raises(ProtocolError) as refused:
        await node.adopt_manifest(envelope_from_json(chain.v2.read_bytes()))
    assert refused.value.reason is Reason.INTERNAL
    assert node.trust.current.version == 1
    assert node.trust.version(2) is None


async def test_concurrent_offers_of_two_v2s_adopt_exactly_one(chain: Chain, tmp_path: Path) -> None:
    node = await open_node(chain, tmp_path / "node.db")
    try:
        offers = [envelope_from_json(p.read_bytes()) for p in (chain.v2, chain.v2_other)]
        outcomes = await asyncio.gather(
            *(node.adopt_manifest(e) for e in offers), return_exceptions=True
        )
        assert outcomes[0] is True
        assert isinstance(outcomes[1], ProtocolError)
        assert outcomes[1].reason is Reason.MANIFEST_EQUIVOCATION
        assert node.trust.current.envelope.payload == payload(chain.v2)
        assert await node.store.manifest_versions() == [1, 2]
        assert await node.adopt_manifest(offers[0]) is False  # the current one again: no-op
    finally:
        await node.store.close()


async def test_a_follow_stream_ends_when_the_manifest_expires(chain: Chain, tmp_path: Path) -> None:
    node = await open_node(chain, tmp_path / "node.db")
    now = [datetime.now(UTC)]
    node.clock = lambda: now[0]
    try:
        feed = RecordService(node)._batches(COURSES_OF_CHULA, YNU, 0, 10, True)
        batch, last, _names = await anext(feed)
        assert not last and batch.caught_up  # the follower hears the stream is open
        now[0] = node.manifest.expires_at
        with pytest.raises(ProtocolError) as ended:
            await anext(feed)
        assert ended.value.reason is Reason.MANIFEST_EXPIRED
    finally:
        await node.store.close()
