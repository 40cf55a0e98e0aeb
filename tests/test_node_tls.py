"""gRPC over TLS between the SDK client and real nodes (DESIGN §5: TLS in production).

A test CA and one server certificate per node (for 127.0.0.1 and localhost) are made fresh in a
temporary folder: TEST KEYS ONLY. ynu and chula serve gRPC over TLS only, and the manifest says
so; du stays plaintext and calls ynu as a peer (peer sync) over TLS. Message-level
authentication is unchanged over TLS; TLS only decides whether the caller reaches the node.
"""

from __future__ import annotations

import contextlib
import ipaddress
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sseaun.node._config import NodeConfig
from sseaun.sdk.cli import main as sseaun
from sseaun.sdk.client import ClientError, NodeClient, NodeError, RetryPolicy, TransportError
from sseaun.sdk.core import Reason, envelope_from_json
from sseaun.v1.auth_pb2 import Purpose
from tests.live_network import LiveNetwork, NodeDir, build, node_client, wait_for

pytestmark = pytest.mark.timeout(120)
YNU, CHULA, DU = "ynu.edu.cn", "chula.ac.th", "du.ac.bd"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalogue"
COURSES = f"institutions/{YNU}/courses"
MOBILITY = Purpose.PURPOSE_MOBILITY_ADMINISTRATION
ONCE = RetryPolicy(max_attempts=1)  # a refused handshake is not retried: fail fast


@dataclass(frozen=True)
class Authority:
    """A test certificate authority that issues server certificates."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, folder: Path, common_name: str) -> tuple[Path, Path]:
        """A server certificate for 127.0.0.1 and localhost: (cert.pem, key.pem) in folder."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = folder / "cert.pem", folder / "key.pem"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path


@dataclass(frozen=True)
class TlsNetwork:
    net: LiveNetwork
    ca: Authority


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNetwork]:
    """ynu and chula serve gRPC over TLS only, each with its own certificate from the test CA."""
    net = build(tmp_path_factory.mktemp("tls"), tls=(YNU, CHULA))
    status = sseaun(["node", "import", "courses", "--config", str(net.nodes[YNU].config),
                     "--file", str(EXAMPLES / "ynu-courses.csv"), "--quiet"])  # fmt: skip
    assert status == 0
    ca = Authority.create("SSEAUN test CA (test keys only)")
    started = []
    try:
        for institution in (YNU, CHULA):
            node = net.nodes[institution]
            cert, key = ca.issue(node.folder / "tls", f"node.{institution}")
            node.configure(
                **{
                    "grpc.plaintext": False,
                    "grpc.tls_cert": str(cert.relative_to(node.folder)),
                    "grpc.tls_key": str(key.relative_to(node.folder)),
                }
            )
            assert cert.exists() and key.exists()
            node.start()
            started.append(node)
        yield TlsNetwork(net, ca)
    finally:
        for node in started:
            node.stop()


def tls_client(
    tls: TlsNetwork, audience: str, *, target: str | None = None, **options: object
) -> NodeClient:
    """A client trusting the test CA (unless options say otherwise), not retrying."""
    settings: dict[str, Any] = {
        "plaintext": False,
        "root_certificates": tls.ca.pem,
        "retry": ONCE,
        "deadline": 10.0,
        **options,
    }
    return node_client(tls.net, audience, target=target, **settings)


def test_the_sdk_client_verifies_each_node_against_the_test_ca(tls: TlsNetwork) -> None:
    genesis = envelope_from_json(tls.net.manifest.read_bytes()).payload
    for institution in (YNU, CHULA):
        with tls_client(tls, institution) as client:
            result = client.get_manifest()
            assert result.manifest.payload == genesis
            with pytest.raises(NodeError) as missing:  # a signed answer, over TLS
                client.get_record(f"institutions/{institution}/courses/NONE", purpose=MOBILITY)
        assert (missing.value.code, missing.value.reason) == ("NOT_FOUND", Reason.NOT_FOUND)


def test_the_certificate_name_is_checked(tls: TlsNetwork) -> None:
    ynu = tls.net.nodes[YNU]
    with tls_client(tls, YNU, target=f"localhost:{ynu.grpc_port}") as client:
        assert client.get_manifest().manifest.payload  # DNS name in the certificate
    with tls_client(tls, YNU, server_name_override="localhost") as client:
        assert client.get_manifest().manifest.payload
    with (
        tls_client(tls, YNU, server_name_override="node.elsewhere.example") as client,
        pytest.raises(TransportError) as wrong_name,
    ):
        client.get_manifest()
    assert (wrong_name.value.code, wrong_name.value.signed) == ("UNAVAILABLE", False)


def test_a_client_trusting_another_ca_cannot_connect(tls: TlsNetwork) -> None:
    stranger = Authority.create("Another CA")
    for institution in (YNU, CHULA):
        with (
            tls_client(tls, institution, root_certificates=stranger.pem) as client,
            pytest.raises(TransportError) as refused,
        ):
            client.get_manifest()
        error = refused.value
        assert (error.code, error.signed, error.claimed_reason) == ("UNAVAILABLE", False, None)
        assert isinstance(error, ClientError) and not isinstance(error, NodeError)


def test_a_plaintext_client_cannot_talk_to_a_tls_node(tls: TlsNetwork) -> None:
    with (
        node_client(tls.net, YNU, plaintext=True, retry=ONCE, deadline=10.0) as client,
        pytest.raises(TransportError) as refused,
    ):
        client.get_manifest()
    assert (refused.value.code, refused.value.signed) == ("UNAVAILABLE", False)


def test_grpc_health_is_served_over_tls(tls: TlsNetwork) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=tls.ca.pem)
    with grpc.secure_channel(tls.net.nodes[CHULA].target, credentials) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


# --- node to node: peer sync over TLS ------------------------------------------------------


def copied_courses(node: NodeDir) -> int:
    """How many of ynu's courses node's database holds, read while the node runs (a read-only
    connection: a second SqliteStore would contend for the writer's lock)."""
    uri = NodeConfig.load(node.config).database.resolve().as_uri() + "?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as db:
            row = db.execute(
                "SELECT count(*) FROM records WHERE parent = ? AND deleted = 0", (COURSES,)
            ).fetchone()
    except sqlite3.OperationalError:  # busy, or not created yet: ask again
        return -1
    return int(row[0])


def test_a_node_syncs_a_peer_over_tls_verified_against_the_configured_roots(
    tls: TlsNetwork,
) -> None:
    """du (plaintext itself) follows ynu's catalogue; ynu's manifest entry says TLS, so du's
    peer sync calls it over TLS, trusting sync.tls_roots only."""
    du = tls.net.nodes[DU]
    wrong = du.folder / "other-ca.pem"
    wrong.write_bytes(Authority.create("Another CA").pem)
    right = du.folder / "test-ca.pem"
    right.write_bytes(tls.ca.pem)
    du.configure(
        **{"sync.peers": [YNU], "sync.interval_seconds": 0.5, "sync.tls_roots": str(wrong)}
    )
    du.start(drain=True)
    try:
        wait_for(
            lambda: any("UNAVAILABLE" in line and YNU in line for line in du.log),
            what="du's sync to fail the TLS handshake",
        )
        assert du.alive
        assert "CERTIFICATE_VERIFY_FAILED" in du.log_text()  # the handshake, not the route
    finally:
        du.stop()
    assert copied_courses(du) == 0
    du.configure(**{"sync.tls_roots": str(right)})
    du.start(drain=True)
    try:
        wait_for(lambda: copied_courses(du) == 13, timeout=30, what="du to copy ynu's courses")
    finally:
        du.stop()
