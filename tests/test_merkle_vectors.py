"""The RFC 6962 Merkle code reproduces the transparency-dev/merkle proof test data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sseaun.sdk.core import ProtocolError, Reason, merkle

FIXTURE = Path(__file__).resolve().parent / "data" / "transparency_dev_merkle.json"
DATA: dict[str, Any] = json.loads(FIXTURE.read_text())

# The certificate-transparency test leaves: every numbered transparency-dev case is built on a
# prefix of the tree of these eight entries.
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
CT_LEAF_HASHES = [merkle.leaf_hash(entry) for entry in CT_LEAVES]

#: Case groups with hand-made hashes instead of a CT tree: verified, but no proof is regenerated.
OTHER_TREES = ("inclusion/single-entry/", "inclusion/additional/", "consistency/additional/")

#: Cases the upstream verifier rejects and the sdk core accepts. Strict: once the core is fixed
#: the test fails until the entry is removed here.
KNOWN_CORE_DEVIATIONS: dict[str, str] = {}


def unhex(text: str) -> bytes:
    return bytes.fromhex(text)


def proof_of(case: dict[str, Any]) -> list[bytes]:
    return [unhex(p) for p in case["proof"]]


def verify_params(section: str) -> list[Any]:
    out = []
    for case in DATA[section]:
        marks = []
        if case["name"] in KNOWN_CORE_DEVIATIONS:
            reason = KNOWN_CORE_DEVIATIONS[case["name"]]
            marks.append(pytest.mark.xfail(reason=reason, strict=True))
        out.append(pytest.param(case, id=case["name"], marks=marks))
    return out


def ct_valid_cases(section: str) -> list[dict[str, Any]]:
    return [c for c in DATA[section] if c["valid"] and not c["name"].startswith(OTHER_TREES)]


def ct_params(section: str) -> list[Any]:
    return [pytest.param(c, id=c["name"]) for c in ct_valid_cases(section)]


@pytest.mark.parametrize("case", verify_params("inclusion"))
def test_inclusion_vector_verifies_as_expected(case: dict[str, Any]) -> None:
    args = (case["index"], case["size"], unhex(case["leaf_hash"]), proof_of(case))
    if case["valid"]:
        merkle.verify_inclusion(*args, unhex(case["root"]))
        return
    with pytest.raises(ProtocolError) as caught:
        merkle.verify_inclusion(*args, unhex(case["root"]))
    assert caught.value.reason is Reason.PROOF_INVALID


@pytest.mark.parametrize("case", verify_params("consistency"))
def test_consistency_vector_verifies_as_expected(case: dict[str, Any]) -> None:
    sizes = (case["old_size"], case["new_size"])
    roots = (unhex(case["old_root"]), unhex(case["new_root"]))
    if case["valid"]:
        merkle.verify_consistency(*sizes, *roots, proof_of(case))
        return
    with pytest.raises(ProtocolError) as caught:
        merkle.verify_consistency(*sizes, *roots, proof_of(case))
    assert caught.value.reason is Reason.PROOF_INVALID


@pytest.mark.parametrize("case", ct_params("inclusion"))
def test_generated_inclusion_proof_matches_vector(case: dict[str, Any]) -> None:
    assert case["size"] <= len(CT_LEAF_HASHES)
    leaves = CT_LEAF_HASHES[: case["size"]]
    assert unhex(case["leaf_hash"]) == leaves[case["index"]]
    assert merkle.inclusion_proof(case["index"], leaves) == proof_of(case)
    assert merkle.root_hash(leaves) == unhex(case["root"])


@pytest.mark.parametrize("case", ct_params("consistency"))
def test_generated_consistency_proof_matches_vector(case: dict[str, Any]) -> None:
    assert case["new_size"] <= len(CT_LEAF_HASHES)
    leaves = CT_LEAF_HASHES[: case["new_size"]]
    assert merkle.consistency_proof(case["old_size"], leaves) == proof_of(case)
    assert merkle.root_hash(leaves[: case["old_size"]]) == unhex(case["old_root"])
    assert merkle.root_hash(leaves) == unhex(case["new_root"])


def test_fixture_holds_the_upstream_cases() -> None:
    assert DATA["source"].startswith("https://github.com/transparency-dev/merkle testdata")
    names: list[str] = []
    for section in ("inclusion", "consistency"):
        cases = DATA[section]
        valid = sum(1 for c in cases if c["valid"])
        assert valid >= 5, section
        assert len(cases) - valid >= 20, section
        assert len(ct_valid_cases(section)) >= 5, section
        names += [c["name"] for c in cases]
    assert len(names) == len(set(names))
    # A stale deviation entry would silently stop guarding anything.
    assert set(KNOWN_CORE_DEVIATIONS) <= set(names)
