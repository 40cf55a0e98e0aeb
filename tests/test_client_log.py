"""The access log through the blocking SDK client, against a real node on loopback (spec LOG):
receipts and log indexes, checkpoints, inclusion and consistency proofs, cosignatures.

One node (ynu.edu.cn) runs with its example courses. It signs a checkpoint when it starts and then
only on demand (GetCheckpoint with min_size), and witnesses no partner (none runs), so the tests
know every checkpoint and every entry a checkpoint covers came from their own calls.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_status import rpc_status

from sseaun.sdk.cli import main as sseaun
from sseaun.sdk.client import NodeClient, NodeError, Receipt
from sseaun.sdk.core import (
    Checkpoint,
    ProtocolError,
    Reason,
    SignedNote,
    access_log,
    cosign,
    merkle,
    parse_signed_note,
    payload_types,
    sign_checkpoint,
    verify_cosignature,
    verify_envelope,
)
from sseaun.v1.access_log_pb2 import AccessLogEntry, GetConsistencyProofResult
from sseaun.v1.auth_pb2 import Purpose, ResponseHeader, SignedError, SignedResponse
from sseaun.v1.catalogue_pb2 import Course
from sseaun.v1.envelope_pb2 import Envelope
from tests.live_network import NETWORK, TESTER, LiveNetwork, build, keys_of, node_client, running

pytestmark = pytest.mark.timeout(180)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalogue"
YNU, CHULA = "ynu.edu.cn", "chula.ac.th"
CALLER = TESTER[0]
COURSES = f"institutions/{YNU}/courses"
MOBILITY = Purpose.PURPOSE_MOBILITY_ADMINISTRATION
OPERATIONS = Purpose.PURPOSE_NETWORK_OPERATIONS
GET = "/sseaun.v1.RecordService/GetRecord"
GET_CHECKPOINT = "/sseaun.v1.AccessLogService/GetCheckpoint"
GET_CONSISTENCY = "/sseaun.v1.AccessLogService/GetConsistencyProof"
ORIGIN = access_log.log_origin(NETWORK, YNU)
FAR = 10**9


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    net = build(tmp_path_factory.mktemp("log"))
    ynu = net.nodes[YNU]
    argv = ["node", "import", "courses", "--config", str(ynu.config),
            "--file", str(EXAMPLES / "ynu-courses.csv"), "--quiet"]  # fmt: skip
    assert sseaun(argv) == 0
    ynu.configure(**{"log.checkpoint_interval_seconds": 3600, "log.witness_interval_seconds": 0})
    with running(net, YNU):
        yield net


def client(net: LiveNetwork, sender: str | None = None) -> NodeClient:
    return node_client(net, YNU, sender=sender)


def a_course(node: NodeClient) -> str:
    page = node.list_records_page(COURSES, page_size=1, purpose=MOBILITY)
    return Course.FromString(page.records[0].payload).header.name


def index_of(receipt: Receipt) -> int:
    assert receipt.log_index is not None, "the answer carried no log index"
    return receipt.log_index


def fresh_checkpoint(node: NodeClient) -> str:
    """A new checkpoint covering at least one entry (this helper's own GetManifest call), so a
    test does not depend on the calls of the tests before it."""
    receipt = Receipt()
    node.get_manifest(receipt=receipt)
    return node.get_checkpoint(min_size=index_of(receipt) + 1).checkpoint


def verified(net: LiveNetwork, note_text: str) -> Checkpoint:
    """The checkpoint of a note ynu's LOG key signed, for ynu's log."""
    note = parse_signed_note(note_text)
    return access_log.verify_log_checkpoint(note, ORIGIN, [keys_of(net, YNU).log.public_key])


def log_signed(note_text: str) -> SignedNote:
    """The note with the log's own signature only (no cosignature another test left on it)."""
    note = parse_signed_note(note_text)
    return SignedNote(note.body, tuple(s for s in note.signatures if s.name == ORIGIN))


def signed_error_header(error: NodeError) -> ResponseHeader:
    """The header of the signed error a NodeError was made from, read from its gRPC status (the
    client verified this very envelope and bound it to the request before raising)."""
    cause = error.__cause__
    assert isinstance(cause, grpc.Call)
    status = rpc_status.from_call(cause)
    assert status is not None
    for detail in status.details:
        if detail.TypeName() == "sseaun.v1.Envelope":
            envelope = Envelope.FromString(detail.value)
            assert envelope.payload_type == payload_types.ERROR
            return SignedError.FromString(envelope.payload).header
    raise AssertionError("the status carries no signed error")


def test_a_read_with_a_receipt_is_provably_in_the_log(network: LiveNetwork) -> None:
    receipt = Receipt()
    with client(network) as node:
        node.get_record(a_course(node), purpose=MOBILITY, receipt=receipt)
        index = index_of(receipt)
        note = node.get_checkpoint(min_size=index + 1).checkpoint
        checkpoint = verified(network, note)
        proof = node.get_inclusion_proof(index, checkpoint.size)
    assert (receipt.responder, receipt.method) == (YNU, GET)
    assert checkpoint.origin == ORIGIN and checkpoint.size > index
    assert (proof.index, proof.tree_size) == (index, checkpoint.size)
    assert proof.entry, "the caller's own entry comes whole"
    assert proof.leaf_hash == merkle.leaf_hash(proof.entry)
    entry = access_log.check_logged_call(
        checkpoint=checkpoint,
        index=index,
        entry=proof.entry,
        hashes=list(proof.hashes),
        request_digest=receipt.request_digest,
        caller=CALLER,
        method=GET,
    )
    assert (entry.outcome, entry.purpose, entry.log_origin) == ("OK", MOBILITY, ORIGIN)
    assert len(entry.record_commitments) == 1
    # The same proof proves nothing about another request, and the note no other key's.
    with pytest.raises(ProtocolError) as other:
        access_log.check_logged_call(
            checkpoint=checkpoint,
            index=index,
            entry=proof.entry,
            hashes=list(proof.hashes),
            request_digest=bytes(32),
            caller=CALLER,
            method=GET,
        )
    assert other.value.reason is Reason.PROOF_INVALID
    with pytest.raises(ProtocolError) as wrong_key:
        access_log.verify_log_checkpoint(
            parse_signed_note(note), ORIGIN, [keys_of(network, YNU).transport.public_key]
        )
    assert wrong_key.value.reason is Reason.KEY_UNKNOWN


def test_a_refused_read_is_logged_too(network: LiveNetwork) -> None:
    with client(network) as node:
        with pytest.raises(NodeError) as refused:
            node.get_record(f"{COURSES}/NOPE", purpose=MOBILITY)
        header = signed_error_header(refused.value)
        assert header.HasField("log_index"), "the signed error carries the log index"
        index = header.log_index
        checkpoint = verified(network, node.get_checkpoint(min_size=index + 1).checkpoint)
        proof = node.get_inclusion_proof(index, checkpoint.size)
    assert refused.value.reason is Reason.NOT_FOUND
    entry = access_log.check_logged_call(
        checkpoint=checkpoint,
        index=index,
        entry=proof.entry,
        hashes=list(proof.hashes),
        request_digest=header.request_digest,
        caller=CALLER,
        method=GET,
    )
    assert entry.outcome == "NOT_FOUND"
    assert len(entry.record_commitments) == 1  # the name asked for, as a commitment


def test_a_signed_error_fills_the_receipt_and_carries_the_log_index(
    network: LiveNetwork,
) -> None:
    receipt = Receipt()
    with client(network) as node, pytest.raises(NodeError) as refused:
        node.get_record(f"{COURSES}/NOPE", purpose=MOBILITY, receipt=receipt)
    header = signed_error_header(refused.value)
    assert refused.value.log_index == header.log_index
    assert receipt.log_index == header.log_index
    assert (receipt.responder, receipt.method) == (YNU, GET)
    assert receipt.request_digest == header.request_digest


def test_indexes_grow_and_another_callers_entry_is_not_shown(network: LiveNetwork) -> None:
    first, second, theirs, asked = Receipt(), Receipt(), Receipt(), Receipt()
    with client(network) as node, client(network, sender=CHULA) as partner:
        name = a_course(node)
        node.get_record(name, purpose=MOBILITY, receipt=first)
        node.get_record(name, purpose=MOBILITY, receipt=second)
        partner.get_record(name, purpose=MOBILITY, receipt=theirs)
        note = node.get_checkpoint(min_size=index_of(theirs) + 1, receipt=asked)
        checkpoint = verified(network, note.checkpoint)
        foreign = node.get_inclusion_proof(index_of(theirs), checkpoint.size)
        own = partner.get_inclusion_proof(index_of(theirs), checkpoint.size)
        checkpoint_entry = node.get_inclusion_proof(index_of(asked), index_of(asked) + 1)
    assert index_of(first) < index_of(second) < index_of(theirs) < index_of(asked)
    assert asked.method == GET_CHECKPOINT
    # Another caller's entry: its leaf and path, never its content.
    assert foreign.entry == b""
    merkle.verify_inclusion(
        index_of(theirs), checkpoint.size, foreign.leaf_hash, foreign.hashes, checkpoint.root
    )
    assert own.entry and merkle.leaf_hash(own.entry) == foreign.leaf_hash
    access_log.check_logged_call(
        checkpoint=checkpoint,
        index=index_of(theirs),
        entry=own.entry,
        hashes=list(own.hashes),
        request_digest=theirs.request_digest,
        caller=CHULA,
        method=GET,
    )
    # An access-log call is logged like any other, with no record commitments (LOG-8).
    logged = AccessLogEntry.FromString(checkpoint_entry.entry)
    assert (logged.method, logged.outcome, logged.purpose) == (GET_CHECKPOINT, "OK", OPERATIONS)
    assert logged.request_digest == asked.request_digest
    assert not logged.record_commitments


def test_two_checkpoints_are_consistent(network: LiveNetwork) -> None:
    evidence: list[Envelope] = []
    with client(network) as node:
        old = verified(network, fresh_checkpoint(node))
        node.get_manifest()  # the log grows by this call and by the GetCheckpoint before it
        new = verified(network, node.get_checkpoint(min_size=old.size + 2).checkpoint)
        proof = node.get_consistency_proof(old.size, new.size, answer=evidence)
        same = node.get_consistency_proof(new.size, new.size)
    assert new.size >= old.size + 2
    assert (proof.old_size, proof.new_size) == (old.size, new.size)
    merkle.verify_consistency(old.size, new.size, old.root, new.root, list(proof.hashes))
    assert not same.hashes
    merkle.verify_consistency(new.size, new.size, new.root, new.root, [])
    with pytest.raises(ProtocolError) as forged:
        merkle.verify_consistency(old.size, new.size, old.root, bytes(32), list(proof.hashes))
    assert forged.value.reason is Reason.PROOF_INVALID
    # The signed answer, kept as evidence: ynu's transport signature over the proof.
    assert len(evidence) == 1
    transport = keys_of(network, YNU).transport
    verify_envelope(evidence[0], {transport.key_id: transport.public_key}, {payload_types.RESPONSE})
    answer = SignedResponse.FromString(evidence[0].payload)
    assert (answer.header.responder, answer.header.requester) == (YNU, CALLER)
    assert answer.header.method == GET_CONSISTENCY
    assert GetConsistencyProofResult.FromString(answer.body) == proof


def test_sizes_beyond_the_log_are_out_of_range(network: LiveNetwork) -> None:
    with client(network) as node:
        with pytest.raises(NodeError) as inclusion:
            node.get_inclusion_proof(FAR, FAR + 1)
        with pytest.raises(NodeError) as checkpoint:
            node.get_checkpoint(min_size=FAR)
        with pytest.raises(NodeError) as consistency:
            node.get_consistency_proof(1, FAR)
        with pytest.raises(NodeError) as from_empty:
            node.get_consistency_proof(0, 1)
        size = verified(network, fresh_checkpoint(node)).size
        with pytest.raises(NodeError) as past_the_tree:
            node.get_inclusion_proof(size, size)
    errors = [inclusion, checkpoint, consistency, from_empty, past_the_tree]
    assert [e.value.reason for e in errors] == [Reason.OUT_OF_RANGE] * len(errors)
    assert {e.value.code for e in errors} == {"OUT_OF_RANGE"}
    assert inclusion.value.metadata == {"tree-size": str(FAR + 1)}
    assert checkpoint.value.metadata == {"min-size": str(FAR)}
    assert consistency.value.metadata == {"new-size": str(FAR)}
    assert from_empty.value.metadata == {"old-size": "0"}
    assert past_the_tree.value.metadata == {"index": str(size)}


def test_a_cosignature_by_the_callers_log_key_is_kept_and_served(network: LiveNetwork) -> None:
    tester = keys_of(network, CALLER)
    with client(network) as node:
        note = log_signed(fresh_checkpoint(node))
        checkpoint = verified(network, note.text())
        line = cosign(note, CALLER, tester.log, int(time.time()))
        result = node.add_cosignature(note.with_signature(line).text())
        held = parse_signed_note(node.get_checkpoint().checkpoint)
    assert result.tree_size == checkpoint.size
    assert held.body == note.body, "no newer checkpoint was signed in between"
    assert line in held.signatures
    verify_cosignature(held, CALLER, tester.log.public_key)
    assert verified(network, held.text()) == checkpoint


def test_a_cosignature_not_by_the_callers_log_key_is_refused(network: LiveNetwork) -> None:
    tester, chula = keys_of(network, CALLER), keys_of(network, CHULA)
    now = int(time.time())
    with client(network) as node:
        note = log_signed(fresh_checkpoint(node))
        wrong_key = note.with_signature(cosign(note, CALLER, tester.transport, now))
        with pytest.raises(NodeError) as by_transport_key:
            node.add_cosignature(wrong_key.text())
        # A valid cosignature by another member's LOG key is not the caller's.
        someone_else = note.with_signature(cosign(note, CHULA, chula.log, now))
        with pytest.raises(NodeError) as by_another_member:
            node.add_cosignature(someone_else.text())
    assert by_transport_key.value.reason is Reason.PROOF_INVALID
    assert by_another_member.value.reason is Reason.PROOF_INVALID


def test_a_cosignature_of_a_checkpoint_the_log_never_signed_is_not_found(
    network: LiveNetwork,
) -> None:
    tester = keys_of(network, CALLER)
    now = int(time.time())
    with client(network) as node:
        size = verified(network, fresh_checkpoint(node)).size
        failures = []
        for fake in (Checkpoint(ORIGIN, size, bytes(32)), Checkpoint(ORIGIN, FAR, bytes(32))):
            forged = sign_checkpoint(fake, ORIGIN, tester.log)
            cosigned = forged.with_signature(cosign(forged, CALLER, tester.log, now))
            with pytest.raises(NodeError) as refused:
                node.add_cosignature(cosigned.text())
            failures.append(refused.value.reason)
    assert failures == [Reason.NOT_FOUND, Reason.NOT_FOUND]
