"""The access log (spec LOG): what logging every call costs, and how proofs scale with the log.

* ``log_append_overhead``: calls/s of signed ``GetRecord`` served by a real ``sseaun node serve``
  process, which appends one entry to its access log before each answer (``Node.log_call`` ->
  ``AccessLog.append`` -> ``SqliteStore.append_log``, group-committed with the nonce claims on
  the store's writer thread), divided by the calls/s of the same node, same database contents,
  started as ``python -m benchmarks._log_free_node``: the node's normal serve entry point with
  ``Node.log_call`` replaced by a coroutine that appends nothing (answers carry no
  ``log_index``). Target 0.9: logging costs at most 10 % of signed-fetch throughput.

  The machinery is bench_signed_fetch's, imported from it: the test network (YNU imports the
  example catalogue, its rate limit raised), both servers pinned to the server CPU, one load
  process pinned to the other, 64 calls in flight each signing a fresh request and verifying
  the answer, alternating rounds (AB, BA, ...) and best round / best round. The log-free node
  gets a copy of the database and a node.toml of its own (other ports). Before the rounds one
  call to each checks that the logged answer carries a ``log_index`` and the log-free one none;
  after them, the logged node's log has grown and the log-free node's has not. Both nodes' store
  counters (``/metrics``, ``sseaun_store_*``) are read around the rounds, to print how many
  claims and appends shared a group commit.

* ``log_proof_scaling``: time per proof (inclusion and consistency, through the node's
  ``AccessLog``) from a log of 10,000 entries divided by the same from a log of 1,000,000
  entries, both filled through the real store (``_log_proofs.py``). Target 0.5: a proof from
  the 1M log takes at most twice as long as from the 10k one. A proof reads O(log n) stored
  nodes (about 25 at 1M against 17 at 10k) in one statement, so the ratio stays well above
  0.5 unless something reads O(n). A sample of the proofs is verified outside the timing.

``.venv/bin/python benchmarks/run.py access_log`` runs it alone (about 90 s; the 1M store takes
about 400 MB in a temporary folder, removed afterwards, as is everything started, also on
failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import _log_proofs
from benchmarks._fetch_load import main as load_main
from benchmarks._timing import Comparison, Result
from benchmarks.bench_signed_fetch import (
    AUDIENCE,
    FIRST_WARMUP_SECONDS,
    GET_RECORD,
    IN_FLIGHT,
    REPO,
    ROUND_SECONDS,
    SATURATED,
    WARMUP_SECONDS,
    Bench,
    Prepared,
    Side,
    _affinity,
    _drain,
    _side_line,
    _terminate_cleanly,
    cpu_layout,
    load_config,
    measure_round,
    prepare_network,
    probe_node,
)

__all__ = ["run"]

OVERHEAD_TARGET = 0.9
SCALING_TARGET = 0.5
LOGGED = "logged"
LOG_FREE = "log-free"
ROUNDS = 5  # rounds per node, alternating AB, BA, ...
SMALL_LOG = 10_000
LARGE_LOG = 1_000_000
PROOFS = 2_000  # inclusion proofs per round, and as many consistency proofs
PROOF_ROUNDS = 6  # per log, alternating
VERIFIED_PER_ROUND = 50  # of each kind, verified outside the timing


# -- log_append_overhead -------------------------------------------------------------------------


@dataclass
class _LogBench(Bench):
    """bench_signed_fetch's Bench plus the log-free node process."""

    log_free: subprocess.Popen[str] | None = None
    log_free_log: list[str] = field(default_factory=list)
    log_free_drain: threading.Thread | None = None

    def stop_log_free(self) -> None:
        process, self.log_free = self.log_free, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if self.log_free_drain is not None:
            self.log_free_drain.join(5)
            self.log_free_drain = None
        if process.stdout is not None:
            process.stdout.close()

    def stop(self) -> None:
        try:
            self.stop_log_free()
        finally:
            super().stop()


def _log_free_twin(prepared: Prepared, folder: Path) -> Any:
    """A node folder for the log-free node: node.toml with other ports, a copy of the database,
    the same keys."""
    from sseaun.node._config import NodeConfig  # noqa: PLC0415
    from tests.live_network import NodeDir, free_port  # noqa: PLC0415

    original = NodeConfig.load(prepared.node.config)
    folder.mkdir()
    twin = NodeDir(AUDIENCE, folder, free_port(), free_port())
    shutil.copyfile(prepared.node.config, twin.config)
    database = folder / "node.db"
    with (
        contextlib.closing(sqlite3.connect(original.database)) as source,
        contextlib.closing(sqlite3.connect(database)) as copy,
    ):
        source.backup(copy)
    twin.configure(
        **{
            "node.database": str(database),
            "keys.dir": str(original.keys_dir),
            "grpc.listen": twin.target,
            "http.listen": f"127.0.0.1:{twin.http_port}",
        }
    )
    return twin


def _start_log_free(bench: _LogBench, config: Path, cpus: frozenset[int]) -> None:
    """Start `python -m benchmarks._log_free_node` and wait for its "serving" line."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with _affinity(cpus):
        bench.log_free = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._log_free_node", "--config", str(config)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
    stdout = bench.log_free.stdout
    assert stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = stdout.readline()
        if not line:
            break
        bench.log_free_log.append(line)
        if line.startswith("serving "):
            bench.log_free_drain = threading.Thread(
                target=_drain, args=(stdout, bench.log_free_log), daemon=True
            )
            bench.log_free_drain.start()
            return
    raise RuntimeError(f"the log-free node did not start:\n{''.join(bench.log_free_log)}")


def _answer_log_index(target: str, prepared: Prepared, record_name: str) -> int | None:
    """One signed GetRecord; the log_index of its verified answer."""
    import grpc  # noqa: PLC0415

    from sseaun.sdk.core import (  # noqa: PLC0415
        KeyRing,
        ManifestTrust,
        build_request,
        envelope_from_json,
        verify_answer,
    )
    from sseaun.v1.auth_pb2 import Purpose  # noqa: PLC0415
    from sseaun.v1.service_pb2 import (  # noqa: PLC0415
        GetRecordBody,
        GetRecordRequest,
        GetRecordResponse,
    )
    from tests.live_network import NETWORK  # noqa: PLC0415

    keyring = KeyRing(
        ManifestTrust.bootstrap(envelope_from_json(prepared.manifest_json), None).current
    )
    request = build_request(
        signer=prepared.caller.transport,
        network_id=NETWORK,
        method=GET_RECORD,
        sender=prepared.sender,
        audience=AUDIENCE,
        purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
        body=GetRecordBody(name=record_name).SerializeToString(deterministic=True),
        request_id=str(uuid.uuid4()),
        now=datetime.now(UTC),
    )
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            GET_RECORD,
            request_serializer=GetRecordRequest.SerializeToString,
            response_deserializer=GetRecordResponse.FromString,
        )
        reply = call(GetRecordRequest(request=request), timeout=15)
    answer = verify_answer(reply.response, keyring, request=request, responder=AUDIENCE)
    if answer.error is not None:
        raise answer.error
    return answer.log_index


def _log_size(database: Path) -> int:
    """Entries in the institution's access log, read through a read-only connection."""
    uri = f"{database.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        row = conn.execute("SELECT size FROM log_heads WHERE log = ?", (AUDIENCE,)).fetchone()
    return 0 if row is None else int(row[0])


def _store_counters(http: str) -> dict[str, float]:
    """The store's counters from a node's /metrics (sseaun_store_*, since the node started)."""
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(f"{http}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in text.splitlines())
        if name.startswith("sseaun_store_")
    }


def _group_commits(before: dict[str, float], after: dict[str, float]) -> str:
    """Claims and appends per group commit, and group commits per call (each call claims one
    nonce), between two reads of the counters."""

    def grown(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    commits = grown("sseaun_store_group_commits_total")
    claims = grown("sseaun_store_nonces_claimed_total") + grown("sseaun_store_nonces_refused_total")
    items = claims + grown("sseaun_store_log_entries_appended_total")
    if commits <= 0 or claims <= 0:
        return "n/a"
    return f"{items / commits:.1f} items per commit, {commits / claims:.3f} commits per call"


def _measure_overhead(bench: _LogBench) -> Result:
    from sseaun.node._config import NodeConfig  # noqa: PLC0415

    server_cpus, client_cpus = cpu_layout()
    prepared = prepare_network(bench.root)
    twin = _log_free_twin(prepared, bench.root / "log-free")
    before = _log_size(NodeConfig.load(twin.config).database)  # both start from this copy
    node = prepared.node
    with _affinity(server_cpus):
        node.start()
    bench.node = node
    assert node.process is not None and node.process.stdout is not None
    bench.node_output = node.process.stdout
    node.process.stdout = None
    bench.drain = threading.Thread(
        target=_drain, args=(bench.node_output, bench.node_log), daemon=True
    )
    bench.drain.start()
    _start_log_free(bench, twin.config, server_cpus)
    assert bench.log_free is not None

    probe = probe_node(node.target, prepared)
    logged_index = _answer_log_index(node.target, prepared, probe.record_names[0])
    free_index = _answer_log_index(twin.target, prepared, probe.record_names[0])
    if logged_index is None or free_index is not None:
        raise RuntimeError(
            f"log_index of the logged node's answer {logged_index}, of the log-free node's "
            f"{free_index}: expected an index and None"
        )

    config = load_config(
        prepared,
        probe,
        cpus=client_cpus,
        in_flight=IN_FLIGHT,
        node_targets=((LOGGED, node.target), (LOG_FREE, twin.target)),
        baseline_target=None,
    )
    loads = [bench.start_child(load_main, config)[1]]
    sides = {LOGGED: Side(LOGGED, node.process.pid), LOG_FREE: Side(LOG_FREE, bench.log_free.pid)}
    for name in (LOG_FREE, LOGGED):  # warm both up once: connections, caches, SQLite pages
        measure_round(Side(name, sides[name].pid), loads, FIRST_WARMUP_SECONDS, 0.5)
    https = {LOGGED: node.http, LOG_FREE: twin.http}
    counters = {name: _store_counters(http) for name, http in https.items()}
    for round_number in range(ROUNDS):
        order = [sides[LOG_FREE], sides[LOGGED]]
        if round_number % 2:
            order.reverse()
        for side in order:
            measure_round(side, loads, WARMUP_SECONDS)
    failed = [s for s in sides.values() if s.errors]
    if failed:
        raise RuntimeError(
            "; ".join(f"{s.name}: {s.errors} failed calls, first {s.first_error}" for s in failed)
        )

    group = {
        name: _group_commits(counters[name], _store_counters(http)) for name, http in https.items()
    }
    logged_entries = _log_size(NodeConfig.load(node.config).database) - before
    bench.stop_log_free()  # it prints its store statistics as it stops
    free_entries = _log_size(NodeConfig.load(twin.config).database) - before
    if logged_entries == 0 or free_entries != 0:
        raise RuntimeError(
            f"access log entries appended: {logged_entries} by the logged node, {free_entries} "
            "by the log-free node (expected some and none)"
        )
    base, subject = sides[LOG_FREE], sides[LOGGED]
    comparison = Comparison(tuple(base.rates), tuple(subject.rates))
    cost = statistics.median(subject.server_cpu_per_call) - statistics.median(
        base.server_cpu_per_call
    )
    pinning = (
        f"servers on CPU {sorted(server_cpus)}, client on CPU {sorted(client_cpus)}"
        if server_cpus
        else "unpinned (one CPU)"
    )
    details: tuple[str, ...] = (
        f"GetRecord of {len(probe.record_names)} courses, {IN_FLIGHT} in flight from one "
        f"grpc.aio client process; {pinning}",
        _side_line("node with access log (sseaun node serve)", subject),
        _side_line("same node without access log (_log_free_node)", base),
        f"median paired ratio {comparison.median_paired_ratio:.3f} over {ROUNDS} rounds of "
        f"{ROUND_SECONDS:g} s; log-free best is {comparison.spread * 100:.1f}% above its median; "
        f"logging adds {cost * 1e6:.0f} us server CPU per call (medians)",
        f"logged node: {logged_entries:,} entries appended, answers carry log_index; log-free "
        "node: none, no log_index",
        f"group commit over the rounds (store counters from /metrics; claims + appends): logged "
        f"{group[LOGGED]}; log-free {group[LOG_FREE]}",
    )
    starved = [s.name for s in (subject, base) if s.server_busy[s.best()] < SATURATED]
    if starved:
        details += (
            f"WARNING: the {' and '.join(starved)} node used under {SATURATED:g} of its core "
            "in its best round: the client or the machine limited it, not the server",
        )
    return Result("log_append_overhead", comparison.ratio, OVERHEAD_TARGET, details)


def _overhead() -> Result:
    root = Path(tempfile.mkdtemp(prefix="sseaun-bench-log-"))
    bench = _LogBench(root)
    try:
        try:
            result = _measure_overhead(bench)
        finally:
            bench.stop()
    except Exception as exc:  # noqa: BLE001 - reported as a failed benchmark line
        traceback.print_exc()
        for label, lines in (("logged", bench.node_log), ("log-free", bench.log_free_log)):
            print(f"{label} node output (last lines):\n{''.join(lines[-20:])}", file=sys.stderr)
        result = Result(
            "log_append_overhead", 0.0, OVERHEAD_TARGET, (f"benchmark did not run: {exc!r}",)
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


# -- log_proof_scaling ---------------------------------------------------------------------------


def _scaling_line(sized: _log_proofs.SizedLog) -> str:
    best = sized.best()
    return (
        f"{sized.size:,} entries: {best.per_proof * 1e6:.0f} us/proof (inclusion "
        f"{best.inclusion_seconds / best.n * 1e6:.0f} us, reading {sized.nodes_per_inclusion:.1f} "
        f"nodes; consistency {best.consistency_seconds / best.n * 1e6:.0f} us, "
        f"{sized.nodes_per_consistency:.1f} nodes); rounds "
        f"{min(r.per_proof for r in sized.rounds) * 1e6:.0f}-"
        f"{max(r.per_proof for r in sized.rounds) * 1e6:.0f} us; filled in "
        f"{sized.fill_seconds:.1f} s ({sized.size / sized.fill_seconds:,.0f} appends/s); "
        f"{sized.disk_bytes() / 1e6:,.1f} MB on disk"
    )


def _scaling() -> Result:
    root = Path(tempfile.mkdtemp(prefix="sseaun-bench-log-proofs-"))
    # One core for the loop and the store's threads, as a node has in log_append_overhead: a
    # reader-thread hop then costs the same from run to run (unpinned, waking the thread on the
    # other, idle vCPU cost this VM 45 to 130 us per hop, depending on the hour).
    cpus = cpu_layout()[0]
    try:
        with _affinity(cpus):
            scaling = asyncio.run(
                _log_proofs.measure(
                    root,
                    small=SMALL_LOG,
                    large=LARGE_LOG,
                    proofs=PROOFS,
                    rounds=PROOF_ROUNDS,
                    sample=VERIFIED_PER_ROUND,
                )
            )
        small, large = scaling.small, scaling.large
        pinning = f"pinned to CPU {sorted(cpus)}" if cpus else "unpinned (one CPU)"
        details = (
            _scaling_line(small),
            _scaling_line(large),
            f"{PROOFS:,} inclusion (random index, tree size = log size) then {PROOFS:,} "
            f"consistency proofs (random old size) per round, awaited one after another, "
            f"{PROOF_ROUNDS} rounds per log alternating; best round per log; {pinning}",
            f"checked outside the timing: each log's root against merkle.root_hash of the "
            f"entries appended; {small.verified + large.verified:,} proofs verified "
            f"(verify_inclusion / verify_consistency against AccessLog.root)",
        )
        result = Result("log_proof_scaling", scaling.ratio, SCALING_TARGET, details)
    except Exception as exc:  # noqa: BLE001 - reported as a failed benchmark line
        traceback.print_exc()
        result = Result(
            "log_proof_scaling", 0.0, SCALING_TARGET, (f"benchmark did not run: {exc!r}",)
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


def run() -> list[Result]:
    with _terminate_cleanly():
        return [_overhead(), _scaling()]
