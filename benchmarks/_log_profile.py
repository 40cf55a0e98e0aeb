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
store's writer thread. The variants are measurements, not proposals: they drop the log.
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
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

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


VARIANTS: dict[str, Callable[[], None]] = {
    "log_free": _log_free,
    "entry_stub": _entry_stub,
    "append_in_memory": _append_in_memory,
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._log_profile")
    parser.add_argument("--variants", default="", help=f"comma-separated; from {list(VARIANTS)}")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.5)
    parser.add_argument("--threads", action="store_true", help="CPU per thread of each node")
    parser.add_argument("--profile", default="", help="cProfile this node (loop and writer)")
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
            for label, path in (("event loop", stats_path), ("writer", Path(f"{stats_path}.writer"))):
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
