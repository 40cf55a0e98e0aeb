"""Where the access log's cost goes in a serving node: CPU and context switches per thread,
cProfile of the loop and of the store's writer thread, and what-if variants.

Not a benchmark (``run.py`` only runs ``bench_*.py``); the tool behind the ``access_log``
analysis in docs/performance.md, built like ``_fetch_profile.py`` (whose load generator,
network and rounds it reuses). Usage::

    .venv/bin/python -m benchmarks._log_profile [--variants log_free,entry_stub]
        [--rounds 4] [--seconds 2.5] [--threads] [--profile NAME]

Each node runs *in process* in a spawned child pinned to the server CPU, after applying its
variant's monkeypatches (``VARIANTS``; ``a+b`` combines them; the unpatched node is always
started as ``stock``). Unlike ``_fetch_profile`` every node gets its own copy of the database,
so no node's log frontier goes stale because another appended. One load process, pinned to the
other CPU, drives the nodes in rotating rounds. ``--threads`` adds one round per node with the
CPU and the context switches (voluntary / involuntary) of each thread, per call, from /proc;
``--profile NAME`` one round of that node with cProfile on its event-loop thread and on its
store's writer thread; ``--perf`` one round per node under ``perf record`` (CPU-clock sampling,
if perf is installed), reported as CPU per call by shared object and by thread: the C side
(SQLite, OpenSSL, gRPC, the kernel) that cProfile does not see. The variants are measurements,
not proposals: they drop the log.
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
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from benchmarks._fetch_load import main as load_main
from benchmarks.bench_signed_fetch import (
    IN_FLIGHT,
    Bench,
    Side,
    cpu_layout,
    load_config,
    measure_round,
    prepare_network,
    probe_node,
)

__all__ = ["VARIANTS", "main"]

_CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# -- what-if variants (applied inside the node process before start_node) ------------------------


def _log_free() -> None:
    """Node.log_call appends nothing (as benchmarks._log_free_node)."""
    from sseaun.node._runtime import Node  # noqa: PLC0415

    async def log_call(self: Any, request: Any, outcome: str, record_names: Any = ()) -> None:
        return None

    setattr(Node, "log_call", log_call)  # noqa: B010


def _entry_stub() -> None:
    """access_entry returns fixed bytes: the entry build's share of the cost."""
    from sseaun.sdk.core import access_log  # noqa: PLC0415

    fixed = b"\x0a\x10stub access entry" + bytes(150)

    def access_entry(**_: Any) -> bytes:
        return fixed

    setattr(access_log, "access_entry", access_entry)  # noqa: B010


def _append_in_memory() -> None:
    """SqliteStore.append_log answers at once from a counter: no writer hop, no SQLite."""
    from sseaun.node.store import SqliteStore  # noqa: PLC0415

    sizes: dict[str, int] = {}

    async def append_log(self: Any, log: str, entry: bytes, key: bytes) -> int:
        index = sizes.get(log, 0)
        sizes[log] = index + 1
        return index

    setattr(SqliteStore, "append_log", append_log)  # noqa: B010


def _append_yield() -> None:
    """As append_in_memory, but each append waits for one turn of the event loop: the cost of
    the coroutine suspending and resuming, without the writer."""
    from sseaun.node.store import SqliteStore  # noqa: PLC0415

    sizes: dict[str, int] = {}

    async def append_log(self: Any, log: str, entry: bytes, key: bytes) -> int:
        index = sizes.get(log, 0)
        sizes[log] = index + 1
        future: asyncio.Future[int] = self._loop.create_future()
        self._loop.call_soon(future.set_result, index)
        return await future

    setattr(SqliteStore, "append_log", append_log)  # noqa: B010


def _stage_without_sql() -> None:
    """Appends go through the group commit as usual, but the writer inserts no log rows (it
    still hashes and grows the frontier): the share of SQLite in the writer's log work."""
    from sseaun.node.store import _log_writer  # noqa: PLC0415

    class WithoutLogRows:
        """The writer's connection, minus the log's executemany; the head comes from the
        cached frontier (nothing else appends to this node's copy of the database)."""

        def __init__(self, conn: Any, sizes: dict[str, int]) -> None:
            self._conn, self._sizes = conn, sizes

        def execute(self, sql: str, params: Any = ()) -> Any:
            if "FROM log_heads" in sql:
                return self._conn.execute("SELECT ?", (self._sizes.get(params[0], 0),))
            return self._conn.execute(sql, params)

        def executemany(self, sql: str, rows: Any) -> None:
            return None

    original = _log_writer.LogWriter.stage

    def stage(self: Any, conn: Any, appends: Any, leaves: Any) -> Any:
        sizes = {log: frontier.size for log, frontier in self._frontiers.items()}
        return original(self, cast(Any, WithoutLogRows(conn, sizes)), appends, leaves)

    setattr(_log_writer.LogWriter, "stage", stage)  # noqa: B010


def _writer_pragma(statement: str) -> None:
    from sseaun.node.store import _sqlite  # noqa: PLC0415

    original = _sqlite._open_writer

    def open_writer(path: Path, busy_timeout: float, now_us: int) -> Any:
        conn = original(path, busy_timeout, now_us)
        conn.execute(statement)
        return conn

    setattr(_sqlite, "_open_writer", open_writer)  # noqa: B010


def _checkpoint_every_10k() -> None:
    """The writer checkpoints the WAL every 10,000 pages (40 MB) instead of SQLite's 1,000."""
    _writer_pragma("PRAGMA wal_autocheckpoint = 10000")


def _checkpoint_in_background() -> None:
    """The writer never checkpoints; a thread of its own, with its own connection, runs a
    PASSIVE checkpoint every 250 ms, so the fsyncs of a checkpoint never stall a group commit."""
    from sseaun.node.store import _sqlite  # noqa: PLC0415

    _writer_pragma("PRAGMA wal_autocheckpoint = 0")
    original = _sqlite._open_writer

    def open_writer(path: Path, busy_timeout: float, now_us: int) -> Any:
        conn = original(path, busy_timeout, now_us)

        def checkpoint() -> None:
            own = sqlite3.connect(path, isolation_level=None)
            own.execute("PRAGMA synchronous = NORMAL")
            while True:
                time.sleep(0.25)
                own.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        threading.Thread(target=checkpoint, name="checkpointer", daemon=True).start()
        return conn

    setattr(_sqlite, "_open_writer", open_writer)  # noqa: B010


def _linger(seconds: float) -> Callable[[], None]:
    def apply() -> None:
        """The store's group commit lingers this long under load (node.toml: 5 ms)."""
        from sseaun.node.store import SqliteStore  # noqa: PLC0415

        original = SqliteStore.open

        async def open_(path: Path | str, **options: Any) -> Any:
            options["nonce_linger"] = seconds
            return await original(path, **options)

        setattr(SqliteStore, "open", open_)  # noqa: B010

    return apply


VARIANTS: dict[str, Callable[[], None]] = {
    "log_free": _log_free,
    "entry_stub": _entry_stub,
    "append_in_memory": _append_in_memory,
    "append_yield": _append_yield,
    "stage_without_sql": _stage_without_sql,
    "checkpoint_every_10k": _checkpoint_every_10k,
    "checkpoint_in_background": _checkpoint_in_background,
    "linger_0ms": _linger(0.0),
    "linger_1ms": _linger(0.001),
    "linger_2ms": _linger(0.002),
    "linger_10ms": _linger(0.010),
}


# -- the node process ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeChild:
    cpus: frozenset[int]
    config_path: str
    database: str
    variants: tuple[str, ...]


def _thread_stats() -> dict[str, tuple[float, int, int]]:
    """(CPU seconds, voluntary, involuntary context switches) of each thread of this process."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, tuple[float, int, int]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as stat:
                raw = stat.read()
            with open(f"/proc/self/task/{tid}/status") as status:
                lines = status.read().splitlines()
        except FileNotFoundError:
            continue
        comm = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode()
        fields = raw.rsplit(b")", 1)[1].split()
        switches = {
            key: int(value)
            for key, _, value in (line.partition(":") for line in lines)
            if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")
        }
        name = names.get(int(tid), f"[{comm}]")
        cpu, vol, invol = out.get(name, (0.0, 0, 0))
        out[name] = (
            cpu + (int(fields[11]) + int(fields[12])) / _CLOCK_TICK,
            vol + switches.get("voluntary_ctxt_switches", 0),
            invol + switches.get("nonvoluntary_ctxt_switches", 0),
        )
    return out


def _delta(
    after: dict[str, tuple[float, int, int]], before: dict[str, tuple[float, int, int]]
) -> dict[str, tuple[float, int, int]]:
    zero = (0.0, 0, 0)
    return {
        name: (c - before.get(name, zero)[0], v - before.get(name, zero)[1],
               i - before.get(name, zero)[2])
        for name, (c, v, i) in after.items()
    }  # fmt: skip


def node_main(child: NodeChild, conn: Connection) -> None:
    if child.cpus:
        os.sched_setaffinity(0, child.cpus)
    asyncio.run(_node(child, conn))


async def _node(child: NodeChild, conn: Connection) -> None:
    from sseaun.node._config import NodeConfig  # noqa: PLC0415
    from sseaun.node._serve import start_node  # noqa: PLC0415
    from sseaun.node.store import SqliteStore  # noqa: PLC0415

    for name in child.variants:
        VARIANTS[name]()
    stores: list[Any] = []
    original_open = SqliteStore.open

    async def open_and_keep(path: Path | str, **options: Any) -> Any:
        store = await original_open(path, **options)
        stores.append(store)
        return store

    setattr(SqliteStore, "open", open_and_keep)  # noqa: B010
    config = dataclasses.replace(
        NodeConfig.load(Path(child.config_path)),
        database=Path(child.database),
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
    )
    running = await start_node(config)
    conn.send(running.grpc_port)
    loop = asyncio.get_running_loop()
    loop_profiler: cProfile.Profile | None = None
    writer_profiler: cProfile.Profile | None = None
    before: dict[str, tuple[float, int, int]] = {}
    counters: dict[str, int] = {}
    while True:
        try:
            command = await loop.run_in_executor(None, conn.recv)
        except EOFError:
            break
        if command[0] == "mark":
            before = _thread_stats()
            counters = dataclasses.asdict(stores[0].statistics()) if stores else {}
        elif command[0] == "threads":
            after = _thread_stats()
            now = dataclasses.asdict(stores[0].statistics()) if stores else {}
            conn.send((_delta(after, before), {k: v - counters.get(k, 0) for k, v in now.items()}))
        elif command[0] == "profile_on":  # runs on the loop thread: cProfile sees the loop
            before = _thread_stats()
            loop_profiler, writer_profiler = cProfile.Profile(), cProfile.Profile()
            if stores:  # the writer thread's own profiler, enabled on that thread
                await loop.run_in_executor(stores[0]._writer, writer_profiler.enable)
            loop_profiler.enable()
        elif command[0] == "profile_off" and loop_profiler is not None:
            loop_profiler.disable()
            if stores and writer_profiler is not None:
                await loop.run_in_executor(stores[0]._writer, writer_profiler.disable)
                writer_profiler.dump_stats(command[1] + ".writer")
            loop_profiler.dump_stats(command[1])
            conn.send(_delta(_thread_stats(), before))
        else:
            break
    with contextlib.suppress(Exception):
        await running.stop()


# -- the orchestrator ----------------------------------------------------------------------------


def _copy_database(source: Path, target: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def _report(sides: list[Side]) -> None:
    stock = sides[0]
    print(f"{'variant':<40} {'best calls/s':>12} {'vs stock':>9} {'CPU/call':>9} {'busy':>5}")
    for side in sides:
        i = side.best()
        gain = side.rates[i] / stock.rates[stock.best()]
        print(
            f"{side.name:<40} {side.rates[i]:>12,.0f} {gain:>9.3f} "
            f"{side.server_cpu_per_call[i] * 1e6:>7.0f}us {side.server_busy[i]:>5.2f}"
        )
        print(f"{'':<40} rounds: " + ", ".join(f"{r:,.0f}" for r in side.rates))
        if side.errors:
            print(f"    {side.errors} errors, first: {side.first_error}")


def _print_threads(threads: dict[str, tuple[float, int, int]], calls: float) -> None:
    for thread, (cpu, vol, invol) in sorted(threads.items(), key=lambda kv: -kv[1][0]):
        if cpu or vol or invol:
            print(
                f"    {thread:<36} {cpu * 1e6 / calls:7.1f} us/call  "
                f"switches/call {vol / calls:5.2f} vol {invol / calls:5.2f} invol"
            )


def _perf_round(side: Side, load: Connection, seconds: float, data: Path, top: int) -> None:
    """One round of a node under perf record; CPU per call by shared object and by thread."""
    perf = shutil.which("perf")
    if perf is None:
        print("  perf is not installed")
        return
    recorder = subprocess.Popen(
        [perf, "record", "-F", "499", "-p", str(side.pid), "-o", str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)
    began = time.perf_counter()
    probe_side = Side(side.name, side.pid)
    measure_round(probe_side, [load], 0.5, seconds)
    calls = probe_side.rates[0] * (time.perf_counter() - began)
    recorder.send_signal(signal.SIGINT)
    recorder.wait(30)
    print(f"  {side.name}: {probe_side.rates[0]:,.0f} calls/s")
    for sort in ("dso", "comm"):
        report = subprocess.run(
            [perf, "report", "-i", str(data), "--stdio", "--sort", sort, "-F", "period," + sort],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        rows = sorted(
            (
                (int(period), what.strip())
                for period, what in (
                    line.split(None, 1)
                    for line in report.stdout.splitlines()
                    if line.strip() and not line.startswith("#")
                )
            ),
            reverse=True,
        )
        print(f"    by {sort}, us/call:")
        for period, what in rows[:top]:
            print(f"      {period / 1e3 / calls:8.1f}  {what}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._log_profile")
    parser.add_argument("--variants", default="", help=f"comma-separated; from {list(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.5)
    parser.add_argument("--threads", action="store_true", help="CPU per thread of each node")
    parser.add_argument("--profile", default="", help="cProfile this node (loop and writer)")
    parser.add_argument("--perf", action="store_true", help="perf record a round of each node")
    parser.add_argument("--perf-dir", default="", help="keep the perf data files here")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    for variant in variants:
        for name in variant.split("+"):
            if name not in VARIANTS:
                parser.error(f"unknown variant {name!r}")
    server_cpus, client_cpus = cpu_layout()
    root = Path(tempfile.mkdtemp(prefix="sseaun-log-profile-"))
    bench = Bench(root)
    try:
        from sseaun.node._config import NodeConfig  # noqa: PLC0415

        prepared = prepare_network(root)
        database = NodeConfig.load(prepared.node.config).database
        nodes: list[tuple[str, Any, Connection]] = []
        for number, name in enumerate(["stock", *variants]):
            copy = root / f"node-{number}.db"
            _copy_database(database, copy)
            child = NodeChild(
                server_cpus,
                str(prepared.node.config),
                str(copy),
                tuple(name.split("+")) if name != "stock" else (),
            )
            process, conn = bench.start_child(node_main, child)
            if not conn.poll(60):
                raise RuntimeError(f"node {name} did not start")
            nodes.append((name, process, conn))
        ports = {name: conn.recv() for name, _, conn in nodes}
        targets = tuple((name, f"127.0.0.1:{port}") for name, port in ports.items())
        probe = probe_node(targets[0][1], prepared)
        config = load_config(
            prepared,
            probe,
            cpus=client_cpus,
            in_flight=IN_FLIGHT,
            node_targets=targets,
            baseline_target=None,
        )
        _, load = bench.start_child(load_main, config)
        sides = [Side(name, process.pid) for name, process, _ in nodes]
        for side in sides:
            measure_round(Side(side.name, side.pid), [load], 1.5)
        for round_number in range(args.rounds):
            shift = round_number % len(sides)
            for side in sides[shift:] + sides[:shift]:
                measure_round(side, [load], 0.5, args.seconds)
        _report(sides)
        if args.threads:
            print("\nper thread, one more round each, no profiler:")
            for (name, _, conn), side in zip(nodes, sides, strict=True):
                began = time.perf_counter()
                conn.send(("mark",))
                probe_side = Side(name, side.pid)
                measure_round(probe_side, [load], 0.5, args.seconds)
                conn.send(("threads",))
                threads, counters = conn.recv()
                calls = probe_side.rates[0] * (time.perf_counter() - began)
                commits = counters.get("nonce_batches_committed", 0)
                items = (
                    counters.get("nonces_claimed", 0)
                    + counters.get("nonces_refused", 0)
                    + counters.get("log_entries_appended", 0)
                )
                print(
                    f"  {name}: {probe_side.rates[0]:,.0f} calls/s; group commits "
                    f"{commits / calls:.3f} per call, {items / max(commits, 1):.1f} items each"
                )
                _print_threads(threads, calls)
        if args.perf:
            print("\nunder perf record, one more round each:")
            kept = Path(args.perf_dir) if args.perf_dir else root
            kept.mkdir(parents=True, exist_ok=True)
            for side in sides:
                _perf_round(side, load, args.seconds, kept / f"{side.name}.perf", 14)
        if args.profile:
            index = [name for name, _, _ in nodes].index(args.profile)
            name, _, conn = nodes[index]
            stats_path = root / "profile.pstats"
            began = time.perf_counter()
            conn.send(("profile_on",))
            profiled = Side(name, sides[index].pid)
            measure_round(profiled, [load], 0.5, args.seconds * 2)
            conn.send(("profile_off", str(stats_path)))
            threads = conn.recv()
            calls = profiled.rates[0] * (time.perf_counter() - began)
            print(f"\n{name} under cProfile ({calls:,.0f} calls, about):")
            _print_threads(threads, calls)
            for label, path in (
                ("event loop", stats_path),
                ("writer", Path(f"{stats_path}.writer")),
            ):
                if not path.exists():
                    continue
                out = io.StringIO()
                stats = pstats.Stats(str(path), stream=out)
                print(f"\n== {label} thread ==")
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
