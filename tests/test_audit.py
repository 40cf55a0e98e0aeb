"""Access-log audit (spec LOG-12): proof files and disclosures checked offline, and the node's
`audit verify` and `audit reveal` on a real store, tampered with through SQLite directly."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from sseaun.node._access_log import AccessLog
from sseaun.node._audit import LogReport, load_log_keys, verify_log
from sseaun.node._config import NodeConfig
from sseaun.node.store import SqliteStore
from sseaun.sdk.cli import main
from sseaun.sdk.core import (
    Checkpoint,
    Ed25519Signer,
    Envelope,
    ProtocolError,
    Reason,
    SignedNote,
    access_log,
    cosign,
    envelope_from_json,
    envelope_to_json,
    load_public_pem,
    log_evidence,
    merkle,
    parse_signed_note,
    payload_types,
    public_key_pem,
    sign_checkpoint,
    sign_envelope,
)
from sseaun.v1.access_log_pb2 import AccessLogEntry
from sseaun.v1.auth_pb2 import Purpose
from tests.factories import seeded
from tests.live_network import build, keys_of

NETWORK = "sseaun-test"
YNU, CHULA, DU = "ynu.edu.cn", "chula.ac.th", "du.ac.bd"
ORIGIN = access_log.log_origin(NETWORK, YNU)
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def records_of(index: int) -> list[str]:
    """The records entry index names: rec-a every 5th from 2, rec-b every 3rd."""
    return [name for name, hit in (("rec-a", index % 5 == 2), ("rec-b", index % 3 == 0)) if hit]


# -- an in-memory log -----------------------------------------------------------------------------


@dataclass
class MemoryLog:
    signer: Ed25519Signer
    entries: list[bytes]
    keys: list[bytes]
    witnesses: dict[str, Ed25519Signer]

    @property
    def leaves(self) -> list[bytes]:
        return [merkle.leaf_hash(e) for e in self.entries]

    def note(self, size: int, *, signer: Ed25519Signer | None = None, cosigned: bool = True) -> str:
        checkpoint = Checkpoint(ORIGIN, size, merkle.root_hash(self.leaves[:size]))
        note = sign_checkpoint(checkpoint, ORIGIN, signer or self.signer)
        if cosigned:
            for name, witness in self.witnesses.items():
                note = note.with_signature(cosign(note, name, witness, 1_740_000_000 + size))
        return note.text()

    def inclusion(self, index: int, size: int, **changes: Any) -> str:
        doc = json.loads(
            log_evidence.inclusion_document(
                checkpoint=self.note(size),
                index=index,
                leaf_hash=self.leaves[index],
                hashes=merkle.inclusion_proof(index, self.leaves[:size]),
                entry=self.entries[index],
            )
        )
        doc.update(changes)
        return json.dumps(doc)

    def disclosure(self, record: str, size: int) -> log_evidence.Disclosure:
        items = [
            log_evidence.DisclosedEntry(
                i,
                self.entries[i],
                self.keys[i],
                tuple(merkle.inclusion_proof(i, self.leaves[:size])),
            )
            for i in range(size)
            if access_log.record_in_entry(self.entries[i], self.keys[i], record)
        ]
        return log_evidence.Disclosure(
            record=record,
            recipient="student 42",
            log_origin=ORIGIN,
            disclosed_at=T0,
            checkpoint=self.note(size),
            entries=tuple(items),
        )


def memory_log(size: int = 20, origin: str = ORIGIN) -> MemoryLog:
    entries, keys = [], []
    for i in range(size):
        key = bytes([i]) * 32
        keys.append(key)
        entries.append(
            access_log.access_entry(
                log_origin=origin,
                time=T0 + timedelta(seconds=i),
                caller=CHULA,
                method="/sseaun.v1.RecordService/GetRecord",
                purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
                outcome="OK",
                record_names=records_of(i),
                entry_key=key,
            )
        )
    witnesses = {CHULA: seeded("chula-log"), DU: seeded("du-log")}
    return MemoryLog(seeded("ynu-log"), entries, keys, witnesses)


@pytest.fixture
def mlog() -> MemoryLog:
    return memory_log()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def flip(data: bytes, at: int = -1) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def fails(reason: Reason, words: str, check: Callable[[], object]) -> None:
    with pytest.raises(ProtocolError) as info:
        check()
    assert info.value.reason is reason, info.value
    assert words in info.value.message, info.value.message


# -- inclusion ------------------------------------------------------------------------------------


def test_an_inclusion_proof_verifies_and_names_its_cosigners(mlog: MemoryLog) -> None:
    pub = mlog.signer.public_key
    witnesses = {name: s.public_key for name, s in mlog.witnesses.items()}
    report = log_evidence.check(
        mlog.inclusion(12, 20), log_keys=[pub], witnesses=witnesses, min_witnesses=2
    )
    assert report.kind == "inclusion" and report.entries == (12,) and report.sizes == (20,)
    assert report.summary() == (
        f"inclusion of entry 12 in {ORIGIN} at size 20, cosigned by {CHULA}, {DU}"
    )
    assert report.to_json()["tree_size"] == 20
    # The hash alone (no entry) proves the same leaf; every index of every size verifies.
    without_entry = json.loads(mlog.inclusion(0, 1))
    del without_entry["entry"]
    assert log_evidence.check(json.dumps(without_entry), log_keys=[pub]).entries == (0,)
    for size in (1, 2, 7, 16, 20):
        for index in range(size):
            log_evidence.check(mlog.inclusion(index, size), log_keys=[pub])


def test_an_inclusion_file_is_sorted_utf8_json_with_base64(mlog: MemoryLog) -> None:
    text = log_evidence.inclusion_document(
        checkpoint=mlog.note(3),
        index=1,
        leaf_hash=mlog.leaves[1],
        hashes=merkle.inclusion_proof(1, mlog.leaves[:3]),
    )
    doc = json.loads(text)
    assert list(doc) == sorted(doc) and "entry" not in doc
    assert doc["type"] == "sseaun.log.inclusion/v1" and doc["tree_size"] == 3
    assert base64.b64decode(doc["leaf_hash"]) == mlog.leaves[1]


@pytest.mark.parametrize(
    ("tamper", "reason", "words"),
    [
        (lambda m, d: {"entry": b64(flip(m.entries[12]))}, Reason.PROOF_INVALID, "leaf_hash"),
        (
            lambda m, d: {"entry": b64(flip(m.entries[12])), "leaf_hash": None},
            Reason.PROOF_INVALID,
            "entry 12 is not in the checkpoint's tree",
        ),
        (lambda m, d: {"index": 13}, Reason.PROOF_INVALID, "entry 13 is not in"),
        (
            lambda m, d: {
                "hashes": [b64(flip(base64.b64decode(d["hashes"][0]))), *d["hashes"][1:]]
            },
            Reason.PROOF_INVALID,
            "does not lead to the root",
        ),
        (lambda m, d: {"hashes": d["hashes"][:-1]}, Reason.PROOF_INVALID, "not in the checkpoint"),
        (lambda m, d: {"tree_size": 19}, Reason.PROOF_INVALID, "not the checkpoint's size 20"),
        (
            lambda m, d: {"checkpoint": m.note(20, signer=seeded("mallory"))},
            Reason.KEY_UNKNOWN,
            "not signed by the log's key",
        ),
        (lambda m, d: {"entry": None, "leaf_hash": None}, Reason.MALFORMED, "entry or leaf_hash"),
        (lambda m, d: {"index": "12"}, Reason.MALFORMED, "index"),
        (lambda m, d: {"hashes": ["not base64!"]}, Reason.MALFORMED, "hashes[0]"),
        (lambda m, d: {"type": "sseaun.log.inclusion/v9"}, Reason.MALFORMED, "not an inclusion"),
    ],
)
def test_a_tampered_inclusion_proof_fails(
    mlog: MemoryLog,
    tamper: Callable[[MemoryLog, dict[str, Any]], dict[str, Any]],
    reason: Reason,
    words: str,
) -> None:
    doc = json.loads(mlog.inclusion(12, 20))
    doc.update(tamper(mlog, doc))
    fails(
        reason,
        words,
        lambda: log_evidence.check(json.dumps(doc), log_keys=[mlog.signer.public_key]),
    )


def test_an_entry_of_another_log_is_not_proved_in_this_one() -> None:
    other = memory_log(origin=access_log.log_origin(NETWORK, DU))
    fails(
        Reason.PROOF_INVALID,
        "entry of another log",
        lambda: log_evidence.check(other.inclusion(3, 20), log_keys=[other.signer.public_key]),
    )


def test_witnesses_must_have_cosigned_when_required(mlog: MemoryLog) -> None:
    pub = mlog.signer.public_key
    stranger = {"tester.example": seeded("tester-log").public_key}
    fails(
        Reason.PROOF_INVALID,
        "only 0 of the required 1 witnesses cosigned",
        lambda: log_evidence.check(
            mlog.inclusion(3, 20), log_keys=[pub], witnesses=stranger, min_witnesses=1
        ),
    )
    # A cosignature under the right name by another key does not count.
    wrong = {CHULA: mlog.witnesses[DU].public_key, DU: mlog.witnesses[DU].public_key}
    fails(
        Reason.PROOF_INVALID,
        "only 1 of the required 2 witnesses cosigned",
        lambda: log_evidence.check(
            mlog.inclusion(3, 20), log_keys=[pub], witnesses=wrong, min_witnesses=2
        ),
    )
    doc = json.loads(mlog.inclusion(3, 20))
    doc["checkpoint"] = mlog.note(20, cosigned=False)
    report = log_evidence.check(json.dumps(doc), log_keys=[pub], witnesses=wrong)
    assert report.witnesses == ()


def test_any_of_several_log_keys_may_have_signed(mlog: MemoryLog) -> None:
    keys = [seeded("old-log-key").public_key, mlog.signer.public_key]
    assert log_evidence.check(mlog.inclusion(5, 9), log_keys=keys).sizes == (9,)
    fails(
        Reason.KEY_UNKNOWN, "no key", lambda: log_evidence.check(mlog.inclusion(5, 9), log_keys=[])
    )


# -- consistency ----------------------------------------------------------------------------------


def consistency(mlog: MemoryLog, old: int, new: int, **changes: Any) -> str:
    doc = json.loads(
        log_evidence.consistency_document(
            old_checkpoint=mlog.note(old),
            checkpoint=mlog.note(new),
            hashes=merkle.consistency_proof(old, mlog.leaves[:new]),
        )
    )
    doc.update(changes)
    return json.dumps(doc)


def test_a_consistency_proof_verifies(mlog: MemoryLog) -> None:
    pub = mlog.signer.public_key
    for old, new in [(1, 20), (7, 13), (8, 16), (20, 20), (3, 4)]:
        report = log_evidence.check(consistency(mlog, old, new), log_keys=[pub])
        assert report.kind == "consistency" and report.sizes == (old, new)
    assert log_evidence.check(consistency(mlog, 7, 13), log_keys=[pub]).summary() == (
        f"consistency of {ORIGIN} from size 7 to 13"
    )


def test_a_tampered_consistency_proof_fails(mlog: MemoryLog) -> None:
    pub = mlog.signer.public_key
    doc = json.loads(consistency(mlog, 7, 13))
    bad = [b64(flip(base64.b64decode(doc["hashes"][0]))), *doc["hashes"][1:]]
    for text, reason, words in [
        (consistency(mlog, 7, 13, hashes=bad), Reason.PROOF_INVALID, "size 7 to 13"),
        (consistency(mlog, 7, 13, hashes=doc["hashes"][1:]), Reason.PROOF_INVALID, "link"),
        (
            consistency(mlog, 7, 13, old_checkpoint=mlog.note(13), checkpoint=mlog.note(7)),
            Reason.PROOF_INVALID,
            "larger",
        ),
        (
            consistency(mlog, 7, 13, checkpoint=mlog.note(13, signer=seeded("mallory"))),
            Reason.KEY_UNKNOWN,
            "checkpoint",
        ),
    ]:
        fails(reason, words, partial(log_evidence.check, text, log_keys=[pub]))
    # A fork: another log signed under the same key and origin is not consistent.
    fork = memory_log()
    fork.entries[3] = flip(fork.entries[3])
    forked = consistency(mlog, 7, 13, checkpoint=fork.note(13))
    fails(Reason.PROOF_INVALID, "link", lambda: log_evidence.check(forked, log_keys=[pub]))


# -- disclosures ----------------------------------------------------------------------------------


def test_a_disclosure_verifies_and_names_the_record_and_recipient(mlog: MemoryLog) -> None:
    envelope = log_evidence.sign_disclosure(mlog.disclosure("rec-a", 20), mlog.signer)
    assert envelope.payload_type == payload_types.LOG_DISCLOSURE
    payload = json.loads(envelope.payload)
    assert payload["type"] == "sseaun.log.disclosure/v1" and list(payload) == sorted(payload)
    assert payload["disclosed_at"] == "2025-03-01T09:00:00Z"
    witnesses = {CHULA: mlog.witnesses[CHULA].public_key}
    for document in (envelope, envelope_to_json(envelope)):
        report = log_evidence.check(
            document, log_keys=[mlog.signer.public_key], witnesses=witnesses, min_witnesses=1
        )
        assert report.entries == (2, 7, 12, 17)
        assert (report.record, report.recipient) == ("rec-a", "student 42")
    assert report.summary() == (
        f"disclosure of 4 entries (2, 7, 12, 17) about rec-a to student 42 from {ORIGIN} at "
        f"size 20, cosigned by {CHULA}"
    )
    parsed = log_evidence.parse_disclosure(envelope.payload)
    assert parsed == mlog.disclosure("rec-a", 20)


def resign(mlog: MemoryLog, disclosure: log_evidence.Disclosure) -> Envelope:
    return log_evidence.sign_disclosure(disclosure, mlog.signer)


def test_a_tampered_disclosure_fails(mlog: MemoryLog) -> None:
    pub = mlog.signer.public_key
    good = mlog.disclosure("rec-a", 20)
    first = good.entries[0]

    def check(envelope: Envelope) -> Callable[[], object]:
        return lambda: log_evidence.check(envelope, log_keys=[pub])

    # Another record: the keys open no commitment to it.
    fails(
        Reason.PROOF_INVALID,
        "entry 2 does not concern",
        check(resign(mlog, replace(good, record="rec-c"))),
    )
    # Another key for an entry.
    wrong_key = replace(first, key=mlog.keys[3])
    fails(
        Reason.PROOF_INVALID,
        "entry 2 does not concern",
        check(resign(mlog, replace(good, entries=(wrong_key, *good.entries[1:])))),
    )
    # An entry that does not concern the record, even with its own key (entry 3 names rec-b).
    other = log_evidence.DisclosedEntry(
        3, mlog.entries[3], mlog.keys[3], tuple(merkle.inclusion_proof(3, mlog.leaves))
    )
    fails(
        Reason.PROOF_INVALID,
        "entry 3 does not concern",
        check(resign(mlog, replace(good, entries=(first, other)))),
    )
    # A changed entry, a wrong index, a changed hash.
    for item in (
        replace(first, entry=flip(first.entry)),
        replace(first, index=3),
        replace(first, hashes=(flip(first.hashes[0]), *first.hashes[1:])),
    ):
        fails(
            Reason.PROOF_INVALID,
            "is not in the checkpoint's tree",
            check(resign(mlog, replace(good, entries=(item,)))),
        )
    # The signature changed, or the payload under it.
    envelope = resign(mlog, good)
    envelope.signatures[0].sig = flip(envelope.signatures[0].sig)
    fails(Reason.PROOF_INVALID, "signature does not verify", check(envelope))
    envelope = resign(mlog, good)
    envelope.payload = envelope.payload.replace(b"student 42", b"student 43")
    fails(Reason.PROOF_INVALID, "signature does not verify", check(envelope))
    # Signed by another key; a checkpoint by another key; a checkpoint of another log.
    stranger = log_evidence.sign_disclosure(good, seeded("mallory"))
    fails(Reason.KEY_UNKNOWN, "not signed by a given log key", check(stranger))
    foreign = replace(good, checkpoint=mlog.note(20, signer=seeded("mallory")))
    fails(Reason.KEY_UNKNOWN, "checkpoint", check(resign(mlog, foreign)))
    elsewhere = replace(good, log_origin=access_log.log_origin(NETWORK, DU))
    fails(Reason.PROOF_INVALID, "another log", check(resign(mlog, elsewhere)))
    # Entries out of order; another payload type; a payload that is not a disclosure.
    swapped = replace(good, entries=(good.entries[1], good.entries[0]))
    fails(Reason.MALFORMED, "increasing", check(resign(mlog, swapped)))
    typed = sign_envelope(envelope.payload, "application/json", [mlog.signer])
    fails(Reason.MALFORMED, "not a log disclosure", check(typed))
    junk = sign_envelope(b'{"type": "other"}', payload_types.LOG_DISCLOSURE, [mlog.signer])
    fails(Reason.MALFORMED, "type", check(junk))


def test_a_disclosure_of_entries_from_another_log_fails() -> None:
    other = memory_log(origin=access_log.log_origin(NETWORK, DU))
    disclosure = replace(other.disclosure("rec-a", 20), log_origin=ORIGIN)
    envelope = log_evidence.sign_disclosure(disclosure, other.signer)
    fails(
        Reason.PROOF_INVALID,
        "entry 2 is an entry of another log",
        lambda: log_evidence.check(envelope, log_keys=[other.signer.public_key]),
    )


def test_an_empty_disclosure_verifies(mlog: MemoryLog) -> None:
    envelope = log_evidence.sign_disclosure(mlog.disclosure("nobody", 20), mlog.signer)
    report = log_evidence.check(envelope, log_keys=[mlog.signer.public_key])
    assert report.entries == () and "disclosure of 0 entries about nobody" in report.summary()


# -- sseaun audit check-proof ---------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def pem(path: Path, signer: Ed25519Signer) -> str:
    path.write_bytes(public_key_pem(signer.public_key))
    return str(path)


def test_check_proof_exit_codes_and_summary(
    tmp_path: Path, mlog: MemoryLog, capsys: pytest.CaptureFixture[str]
) -> None:
    key = pem(tmp_path / "ynu-log.pem", mlog.signer)
    chula = pem(tmp_path / "chula-log.pem", mlog.witnesses[CHULA])
    du = pem(tmp_path / "du-log.pem", mlog.witnesses[DU])
    proof = tmp_path / "proof.json"
    proof.write_text(mlog.inclusion(12, 20))
    witnesses = (f"--witness={CHULA}={chula}", f"--witness={DU}={du}")
    status, out, err = run(
        capsys, "audit", "check-proof", str(proof), "--log-key", key, *witnesses,
        "--min-witnesses", "2",
    )  # fmt: skip
    assert (status, err) == (0, "")
    assert out == f"ok: inclusion of entry 12 in {ORIGIN} at size 20, cosigned by {CHULA}, {DU}\n"
    status, out, _ = run(capsys, "audit", "check-proof", str(proof), "--log-key", key, "--json")
    assert status == 0
    assert json.loads(out) == {
        "ok": True, "kind": "inclusion", "origin": ORIGIN, "entries": [12], "tree_size": 20,
        "witnesses": [],
    }  # fmt: skip

    # Does not verify: exit 1, one line on stderr.
    doc = json.loads(proof.read_text())
    doc["index"] = 11
    proof.write_text(json.dumps(doc))
    status, out, err = run(capsys, "audit", "check-proof", str(proof), "--log-key", key)
    assert status == 1 and out == ""
    assert err.startswith("invalid: PROOF_INVALID: entry 11 is not in") and err.count("\n") == 1
    status, out, err = run(capsys, "audit", "check-proof", str(proof), "--log-key", chula)
    assert status == 1 and err.startswith("invalid: KEY_UNKNOWN: ")
    status, out, _ = run(capsys, "audit", "check-proof", str(proof), "--log-key", key, "--json")
    assert status == 1 and json.loads(out)["reason"] == "PROOF_INVALID"
    proof.write_text(mlog.inclusion(12, 20))
    status, _, err = run(
        capsys, "audit", "check-proof", str(proof), "--log-key", key,
        f"--witness={CHULA}={du}", "--min-witnesses", "1",
    )  # fmt: skip
    assert status == 1 and "only 0 of the required 1 witnesses cosigned" in err
    (tmp_path / "junk.json").write_text("not json")
    status, _, err = run(
        capsys, "audit", "check-proof", str(tmp_path / "junk.json"), "--log-key", key
    )
    assert status == 1 and err == "invalid: MALFORMED: not JSON\n"

    # Bad input: exit 2.
    for argv in (
        (str(tmp_path / "missing.json"), "--log-key", key),
        (str(proof), "--log-key", str(proof)),
        (str(proof), "--log-key", key, "--witness", "no-equals-sign"),
        (str(proof), "--log-key", key, f"--witness={CHULA}={chula}", "--min-witnesses", "2"),
        (str(proof), "--log-key", key, f"--witness={CHULA}={chula}", f"--witness={CHULA}={du}"),
    ):
        status, out, err = run(capsys, "audit", "check-proof", *argv)
        assert status == 2 and out == "" and err.startswith("error: "), argv
    with pytest.raises(SystemExit) as usage:
        main(["audit", "check-proof", str(proof)])  # --log-key is required
    assert usage.value.code == 2


def test_check_proof_reads_consistency_proofs_and_disclosures(
    tmp_path: Path, mlog: MemoryLog, capsys: pytest.CaptureFixture[str]
) -> None:
    key = pem(tmp_path / "ynu-log.pem", mlog.signer)
    (tmp_path / "c.json").write_text(consistency(mlog, 5, 20))
    status, out, _ = run(capsys, "audit", "check-proof", str(tmp_path / "c.json"), "--log-key", key)
    assert (status, out) == (0, f"ok: consistency of {ORIGIN} from size 5 to 20\n")
    envelope = log_evidence.sign_disclosure(mlog.disclosure("rec-b", 20), mlog.signer)
    (tmp_path / "d.json").write_text(envelope_to_json(envelope))
    status, out, _ = run(capsys, "audit", "check-proof", str(tmp_path / "d.json"), "--log-key", key)
    assert status == 0
    assert out.startswith("ok: disclosure of 7 entries (0, 3, 6, 9, 12, 15, 18) about rec-b")


# -- the node: audit verify and audit reveal on a real store --------------------------------------

ENTRIES = 40
CHECKPOINTS = (10, 25, ENTRIES)


@dataclass
class NodeCopy:
    folder: Path
    config: Path
    database: Path
    log_key: Path
    chula_key: Path

    @contextlib.contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        with contextlib.closing(sqlite3.connect(self.database)) as conn, conn:
            yield conn


def clock() -> Callable[[], datetime]:
    ticks = iter(range(1_000_000))
    return lambda: T0 + timedelta(seconds=next(ticks))


async def fill(config: NodeConfig, ynu_log: Ed25519Signer, chula_log: Ed25519Signer) -> None:
    async with await SqliteStore.open(config.database) as store:
        log = AccessLog(store, network_id=NETWORK, institution=YNU, signer=ynu_log, clock=clock())
        for i in range(ENTRIES):
            await log.append(
                caller=CHULA,
                method="/sseaun.v1.RecordService/GetRecord",
                purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
                outcome="OK",
                record_names=records_of(i),
                request_digest=bytes([i]) * 32,
            )
            if i + 1 in CHECKPOINTS:
                stored = await log.sign()
                if stored.size > 10:  # chula witnessed the later two
                    note = parse_signed_note(stored.note)
                    line = cosign(note, CHULA, chula_log, 1_740_000_000 + stored.size)
                    assert await store.add_cosignature(YNU, stored.size, CHULA, line.line())


@pytest.fixture(scope="module")
def filled_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ynu's node folder of a built test network, its log filled and checkpointed (not served)."""
    network = build(tmp_path_factory.mktemp("net"))
    node = network.nodes[YNU]
    config = NodeConfig.load(node.config)
    asyncio.run(fill(config, keys_of(network, YNU).log, keys_of(network, CHULA).log))
    shutil.copy(network.keys(CHULA) / "log.public.pem", node.folder / "chula-log.public.pem")
    return node.folder


@pytest.fixture
def node(filled_node: Path, tmp_path: Path) -> NodeCopy:
    """A fresh copy of the filled node, to tamper with."""
    folder = tmp_path / "ynu"
    shutil.copytree(filled_node, folder)
    return NodeCopy(
        folder,
        folder / "node.toml",
        NodeConfig.load(folder / "node.toml").database,
        folder / "keys" / YNU / "log.public.pem",
        folder / "chula-log.public.pem",
    )


def verify(node: NodeCopy, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    status, out, _ = run(capsys, "node", "audit", "verify", "--config", str(node.config), *extra)
    return status, out


LOG_TABLES = ("log_entries", "log_entry_keys", "log_nodes", "log_heads", "log_checkpoints",
              "log_cosignatures")  # fmt: skip


def log_rows(node: NodeCopy) -> list[list[Any]]:
    with node.db() as conn:
        return [sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in LOG_TABLES]


def test_verify_passes_on_an_untouched_log_and_writes_nothing(
    node: NodeCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    before = log_rows(node)
    status, out = verify(node, capsys)
    assert (status, out) == (0, f"ok: {YNU}: 40 entries, 3 checkpoints, 2 cosignatures\n")
    status, out = verify(node, capsys, "--json")
    report = json.loads(out)
    assert status == 0 and report["ok"] and report["warnings"] == []
    assert report["logs"] == [
        {"log": YNU, "ok": True, "entries": 40, "head": 40, "checkpoints": 3, "cosignatures": 2,
         "problems": [], "more_problems": 0},
    ]  # fmt: skip
    assert log_rows(node) == before


async def verify_in_chunks(node: NodeCopy, chunk: int) -> tuple[LogReport, list[int]]:
    config = NodeConfig.load(node.config)
    seen: list[int] = []
    async with await SqliteStore.open(node.database) as store:
        keys = await load_log_keys(config, store, [YNU])
        report = await verify_log(
            store, YNU, origin=ORIGIN, keys=keys, chunk=chunk,
            progress=lambda log, done, total: seen.append(done),
        )  # fmt: skip
    return report, seen


def test_verify_reads_in_chunks_and_reports_progress(node: NodeCopy) -> None:
    report, seen = asyncio.run(verify_in_chunks(node, 7))
    assert report.ok and report.entries == 40 and seen == [7, 14, 21, 28, 35, 40]
    with node.db() as conn:
        (entry,) = conn.execute("SELECT entry FROM log_entries WHERE idx = 13").fetchone()
        conn.execute("UPDATE log_entries SET entry = ? WHERE idx = 13", (flip(entry),))
        conn.execute("DELETE FROM log_entries WHERE idx = 20")
    for chunk in (1, 3, 16, 100):
        report, _ = asyncio.run(verify_in_chunks(node, chunk))
        assert report.problems == [
            "entry 13: leaf hash does not match the stored tree",
            "entry 20 missing",
            "log_heads says 40 but 39 entries are stored",
            "checkpoint 25: root does not match the entries",
            "checkpoint 40: root does not match the entries",
        ], chunk


def test_verify_finds_a_changed_entry(node: NodeCopy, capsys: pytest.CaptureFixture[str]) -> None:
    with node.db() as conn:
        (entry,) = conn.execute("SELECT entry FROM log_entries WHERE idx = 12").fetchone()
        conn.execute("UPDATE log_entries SET entry = ? WHERE idx = 12", (flip(entry),))
    status, out = verify(node, capsys)
    assert status == 1
    assert out.splitlines() == [
        f"{YNU}: entry 12: leaf hash does not match the stored tree",
        f"{YNU}: checkpoint 25: root does not match the entries",
        f"{YNU}: checkpoint 40: root does not match the entries",
        f"invalid: {YNU}: 3 problem(s) in 40 entries, 3 checkpoints, 2 cosignatures",
    ]


def test_verify_finds_a_deleted_entry(node: NodeCopy, capsys: pytest.CaptureFixture[str]) -> None:
    with node.db() as conn:
        conn.execute("DELETE FROM log_entries WHERE idx = 7")
    status, out = verify(node, capsys)
    assert status == 1
    assert f"{YNU}: entry 7 missing\n" in out
    assert f"{YNU}: log_heads says 40 but 39 entries are stored\n" in out
    # The stored leaf stands in for it: the rest of the tree and the roots still check.
    assert "root does not match" not in out and "leaf hash" not in out


def test_verify_finds_a_deleted_entry_and_leaf(
    node: NodeCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    with node.db() as conn:
        conn.execute("DELETE FROM log_entries WHERE idx = 30")
        conn.execute("DELETE FROM log_nodes WHERE level = 0 AND idx = 30")
    status, out = verify(node, capsys)
    assert status == 1
    assert f"{YNU}: entry 30 missing\n" in out
    assert "entry 30: no leaf hash is stored either" in out
    assert f"{YNU}: checkpoint 40: cannot be checked: the tree cannot be rebuilt\n" in out
    assert "checkpoint 25" not in out


def test_verify_finds_a_dropped_last_entry(
    node: NodeCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    with node.db() as conn:
        conn.execute("DELETE FROM log_entries WHERE idx = 39")
    status, out = verify(node, capsys)
    assert status == 1
    assert out.splitlines()[:2] == [
        f"{YNU}: log_heads says 40 but 39 entries are stored",
        f"{YNU}: checkpoint 40: covers 40 entries but the stored ones end at 39",
    ]


def test_verify_finds_a_changed_subtree_hash(
    node: NodeCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    with node.db() as conn:
        conn.execute("UPDATE log_nodes SET hash = zeroblob(32) WHERE level = 2 AND idx = 2")
        conn.execute("DELETE FROM log_nodes WHERE level = 1 AND idx = 6")
    status, out = verify(node, capsys)
    assert status == 1
    assert out.splitlines()[:2] == [
        f"{YNU}: entries 12-13: the stored tree lacks their subtree",
        f"{YNU}: entries 8-11: the stored subtree hash does not match the entries",
    ]


def test_verify_finds_replaced_checkpoints(
    node: NodeCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    other_root = bytes(32)
    foreign = sign_checkpoint(Checkpoint(ORIGIN, 10, other_root), ORIGIN, seeded("mallory"))
    with node.db() as conn:
        (root,) = conn.execute("SELECT root FROM log_checkpoints WHERE size = 40").fetchone()
        # A rewritten root (the note still says the old one) ...
        conn.execute("UPDATE log_checkpoints SET root = ? WHERE size = 40", (flip(root),))
        # ... and a root and note signed by another key.
        conn.execute(
            "UPDATE log_checkpoints SET root = ?, note = ? WHERE size = 10",
            (other_root, foreign.text()),
        )
    status, out = verify(node, capsys)
    assert status == 1
    lines = out.splitlines()
    assert lines[:-1] == [
        f"{YNU}: checkpoint 10: root does not match the entries",
        f"{YNU}: checkpoint 10: signature does not verify",
        f"{YNU}: checkpoint 40: root does not match the entries",
        f"{YNU}: checkpoint 40: the signed note is not of this checkpoint",
    ]


def test_verify_checks_cosignatures(node: NodeCopy, capsys: pytest.CaptureFixture[str]) -> None:
    forged = cosign(SignedNote(b"x\n1\n" + b"A" * 44 + b"\n", ()), CHULA, seeded("not-chula"), 5)
    with node.db() as conn:
        conn.execute("UPDATE log_cosignatures SET line = ? WHERE size = 25", (forged.line(),))
        conn.execute(
            "INSERT INTO log_cosignatures (log, size, witness, line, recorded_at) "
            "VALUES (?, 40, 'nobody.example', ?, 0)",
            (YNU, forged.line().replace(CHULA, "nobody.example")),
        )
    status, out = verify(node, capsys)
    assert status == 1
    assert out.splitlines()[:-1] == [
        f"{YNU}: checkpoint 25: cosignature by {CHULA} does not verify",
        f"{YNU}: checkpoint 40: cosignature by nobody.example: no LOG key of nobody.example is "
        "known",
    ]


def test_verify_finds_a_head_that_does_not_match(
    node: NodeCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    with node.db() as conn:
        conn.execute("UPDATE log_heads SET size = 41")
    status, out = verify(node, capsys)
    assert (status, out.splitlines()[0]) == (
        1,
        f"{YNU}: log_heads says 41 but 40 entries are stored",
    )


def expected_entries(record: str, erased: frozenset[int] = frozenset()) -> tuple[int, ...]:
    return tuple(i for i in range(ENTRIES) if record in records_of(i) and i not in erased)


def test_reveal_discloses_exactly_the_entries_about_a_record(
    node: NodeCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = node.folder / "out" / "rec-a.json"
    status, out, err = run(
        capsys, "node", "audit", "reveal", "--config", str(node.config), "--record", "rec-a",
        "--to", "student 42", "--out", str(out_file),
    )  # fmt: skip
    assert status == 0, err
    assert out.startswith(f"disclosed 8 entries of {YNU}'s access log about rec-a to student 42")
    assert out.rstrip().endswith("(checkpoint size 40); logged as entry 40")
    assert out_file.stat().st_mode & 0o777 == 0o600
    envelope = envelope_from_json(out_file.read_bytes())
    log_key = node.log_key.read_bytes()
    report = log_evidence.check(
        envelope,
        log_keys=[load_public_pem(log_key)],
        witnesses={CHULA: load_public_pem(node.chula_key.read_bytes())},
        min_witnesses=1,
    )
    assert report.entries == expected_entries("rec-a") and report.sizes == (40,)
    assert (report.record, report.recipient, report.witnesses) == ("rec-a", "student 42", (CHULA,))
    status, out, _ = run(
        capsys, "audit", "check-proof", str(out_file), "--log-key", str(node.log_key),
        f"--witness={CHULA}={node.chula_key}", "--min-witnesses", "1",
    )  # fmt: skip
    assert status == 0
    assert out.startswith("ok: disclosure of 8 entries (2, 7, 12, 17, 22, 27, 32, 37) about rec-a")
    assert out.rstrip().endswith(f"at size 40, cosigned by {CHULA}")

    # The disclosure was logged (LOG-3) as a local action about the record ...
    async def logged() -> tuple[int, list[Any]]:
        async with await SqliteStore.open(node.database) as store:
            return await store.log_size(YNU), await store.log_entries(YNU, 40, 10)

    size, rows = asyncio.run(logged())
    assert size == 41
    parsed = AccessLogEntry.FromString(rows[0].entry)
    assert (parsed.caller, parsed.method, parsed.purpose) == (
        "local:cli", "local:audit-reveal", Purpose.PURPOSE_AUDIT,
    )  # fmt: skip
    assert access_log.record_in_entry(rows[0].entry, rows[0].key, "rec-a")
    # ... so the next disclosure (through `sseaun audit reveal`) includes that entry, in a new
    # checkpoint the node signs for it; the log still verifies.
    second = node.folder / "second.json"
    status, out, err = run(
        capsys, "audit", "reveal", "--config", str(node.config), "--record", "rec-a",
        "--to", "auditor", "--out", str(second), "--institution", YNU,
    )  # fmt: skip
    assert status == 0, err
    assert "(checkpoint size 41); logged as entry 41" in out
    report = log_evidence.check(second.read_bytes(), log_keys=[load_public_pem(log_key)])
    assert report.entries == (*expected_entries("rec-a"), 40) and report.sizes == (41,)
    assert verify(node, capsys) == (0, f"ok: {YNU}: 42 entries, 4 checkpoints, 2 cosignatures\n")


def test_reveal_leaves_out_entries_whose_keys_are_erased(
    node: NodeCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    erased = frozenset({0, 9, 10})

    async def erase() -> None:
        async with await SqliteStore.open(node.database) as store:
            assert await store.erase_log_keys(YNU, erased) == 3

    asyncio.run(erase())
    out_file = node.folder / "rec-b.json"
    argv = ("node", "audit", "reveal", "--config", str(node.config), "--to", "student 7")
    status, out, _ = run(capsys, *argv, "--record", "rec-b", "--out", str(out_file))
    assert status == 0 and out.startswith("disclosed 12 entries")
    report = log_evidence.check(
        out_file.read_bytes(), log_keys=[load_public_pem(node.log_key.read_bytes())]
    )
    assert report.entries == expected_entries("rec-b", erased)
    assert not {0, 9} & set(report.entries)
    # A record no entry names: an empty (still signed and verifiable) disclosure.
    status, out, _ = run(capsys, *argv, "--record", "rec-z", "--out", str(out_file))
    assert status == 0 and out.startswith("disclosed 0 entries")
    assert (
        log_evidence.check(
            out_file.read_bytes(), log_keys=[load_public_pem(node.log_key.read_bytes())]
        ).entries
        == ()
    )


def test_reveal_refuses_bad_input(node: NodeCopy, capsys: pytest.CaptureFixture[str]) -> None:
    base = ("node", "audit", "reveal", "--config", str(node.config), "--record", "rec-a")
    out_file = str(node.folder / "x.json")
    status, _, err = run(capsys, *base, "--to", "s", "--out", out_file, "--institution", DU)
    assert status == 2 and err == f"error: this node does not serve {DU}\n"
    status, _, err = run(capsys, *base, "--to", " ", "--out", out_file)
    assert status == 2 and "--to" in err
    status, _, err = run(
        capsys, "node", "audit", "verify", "--config", str(node.folder / "no.toml")
    )
    assert status == 2 and err.startswith("error: ")


def test_reveal_discloses_nothing_from_a_damaged_log(
    node: NodeCopy, capsys: pytest.CaptureFixture[str]
) -> None:
    with node.db() as conn:
        (entry,) = conn.execute("SELECT entry FROM log_entries WHERE idx = 12").fetchone()
        conn.execute("UPDATE log_entries SET entry = ? WHERE idx = 12", (flip(entry),))
    out_file = node.folder / "rec-a.json"
    argv = ("node", "audit", "reveal", "--config", str(node.config), "--to", "student 42")
    status, out, err = run(capsys, *argv, "--record", "rec-a", "--out", str(out_file))
    assert (status, out) == (1, "")
    assert err.startswith("error: PROOF_INVALID: entry 12 is not in the checkpoint's tree")
    with node.db() as conn:
        conn.execute("DELETE FROM log_nodes WHERE level = 2 AND idx = 1")  # on 2's audit path
    status, out, err = run(capsys, *argv, "--record", "rec-a", "--out", str(out_file))
    assert status == 1 and "the stored tree is incomplete" in err
    assert not out_file.exists()
    with node.db() as conn:
        assert conn.execute("SELECT size FROM log_heads").fetchone() == (40,)  # nothing logged
