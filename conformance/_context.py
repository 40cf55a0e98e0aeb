"""What a check works with: the node under test, the trusted manifest, the auditor's test
institutions and their keys, SDK clients, and raw calls with crafted requests.

The suite talks to the node only over the wire: gRPC (the SDK client, or raw calls through the
generated stubs so a check can send what no correct client would) and HTTP (the manifest and
health paths). It never imports the reference node.
"""

from __future__ import annotations

import secrets
import urllib.request
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

# googleapis-common-protos ships .pyi files but no py.typed marker
from google.rpc import status_pb2  # type: ignore[import-untyped, unused-ignore]

from sseaun.sdk.client import AsyncNodeClient, ClientConfig
from sseaun.sdk.core import (
    Ed25519Signer,
    Envelope,
    KeyRing,
    ManifestTrust,
    build_request,
    envelope_from_json,
)
from sseaun.v1.manifest_pb2 import EndpointKind

__all__ = ["Auditor", "Context", "RawAnswer", "load_auditors"]

_ROLES = ("root", "transport", "issuing", "log")


@dataclass(frozen=True)
class Auditor:
    """One virtual test institution of the auditor, with its keys."""

    institution: str
    root: Ed25519Signer
    transport: Ed25519Signer
    issuing: Ed25519Signer
    log: Ed25519Signer


def load_auditors(folder: Path, passphrase: bytes | None = None) -> list[Auditor]:
    """The auditor institutions in folder: one sub-folder per institution holding
    ``{root,transport,issuing,log}.private.pem`` (the layout `sseaun conformance setup` and
    `sseaun node init` write), sorted by institution ID.

    Raises:
        OSError, ProtocolError: a key file is missing or not an Ed25519 private key.
    """
    out = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        keys = {
            role: Ed25519Signer.from_pem((sub / f"{role}.private.pem").read_bytes(), passphrase)
            for role in _ROLES
        }
        out.append(Auditor(sub.name, **keys))
    return out


@dataclass(frozen=True)
class RawAnswer:
    """What a raw call got: a signed answer envelope (success), or a status with the signed
    error envelopes found in its details."""

    code: str
    answer: Envelope | None
    errors: tuple[Envelope, ...]
    message: str

    @property
    def ok(self) -> bool:
        return self.code == "OK"


@dataclass
class Context:
    """The node under test and the means to call it."""

    target: str
    audience: str
    manifest: Envelope
    keyring: KeyRing
    auditors: Sequence[Auditor]
    plaintext: bool = False
    root_certificates: bytes | None = None
    deadline: float = 10.0
    #: A command template driving the node's own side of lifecycles (see docs/conformance.md).
    adapter: str | None = None
    #: Scratch space shared by the checks of one run (e.g. a record created by one, read by
    #: another), by name.
    shared: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_manifest(
        cls,
        target: str,
        manifest: Path,
        auditors: Sequence[Auditor],
        *,
        audience: str | None = None,
        **options: Any,
    ) -> Context:
        """Trust the manifest file on its own signatures; find the audience by its endpoint.

        Raises:
            ValueError: no member lists target as its gRPC endpoint and no audience was given.
            ProtocolError: the manifest does not verify.
        """
        envelope = envelope_from_json(manifest.read_bytes())
        trusted = ManifestTrust.bootstrap(envelope, None).current
        if audience is None:
            audience = next(
                (
                    m.institution_id
                    for m in trusted.manifest.members
                    for e in m.endpoints
                    if e.kind == EndpointKind.ENDPOINT_KIND_GRPC and e.address == target
                ),
                None,
            )
        if audience is None:
            raise ValueError(f"no member of the manifest lists {target} as its gRPC endpoint")
        return cls(target, audience, envelope, KeyRing(trusted), auditors, **options)

    @property
    def network_id(self) -> str:
        return self.keyring.network_id

    def auditor(self, index: int = 0) -> Auditor:
        return self.auditors[index]

    def http_base(self, institution: str | None = None) -> str:
        """The HTTP base URL the manifest lists for an institution (default: the audience).

        Raises:
            CheckSkipped: it lists none.
        """
        from ._framework import CheckSkipped  # noqa: PLC0415 - avoids an import cycle

        member = self.keyring.member(institution or self.audience)
        for endpoint in member.endpoints if member else ():
            if endpoint.kind == EndpointKind.ENDPOINT_KIND_HTTP and endpoint.address:
                return endpoint.address.rstrip("/")
        raise CheckSkipped(
            f"the manifest lists no HTTP endpoint for {institution or self.audience}"
        )

    def http_get(self, path: str, timeout: float | None = None) -> tuple[int, bytes]:
        """GET base + path; (status, body), 4xx/5xx included."""
        request = urllib.request.Request(self.http_base() + path)  # noqa: S310 - manifest URL
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.deadline) as reply:  # noqa: S310
                return int(reply.status), reply.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()

    def client_config(self, auditor: int = 0, **options: Any) -> ClientConfig:
        who = self.auditor(auditor)
        settings: dict[str, Any] = {
            "plaintext": self.plaintext,
            "root_certificates": self.root_certificates,
            "deadline": self.deadline,
            **options,
        }
        return ClientConfig(
            network_id=self.network_id, sender=who.institution, signer=who.transport, **settings
        )

    def client(
        self, auditor: int = 0, *, keyring: KeyRing | None = None, **options: Any
    ) -> AsyncNodeClient:
        """An SDK client calling the audience as an auditor (open it with ``async with``)."""
        return AsyncNodeClient(
            self.client_config(auditor, **options),
            keyring or self.keyring,
            self.target,
            self.audience,
        )

    def request(
        self,
        method: str,
        body: Message | bytes,
        *,
        auditor: int = 0,
        purpose: int,
        audience: str | None = None,
        now: datetime | None = None,
        nonce: bytes | None = None,
        signer: Ed25519Signer | None = None,
        sender: str | None = None,
        network_id: str | None = None,
    ) -> Envelope:
        """A signed request, correct unless a keyword says otherwise."""
        who = self.auditor(auditor)
        return build_request(
            signer=signer or who.transport,
            network_id=network_id or self.network_id,
            method=method,
            sender=sender or who.institution,
            audience=audience or self.audience,
            purpose=purpose,
            body=body if isinstance(body, bytes) else body.SerializeToString(),
            request_id=str(uuid.uuid4()),
            now=now or datetime.now(UTC),
            nonce=nonce if nonce is not None else secrets.token_bytes(32),
        )

    @asynccontextmanager
    async def channel(self) -> AsyncIterator[grpc.aio.Channel]:
        if self.plaintext:
            channel = grpc.aio.insecure_channel(self.target)
        else:
            credentials = grpc.ssl_channel_credentials(self.root_certificates)
            channel = grpc.aio.secure_channel(self.target, credentials)
        try:
            yield channel
        finally:
            await channel.close(grace=None)

    async def raw(self, method: str, request: Envelope) -> RawAnswer:
        """Send one signed request envelope to a unary method; whatever comes back.

        method is the full gRPC method name; the request message is the method's
        ``XxxRequest`` (field 1 = the envelope), so any unary method of the contract works.
        """
        wrapped = _wrap(request)
        async with self.channel() as channel:
            call = channel.unary_unary(
                method, request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            try:
                reply: bytes = await call(wrapped, timeout=self.deadline)
            except grpc.RpcError as exc:
                return _failed(exc)
        return RawAnswer("OK", _unwrap(reply), (), "")

    async def raw_stream(self, method: str, request: Envelope) -> tuple[list[Envelope], RawAnswer]:
        """Send one signed request to a server-streaming method; the pages and the end status."""
        pages: list[Envelope] = []
        async with self.channel() as channel:
            call = channel.unary_stream(
                method, request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            try:
                async for reply in call(_wrap(request), timeout=self.deadline):
                    pages.append(_unwrap(reply))
            except grpc.RpcError as exc:
                return pages, _failed(exc)
        return pages, RawAnswer("OK", None, (), "")


def _failed(error: grpc.RpcError) -> RawAnswer:
    """The status of a failed call and the signed error envelopes in its details."""
    call: Any = error  # an aio call error carries code(), details() and trailing_metadata()
    envelopes: list[Envelope] = []
    for key, value in tuple(call.trailing_metadata() or ()):
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.type_url.endswith("/sseaun.v1.Envelope"):
                envelope = Envelope()
                detail.Unpack(envelope)
                envelopes.append(envelope)
    return RawAnswer(call.code().name, None, tuple(envelopes), call.details() or "")


def _wrap(envelope: Envelope) -> bytes:
    # Every XxxRequest / XxxResponse of the contract is `Envelope field 1`: encode it directly.
    data = envelope.SerializeToString()
    return b"\x0a" + _varint(len(data)) + data


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _unwrap(data: bytes) -> Envelope:
    from sseaun.v1.service_pb2 import GetRecordResponse  # noqa: PLC0415 - any `Envelope = 1`

    holder = GetRecordResponse.FromString(data)
    return holder.response
