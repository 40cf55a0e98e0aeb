"""The ``log_proof_scaling`` half of ``bench_access_log``: proofs from a 10k and a 1M log.

Two SQLite stores are filled through the real store (``SqliteStore.append_log``, concurrent
appends group-committed by the writer thread, exactly as a node's calls append) with realistic
entries made by ``access_log.access_entry``. Proofs are then built through the node's
``AccessLog`` (``inclusion`` and ``consistency``: a size check, then the O(log n) perfect
subtrees of the proof's plan read in one statement on the reader thread), awaited one after
another, in rounds that alternate between the two stores. A store's time per proof is its best
round. Outside the timing, every log's root at full size is checked against
``merkle.root_hash`` over the leaves of the entries appended, and a sample of each round's proofs
is verified with ``merkle.verify_inclusion`` / ``verify_consistency`` against
``AccessLog.root``, so wrong proofs cannot pass for fast ones.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["LOG", "ProofRound", "Scaling", "SizedLog", "fill", "measure"]

LOG = "bench.example"  # the log's name in the store: the institution it belongs to
NETWORK = "bench"
FILL_CHUNK = 1_000  # appends in flight together while filling (one group commit, about)
PROGRESS_EVERY = 100_000
_CALLERS = ("tester.sseaun-test.example", "chula.ac.th", "du.ac.bd", "ynu.edu.cn")
_METHODS = (
    "/sseaun.v1.RecordService/GetRecord",
    "/sseaun.v1.RecordService/GetRecord",
    "/sseaun.v1.RecordService/ListRecords",
    "/sseaun.v1.ManifestService/GetManifest",
)


@dataclass
class ProofRound:
    """One timed round of one log: n inclusion proofs, then n consistency proofs."""

    inclusion_seconds: float
    consistency_seconds: float
    n: int

    @property
    def per_proof(self) -> float:
        return (self.inclusion_seconds + self.consistency_seconds) / (2 * self.n)


@dataclass
class SizedLog:
    """A filled store, the node's AccessLog over it, and what the checks need."""

    size: int
    path: Path
    store: Any  # SqliteStore
    log: Any  # sseaun.node._access_log.AccessLog
    leaves: list[bytes]  # merkle.leaf_hash of every entry appended, in order
    fill_seconds: float
    rounds: list[ProofRound] = field(default_factory=list)
    verified: int = 0  # proofs verified outside the timing
    nodes_per_inclusion: float = 0.0  # stored nodes an inclusion proof reads, mean
    nodes_per_consistency: float = 0.0

    def best(self) -> ProofRound:
        return min(self.rounds, key=lambda r: r.per_proof)

    def disk_bytes(self) -> int:
        """The database file with its WAL and shared-memory files (after close: the file)."""
        suffixes = ("", "-wal", "-shm")
        paths = [self.path.with_name(self.path.name + s) for s in suffixes]
        return sum(p.stat().st_size for p in paths if p.exists())


@dataclass
class Scaling:
    small: SizedLog
    large: SizedLog

    @property
    def ratio(self) -> float:
        """Time per proof at the small size / time per proof at the large size."""
        return self.small.best().per_proof / self.large.best().per_proof


def _entry_maker() -> Callable[[int], tuple[bytes, bytes]]:
    """entry(i) -> (entry bytes, entry key): a varied, realistic access-log entry (140-200 B)."""
    from sseaun.sdk.core import access_log  # noqa: PLC0415
    from sseaun.v1.auth_pb2 import Purpose  # noqa: PLC0415

    origin = access_log.log_origin(NETWORK, LOG)
    start = datetime(2026, 11, 29, tzinfo=UTC)
    purposes = (
        Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
        Purpose.PURPOSE_RECOGNITION,
        Purpose.PURPOSE_CREDENTIAL_VERIFICATION,
    )

    def entry(i: int) -> tuple[bytes, bytes]:
        key = access_log.new_entry_key()
        method = _METHODS[i % len(_METHODS)]
        names = (
            [f"institutions/{LOG}/courses/c{i % 997:04d}"] if method.endswith("GetRecord") else []
        )
        data = access_log.access_entry(
            log_origin=origin,
            time=start + timedelta(milliseconds=3 * i),
            caller=_CALLERS[i % len(_CALLERS)],
            method=method,
            purpose=purposes[i % len(purposes)],
            outcome="NOT_FOUND" if i % 50 == 0 else "OK",
            record_names=names,
            entry_key=key,
            request_digest=os.urandom(32),
        )
        return data, key

    return entry


async def fill(path: Path, size: int, *, progress: str | None = None) -> SizedLog:
    """A new store at path holding size entries, appended FILL_CHUNK at a time concurrently.

    With progress, prints a line on stderr every PROGRESS_EVERY entries.
    """
    from sseaun.node._access_log import AccessLog  # noqa: PLC0415
    from sseaun.node.store import SqliteStore  # noqa: PLC0415
    from sseaun.sdk.core import Ed25519Signer, merkle  # noqa: PLC0415

    make = _entry_maker()
    store = await SqliteStore.open(path)
    try:
        leaves: list[bytes] = []
        began = time.perf_counter()
        for start in range(0, size, FILL_CHUNK):
            batch = [make(i) for i in range(start, min(size, start + FILL_CHUNK))]
            indexes = await asyncio.gather(*(store.append_log(LOG, e, k) for e, k in batch))
            if indexes != list(range(start, start + len(batch))):
                raise RuntimeError(f"appends from {start} got indexes {indexes[:3]}...")
            leaves += [merkle.leaf_hash(e) for e, _ in batch]
            done = start + len(batch)
            if progress and (done % PROGRESS_EVERY == 0 or done == size):
                elapsed = time.perf_counter() - began
                print(
                    f"{progress}: {done:,} of {size:,} entries appended ({elapsed:.0f} s, "
                    f"{done / elapsed:,.0f}/s)",
                    file=sys.stderr,
                    flush=True,
                )
        seconds = time.perf_counter() - began
        log = AccessLog(
            store,
            network_id=NETWORK,
            institution=LOG,
            signer=Ed25519Signer.generate(),
            clock=lambda: datetime.now(UTC),
        )
        if await log.size() != size:
            raise RuntimeError(f"the log holds {await log.size()} entries, not {size}")
    except BaseException:
        await store.close()
        raise
    return SizedLog(size, path, store, log, leaves, seconds)


async def check_root(sized: SizedLog) -> None:
    """The stored tree's root equals the root of the entries appended (computed here)."""
    from sseaun.sdk.core import merkle  # noqa: PLC0415

    if await sized.log.root(sized.size) != merkle.root_hash(sized.leaves):
        raise RuntimeError(f"the stored tree of {sized.size:,} entries has a wrong root")


async def _timed_round(sized: SizedLog, rng: random.Random, n: int, sample: int) -> None:
    """n inclusion then n consistency proofs, one after another; then verify a sample."""
    from sseaun.sdk.core import merkle  # noqa: PLC0415

    size, log = sized.size, sized.log
    indexes = [rng.randrange(size) for _ in range(n)]
    olds = [rng.randint(1, size) for _ in range(n)]
    inclusions: list[tuple[bytes, list[bytes]]] = []
    consistencies: list[list[bytes]] = []
    gc.collect()
    t0 = time.perf_counter()
    for index in indexes:
        inclusions.append(await log.inclusion(index, size))
    t1 = time.perf_counter()
    for old in olds:
        consistencies.append(await log.consistency(old, size))
    t2 = time.perf_counter()
    sized.rounds.append(ProofRound(t1 - t0, t2 - t1, n))

    root = await log.root(size)
    for i in rng.sample(range(n), min(sample, n)):
        index, (leaf, path) = indexes[i], inclusions[i]
        if leaf != sized.leaves[index]:
            raise RuntimeError(f"the leaf hash of entry {index} is not the entry's")
        merkle.verify_inclusion(index, size, sized.leaves[index], path, root)
        old = olds[i]
        merkle.verify_consistency(old, size, await log.root(old), root, consistencies[i])
        sized.verified += 2
    # How many stored nodes a proof reads (the O(log n) the design promises), outside the timing.
    sized.nodes_per_inclusion = sum(
        len(merkle.inclusion_plan(i, size).nodes()) + 1 for i in indexes
    ) / len(indexes)
    sized.nodes_per_consistency = sum(
        len(merkle.consistency_plan(o, size).nodes()) for o in olds
    ) / len(olds)


async def measure(
    root: Path,
    *,
    small: int,
    large: int,
    proofs: int,
    rounds: int,
    sample: int,
    seed: int = 6962,
) -> Scaling:
    """Fill both stores in root, then time proofs in alternating rounds (see the docstring)."""
    logs: list[SizedLog] = []
    try:
        logs.append(await fill(root / f"log-{small}.db", small))
        logs.append(await fill(root / f"log-{large}.db", large, progress="access_log: filling"))
        scaling = Scaling(*logs)
        for sized in logs:
            await check_root(sized)
        rng = random.Random(seed)
        for sized in logs:  # warm-up: connections' statement caches, first pages read
            await _timed_round(sized, rng, max(1, proofs // 10), 0)
            sized.rounds.clear()
        for round_number in range(rounds):
            order = logs if round_number % 2 == 0 else logs[::-1]
            for sized in order:
                await _timed_round(sized, rng, proofs, sample)
        return scaling
    finally:
        for sized in logs:
            await sized.store.close()
