"""RFC 6962 / RFC 9162 Merkle tree maths: hashes, roots, inclusion and consistency proofs.

leaf = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right), and a tree of n > 1 leaves
splits at k, the largest power of two below n. Pure functions over leaf hashes; the node decides
where the hashes live.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ._errors import ProtocolError, Reason

__all__ = [
    "EMPTY_ROOT",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_hash",
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


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 §2.1.1."""
    if not 0 <= index < len(leaves):
        raise ProtocolError(Reason.MALFORMED, "leaf index outside the tree")
    proof: list[bytes] = []
    lo, hi, m = 0, len(leaves), index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            proof.append(root_hash(leaves[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(root_hash(leaves[lo : lo + k]))
            lo, m = lo + k, m - k
    proof.reverse()
    return proof


def consistency_proof(size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(size, D[n]) of RFC 6962 §2.1.2 (empty for size 0 or size n)."""
    n = len(leaves)
    if not 0 <= size <= n:
        raise ProtocolError(Reason.MALFORMED, "old size larger than the tree")
    if size in (0, n):
        return []
    proof: list[bytes] = []
    lo, hi, m, whole = 0, n, size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            proof.append(root_hash(leaves[lo + k : hi]))
            hi = lo + k
        else:
            proof.append(root_hash(leaves[lo : lo + k]))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        proof.append(root_hash(leaves[lo:hi]))
    proof.reverse()
    return proof


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 §2.1.3.2).

    Raises:
        ProtocolError: PROOF_INVALID.
    """
    if not 0 <= index < size:
        raise ProtocolError(Reason.PROOF_INVALID, "leaf index outside the tree")
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

    Raises:
        ProtocolError: PROOF_INVALID.
    """
    bad = ProtocolError(Reason.PROOF_INVALID, "consistency proof does not link the two trees")
    if not 0 <= old_size <= new_size:
        raise bad
    if old_size == new_size:
        if proof or old_root != new_root:
            raise bad
        return
    if old_size == 0:
        if proof:
            raise bad
        return
    if not proof:
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
