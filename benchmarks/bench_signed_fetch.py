"""Signed catalogue-record fetch through the real node against a bare signed grpc.aio echo.

* ``signed_fetch``: calls/s of ``GetRecord`` served by a real ``sseaun node serve`` process --
  the signed request checked (``verify_request``: one Ed25519 verify), the rate limit, the nonce
  claimed (group-committed to SQLite), the record read from the store, the answer signed
  (``sign_response``: one Ed25519 sign) -- divided by the calls/s of a bare grpc.aio server that
  does exactly one Ed25519 verify and one Ed25519 sign per call on messages of the same sizes
  (``_fetch_echo.py``). Target 0.8.

Both servers run alone in their own process, pinned to the same CPU (CPU 0); the load generator
(``_fetch_load.py``) runs in a third process pinned to the other CPU, so each side of the wire has
one core, as in building_block_limits.md §3-4. The client side is the same for both servers: N
calls in flight on one grpc.aio channel, each signing a fresh request (new nonce, nothing
pre-built) and verifying the answer. The two servers are measured in the same run, in
alternating rounds (AB, BA, ...) of a few seconds each, and the ratio is best node round /
best baseline round (benchmarks/_timing.py's ``Comparison``). Server CPU per call, taken from
/proc for the whole server process (every thread), is printed as a check that the servers, not
the client, were the bottleneck: a saturated server uses about 1.00 core. A last round drives the
echo with a light client (one pre-signed request, answers not verified): if that is clearly
faster than the real client got, the client held the baseline back, and a warning says so.

The test network is built once in a temporary folder with ``tests.live_network.build``; the YNU
node imports examples/catalogue/ynu-courses.csv and its rate limit is raised so it never
throttles; the caller is the network's test institution. Everything started is stopped and the
folder removed, also on failure.

``.venv/bin/python benchmarks/run.py signed_fetch`` runs it alone (about 35 s).
``python -m benchmarks._fetch_profile`` is the profiling tool behind docs/performance.md.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks._fetch_echo import EchoConfig
from benchmarks._fetch_echo import serve as echo_serve
from benchmarks._fetch_load import BASELINE, BASELINE_LIGHT, NODE, LoadConfig, RoundStats
from benchmarks._fetch_load import main as load_main
from benchmarks._timing import Comparison, Result

__all__ = [
    "IN_FLIGHT",
    "TARGET",
    "Bench",
    "Prepared",
    "Probe",
    "Side",
    "cpu_layout",
    "echo_config",
    "load_config",
    "measure_round",
    "prepare_network",
    "probe_node",
    "run",
]

TARGET = 0.8
IN_FLIGHT = 64
ROUNDS = 4  # rounds per side, alternating AB, BA, ...
ROUND_SECONDS = 2.5  # measured window of one round
WARMUP_SECONDS = 0.5  # calls in flight before each window opens
FIRST_WARMUP_SECONDS = 2.0  # per side, once, before the first round (connections, caches)
# One load process: the client has one core of its own, and a second process on that core would
# only add contention. (The measured client CPU shows how much of the core the client used.)
LOAD_PROCESSES = 1
# A server that used less than this share of its core was not the bottleneck of its rounds.
SATURATED = 0.9
# A light client beating the real one on the baseline by more than this means the client, not
# the echo server, set the baseline's pace.
LIGHT_CLIENT_MARGIN = 1.05

REPO = Path(__file__).resolve().parent.parent
CATALOGUE = REPO / "examples" / "catalogue" / "ynu-courses.csv"
AUDIENCE = "ynu.edu.cn"
GET_RECORD = "/sseaun.v1.RecordService/GetRecord"
SERVICE, METHOD = "sseaun.v1.RecordService", "GetRecord"
RATE = 1_000_000  # node.toml limits.rate_per_second and rate_burst: never throttle here
_CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a whole process (every thread), from /proc."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICK


def cpu_layout() -> tuple[frozenset[int], frozenset[int]]:
    """(server CPUs, client CPUs): one core each when there are two or more, else no pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return frozenset(), frozenset()
    return frozenset({cpus[0]}), frozenset({cpus[1]})


@contextlib.contextmanager
def _affinity(cpus: frozenset[int]) -> Iterator[None]:
    """Pin this thread for a moment, so a child started meanwhile inherits the pinning."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """Turn SIGTERM into SystemExit while the benchmark runs, so its clean-up still runs."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Side:
    """The rounds of one server: rates and the checks printed with them."""

    name: str
    pid: int
    rates: list[float] = field(default_factory=list)
    server_cpu_per_call: list[float] = field(default_factory=list)
    server_busy: list[float] = field(default_factory=list)
    client_busy: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def best(self) -> int:
        return max(range(len(self.rates)), key=self.rates.__getitem__)


@dataclass
class Bench:
    """Everything started; stop() undoes it in reverse order, whatever failed."""

    root: Path
    context: Any = field(default_factory=lambda: multiprocessing.get_context("spawn"))
    node: Any = None  # tests.live_network.NodeDir
    node_log: list[str] = field(default_factory=list)
    node_output: Any = None
    drain: threading.Thread | None = None
    processes: list[tuple[BaseProcess, Connection]] = field(default_factory=list)

    def start_child(self, target: Any, config: Any) -> tuple[BaseProcess, Connection]:
        mine, theirs = self.context.Pipe()
        process = self.context.Process(target=target, args=(config, theirs), daemon=True)
        process.start()
        theirs.close()
        self.processes.append((process, mine))
        return process, mine

    def stop(self) -> None:
        for process, conn in reversed(self.processes):
            with contextlib.suppress(OSError, ValueError):
                conn.send(("stop",))
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
            conn.close()
        self.processes.clear()
        if self.node is not None:
            self.node.stop()
            self.node = None
        if self.drain is not None:
            self.drain.join(5)
            self.drain = None
        if self.node_output is not None:
            self.node_output.close()
            self.node_output = None


def _quiet() -> contextlib.ExitStack:
    """Keep the CLI's progress and file messages off the benchmark's output."""
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def _raise_rate_limit(config: Path) -> None:
    text = config.read_text()
    for option in ("rate_per_second", "rate_burst"):
        text, count = re.subn(rf"(?m)^{option} = .*$", f"{option} = {RATE}", text)
        if count != 1:
            raise RuntimeError(f"{config}: limits.{option} not found")
    config.write_text(text)


def _drain(stream: Any, log: list[str]) -> None:
    """Read the node's output so a full pipe can never block it; keep the last lines."""
    for line in stream:
        log.append(line)
        del log[:-200]


@dataclass(frozen=True)
class Probe:
    """What one fetch of each record showed."""

    record_names: tuple[str, ...]
    request_envelope_size: int
    response_payload_size: int  # the mean over the records fetched


def probe_node(target: str, prepared: Prepared) -> Probe:
    """Fetch each record once (sync client, then raw calls): proves the path and takes sizes."""
    import grpc  # noqa: PLC0415

    from sseaun.sdk.client import ClientConfig, NodeClient  # noqa: PLC0415
    from sseaun.sdk.core import (  # noqa: PLC0415
        KeyRing,
        ManifestTrust,
        build_request,
        envelope_from_json,
        verify_answer,
    )
    from sseaun.v1.auth_pb2 import Purpose  # noqa: PLC0415
    from sseaun.v1.catalogue_pb2 import Course  # noqa: PLC0415
    from sseaun.v1.service_pb2 import (  # noqa: PLC0415
        GetRecordBody,
        GetRecordRequest,
        GetRecordResponse,
        GetRecordResult,
    )
    from tests.live_network import NETWORK  # noqa: PLC0415

    signer, sender = prepared.caller.transport, prepared.sender
    keyring = KeyRing(
        ManifestTrust.bootstrap(envelope_from_json(prepared.manifest_json), None).current
    )
    purpose = Purpose.PURPOSE_MOBILITY_ADMINISTRATION
    config = ClientConfig(
        network_id=NETWORK, sender=sender, signer=signer, plaintext=True, deadline=15
    )
    with NodeClient(config, keyring, target, AUDIENCE) as client:
        envelopes = list(client.list_records(f"institutions/{AUDIENCE}/courses", purpose=purpose))
        names = tuple(Course.FromString(e.payload).header.name for e in envelopes)
        if not names:
            raise RuntimeError("the node serves no course: the catalogue import failed")
        client.get_record(names[0], purpose=purpose)
    request_sizes, response_sizes = [], []
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            GET_RECORD,
            request_serializer=GetRecordRequest.SerializeToString,
            response_deserializer=GetRecordResponse.FromString,
        )
        for name in names:
            request = build_request(
                signer=signer,
                network_id=NETWORK,
                method=GET_RECORD,
                sender=sender,
                audience=AUDIENCE,
                purpose=purpose,
                body=GetRecordBody(name=name).SerializeToString(deterministic=True),
                request_id=str(uuid.uuid4()),
                now=datetime.now(UTC),
            )
            reply = call(GetRecordRequest(request=request), timeout=15)
            answer = verify_answer(reply.response, keyring, request=request, responder=AUDIENCE)
            if answer.error is not None:
                raise answer.error
            GetRecordResult.FromString(answer.body)
            request_sizes.append(request.ByteSize())
            response_sizes.append(len(reply.response.payload))
    return Probe(
        names, round(statistics.mean(request_sizes)), round(statistics.mean(response_sizes))
    )


def _receive(conn: Connection, timeout: float) -> Any:
    """The next message of a child, or RuntimeError if none comes in time (a hung child)."""
    if not conn.poll(timeout):
        raise RuntimeError(f"no answer from a child process within {timeout:g} s")
    return conn.recv()


def measure_round(
    side: Side, loads: list[Connection], warmup: float, seconds: float = ROUND_SECONDS
) -> None:
    """One round of one side: every load process runs it; server CPU is read around it."""
    for conn in loads:
        conn.send(("round", side.name, warmup, seconds))
    for conn in loads:
        if _receive(conn, warmup + 30) != ("started",):
            raise RuntimeError("load generator out of step")
    cpu0, t0 = _process_cpu_seconds(side.pid), time.perf_counter()
    stats: list[RoundStats] = []
    for conn in loads:
        kind, result = _receive(conn, seconds + 60)
        if kind != "done":
            raise RuntimeError("load generator out of step")
        stats.append(result)
    cpu1, t1 = _process_cpu_seconds(side.pid), time.perf_counter()
    calls = sum(s.calls for s in stats)
    rate = sum(s.calls / s.seconds for s in stats)
    side.rates.append(rate)
    side.server_cpu_per_call.append((cpu1 - cpu0) / max(calls, 1))
    side.server_busy.append((cpu1 - cpu0) / (t1 - t0))
    side.client_busy.append(sum(s.client_cpu_seconds / s.seconds for s in stats))
    side.p50_ms.append(statistics.mean(s.p50_ms for s in stats))
    side.p99_ms.append(max(s.p99_ms for s in stats))
    for s in stats:
        side.errors += s.errors
        side.first_error = side.first_error or s.first_error


@dataclass(frozen=True)
class Prepared:
    """A built test network whose YNU node holds the catalogue and does not rate-limit."""

    node: Any  # tests.live_network.NodeDir (its config and folder)
    sender: str  # the caller: the network's test institution
    caller: Any  # sseaun.node._keys.InstitutionKeys of the caller
    answerer: Any  # ... of the node's institution
    manifest_json: bytes


def prepare_network(root: Path) -> Prepared:
    """Build the network in root, import the catalogue, raise the node's rate limit."""
    from sseaun.node._keys import InstitutionKeys  # noqa: PLC0415
    from tests.live_network import build  # noqa: PLC0415
    from tests.live_network import run as cli  # noqa: PLC0415

    with _quiet():
        network = build(root)
        node = network.nodes[AUDIENCE]
        cli("node", "import", "courses", "--config", str(node.config), "--file", str(CATALOGUE),
            "--quiet")  # fmt: skip
    _raise_rate_limit(node.config)
    sender = network.tester.institution
    return Prepared(
        node=node,
        sender=sender,
        caller=InstitutionKeys.load(network.tester.folder / "keys", sender, None),
        answerer=InstitutionKeys.load(node.folder / "keys", AUDIENCE, None),
        manifest_json=network.manifest.read_bytes(),
    )


def load_config(
    prepared: Prepared,
    probe: Probe,
    *,
    cpus: frozenset[int],
    in_flight: int,
    node_targets: tuple[tuple[str, str], ...],
    baseline_target: str | None,
) -> LoadConfig:
    from sseaun.v1.auth_pb2 import Purpose  # noqa: PLC0415
    from tests.live_network import NETWORK  # noqa: PLC0415

    return LoadConfig(
        cpus=cpus,
        in_flight=in_flight,
        network_id=NETWORK,
        sender=prepared.sender,
        audience=AUDIENCE,
        signer_pem=prepared.caller.transport.to_pem(),
        manifest_json=prepared.manifest_json,
        method=GET_RECORD,
        purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
        record_names=probe.record_names,
        node_targets=node_targets,
        baseline_target=baseline_target,
        baseline_key_id=prepared.answerer.transport.key_id,
        baseline_public_raw=prepared.answerer.transport.public_key,
    )


def echo_config(prepared: Prepared, probe: Probe, cpus: frozenset[int]) -> EchoConfig:
    """The baseline echo: answers signed with the node's transport key, sized like its answers."""
    from sseaun.sdk.core import payload_types  # noqa: PLC0415

    return EchoConfig(
        cpus=cpus,
        server_private_pem=prepared.answerer.transport.to_pem(),
        server_key_id=prepared.answerer.transport.key_id,
        client_public_raw=prepared.caller.transport.public_key,
        response_payload_size=probe.response_payload_size,
        response_payload_type=payload_types.RESPONSE,
        service=SERVICE,
        method=METHOD,
    )


def _setup_and_measure(bench: Bench) -> Result:
    server_cpus, client_cpus = cpu_layout()
    prepared = prepare_network(bench.root)
    node = prepared.node
    with _affinity(server_cpus):
        node.start()
    bench.node = node
    assert node.process is not None and node.process.stdout is not None
    # From here on this thread alone reads the node's output (NodeDir.stop then skips it).
    bench.node_output = node.process.stdout
    node.process.stdout = None
    bench.drain = threading.Thread(
        target=_drain, args=(bench.node_output, bench.node_log), daemon=True
    )
    bench.drain.start()
    probe = probe_node(node.target, prepared)

    echo, echo_conn = bench.start_child(echo_serve, echo_config(prepared, probe, server_cpus))
    if not echo_conn.poll(30):
        raise RuntimeError("the echo server did not start")
    echo_port = echo_conn.recv()
    assert echo.pid is not None
    config = load_config(
        prepared,
        probe,
        cpus=client_cpus,
        in_flight=IN_FLIGHT // LOAD_PROCESSES,
        node_targets=((NODE, node.target),),
        baseline_target=f"127.0.0.1:{echo_port}",
    )
    loads = [bench.start_child(load_main, config)[1] for _ in range(LOAD_PROCESSES)]

    sides = {NODE: Side(NODE, node.process.pid), BASELINE: Side(BASELINE, echo.pid)}
    for name in (BASELINE, NODE):  # warm both up once: connections, caches, SQLite pages
        measure_round(Side(name, sides[name].pid), loads, FIRST_WARMUP_SECONDS, 0.5)
    for round_number in range(ROUNDS):
        order = [sides[BASELINE], sides[NODE]]
        if round_number % 2:
            order.reverse()
        for side in order:
            measure_round(side, loads, WARMUP_SECONDS)
    # The client check: the same echo server driven by a client that neither signs nor verifies.
    light = Side(BASELINE_LIGHT, echo.pid)
    measure_round(light, loads, WARMUP_SECONDS)

    failed = [s for s in (*sides.values(), light) if s.errors]
    if failed:
        raise RuntimeError(
            "; ".join(f"{s.name}: {s.errors} failed calls, first {s.first_error}" for s in failed)
        )
    base, subject = sides[BASELINE], sides[NODE]
    comparison = Comparison(tuple(base.rates), tuple(subject.rates))
    return Result(
        "signed_fetch",
        comparison.ratio,
        TARGET,
        _details(comparison, base, subject, light, probe, server_cpus, client_cpus),
    )


def _side_line(label: str, side: Side) -> str:
    i = side.best()
    return (
        f"{label}: {side.rates[i]:,.0f} calls/s (rounds {min(side.rates):,.0f}-"
        f"{max(side.rates):,.0f}); server {side.server_cpu_per_call[i] * 1e6:.0f} us CPU/call, "
        f"{side.server_busy[i]:.2f} core busy; client {side.client_busy[i]:.2f} core; "
        f"p50 {side.p50_ms[i]:.1f} ms, p99 {side.p99_ms[i]:.1f} ms"
    )


def _details(
    comparison: Comparison,
    base: Side,
    subject: Side,
    light: Side,
    probe: Probe,
    server_cpus: frozenset[int],
    client_cpus: frozenset[int],
) -> tuple[str, ...]:
    pinning = (
        f"servers on CPU {sorted(server_cpus)}, client on CPU {sorted(client_cpus)}"
        if server_cpus
        else "unpinned (one CPU)"
    )
    cpu_ratio = statistics.median(base.server_cpu_per_call) / statistics.median(
        subject.server_cpu_per_call
    )
    lines: tuple[str, ...] = (
        f"GetRecord of {len(probe.record_names)} courses: request envelope "
        f"{probe.request_envelope_size} B, response payload {probe.response_payload_size} B; "
        f"{IN_FLIGHT} in flight from {LOAD_PROCESSES} grpc.aio client process; {pinning}",
        _side_line("node GetRecord (verify + nonce + store + sign)", subject),
        _side_line("bare grpc.aio echo (1 verify + 1 sign)", base),
        f"median paired ratio {comparison.median_paired_ratio:.3f} over {ROUNDS} rounds of "
        f"{ROUND_SECONDS:g} s; baseline best is {comparison.spread * 100:.1f}% above its median; "
        f"server CPU/call ratio (baseline/node, medians) {cpu_ratio:.3f}",
    )
    headroom = light.rates[0] / base.rates[base.best()]
    lines += (
        f"client check: the echo driven by a light client (one pre-signed request, answers not "
        f"verified) gave {light.rates[0]:,.0f} calls/s = {headroom:.3f} x the baseline's best",
    )
    if headroom > LIGHT_CLIENT_MARGIN:
        lines += (
            "WARNING: the signing and verifying client held the baseline back: the ratio is "
            "overstated by up to that factor",
        )
    starved = [s.name for s in (subject, base) if s.server_busy[s.best()] < SATURATED]
    if starved:
        lines += (
            f"WARNING: the {' and '.join(starved)} server used under {SATURATED:g} of its core "
            "in its best round: the client or the machine limited it, not the server",
        )
    return lines


def run() -> list[Result]:
    root = Path(tempfile.mkdtemp(prefix="sseaun-bench-fetch-"))
    bench = Bench(root)
    try:
        with _terminate_cleanly():
            try:
                result = _setup_and_measure(bench)
            finally:
                bench.stop()
    except Exception as exc:  # noqa: BLE001 - reported as a failed benchmark line
        traceback.print_exc()
        tail = "".join(bench.node_log[-20:])
        print(f"node output (last lines):\n{tail}", file=sys.stderr)
        result = Result("signed_fetch", 0.0, TARGET, (f"benchmark did not run: {exc!r}",))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [result]
