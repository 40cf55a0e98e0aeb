"""SIGKILL in the middle of writing, then restart: nothing acknowledged is lost, nothing half
written is visible, and the interrupted work completes exactly once.

Two writers are killed: `sseaun node import courses` (a generated catalogue of a few thousand
courses, killed once its progress bar has reported some batches) and `sseaun node sync` (killed
once it has reported some committed pages). Each test then opens the store and checks
``PRAGMA integrity_check``, that every batch or page reported done is stored, that what is
stored is a prefix of whole batches or pages (each all-or-nothing), and that a re-run completes
without duplicates — for the sync, resuming from its cursor to the same state as a sync that was
never interrupted.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sseaun.node._peer_sync import cursor_setting
from sseaun.node.store import SqliteStore
from tests.live_network import LiveNetwork, Row, build, sseaun_process, stored_rows

pytestmark = pytest.mark.timeout(120)
YNU, CHULA, DU = "ynu.edu.cn", "chula.ac.th", "du.ac.bd"
COURSES = f"institutions/{YNU}/courses"
ROWS = 4000
BATCH = 100  # the importer's batch size (catalogue.DEFAULT_BATCH_SIZE)
PAGE = 100  # the sync's page size in these tests


def _catalogue(path: Path, rows: int) -> list[str]:
    """A valid course CSV of rows courses; returns the codes in file order."""
    codes = [f"GEN{i:05d}" for i in range(rows)]
    lines = ["code,title:en,title:zh-Hans,credits,credit_scheme,level,languages,isced_f"]
    lines += [
        f"{code},Generated Course {i} on Regional Studies,生成课程{i},{1 + i % 5},cn-credit,"
        f"bachelor,zh-Hans;en,0{312 + i % 3}"
        for i, code in enumerate(codes)
    ]
    path.write_text("\n".join(lines) + "\n")
    return codes


def _kill_when(
    process: subprocess.Popen[bytes], pattern: str, ready: Callable[[re.Match[str]], bool]
) -> tuple[re.Match[str] | None, str]:
    """Read the process's stderr until a match of pattern makes ready true, then SIGKILL it.

    Returns the last match seen before the kill (None if the process ended first) and all of
    stderr. A watchdog kills the process after 60 s whatever happens.
    """
    assert process.stderr is not None
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    text, last = "", None
    try:
        while True:
            chunk = process.stderr.read1(65536)  # type: ignore[attr-defined]
            if not chunk:
                break
            text += chunk.decode(errors="replace")
            matches = list(re.finditer(pattern, text))
            if matches:
                last = matches[-1]
                if ready(last):
                    process.send_signal(signal.SIGKILL)
                    break
    finally:
        watchdog.cancel()
    process.wait(30)
    text += process.stderr.read().decode(errors="replace")
    if process.stdout is not None:
        process.stdout.close()
    process.stderr.close()
    return last, text


def _integrity(database: Path) -> str:
    async def check() -> str:
        async with await SqliteStore.open(database) as store:
            return await store.integrity_check()

    return asyncio.run(check())


def _run(*argv: str) -> tuple[int, str, str]:
    process = sseaun_process(*argv)
    out, err = process.communicate(timeout=120)
    return process.returncode, out.decode(), err.decode()


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    yield build(tmp_path_factory.mktemp("crash"))


@pytest.fixture(scope="module")
def codes(network: LiveNetwork) -> list[str]:
    return _catalogue(network.root / "generated-courses.csv", ROWS)


def test_an_import_killed_mid_way_loses_nothing_and_completes_once(
    network: LiveNetwork, codes: list[str]
) -> None:
    ynu = network.nodes[YNU]
    database = ynu.folder / "node.db"
    file = network.root / "generated-courses.csv"
    argv = ("node", "import", "courses", "--config", str(ynu.config), "--file", str(file))

    process = sseaun_process(*argv)
    last, _ = _kill_when(process, r"batch (\d+)/(\d+)", lambda m: int(m.group(1)) >= 8)
    assert process.returncode == -signal.SIGKILL
    assert last is not None
    reported, total = int(last.group(1)), int(last.group(2))
    assert total == ROWS // BATCH
    assert reported < total, "the import finished before it could be killed"

    assert _integrity(database) == "ok"
    rows = stored_rows(database, COURSES)
    names = [r.name.rpartition("/")[2] for r in rows]
    # Nothing acknowledged is lost: every batch the progress bar reported is stored.
    assert len(names) >= reported * BATCH
    # Nothing half written is visible: the stored courses are whole batches, in file order.
    assert len(names) % BATCH == 0
    assert names == codes[: len(names)]
    assert all(r.version == 1 for r in rows)
    done_before = len(names) // BATCH

    status, out, err = _run(*argv, "--quiet")
    assert status == 0, err
    assert (
        f"{ROWS} row(s), {ROWS - len(names)} new version(s), 0 unchanged, "
        f"{done_before} batch(es) already done" in out
    )
    rows = stored_rows(database, COURSES)
    assert sorted(r.name.rpartition("/")[2] for r in rows) == sorted(codes)
    assert all(r.version == 1 for r in rows)  # each course exactly once, one version
    assert _integrity(database) == "ok"


def _sync_argv(network: LiveNetwork, institution: str) -> tuple[str, ...]:
    config = network.nodes[institution].config
    return ("node", "sync", "--config", str(config), "--peer", YNU, "--page-size", str(PAGE))


def _by_version(rows: list[Row]) -> dict[tuple[str, int], bytes]:
    return {(r.name, r.version): r.envelope for r in rows}


def test_a_sync_killed_mid_way_resumes_from_its_cursor(
    network: LiveNetwork, codes: list[str]
) -> None:
    ynu = network.nodes[YNU]
    source = stored_rows(ynu.folder / "node.db", COURSES)
    if len(source) != ROWS:  # run on its own: import the catalogue first
        status, _, err = _run(
            "node", "import", "courses", "--config", str(ynu.config),
            "--file", str(network.root / "generated-courses.csv"), "--quiet",
        )  # fmt: skip
        assert status == 0, err
        source = stored_rows(ynu.folder / "node.db", COURSES)
    feed = [(r.name, r.version) for r in source]  # ynu.edu.cn's feed order
    copy = network.nodes[CHULA].folder / "node.db"
    ynu.start()  # the importer's database, restarted after its crash
    try:
        process = sseaun_process(*_sync_argv(network, CHULA))
        pattern = (
            rf"sync {re.escape(YNU)} {re.escape(COURSES)}: page (\d+) committed, (\d+) received"
        )
        last, _ = _kill_when(process, pattern, lambda m: int(m.group(1)) >= 6)
        assert process.returncode == -signal.SIGKILL
        assert last is not None
        reported = int(last.group(2))
        assert reported < ROWS, "the sync finished before it could be killed"

        assert _integrity(copy) == "ok"
        rows = stored_rows(copy, COURSES)
        # Every page reported committed is stored, and only whole pages, in feed order.
        assert len(rows) >= reported
        assert len(rows) % PAGE == 0
        assert [(r.name, r.version) for r in rows] == feed[: len(rows)]

        async def cursor() -> bytes | None:
            async with await SqliteStore.open(copy) as store:
                return await store.get_setting(cursor_setting(CHULA, COURSES))

        assert asyncio.run(cursor())

        status, out, err = _run(*_sync_argv(network, CHULA), "--quiet")
        assert status == 0, err
        counts = re.search(
            rf"{re.escape(COURSES)}: (\d+) change\(s\) received, (\d+) stored, (\d+) unchanged, "
            r"0 refused, caught up",
            out,
        )
        assert counts is not None, out
        received, stored, unchanged = map(int, counts.groups())
        # Resumed from the cursor: at most the one page whose cursor the kill cut off again.
        assert received <= ROWS - reported
        assert unchanged <= PAGE
        assert stored == ROWS - len(rows)
        assert received == stored + unchanged

        # The same final state as a sync that was never interrupted (du.ac.bd's).
        status, _, err = _run(*_sync_argv(network, DU), "--quiet")
        assert status == 0, err
    finally:
        ynu.stop()
    resumed = stored_rows(copy, COURSES)
    uninterrupted = stored_rows(network.nodes[DU].folder / "node.db", COURSES)
    assert _by_version(resumed) == _by_version(uninterrupted) == _by_version(source)
    assert [(r.name, r.version) for r in resumed] == feed  # each change exactly once, in order
    assert _integrity(copy) == "ok"
