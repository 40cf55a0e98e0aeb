"""Where a node's GetRecord time goes: cProfile, CPU per thread, and what-if variants.

Not a benchmark (``run.py`` only runs ``bench_*.py``); the tool behind the analysis of
``bench_signed_fetch`` in docs/performance.md. Usage::

    .venv/bin/python -m benchmarks._fetch_profile [--variants a,b+c] [--baseline] [--rounds 3]
        [--threads] [--profile]

It builds the same network as ``bench_signed_fetch`` and starts one node *in process* per
variant: a spawned child pinned to the server CPU that runs ``start_node`` on its own event
loop, after applying the variant's monkeypatches (``VARIANTS``; ``a+b`` combines them; the
unpatched node is always started as ``stock``; all share the one database file). The same load
generator, pinned to the other CPU, drives the nodes (and with ``--baseline`` the bare echo) in
rotating rounds, so the what-ifs are measured in context, under the same load, in the same run.
``--threads`` adds one round per node with the CPU of each of its threads read from /proc;
``--profile`` one round of the stock node with cProfile on its event-loop thread.
The variants are measurements, not proposals: several drop a guarantee the node must keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import io
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmarks._fetch_echo import serve as echo_serve
from benchmarks._fetch_load import BASELINE
from benchmarks._fetch_load import main as load_main
from benchmarks.bench_signed_fetch import (
    IN_FLIGHT,
    Bench,
    Side,
    cpu_layout,
    echo_config,
    load_config,
    measure_round,
    prepare_network,
    probe_node,
)

__all__ = ["VARIANTS", "main"]

_CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# -- what-if variants (applied inside the node process before start_node) ------------------------


def _nonce_in_memory() -> None:
    """claim_nonce answers from a set on the loop: no writer-thread hop, no SQLite commit."""
    from sseaun.node.store import SqliteStore  # noqa: PLC0415

    seen: set[bytes] = set()

    async def claim_nonce(self: Any, key: bytes, expires_at: Any) -> bool:
        if key in seen:
            return False
        seen.add(key)
        return True

    SqliteStore.claim_nonce = claim_nonce  # type: ignore[method-assign]


def _read_in_memory() -> None:
    """get_record answers from a dict on the loop after the first read: no reader-thread hop."""
    from sseaun.node.store import SqliteStore  # noqa: PLC0415

    original = SqliteStore.get_record
    cache: dict[tuple[str, int], Any] = {}

    async def get_record(self: Any, name: str, version: int = 0) -> Any:
        key = (name, version)
        if key not in cache:
            cache[key] = await original(self, name, version)
        return cache[key]

    SqliteStore.get_record = get_record  # type: ignore[method-assign]


def _no_metrics() -> None:
    """Metrics.observe does nothing."""
    from sseaun.node._metrics import Metrics  # noqa: PLC0415

    Metrics.observe = lambda self, method, code, seconds: None  # type: ignore[method-assign]


def _switch_interval() -> None:
    """sys.setswitchinterval(0.0005): a store thread waits at most 0.5 ms for the GIL, not 5."""
    sys.setswitchinterval(0.0005)


def _lazy_unverified_context() -> None:
    """The error context (a SHA-256 over the request PAE) is only built when a call fails."""
    from sseaun.node._runtime import Node  # noqa: PLC0415
    from sseaun.sdk.core import AnswerContext  # noqa: PLC0415

    lazy = AnswerContext("", "", "", "", b"", "")

    def context_for_unverified(self: Any, envelope: Any, method: str) -> Any:
        return lazy

    Node.context_for_unverified = context_for_unverified  # type: ignore[method-assign]


def _nonce_linger(seconds: float) -> Callable[[], None]:
    def apply() -> None:
        """The store's writer waits up to `seconds` for more claims before committing."""
        from sseaun.node.store import SqliteStore  # noqa: PLC0415

        original = SqliteStore.open.__func__  # type: ignore[attr-defined]

        async def open_(cls: Any, path: Any, /, **kwargs: Any) -> Any:
            kwargs.setdefault("nonce_linger", seconds)
            return await original(cls, path, **kwargs)

        SqliteStore.open = classmethod(open_)  # type: ignore[method-assign, assignment]

    return apply


def _read_on_loop() -> None:
    """get_record runs its SQL on the loop thread (own read-only connection): no thread hop."""
    import sqlite3  # noqa: PLC0415

    from sseaun.node.store import SqliteStore  # noqa: PLC0415
    from sseaun.node.store import _sql as sql  # noqa: PLC0415

    connections: dict[int, sqlite3.Connection] = {}

    async def get_record(self: Any, name: str, version: int = 0) -> Any:
        conn = connections[id(self)]
        row = (
            conn.execute(sql.GET_LATEST, (name,)).fetchone()
            if version == 0
            else conn.execute(sql.GET_VERSION, (name, version)).fetchone()
        )
        return None if row is None else sql.record(row)

    original_open = SqliteStore.open.__func__  # type: ignore[attr-defined]

    async def open_(cls: Any, path: Any, /, **kwargs: Any) -> Any:
        store = await original_open(cls, path, **kwargs)
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        connections[id(store)] = sqlite3.connect(uri, uri=True, isolation_level=None)
        return store

    SqliteStore.open = classmethod(open_)  # type: ignore[method-assign, assignment]
    SqliteStore.get_record = get_record  # type: ignore[method-assign]


def _batch_per_iteration() -> None:
    """claim_nonce and reads hand their job to the thread from loop.call_soon, not at once, so
    every claim (read) made in one turn of the event loop joins one job and one wake-up.
    """
    from sseaun.node.store import SqliteStore, _sqlite  # noqa: PLC0415
    from sseaun.node.store import _sql as sql  # noqa: PLC0415

    async def claim_nonce(self: Any, key: bytes, expires_at: Any) -> bool:
        self._check_open()
        claim = _sqlite._Claim(bytes(key), sql.to_us(expires_at), self._loop.create_future())
        with self._claims_lock:
            self._claims.append(claim)
            submit = not self._nonce_job_queued
            self._nonce_job_queued = True
        self._claims_submitted += 1
        if submit:
            self._loop.call_soon(self._writer.submit, self._nonce_job)
        result: bool = await claim.future
        return result

    async def read(self: Any, call: Any) -> Any:
        self._check_open()
        future = self._loop.create_future()
        with self._reads_lock:
            self._reads.append((call, future))
            submit = not self._read_job_queued
            self._read_job_queued = True
        if submit:
            self._loop.call_soon(self._reader.submit, self._read_job)
        return await future

    SqliteStore.claim_nonce = claim_nonce  # type: ignore[method-assign]
    SqliteStore._read = read  # type: ignore[method-assign]


def _read_mmap() -> None:
    """The reader connection maps the file (PRAGMA mmap_size = 256 MiB)."""
    from sseaun.node.store import _sqlite  # noqa: PLC0415

    original = _sqlite._open_reader

    def open_reader(path: Path, busy_timeout: float) -> Any:
        conn = original(path, busy_timeout)
        conn.execute("PRAGMA mmap_size = 268435456")
        return conn

    _sqlite._open_reader = open_reader


def _fast_time() -> None:
    """Timestamps converted with integer arithmetic instead of protobuf's datetime helpers."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from google.protobuf.timestamp_pb2 import Timestamp  # noqa: PLC0415

    from sseaun.sdk.core import _auth, _keyring, _time  # noqa: PLC0415

    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def from_timestamp(ts: Timestamp) -> datetime:
        return epoch + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)

    def to_timestamp(value: datetime) -> Timestamp:
        delta = value - epoch
        return Timestamp(
            seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000
        )

    for module in (_auth, _keyring, _time):
        for name, function in (("from_timestamp", from_timestamp), ("to_timestamp", to_timestamp)):
            if hasattr(module, name):
                setattr(module, name, function)


def _lean_auth() -> None:
    """An upper bound for trimming the Python around the two signature operations: the node's
    verify_request and sign_response replaced by straight-line versions (one parse, one time
    conversion, no intermediate objects) that fall back to the real ones for anything unusual,
    so every refusal keeps its reason.
    """
    import hashlib  # noqa: PLC0415
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from google.protobuf.timestamp_pb2 import Timestamp  # noqa: PLC0415

    from sseaun.node import _runtime, _services  # noqa: PLC0415
    from sseaun.sdk.core import VerifiedRequest, payload_types, verify_signature  # noqa: PLC0415
    from sseaun.v1.auth_pb2 import ResponseHeader, SignedRequest, SignedResponse  # noqa: PLC0415
    from sseaun.v1.envelope_pb2 import Envelope  # noqa: PLC0415
    from sseaun.v1.manifest_pb2 import KeyPurpose  # noqa: PLC0415

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    request_type, response_type = payload_types.REQUEST, payload_types.RESPONSE
    request_prefix = b"DSSEv1 %d %b " % (len(request_type), request_type.encode())
    response_prefix = b"DSSEv1 %d %b " % (len(response_type), response_type.encode())
    transport = KeyPurpose.KEY_PURPOSE_TRANSPORT
    full_verify = getattr(_runtime, "verify_request")  # noqa: B009 - not an exported name

    def verify_request(envelope: Any, keyring: Any, **kwargs: Any) -> Any:
        signatures = envelope.signatures
        if len(signatures) != 1 or envelope.payload_type != request_type:
            return full_verify(envelope, keyring, **kwargs)
        sig = signatures[0]
        key = keyring._keys.get(sig.keyid)
        payload = envelope.payload
        message = request_prefix + b"%d %b" % (len(payload), payload)
        if key is None or not verify_signature(key.public_key, sig.sig, message):
            return full_verify(envelope, keyring, **kwargs)
        request = SignedRequest.FromString(payload)
        header = request.header
        stamp = header.issued_at
        issued = epoch + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)
        window = kwargs["clock_window"]
        if not (
            request.HasField("header")
            and header.HasField("issued_at")
            and header.network_id == keyring.network_id
            and abs(issued - kwargs["now"]) <= window
            and key.holder == header.sender
            and key.revoked_at is None
            and key.purpose == transport
            and key.valid_at(issued)
            and 16 <= len(header.nonce) <= 64
            and header.audience in kwargs["audiences"]
            and header.method == kwargs["method"]
            and header.purpose in kwargs["allowed_purposes"]
        ):
            return full_verify(envelope, keyring, **kwargs)
        return VerifiedRequest(
            header=header,
            body=request.body,
            digest=hashlib.sha256(message).digest(),
            key=key,
            nonce_key=hashlib.sha256(header.sender.encode() + b"\x00" + header.nonce).digest(),
            nonce_expires_at=issued + window,
        )

    def sign_response(context: Any, body: bytes, *, signer: Any, now: datetime) -> Any:
        delta = now - epoch
        header = ResponseHeader(
            network_id=context.network_id,
            method=context.method,
            responder=context.responder,
            requester=context.requester,
            issued_at=Timestamp(
                seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000
            ),
            request_digest=context.request_digest,
            request_id=context.request_id,
        )
        payload = SignedResponse(header=header, body=body).SerializeToString(deterministic=True)
        envelope = Envelope(payload=payload, payload_type=response_type)
        signed = response_prefix + b"%d %b" % (len(payload), payload)
        envelope.signatures.add(sig=signer.sign(signed), keyid=signer.key_id)
        return envelope

    setattr(_runtime, "verify_request", verify_request)  # noqa: B010 - not exported names
    setattr(_services, "sign_response", sign_response)  # noqa: B010


def _gc_tuned() -> None:
    """gc.freeze() of everything loaded so far and a 50x larger first-generation threshold."""
    import gc  # noqa: PLC0415

    gc.freeze()
    gc.set_threshold(35_000, 10, 10)


VARIANTS: dict[str, Callable[[], None]] = {
    "lean_auth": _lean_auth,
    "gc_tuned": _gc_tuned,
    "batch_per_iteration": _batch_per_iteration,
    "read_mmap": _read_mmap,
    "fast_time": _fast_time,
    "nonce_linger": _nonce_linger(0.002),
    "nonce_linger_05ms": _nonce_linger(0.0005),
    "nonce_linger_1ms": _nonce_linger(0.001),
    "nonce_linger_5ms": _nonce_linger(0.005),
    "read_on_loop": _read_on_loop,
    "nonce_in_memory": _nonce_in_memory,
    "read_in_memory": _read_in_memory,
    "no_metrics": _no_metrics,
    "switch_interval": _switch_interval,
    "lazy_unverified_context": _lazy_unverified_context,
}


# -- the node process ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeChild:
    cpus: frozenset[int]
    config_path: str
    variants: tuple[str, ...]


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by Python thread name or kernel name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as stat:
                raw = stat.read()
        except FileNotFoundError:
            continue
        comm = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode()
        fields = raw.rsplit(b")", 1)[1].split()
        name = names.get(int(tid), f"[{comm}]")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _CLOCK_TICK
    return out


def node_main(child: NodeChild, conn: Connection) -> None:
    if child.cpus:
        os.sched_setaffinity(0, child.cpus)
    asyncio.run(_node(child, conn))


async def _node(child: NodeChild, conn: Connection) -> None:
    from sseaun.node._config import NodeConfig  # noqa: PLC0415
    from sseaun.node._serve import start_node  # noqa: PLC0415

    for name in child.variants:
        VARIANTS[name]()
    config = dataclasses.replace(
        NodeConfig.load(Path(child.config_path)),
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
    )
    running = await start_node(config)
    conn.send(running.grpc_port)
    loop = asyncio.get_running_loop()
    profiler: cProfile.Profile | None = None
    before: dict[str, float] = {}
    while True:
        try:
            command = await loop.run_in_executor(None, conn.recv)
        except EOFError:
            break
        if command[0] == "mark":
            before = _thread_cpu()
        elif command[0] == "threads":
            after = _thread_cpu()
            conn.send({k: v - before.get(k, 0.0) for k, v in after.items()})
        elif command[0] == "profile_on":  # runs on the loop thread: cProfile sees the loop
            before = _thread_cpu()
            profiler = cProfile.Profile()
            profiler.enable()
        elif command[0] == "profile_off" and profiler is not None:
            profiler.disable()
            profiler.dump_stats(command[1])
            after = _thread_cpu()
            conn.send({k: v - before.get(k, 0.0) for k, v in after.items()})
        else:
            break
    with contextlib.suppress(Exception):  # several nodes share one file: it may be locked
        await running.stop()


# -- the orchestrator ----------------------------------------------------------------------------


def _report(sides: list[Side], baseline: Side | None) -> None:
    stock = sides[0]
    base = baseline.rates[baseline.best()] if baseline is not None else None
    print(
        f"{'variant':<50} {'best calls/s':>12} {'vs stock':>9} {'vs echo':>8} {'CPU/call':>9} "
        f"{'busy':>5}"
    )
    for side in [*sides, *([baseline] if baseline is not None else [])]:
        i = side.best()
        gain = side.rates[i] / stock.rates[stock.best()]
        versus = f"{side.rates[i] / base:.3f}" if base else "-"
        print(
            f"{side.name:<50} {side.rates[i]:>12,.0f} {gain:>9.3f} {versus:>8} "
            f"{side.server_cpu_per_call[i] * 1e6:>7.0f}us {side.server_busy[i]:>5.2f}"
        )
        if side.errors:
            print(f"    {side.errors} errors, first: {side.first_error}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._fetch_profile")
    parser.add_argument("--variants", default="", help=f"comma-separated; from {list(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.5)
    parser.add_argument("--profile", action="store_true", help="cProfile the stock node")
    parser.add_argument("--threads", action="store_true", help="CPU per thread of each node")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument(
        "--baseline", action="store_true", help="also run the bare echo (bench_signed_fetch's)"
    )
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    for variant in variants:
        for name in variant.split("+"):
            if name not in VARIANTS:
                parser.error(f"unknown variant {name!r}")
    server_cpus, client_cpus = cpu_layout()
    root = Path(tempfile.mkdtemp(prefix="sseaun-fetch-profile-"))
    bench = Bench(root)
    try:
        prepared = prepare_network(root)
        nodes: list[tuple[str, Any, Connection]] = []
        for name in ["stock", *variants]:
            child = NodeChild(
                server_cpus,
                str(prepared.node.config),
                tuple(name.split("+")) if name != "stock" else (),
            )
            process, conn = bench.start_child(node_main, child)
            if not conn.poll(60):
                raise RuntimeError(f"node {name} did not start")
            nodes.append((name, process, conn))
        ports = {name: conn.recv() for name, _, conn in nodes}
        targets = tuple((name, f"127.0.0.1:{port}") for name, port in ports.items())
        probe = probe_node(targets[0][1], prepared)
        baseline: Side | None = None
        baseline_target = None
        if args.baseline:
            echo, echo_conn = bench.start_child(
                echo_serve, echo_config(prepared, probe, server_cpus)
            )
            if not echo_conn.poll(30):
                raise RuntimeError("the echo server did not start")
            baseline_target = f"127.0.0.1:{echo_conn.recv()}"
            assert echo.pid is not None
            baseline = Side(BASELINE, echo.pid)
        config = load_config(
            prepared,
            probe,
            cpus=client_cpus,
            in_flight=IN_FLIGHT,
            node_targets=targets,
            baseline_target=baseline_target,
        )
        _, load = bench.start_child(load_main, config)
        sides = [Side(name, process.pid) for name, process, _ in nodes]
        rotation = [*sides, *([baseline] if baseline is not None else [])]
        for side in rotation:
            measure_round(Side(side.name, side.pid), [load], 1.5)
        for round_number in range(args.rounds):
            shift = round_number % len(rotation)
            for side in rotation[shift:] + rotation[:shift]:
                measure_round(side, [load], 0.5, args.seconds)
        _report(sides, baseline)
        if args.threads:
            print("\nCPU per call by thread (us), one more round each, no profiler:")
            for (name, _, conn), side in zip(nodes, sides, strict=True):
                began = time.perf_counter()
                conn.send(("mark",))
                probe_side = Side(name, side.pid)
                measure_round(probe_side, [load], 0.5, args.seconds)
                conn.send(("threads",))
                threads = conn.recv()
                calls = probe_side.rates[0] * (time.perf_counter() - began)
                parts = sorted(threads.items(), key=lambda kv: -kv[1])
                print(
                    f"  {name}: "
                    + ", ".join(
                        f"{thread} {seconds * 1e6 / calls:.0f}"
                        for thread, seconds in parts
                        if seconds
                    )
                )
        if args.profile:
            name, _, conn = nodes[0]
            stats_path = root / "stock.pstats"
            began = time.perf_counter()
            conn.send(("profile_on",))
            profiled = Side(name, sides[0].pid)
            measure_round(profiled, [load], 0.5, args.seconds * 2)
            conn.send(("profile_off", str(stats_path)))
            threads = conn.recv()
            calls = profiled.rates[0] * (time.perf_counter() - began)  # about
            print(f"\nper-thread CPU of the stock node under cProfile ({calls:,.0f} calls):")
            for thread, seconds in sorted(threads.items(), key=lambda kv: -kv[1]):
                if seconds > 0:
                    print(f"    {thread:<40} {seconds * 1e6 / calls:8.1f} us/call")
            out = io.StringIO()
            stats = pstats.Stats(str(stats_path), stream=out)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
            print(out.getvalue())
        for _, _, conn in nodes:
            with contextlib.suppress(OSError):
                conn.send(("stop",))
    finally:
        bench.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
