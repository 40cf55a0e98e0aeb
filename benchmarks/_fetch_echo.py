"""The baseline server of ``bench_signed_fetch``: a bare grpc.aio echo with one verify, one sign.

It runs in its own process (``multiprocessing`` spawn), pinned to the server CPU like the node,
and serves the node's own method path with the node's own message types, so the wire, the
framing and the payload sizes match the real ``GetRecord``. Each call does exactly what
building_block_limits.md calls *EchoSigned*:

1. verify the request envelope's Ed25519 signature over its DSSE PAE (public key object loaded
   once at start);
2. echo the request payload, padded (or cut) to the size of the node's response payload;
3. sign that payload's PAE with a server key and return it in an ``Envelope``.

No SDK code runs here: only grpcio, protobuf and ``cryptography``, the node's building blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["EchoConfig", "serve"]


@dataclass(frozen=True)
class EchoConfig:
    """What the echo server needs; picklable, so it crosses into the spawned process."""

    cpus: frozenset[int]
    server_private_pem: bytes
    server_key_id: str
    client_public_raw: bytes
    response_payload_size: int
    response_payload_type: str
    service: str
    method: str


def serve(config: EchoConfig, conn: Connection) -> None:
    """Process entry point: pin, serve, send the port, then stop on any message or on EOF."""
    if config.cpus:
        os.sched_setaffinity(0, config.cpus)  # before grpc starts any thread
    asyncio.run(_serve(config, conn))


async def _serve(config: EchoConfig, conn: Connection) -> None:
    import grpc  # noqa: PLC0415 - imported after pinning
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415

    from sseaun.v1.envelope_pb2 import Envelope, Signature  # noqa: PLC0415
    from sseaun.v1.service_pb2 import GetRecordRequest, GetRecordResponse  # noqa: PLC0415

    private = load_pem_private_key(config.server_private_pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    public = Ed25519PublicKey.from_public_bytes(config.client_public_raw)
    size = config.response_payload_size
    padding = b"\x00" * size
    response_type = config.response_payload_type
    type_bytes = response_type.encode()
    key_id = config.server_key_id

    async def echo_signed(request: GetRecordRequest, context: Any) -> GetRecordResponse:
        envelope = request.request
        payload = envelope.payload
        incoming_type = envelope.payload_type.encode()
        message = b"DSSEv1 %d %b %d %b" % (len(incoming_type), incoming_type, len(payload), payload)
        try:
            public.verify(envelope.signatures[0].sig, message)
        except (InvalidSignature, IndexError):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "signature does not verify")
        body = (payload + padding)[:size]
        signed = b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, size, body)
        answer = Envelope(
            payload=body,
            payload_type=response_type,
            signatures=[Signature(sig=private.sign(signed), keyid=key_id)],
        )
        return GetRecordResponse(response=answer)

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        echo_signed,
        request_deserializer=GetRecordRequest.FromString,
        response_serializer=GetRecordResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(config.service, {config.method: handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    conn.send(port)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(EOFError):  # any message, or EOF: stop
        await loop.run_in_executor(None, conn.recv)
    await server.stop(None)
