"""The load generator of ``bench_signed_fetch``: one process, grpc.aio, N calls in flight.

It runs in its own process (``multiprocessing`` spawn), pinned to the client CPU, with one
channel to the node and one to the baseline echo server, and runs rounds on command. Every call
on either side is shaped alike:

1. ``build_request``: a fresh request ID, issue time and 32-byte nonce, signed with the caller's
   transport key (one Ed25519 sign) -- nothing is pre-built;
2. one unary call with ``GetRecordRequest`` on the node's method path;
3. verify the answer (one Ed25519 verify): ``verify_answer`` against the key ring for the node
   (plus parsing the ``GetRecordResult``), ``verify_envelope`` against the echo server's key for
   the baseline, which signs no response header to bind.

A side named ``BASELINE_LIGHT`` drives the echo server with one pre-signed request and no
verification: a check that the full client leaves the baseline server saturated.

Protocol on the pipe (orchestrator -> load): ``("round", side, warmup_s, measure_s)`` or
``("stop",)``. Load -> orchestrator: ``("started",)`` when the measured window opens, then
``("done", RoundStats)``.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["BASELINE", "BASELINE_LIGHT", "NODE", "LoadConfig", "RoundStats", "main"]

NODE = "node"
BASELINE = "baseline"
#: The baseline server driven by a light client (one pre-signed request sent again and again,
#: answers not verified): only to check that the full client did not limit the baseline.
BASELINE_LIGHT = "baseline-light"


@dataclass(frozen=True)
class LoadConfig:
    """What the load generator needs; picklable, so it crosses into the spawned process."""

    cpus: frozenset[int]
    in_flight: int
    network_id: str
    sender: str
    audience: str
    signer_pem: bytes
    manifest_json: bytes
    method: str
    purpose: int
    record_names: tuple[str, ...]
    node_targets: tuple[tuple[str, str], ...]  # (side name, host:port) of each node
    baseline_target: str | None
    baseline_key_id: str
    baseline_public_raw: bytes
    deadline_s: float = 30.0


@dataclass(frozen=True)
class RoundStats:
    """One measured window of one side, as the load generator saw it."""

    side: str
    calls: int
    errors: int
    first_error: str
    seconds: float
    client_cpu_seconds: float
    p50_ms: float
    p99_ms: float


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(config: LoadConfig, conn: Connection) -> None:
    """Process entry point: pin, then obey the pipe until ("stop",) or EOF."""
    if config.cpus:
        os.sched_setaffinity(0, config.cpus)  # before grpc starts any thread
    asyncio.run(_main(config, conn))


async def _main(config: LoadConfig, conn: Connection) -> None:
    import grpc  # noqa: PLC0415 - imported after pinning

    from sseaun.sdk.core import (  # noqa: PLC0415
        Ed25519Signer,
        KeyRing,
        ManifestTrust,
        build_request,
        envelope_from_json,
        payload_types,
        verify_answer,
        verify_envelope,
    )
    from sseaun.v1.service_pb2 import (  # noqa: PLC0415
        GetRecordBody,
        GetRecordRequest,
        GetRecordResponse,
        GetRecordResult,
    )

    signer = Ed25519Signer.from_pem(config.signer_pem)
    keyring = KeyRing(
        ManifestTrust.bootstrap(envelope_from_json(config.manifest_json), None).current
    )
    bodies = [
        GetRecordBody(name=name).SerializeToString(deterministic=True)
        for name in config.record_names
    ]
    baseline_keys = {config.baseline_key_id: config.baseline_public_raw}
    response_kinds = {payload_types.RESPONSE}
    network_id, sender, audience = config.network_id, config.sender, config.audience
    method, purpose, deadline = config.method, config.purpose, config.deadline_s

    # Raw multicallables on the node's method path; the same shape for both servers.
    channels = {side: grpc.aio.insecure_channel(target) for side, target in config.node_targets}
    if config.baseline_target is not None:
        channels[BASELINE] = grpc.aio.insecure_channel(config.baseline_target)
    stubs = {
        side: channel.unary_unary(
            method,
            request_serializer=GetRecordRequest.SerializeToString,
            response_deserializer=GetRecordResponse.FromString,
        )
        for side, channel in channels.items()
    }

    def sign(index: int) -> GetRecordRequest:
        envelope = build_request(
            signer=signer,
            network_id=network_id,
            method=method,
            sender=sender,
            audience=audience,
            purpose=purpose,
            body=bodies[index % len(bodies)],
            request_id=str(uuid.uuid4()),
            now=datetime.now(UTC),
        )
        return GetRecordRequest(request=envelope)

    def node_call(stub: Any) -> Callable[[int], Awaitable[None]]:
        async def call(index: int) -> None:
            request = sign(index)
            reply = await stub(request, timeout=deadline)
            answer = verify_answer(
                reply.response, keyring, request=request.request, responder=audience
            )
            if answer.error is not None:
                raise answer.error
            GetRecordResult.FromString(answer.body)

        return call

    def baseline_call(stub: Any) -> Callable[[int], Awaitable[None]]:
        async def call(index: int) -> None:
            request = sign(index)
            reply = await stub(request, timeout=deadline)
            verify_envelope(reply.response, baseline_keys, response_kinds)

        return call

    calls = {
        side: (baseline_call if side == BASELINE else node_call)(stub)
        for side, stub in stubs.items()
    }
    if BASELINE in stubs:
        light_stub, presigned = stubs[BASELINE], sign(0)

        async def light_call(index: int) -> None:
            await light_stub(presigned, timeout=deadline)

        calls[BASELINE_LIGHT] = light_call
    loop = asyncio.get_running_loop()
    try:
        for channel in channels.values():
            await asyncio.wait_for(channel.channel_ready(), timeout=10)
        while True:
            try:
                command = await loop.run_in_executor(None, conn.recv)
            except EOFError:
                return
            if command[0] != "round":
                return
            _, side, warmup, measure = command
            stats = await _round(side, calls[side], config.in_flight, warmup, measure, conn)
            conn.send(("done", stats))
    finally:
        for channel in channels.values():
            await channel.close(grace=None)


async def _round(
    side: str,
    call: Callable[[int], Awaitable[None]],
    in_flight: int,
    warmup: float,
    measure: float,
    conn: Connection,
) -> RoundStats:
    """in_flight workers call back to back; count the calls that end in the measured window."""
    state = {"measuring": False, "stop": False}
    latencies: list[float] = []
    errors: list[BaseException] = []
    perf = time.perf_counter

    async def worker(start: int) -> None:
        index = start
        while not state["stop"]:
            began = perf()
            try:
                await call(index)
            except Exception as exc:  # noqa: BLE001 - counted and reported, never hidden
                errors.append(exc)
                await asyncio.sleep(0.01)
                continue
            if state["measuring"]:
                latencies.append(perf() - began)
            index += 1

    tasks = [asyncio.create_task(worker(i)) for i in range(in_flight)]
    await asyncio.sleep(warmup)
    errors.clear()
    state["measuring"] = True
    conn.send(("started",))
    cpu0, t0 = _cpu_seconds(), perf()
    await asyncio.sleep(measure)
    state["measuring"] = False
    t1, cpu1 = perf(), _cpu_seconds()
    done = len(latencies)
    state["stop"] = True
    await asyncio.gather(*tasks)
    ordered = sorted(latencies[:done])
    p50 = statistics.median(ordered) if ordered else 0.0
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0
    return RoundStats(
        side=side,
        calls=done,
        errors=len(errors),
        first_error=repr(errors[0]) if errors else "",
        seconds=t1 - t0,
        client_cpu_seconds=cpu1 - cpu0,
        p50_ms=p50 * 1000,
        p99_ms=p99 * 1000,
    )
