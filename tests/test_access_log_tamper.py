"""Tampered access logs are caught: by `sseaun node audit verify` on the node's own database and
by the partners that witness its checkpoints (spec LOG-7, LOG-10, LOG-11, LOG-12).

Three real nodes witness each other every half second. Then each log is altered the way a
dishonest operator (who holds the log key and the database) might: an entry edited or removed
and the whole tree recomputed so the database agrees with itself, or a checkpoint signed for a
forked tree. The database alone cannot show a history rewritten that thoroughly; the partners,
who cosigned the old checkpoints, can. Cruder edits are caught by audit verify.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sseaun.sdk.core import (
    Checkpoint,
    ProtocolError,
    access_log,
    merkle,
    parse_signed_note,
    sign_checkpoint,
    verify_cosignature,
)
from sseaun.v1.access_log_pb2 import AccessLogEntry
from tests.live_network import (
    NETWORK,
    LiveNetwork,
    build,
    http_json,
    keys_of,
    node_client,
    wait_for,
)

pytestmark = pytest.mark.timeout(300)
YNU, CHULA, DU = "ynu.edu.cn", "chula.ac.th", "du.ac.bd"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    net = build(tmp_path_factory.mktemp("tamper"))
    for node in net.nodes.values():
        node.configure(
            **{"log.checkpoint_interval_seconds": 0.5, "log.witness_interval_seconds": 0.5}
        )
    started = list(net.nodes.values())
    try:
        for node in started:
            node.start()
        yield net
    finally:
        for node in started:
            if node.alive:
                node.stop()


def _database(network: LiveNetwork, institution: str) -> Path:
    return network.nodes[institution].folder / "node.db"


def _cosigned_by_all(network: LiveNetwork, institution: str) -> bool:
    with node_client(network, institution) as client:
        note = parse_signed_note(client.get_checkpoint().checkpoint)
    for witness in set(network.nodes) - {institution}:
        try:
            verify_cosignature(note, witness, keys_of(network, witness).log.public_key)
        except ProtocolError:
            return False
    return True


def _audit(network: LiveNetwork, institution: str) -> subprocess.CompletedProcess[str]:
    config = network.nodes[institution].config
    return subprocess.run(
        [sys.executable, "-m", "sseaun.sdk.cli", "node", "audit", "verify",
         "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _rewrite_history(database: Path, log: str, index: int, *, remove: bool) -> None:
    """Edit (or remove) entry index and recompute the whole tree, as a careful forger would:
    the database then agrees with itself. The checkpoints it signed before are deleted."""
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        rows = conn.execute(
            "SELECT e.idx, e.entry, k.key FROM log_entries AS e LEFT JOIN log_entry_keys AS k"
            " ON k.log = e.log AND k.idx = e.idx WHERE e.log = ? ORDER BY e.idx",
            (log,),
        ).fetchall()
        entries = [(bytes(entry), bytes(key) if key else None) for _, entry, key in rows]
        if remove:
            del entries[index]
        else:
            edited = AccessLogEntry.FromString(entries[index][0])
            edited.caller = "nobody.example"  # hide who called
            entries[index] = (edited.SerializeToString(deterministic=True), entries[index][1])
        for table in ("log_entries", "log_entry_keys", "log_nodes", "log_checkpoints"):
            conn.execute(f"DELETE FROM {table} WHERE log = ?", (log,))
        conn.execute("DELETE FROM log_cosignatures WHERE log = ?", (log,))
        frontier = merkle.TreeFrontier()
        for i, (entry, key) in enumerate(entries):
            conn.execute("INSERT INTO log_entries VALUES (?, ?, ?)", (log, i, entry))
            if key is not None:
                conn.execute("INSERT INTO log_entry_keys VALUES (?, ?, ?)", (log, i, key))
            for level, node_index, digest in frontier.append(merkle.leaf_hash(entry)):
                conn.execute(
                    "INSERT INTO log_nodes VALUES (?, ?, ?, ?)", (log, level, node_index, digest)
                )
        conn.execute("UPDATE log_heads SET size = ? WHERE log = ?", (len(entries), log))


def _caught_by_witnesses(network: LiveNetwork, culprit: str) -> None:
    witnesses = [i for i in network.nodes if i != culprit]

    def warned() -> bool:
        for witness in witnesses:
            _, health = http_json(f"{network.nodes[witness].http}/healthz")
            warnings = health.get("warnings")
            if not isinstance(warnings, dict) or f"log-inconsistent:{culprit}" not in warnings:
                return False
        return True

    wait_for(warned, timeout=60, interval=0.5, what=f"witnesses to catch {culprit}")
    for witness in witnesses:
        with contextlib.closing(sqlite3.connect(_database(network, witness))) as conn:
            kept = conn.execute(
                "SELECT count(*) FROM evidence WHERE kind = 'log-inconsistency' AND detail LIKE ?",
                (f"{culprit}:%",),
            ).fetchone()[0]
        assert kept == 1, f"{witness} kept no evidence against {culprit}"
        metrics = _metrics(network, witness)
        assert "sseaun_log_inconsistencies" in metrics


def _metrics(network: LiveNetwork, institution: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{network.nodes[institution].http}/metrics", timeout=10) as r:
        text: str = r.read().decode()
    return text


def test_logs_are_witnessed_before_anything_is_tampered_with(network: LiveNetwork) -> None:
    for institution in network.nodes:

        def cosigned(i: str = institution) -> bool:
            return _cosigned_by_all(network, i)

        wait_for(cosigned, timeout=60, interval=0.5, what=f"cosignatures of {institution}")
        audit = _audit(network, institution)
        assert audit.returncode == 0, audit.stdout + audit.stderr


def test_crude_edits_are_caught_by_audit_verify(network: LiveNetwork) -> None:
    chula = network.nodes[CHULA]
    chula.stop()
    database = _database(network, CHULA)
    pristine = database.with_suffix(".pristine")
    shutil.copyfile(database, pristine)
    try:
        with contextlib.closing(sqlite3.connect(database)) as conn, conn:
            (entry,) = conn.execute(
                "SELECT entry FROM log_entries WHERE log = ? AND idx = 2", (CHULA,)
            ).fetchone()
            changed = bytes(entry).replace(b"OK", b"NO", 1)
            assert changed != bytes(entry)
            conn.execute(
                "UPDATE log_entries SET entry = ? WHERE log = ? AND idx = 2", (changed, CHULA)
            )
        edited = _audit(network, CHULA)
        assert edited.returncode == 1
        assert "entry 2" in edited.stdout + edited.stderr
        shutil.copyfile(pristine, database)
        with contextlib.closing(sqlite3.connect(database)) as conn, conn:
            conn.execute("DELETE FROM log_entries WHERE log = ? AND idx = 3", (CHULA,))
        removed = _audit(network, CHULA)
        assert removed.returncode == 1
        assert "3" in removed.stdout + removed.stderr
    finally:
        shutil.copyfile(pristine, database)
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        chula.start()
    assert _audit(network, CHULA).returncode == 0


def test_an_edited_history_is_caught_by_the_witnesses(network: LiveNetwork) -> None:
    ynu = network.nodes[YNU]
    ynu.stop()
    _rewrite_history(_database(network, YNU), YNU, 1, remove=False)
    ynu.start()
    _caught_by_witnesses(network, YNU)


def test_a_removed_entry_is_caught_by_the_witnesses(network: LiveNetwork) -> None:
    chula = network.nodes[CHULA]
    chula.stop()
    _rewrite_history(_database(network, CHULA), CHULA, 0, remove=True)
    chula.start()
    _caught_by_witnesses(network, CHULA)


def test_a_checkpoint_forged_for_a_forked_tree_is_caught(network: LiveNetwork) -> None:
    database = _database(network, DU)
    origin = access_log.log_origin(NETWORK, DU)
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as conn, conn:
        (size,) = conn.execute("SELECT size FROM log_heads WHERE log = ?", (DU,)).fetchone()
        forked_root = merkle.node_hash(b"\x00" * 32, b"forked history".ljust(32, b"."))
        note = sign_checkpoint(
            Checkpoint(origin, size, forked_root), origin, keys_of(network, DU).log
        )
        conn.execute("DELETE FROM log_checkpoints WHERE log = ? AND size >= ?", (DU, size))
        conn.execute("DELETE FROM log_cosignatures WHERE log = ? AND size >= ?", (DU, size))
        conn.execute(
            "INSERT INTO log_checkpoints VALUES (?, ?, ?, ?, ?)",
            (DU, size, forked_root, note.text(), 0),
        )
    _caught_by_witnesses(network, DU)
    audit = _audit(network, DU)
    assert audit.returncode == 1
    assert f"checkpoint {size}" in audit.stdout + audit.stderr
