"""The access log between three real nodes on loopback: every call in the callee's log, proofs
checked from the caller's side, witnesses cosigning, and no personal data in the log's storage.
"""

from __future__ import annotations

import base64
import contextlib
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sseaun.sdk.client import ClientConfig, NodeClient, NodeError, Receipt
from sseaun.sdk.core import (
    KeyRing,
    Reason,
    access_log,
    merkle,
    parse_signed_note,
    verify_cosignature,
)
from sseaun.v1.access_log_pb2 import AccessLogEntry
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.manifest_pb2 import KeyPurpose
from tests.live_network import (
    NETWORK,
    LiveNetwork,
    build,
    http_json,
    keys_of,
    node_client,
    running,
    trusted_keyring,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)
YNU, CHULA, DU = "ynu.edu.cn", "chula.ac.th", "du.ac.bd"
COURSES = f"institutions/{YNU}/courses"
GET_RECORD = "/sseaun.v1.RecordService/GetRecord"
#: Distinctive strings in the records the nodes serve; none may reach the log's storage.
DISTINCTIVE = ("ZQXV7731", "Xylophonic Ontology of Ngô Bảo Châu", "Ṭhānissaro Quennelby")
LOG_TABLES = (
    "log_entries",
    "log_entry_keys",
    "log_nodes",
    "log_heads",
    "log_checkpoints",
    "log_cosignatures",
    "witnessed",
)


def _import_courses(network: LiveNetwork, folder: Path) -> None:
    csv = folder / "courses.csv"
    csv.write_text(
        "code,title:en,credits,credit_scheme,level,languages,unit,isced_f,description:en\n"
        f"{DISTINCTIVE[0]},{DISTINCTIVE[1]},3,cn-credit,bachelor,en,SISE-CS,0613,"
        f"Taught by {DISTINCTIVE[2]}\n"
        "SISE1001,Fundamentals of Programming,4,cn-credit,bachelor,en,SISE-CS,0613,\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "sseaun.sdk.cli", "node", "import", "courses",
         "--config", str(network.nodes[YNU].config), "--file", str(csv)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    net = build(tmp_path_factory.mktemp("log"))
    _import_courses(net, net.root)
    for node in net.nodes.values():
        node.configure(
            **{"log.checkpoint_interval_seconds": 0.5, "log.witness_interval_seconds": 0.5}
        )
    with running(net):
        yield net


def _keyring(network: LiveNetwork, client: NodeClient) -> KeyRing:
    """The caller's key ring: the manifest plus the callee's delegations (its LOG key)."""
    ring = trusted_keyring(network.manifest)
    for statement in client.get_manifest().statements:
        with contextlib.suppress(Exception):
            ring.accept_delegation(statement, datetime.now(UTC))
    return ring


def _log_keys(ring: KeyRing, institution: str) -> list[bytes]:
    keys = ring.keys_for(institution, KeyPurpose.KEY_PURPOSE_LOG, datetime.now(UTC))
    return [k.public_key for k in keys]


def _entries(network: LiveNetwork, institution: str) -> list[AccessLogEntry]:
    uri = (network.nodes[institution].folder / "node.db").resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
        rows = conn.execute(
            "SELECT entry FROM log_entries WHERE log = ? ORDER BY idx", (institution,)
        ).fetchall()
    return [AccessLogEntry.FromString(bytes(r[0])) for r in rows]


def _by(entries: list[AccessLogEntry], caller: str) -> list[AccessLogEntry]:
    return [e for e in entries if e.caller == caller]


def test_every_call_is_in_the_callees_log_and_provable_by_the_caller(
    network: LiveNetwork,
) -> None:
    tester = network.tester.institution
    origin = access_log.log_origin(NETWORK, YNU)
    with node_client(network, YNU) as client:
        ring = _keyring(network, client)
        before = len(_by(_entries(network, YNU), tester))
        found, missing, listed = Receipt(), Receipt(), Receipt()
        client.get_record(
            f"{COURSES}/{DISTINCTIVE[0]}", purpose=Purpose.PURPOSE_RECOGNITION, receipt=found
        )
        with pytest.raises(NodeError) as info:
            client.get_record(
                f"{COURSES}/NO-SUCH", purpose=Purpose.PURPOSE_RECOGNITION, receipt=missing
            )
        assert info.value.reason is Reason.NOT_FOUND
        client.list_records_page(
            COURSES, purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION, receipt=listed
        )
        # Every call, the refused one included, was logged before it was answered.
        receipts = (found, missing, listed)
        assert all(r.log_index is not None for r in receipts)
        indexes = [r.log_index or 0 for r in receipts]
        assert indexes == sorted(indexes) and len(set(indexes)) == 3
        mine = _by(_entries(network, YNU), tester)
        assert len(mine) == before + 3
        assert [(e.method, e.outcome) for e in mine[-3:]] == [
            (GET_RECORD, "OK"),
            (GET_RECORD, "NOT_FOUND"),
            ("/sseaun.v1.RecordService/ListRecords", "OK"),
        ]
        assert [e.purpose for e in mine[-3:]] == [
            Purpose.PURPOSE_RECOGNITION,
            Purpose.PURPOSE_RECOGNITION,
            Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
        ]
        assert len(mine[-1].record_commitments) == 2  # the two courses listed

        # The caller's own check (spec LOG-9): signed checkpoint, inclusion, its own entry.
        for receipt in receipts:
            assert receipt.log_index is not None
            result = client.get_checkpoint(min_size=receipt.log_index + 1)
            checkpoint = access_log.verify_log_checkpoint(
                parse_signed_note(result.checkpoint), origin, _log_keys(ring, YNU)
            )
            proof = client.get_inclusion_proof(receipt.log_index, checkpoint.size)
            assert proof.entry, "a caller gets its own entry"
            entry = access_log.check_logged_call(
                checkpoint=checkpoint,
                index=receipt.log_index,
                entry=proof.entry,
                hashes=list(proof.hashes),
                request_digest=receipt.request_digest,
                caller=tester,
                method=receipt.method,
            )
            assert entry.caller == tester
        # Another call's entry proves inclusion too, but is not shown to this caller.
        other = client.get_inclusion_proof(0, checkpoint.size)
        assert not other.entry or AccessLogEntry.FromString(other.entry).caller == tester
        merkle.verify_inclusion(
            0, checkpoint.size, other.leaf_hash, list(other.hashes), checkpoint.root
        )


def test_calls_that_do_not_authenticate_are_not_logged(network: LiveNetwork) -> None:
    tester = network.tester.institution
    before = len(_by(_entries(network, YNU), tester))
    # Signed with the tester's issuing key, which is not a transport key: refused unlogged.
    config = ClientConfig(
        network_id=NETWORK,
        sender=tester,
        signer=keys_of(network, tester).issuing,
        plaintext=True,
        deadline=15.0,
    )
    ring = trusted_keyring(network.manifest)
    client = NodeClient(config, ring, network.nodes[YNU].target, YNU)
    with client, pytest.raises(NodeError) as info:
        client.get_record(f"{COURSES}/SISE1001", purpose=Purpose.PURPOSE_RECOGNITION)
    assert info.value.reason in {Reason.KEY_UNKNOWN, Reason.KEY_WRONG_PURPOSE}
    assert len(_by(_entries(network, YNU), tester)) == before


def _cosigners(network: LiveNetwork, institution: str) -> set[str]:
    with node_client(network, institution) as client:
        note = parse_signed_note(client.get_checkpoint().checkpoint)
    valid = set()
    for witness in network.nodes:
        if witness == institution:
            continue
        with contextlib.suppress(Exception):
            verify_cosignature(note, witness, keys_of(network, witness).log.public_key)
            valid.add(witness)
    return valid


def test_partners_witness_and_cosign_each_others_checkpoints(network: LiveNetwork) -> None:
    for institution in network.nodes:
        others = set(network.nodes) - {institution}

        def cosigned(i: str = institution, o: set[str] = others) -> bool:
            return _cosigners(network, i) == o

        wait_for(cosigned, timeout=60, interval=0.5, what=f"cosignatures of {institution}")
    status, health = http_json(f"{network.nodes[CHULA].http}/healthz")
    assert status == 200, health
    assert health["problems"] == {} and health["warnings"] == {}


def _variants(text: str) -> set[bytes]:
    """The string in every encoding a careless implementation might store it in."""
    import unicodedata

    forms = {text, unicodedata.normalize("NFD", text), text.lower(), text.upper()}
    out: set[bytes] = set()
    for form in forms:
        raw = form.encode()
        out |= {raw, form.encode("utf-16-le"), form.encode("utf-16-be"), form.encode("utf-32-le")}
        out |= {base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")}
        out |= {raw.hex().encode(), raw.hex().upper().encode()}
        out.add(form.encode("ascii", "xmlcharrefreplace"))
        out.add(form.encode("unicode_escape"))
    # A fragment suffices to leak: the first word alone.
    first = text.split(maxsplit=1)[0]
    out |= {first.encode(), first.encode("utf-16-le")}
    return out


def test_no_personal_data_reaches_the_logs_storage(network: LiveNetwork) -> None:
    with node_client(network, YNU) as client:
        for _ in client.list_records(COURSES, purpose=Purpose.PURPOSE_RECOGNITION):
            pass
        batches = list(client.watch_changes(COURSES, purpose=Purpose.PURPOSE_RECOGNITION))
        assert any(batch.changes for batch in batches)
        client.get_record(f"{COURSES}/{DISTINCTIVE[0]}", purpose=Purpose.PURPOSE_RECOGNITION)
    for institution, node in network.nodes.items():
        uri = (node.folder / "node.db").resolve().as_uri() + "?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
            stored = b"".join(
                str(value).encode() if not isinstance(value, bytes) else value
                for table in LOG_TABLES
                for row in conn.execute(f"SELECT * FROM {table}")
                for value in row
            )
            assert conn.execute("SELECT count(*) FROM log_entries").fetchone()[0] > 0
            if institution == YNU:
                # The records themselves are stored: the search would find them there.
                records = b"".join(
                    r[0] for r in conn.execute("SELECT envelope FROM record_versions")
                )
                assert DISTINCTIVE[0].encode() in records
        for text in DISTINCTIVE:
            for variant in _variants(text):
                assert variant not in stored, (institution, text, variant)
        assert DISTINCTIVE[0] not in node.log_text()  # nor in the node's own log lines


def test_feed_pages_are_each_logged_with_their_records(network: LiveNetwork) -> None:
    tester = network.tester.institution
    before = len(_by(_entries(network, YNU), tester))
    with node_client(network, YNU) as client:
        batches = list(
            client.watch_changes(COURSES, page_size=1, purpose=Purpose.PURPOSE_RECOGNITION)
        )
    mine = _by(_entries(network, YNU), tester)[before:]
    assert len(mine) == len(batches) >= 2
    assert [len(e.record_commitments) for e in mine] == [len(b.changes) for b in batches]
    assert all(e.method == "/sseaun.v1.RecordService/WatchChanges" for e in mine)


def test_log_service_refuses_out_of_range_and_foreign_cosignatures(network: LiveNetwork) -> None:
    with node_client(network, YNU) as client:
        with pytest.raises(NodeError) as info:
            client.get_inclusion_proof(10**9, 10**9 + 1)
        assert info.value.reason is Reason.OUT_OF_RANGE
        with pytest.raises(NodeError) as info:
            client.get_consistency_proof(0, 1)
        assert info.value.reason is Reason.OUT_OF_RANGE
        note = client.get_checkpoint().checkpoint
        # The tester's cosignature is not by a LOG key the node knows for it.
        from sseaun.sdk.core import cosign

        signed = parse_signed_note(note)
        line = cosign(
            signed, network.tester.institution, keys_of(network, YNU).log, int(time.time())
        )
        with pytest.raises(NodeError) as info:
            client.add_cosignature(signed.with_signature(line).text())
        assert info.value.reason in {Reason.PROOF_INVALID, Reason.KEY_UNKNOWN}


def test_local_reads_on_the_node_are_logged_beside_its_calls(network: LiveNetwork) -> None:
    name = f"{COURSES}/SISE1001"
    config = str(network.nodes[YNU].config)
    done = subprocess.run(
        [sys.executable, "-m", "sseaun.sdk.cli", "node", "records", "get", "--config", config,
         "--purpose", "audit", name],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"name": "institutions/ynu.edu.cn/courses/SISE1001"' in done.stdout
    assert "logged as entry" in done.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "sseaun.sdk.cli", "node", "records", "list", "--config", config,
         "--purpose", "recognition", COURSES],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 2
    entries = _entries(network, YNU)
    local = [e for e in entries if e.caller == "local:cli"]
    assert [(e.method, e.purpose, len(e.record_commitments)) for e in local[-2:]] == [
        ("local:records-get", Purpose.PURPOSE_AUDIT, 1),
        ("local:records-list", Purpose.PURPOSE_RECOGNITION, 2),
    ]
    # The CLI appended while the node was appending too: one tree, no gaps, all proven.
    with node_client(network, YNU) as client:
        size = len(entries)
        result = client.get_checkpoint(min_size=size)
        note = parse_signed_note(result.checkpoint)
        origin = access_log.log_origin(NETWORK, YNU)
        checkpoint = access_log.verify_log_checkpoint(
            note, origin, [keys_of(network, YNU).log.public_key]
        )
        index = next(i for i, e in enumerate(entries) if e is local[-1])
        proof = client.get_inclusion_proof(index, checkpoint.size)
        leaf = merkle.leaf_hash(local[-1].SerializeToString(deterministic=True))
        assert proof.leaf_hash == leaf
        merkle.verify_inclusion(index, checkpoint.size, leaf, list(proof.hashes), checkpoint.root)
