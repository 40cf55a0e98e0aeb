"""RFC 6962 / RFC 9162 Merkle tree maths: hashes, roots, inclusion and consistency proofs.

leaf = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right), and a tree of n > 1 leaves
splits at k, the largest power of two below n. Pure functions over leaf hashes; the node decides
where the hashes live.

A store keeps the hash of every *perfect* subtree, named ``(level, index)``: the MTH of leaves
``[index * 2**level, (index + 1) * 2**level)`` (level 0 holds the leaf hashes). Every element of
a proof is the MTH of an aligned range, which is a right fold of at most log2(n) such nodes; so
a proof plan names the nodes it needs and a store answers it in O(log n) lookups, however large
the tree (spec LOG-5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._errors import ProtocolError, Reason

__all__ = [
    "EMPTY_ROOT",
    "NodeId",
    "ProofPlan",
    "TreeFrontier",
    "consistency_plan",
    "consistency_proof",
    "inclusion_plan",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "range_nodes",
    "root_hash",
    "root_plan",
    "verify_consistency",
    "verify_inclusion",
]

#: The root of the empty tree: SHA-256 of nothing.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """The hash of one log entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH of a sequence of leaf hashes."""
    if not leaves:
        return EMPTY_ROOT
    # Bottom-up: pair neighbours level by level; an odd last node is carried up unchanged,
    # which gives exactly the largest-power-of-two split of RFC 6962.
    level = list(leaves)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


#: A perfect subtree: (level, index), the MTH of leaves [index * 2**level, (index+1) * 2**level).
NodeId = tuple[int, int]


def range_nodes(lo: int, hi: int) -> list[NodeId]:
    """The perfect subtrees that make up the aligned range [lo, hi), largest (leftmost) first.

    Aligned: lo is a multiple of a power of two that is at least hi - lo, as every range in an
    RFC 6962 proof is; its MTH is then the right fold of these nodes (see fold_range).
    """
    if not 0 <= lo < hi:
        raise ProtocolError(Reason.MALFORMED, "empty or negative range")
    nodes: list[NodeId] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo % (1 << level):
            raise ProtocolError(Reason.MALFORMED, "range is not aligned")
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """The aligned leaf ranges whose MTHs form a proof (or a root), in proof order."""

    ranges: tuple[tuple[int, int], ...]

    def nodes(self) -> set[NodeId]:
        """Every perfect subtree the proof needs."""
        return {node for lo, hi in self.ranges for node in range_nodes(lo, hi)}

    def build(self, lookup: Mapping[NodeId, bytes]) -> list[bytes]:
        """The proof, from the hashes of nodes().

        Raises:
            KeyError: lookup lacks a node the plan needs.
        """
        return [_fold([lookup[n] for n in range_nodes(lo, hi)]) for lo, hi in self.ranges]


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """The plan of PATH(index, D[size]) of RFC 6962 §2.1.1."""
    if not 0 <= index < size:
        raise ProtocolError(Reason.MALFORMED, "leaf index outside the tree")
    ranges: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m = lo + k, m - k
    ranges.reverse()
    return ProofPlan(tuple(ranges))


def consistency_plan(old_size: int, new_size: int) -> ProofPlan:
    """The plan of PROOF(old_size, D[new_size]) of RFC 6962 §2.1.2 (empty for 0 or equal)."""
    if not 0 <= old_size <= new_size:
        raise ProtocolError(Reason.MALFORMED, "old size larger than the tree")
    if old_size in (0, new_size):
        return ProofPlan(())
    ranges: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        ranges.append((lo, hi))
    ranges.reverse()
    return ProofPlan(tuple(ranges))


def root_plan(size: int) -> ProofPlan:
    """The plan whose single element is the root of the tree of size leaves (size >= 1)."""
    if size < 1:
        raise ProtocolError(Reason.MALFORMED, "the empty tree has no nodes")
    return ProofPlan(((0, size),))


def _lookup_from_leaves(plan: ProofPlan, leaves: Sequence[bytes]) -> dict[NodeId, bytes]:
    return {
        (level, i): root_hash(leaves[i << level : (i + 1) << level]) for level, i in plan.nodes()
    }


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 §2.1.1, from all the leaf hashes."""
    plan = inclusion_plan(index, len(leaves))
    return plan.build(_lookup_from_leaves(plan, leaves))


def consistency_proof(size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(size, D[n]) of RFC 6962 §2.1.2 (empty for size 0 or size n), from all the leaves."""
    plan = consistency_plan(size, len(leaves))
    return plan.build(_lookup_from_leaves(plan, leaves))


class TreeFrontier:
    """The right edge of a growing tree: the roots of its perfect subtrees, at most log2(n).

    Appending a leaf yields the perfect nodes it completes, which is all a store must add.
    """

    __slots__ = ("_nodes", "_size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        """A frontier for a tree of size leaves, given the hashes of range_nodes(0, size)."""
        expected = len(range_nodes(0, size)) if size else 0
        if len(nodes) != expected:
            raise ProtocolError(Reason.MALFORMED, "frontier does not match the tree size")
        self._size = size
        self._nodes = list(nodes)

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the perfect nodes it completes as (level, index, hash),
        the leaf itself first.
        """
        index = self._size
        made = [(0, index, leaf)]
        current, level = leaf, 0
        # A set low bit means a left sibling of the same level waits on the frontier.
        while (index >> level) & 1:
            current = node_hash(self._nodes.pop(), current)
            level += 1
            made.append((level, index >> level, current))
        self._nodes.append(current)
        self._size += 1
        return made

    def root(self) -> bytes:
        """MTH of the whole tree."""
        return _fold(self._nodes) if self._nodes else EMPTY_ROOT

    def copy(self) -> TreeFrontier:
        return TreeFrontier(self._size, self._nodes)


def _all_hashes(*hashes: bytes) -> bool:
    return all(len(h) == 32 for h in hashes)


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2).

    Raises:
        ProtocolError: PROOF_INVALID.
    """
    if not 0 <= index < size:
        raise ProtocolError(Reason.PROOF_INVALID, "leaf index outside the tree")
    if not _all_hashes(leaf, root, *proof):
        raise ProtocolError(Reason.PROOF_INVALID, "a hash is not 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProtocolError(Reason.PROOF_INVALID, "inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise ProtocolError(Reason.PROOF_INVALID, "inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of old_size is a prefix of the tree of new_size (RFC 9162 §2.1.4.2).

    old_size must be at least 1: every tree extends the empty one, so there is nothing to check.

    Raises:
        ProtocolError: PROOF_INVALID.
    """
    bad = ProtocolError(Reason.PROOF_INVALID, "consistency proof does not link the two trees")
    # RFC 9162 defines no proof from the empty tree: it would prove nothing, so none verifies.
    if not 0 < old_size <= new_size:
        raise bad
    if old_size == new_size:
        if proof or old_root != new_root:
            raise bad
        return
    if not proof or not _all_hashes(old_root, new_root, *proof):
        raise bad
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise bad
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise bad
