"""What an access-log append costs in CPU, without gRPC: a low-noise companion to
``log_append_overhead``.

Not a benchmark (``run.py`` only runs ``bench_*.py``). Usage::

    .venv/bin/python -m benchmarks._log_append_cost [--calls 30000] [--runs 3]
        [--modes none,log,build,suspend]

Each mode runs in a fresh process pinned to one CPU (as the node is in the benchmarks): one
event loop with 64 simulated calls in flight on a fresh ``SqliteStore`` (group commit lingering
5 ms, as node.toml's default), each call doing what a node's ``GetRecord`` does around its log
entry: one Ed25519 verify of a 1.1 KB message, a nonce claim (group commit), then according to
the mode, then one Ed25519 sign. Modes:

* ``none``: nothing more (the log-free node);
* ``log``: ``AccessLog.append`` of a ``GetRecord``-like entry (one record name, the request
  digest), durable before the call ends (the logged node);
* ``build``: only the entry and its key are built (``access_entry``, ``new_entry_key``);
* ``suspend``: the call waits for one turn of the event loop (the second suspension of a
  logged call, without the writer).

Printed per mode and run: process CPU per call, the CPU per call of the event loop and of the
store's writer thread, calls/s and group commits per call. A mode's cost is its CPU per call
minus that of ``none`` in the same run. The numbers are far steadier than the served
benchmark's (no gRPC, no client), but the simulated call is lighter than a real one, so
the in-context penalties of the real node (docs/performance.md) are smaller here.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["main"]

IN_FLIGHT = 64
WARMUP_CALLS = 3_000
LINGER = 0.005  # node.toml's limits.nonce_linger_ms default
MODES = ("none", "log", "build", "suspend")
_CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def _thread_cpu() -> dict[str, float]:
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        name = names.get(int(tid), tid)
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _CLOCK_TICK
    return out


async def _measure(mode: str, calls: int) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )

    from sseaun.node._access_log import AccessLog  # noqa: PLC0415
    from sseaun.node.store import SqliteStore  # noqa: PLC0415
    from sseaun.sdk.core import Ed25519Signer, access_log  # noqa: PLC0415

    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    message = os.urandom(1100)
    signature = private.sign(message)
    digest = hashlib.sha256(message).digest()
    names = ["institutions/ynu.edu.cn/courses/ABC-1234"]
    caller, method = "tester.sseaun-test.example", "/sseaun.v1.RecordService/GetRecord"
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as folder:
        store = await SqliteStore.open(Path(folder) / "node.db", nonce_linger=LINGER)
        log = AccessLog(
            store,
            network_id="sseaun-test",
            institution="ynu.edu.cn",
            signer=Ed25519Signer.generate(),
            clock=lambda: datetime.now(UTC),
        )
        expires = datetime.now(UTC) + timedelta(minutes=30)
        left = [0]

        async def call() -> None:
            public.verify(signature, message)
            if not await store.claim_nonce(os.urandom(32), expires):
                raise RuntimeError("nonce refused")
            if mode == "log":
                await log.append(
                    caller=caller,
                    method=method,
                    purpose=1,
                    outcome="OK",
                    record_names=names,
                    request_digest=digest,
                )
            elif mode == "build":
                access_log.access_entry(
                    log_origin=log.origin,
                    time=datetime.now(UTC),
                    caller=caller,
                    method=method,
                    purpose=1,
                    outcome="OK",
                    record_names=names,
                    entry_key=access_log.new_entry_key(),
                    request_digest=digest,
                )
            elif mode == "suspend":
                turn: asyncio.Future[None] = loop.create_future()
                loop.call_soon(turn.set_result, None)
                await turn
            private.sign(message[:600])

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                await call()

        left[0] = WARMUP_CALLS
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        before_threads, before_commits = _thread_cpu(), store.statistics().nonce_batches_committed
        cpu, wall = time.process_time(), time.perf_counter()
        left[0] = calls
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        threads = _thread_cpu()
        commits = store.statistics().nonce_batches_committed - before_commits
        await store.close()

    def per_call(name: str) -> float:
        return (threads.get(name, 0.0) - before_threads.get(name, 0.0)) / calls * 1e6

    writer = next((n for n in threads if n.startswith("sseaun-store-writer")), "")
    return (
        f"{mode:<8} {cpu / calls * 1e6:7.1f} us CPU/call (event loop {per_call('MainThread'):.1f}, "
        f"writer {per_call(writer):.1f}); {calls / wall:,.0f} calls/s, {cpu / wall:.2f} core; "
        f"{commits / calls:.3f} group commits per call"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._log_append_cost")
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--one", default="", help=argparse.SUPPRESS)  # a child: one mode
    args = parser.parse_args(argv)
    if args.one:
        print(asyncio.run(_measure(args.one, args.calls)), flush=True)
        return 0
    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}")
    cpu = min(os.sched_getaffinity(0))
    for run in range(args.runs):
        print(f"run {run + 1}:")
        for mode in modes:  # one fresh, pinned process per mode and run, in turn
            child = [sys.executable, "-m", "benchmarks._log_append_cost", "--one", mode]
            result = subprocess.run(
                ["taskset", "-c", str(cpu), *child, "--calls", str(args.calls)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            print("  " + (result.stdout.strip() or result.stderr.strip()[-500:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
