"""RFC 6962 Merkle maths and C2SP checkpoints (spec LOG-*)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sseaun.sdk.core import (
    Checkpoint,
    ProtocolError,
    Reason,
    cosign,
    merkle,
    parse_signed_note,
    sign_checkpoint,
    verify_checkpoint,
    verify_cosignature,
)
from tests.factories import seeded

# The certificate-transparency test leaves and the roots of their first 1..8 prefixes.
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 §2.1 writes it (recursive split)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def hashes(n: int) -> list[bytes]:
    return [merkle.leaf_hash(b"entry %d" % i) for i in range(n)]


def test_certificate_transparency_roots() -> None:
    leaves = [merkle.leaf_hash(x) for x in CT_LEAVES]
    for n, expected in enumerate(CT_ROOTS, start=1):
        assert merkle.root_hash(leaves[:n]).hex() == expected


def test_empty_tree_root() -> None:
    assert merkle.root_hash([]) == hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


@settings(max_examples=200)
@given(n=st.integers(1, 300))
def test_root_matches_the_recursive_definition(n: int) -> None:
    assert merkle.root_hash(hashes(n)) == reference_root(hashes(n))


@settings(max_examples=200)
@given(n=st.integers(1, 200), data=st.data())
def test_inclusion_proofs_verify_and_tampering_fails(n: int, data: st.DataObject) -> None:
    leaves = hashes(n)
    root = merkle.root_hash(leaves)
    index = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(index, leaves)
    merkle.verify_inclusion(index, n, leaves[index], proof, root)
    wrong_leaf = merkle.leaf_hash(b"not in the log")
    bad_cases = [
        (index, n, wrong_leaf, proof, root),
        (index, n, leaves[index], proof, merkle.leaf_hash(b"other root")),
        (index, n, leaves[index], [*proof, root], root),
    ]
    if proof:
        bad_cases.append((index, n, leaves[index], proof[:-1], root))
    if n > 1:
        bad_cases.append(((index + 1) % n, n, leaves[index], proof, root))
    for args in bad_cases:
        with pytest.raises(ProtocolError) as info:
            merkle.verify_inclusion(*args)
        assert info.value.reason is Reason.PROOF_INVALID


@settings(max_examples=200)
@given(n=st.integers(1, 200), data=st.data())
def test_consistency_proofs_verify_and_tampering_fails(n: int, data: st.DataObject) -> None:
    leaves = hashes(n)
    m = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(m, leaves)
    old_root, new_root = merkle.root_hash(leaves[:m]), merkle.root_hash(leaves)
    merkle.verify_consistency(m, n, old_root, new_root, proof)
    if 0 < m < n:
        forked = [*leaves[: m - 1], merkle.leaf_hash(b"rewritten history")]
        with pytest.raises(ProtocolError) as info:
            merkle.verify_consistency(m, n, merkle.root_hash(forked), new_root, proof)
        assert info.value.reason is Reason.PROOF_INVALID
        with pytest.raises(ProtocolError):
            merkle.verify_consistency(m, n, old_root, new_root, proof[:-1])


LOG = seeded("ynu/log")
WITNESS = seeded("chula/log")
ORIGIN = "ynu.edu.cn/sseaun/access-log"


def test_checkpoint_note_round_trip_and_cosignature() -> None:
    checkpoint = Checkpoint(ORIGIN, 8, merkle.root_hash(hashes(8)))
    note = sign_checkpoint(checkpoint, ORIGIN, LOG)
    text = note.text()
    assert text.startswith(f"{ORIGIN}\n8\n")
    assert "\n\n\u2014 " + ORIGIN + " " in text
    parsed = parse_signed_note(text)
    assert verify_checkpoint(parsed, ORIGIN, LOG.public_key) == checkpoint
    cosigned = parsed.with_signature(cosign(parsed, "chula.ac.th/witness", WITNESS, 1_790_000_000))
    again = parse_signed_note(cosigned.text())
    assert verify_cosignature(again, "chula.ac.th/witness", WITNESS.public_key) == 1_790_000_000
    assert verify_checkpoint(again, ORIGIN, LOG.public_key) == checkpoint  # extra lines ignored


def test_a_changed_checkpoint_fails_both_signatures() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 3, merkle.root_hash(hashes(3))), ORIGIN, LOG)
    note = note.with_signature(cosign(note, "w", WITNESS, 1))
    forged = parse_signed_note(note.text().replace(f"{ORIGIN}\n3\n", f"{ORIGIN}\n4\n"))
    for call in (
        lambda: verify_checkpoint(forged, ORIGIN, LOG.public_key),
        lambda: verify_cosignature(forged, "w", WITNESS.public_key),
    ):
        with pytest.raises(ProtocolError) as info:
            call()
        assert info.value.reason is Reason.PROOF_INVALID


def test_a_checkpoint_without_the_logs_signature_is_key_unknown() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 1, merkle.root_hash(hashes(1))), ORIGIN, WITNESS)
    with pytest.raises(ProtocolError) as info:
        verify_checkpoint(note, ORIGIN, LOG.public_key)
    assert info.value.reason is Reason.KEY_UNKNOWN


@given(text=st.text(max_size=300))
def test_garbage_notes_are_malformed(text: str) -> None:
    try:
        note = parse_signed_note(text)
        Checkpoint.from_body(note.body)
    except ProtocolError as exc:
        assert exc.reason is Reason.MALFORMED


@settings(max_examples=100)
@given(n=st.integers(1, 300))
def test_frontier_yields_every_perfect_node_and_the_root(n: int) -> None:
    leaves = hashes(n)
    frontier = merkle.TreeFrontier()
    made: dict[tuple[int, int], bytes] = {}
    for leaf in leaves:
        for level, index, digest in frontier.append(leaf):
            made[(level, index)] = digest
    assert frontier.size == n
    assert frontier.root() == merkle.root_hash(leaves)
    for (level, index), digest in made.items():
        assert digest == merkle.root_hash(leaves[index << level : (index + 1) << level])
    # Proofs built from the stored nodes alone (as a node's store answers them).
    index = n // 3
    assert merkle.inclusion_plan(index, n).build(made) == merkle.inclusion_proof(index, leaves)
    assert merkle.consistency_plan(index, n).build(made) == merkle.consistency_proof(index, leaves)
    assert merkle.root_plan(n).build(made) == [merkle.root_hash(leaves)]
    # A frontier restored from the stored nodes continues the same tree.
    restored = merkle.TreeFrontier(n, [made[node] for node in merkle.range_nodes(0, n)])
    extra = merkle.leaf_hash(b"one more")
    restored.append(extra)
    assert restored.root() == merkle.root_hash([*leaves, extra])


def test_plans_need_logarithmically_many_nodes() -> None:
    size = 1_000_003
    assert len(merkle.inclusion_plan(size - 1, size).nodes()) <= 2 * size.bit_length()
    assert len(merkle.consistency_plan(size // 2 + 1, size).nodes()) <= 2 * size.bit_length()


def test_unaligned_ranges_and_bad_frontiers_are_refused() -> None:
    with pytest.raises(ProtocolError):
        merkle.range_nodes(1, 3)
    with pytest.raises(ProtocolError):
        merkle.TreeFrontier(3, [merkle.EMPTY_ROOT])
