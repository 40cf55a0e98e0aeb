"""Access-log entries carry no personal data and can be opened only with their key (LOG-*)."""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from sseaun.node._access_log import AccessLog
from sseaun.node.store import SqliteStore, StoreError
from sseaun.sdk.core import Ed25519Signer, ProtocolError, Reason, access_log, merkle
from sseaun.v1.access_log_pb2 import AccessLogEntry
from sseaun.v1.auth_pb2 import Purpose

NAME = "institutions/chula.ac.th/nominations/2026-ynu-0042"
WHEN = datetime(2026, 11, 29, 8, 30, tzinfo=UTC)


def entry(key: bytes, names: list[str]) -> bytes:
    return access_log.access_entry(
        log_origin="chula.ac.th/sseaun/access-log",
        time=WHEN,
        caller="ynu.edu.cn",
        method="/sseaun.v1.RecordService/GetRecord",
        purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
        outcome="OK",
        record_names=names,
        entry_key=key,
        request_digest=b"\x01" * 32,
    )


def test_the_record_name_is_not_in_the_entry_but_its_key_opens_it() -> None:
    key = access_log.new_entry_key()
    data = entry(key, [NAME])
    assert NAME.encode() not in data and b"2026-ynu-0042" not in data
    assert access_log.record_in_entry(data, key, NAME)
    assert not access_log.record_in_entry(data, key, NAME + "x")
    assert not access_log.record_in_entry(data, access_log.new_entry_key(), NAME)
    parsed = AccessLogEntry.FromString(data)
    assert parsed.caller == "ynu.edu.cn" and parsed.outcome == "OK"
    assert access_log.entry_leaf(data) == merkle.leaf_hash(data)


def test_the_same_record_in_two_entries_cannot_be_linked_without_the_keys() -> None:
    first, second = (
        entry(access_log.new_entry_key(), [NAME]),
        entry(access_log.new_entry_key(), [NAME]),
    )
    a = AccessLogEntry.FromString(first).record_commitments[0]
    b = AccessLogEntry.FromString(second).record_commitments[0]
    assert a != b


@given(names=st.lists(st.text(min_size=1, max_size=40), max_size=5))
def test_entries_are_deterministic_for_a_key(names: list[str]) -> None:
    key = b"k" * 32
    assert entry(key, names) == entry(key, names)
    for name in names:
        assert access_log.record_in_entry(entry(key, names), key, name)


# -- the hand-written serialisation is protobuf's, byte for byte ------------------------------

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=150)
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
# Any time a datetime can hold, at microsecond precision, in UTC or another zone.
TIMES = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.just(UTC) | st.timezones(),
)


def protobuf_entry(
    *,
    log_origin: str,
    time: datetime,
    caller: str,
    method: str,
    purpose: int,
    outcome: str,
    record_names: list[str],
    entry_key: bytes,
    request_digest: bytes,
) -> bytes:
    """The entry as protobuf serialises it, with the hmac module's commitments."""
    timestamp = Timestamp()
    timestamp.FromDatetime(time)
    return AccessLogEntry(
        log_origin=log_origin,
        time=timestamp,
        caller=caller,
        method=method,
        purpose=purpose,  # type: ignore[arg-type]
        outcome=outcome,
        record_commitments=[
            hmac.new(entry_key, name.encode(), hashlib.sha256).digest() for name in record_names
        ],
        request_digest=request_digest,
    ).SerializeToString(deterministic=True)


@settings(max_examples=500)
@given(
    log_origin=TEXT,
    time=TIMES,
    caller=TEXT,
    method=TEXT,
    purpose=st.sampled_from(list(Purpose.values())) | INT32,
    outcome=TEXT,
    record_names=st.lists(TEXT, max_size=6),
    entry_key=st.binary(max_size=100),  # longer than the 64-byte HMAC block too
    request_digest=st.binary(max_size=200),
)
def test_an_entry_is_the_deterministic_protobuf_serialisation(**fields: Any) -> None:
    assert access_log.access_entry(**fields) == protobuf_entry(**fields)


@settings(max_examples=300)
@given(
    log_origin=TEXT,
    seconds=st.integers(min_value=-62_135_596_800, max_value=253_402_300_799),
    nanos=st.integers(min_value=0, max_value=999_999_999),
    caller=TEXT,
    method=TEXT,
    purpose=INT32,
    outcome=TEXT,
    record_commitments=st.lists(st.binary(max_size=200), max_size=4),
    request_digest=st.binary(max_size=40),
)
def test_encode_entry_is_the_deterministic_protobuf_serialisation(
    seconds: int, nanos: int, **fields: Any
) -> None:
    expected = AccessLogEntry(time=Timestamp(seconds=seconds, nanos=nanos), **fields)
    encoded = access_log.encode_entry(seconds=seconds, nanos=nanos, **fields)
    assert encoded == expected.SerializeToString(deterministic=True)
    assert AccessLogEntry.FromString(encoded) == expected


@given(key=st.binary(max_size=200), names=st.lists(TEXT, max_size=4))
def test_commitments_are_hmac_sha256(key: bytes, names: list[str]) -> None:
    expected = [hmac.new(key, name.encode(), hashlib.sha256).digest() for name in names]
    assert access_log.commit_records(key, names) == expected
    assert [access_log.commit_record(key, name) for name in names] == expected


def test_entries_stay_exact_past_the_caches_of_repeated_fields() -> None:
    # The encoded origin and call fields are kept by value, up to a bound: past it, still exact.
    key = access_log.new_entry_key()
    assert len(key) == access_log.ENTRY_KEY_SIZE
    for i in range(2_100):
        fields: dict[str, Any] = {
            "log_origin": f"origin-{i % 1_500}",
            "time": datetime(2026, 11, 29, 8, 30, i % 60, i, tzinfo=UTC),
            "caller": f"caller-{i}",
            "method": "/sseaun.v1.RecordService/GetRecord",
            "purpose": i % 7,
            "outcome": "OK" if i % 3 else "NOT_FOUND",
            "record_names": [NAME] * (i % 3),
            "entry_key": key,
            "request_digest": b"\x01" * 32,
        }
        assert access_log.access_entry(**fields) == protobuf_entry(**fields)


def test_what_protobuf_refuses_is_refused() -> None:
    base: dict[str, Any] = {
        "log_origin": "o",
        "time": WHEN,
        "caller": "c",
        "method": "m",
        "purpose": 1,
        "outcome": "OK",
        "record_names": [],
        "entry_key": b"k" * 32,
    }
    for purpose in (2**31, -(2**31) - 1):
        with pytest.raises(ValueError, match="out of range"):
            access_log.access_entry(**{**base, "purpose": purpose})
    with pytest.raises(UnicodeEncodeError):
        access_log.access_entry(**{**base, "caller": "\ud800"})
    with pytest.raises(UnicodeEncodeError):
        access_log.access_entry(**{**base, "record_names": ["\udfff"]})
    with pytest.raises(ValueError, match="naive"):
        access_log.access_entry(**{**base, "time": datetime(2026, 11, 29)})


# -- the node's AccessLog: a proof is one read of the store -----------------------------------


async def test_proofs_read_the_store_once_and_refuse_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await SqliteStore.open(tmp_path / "node.db") as store:
        log = AccessLog(
            store,
            network_id="sseaun-test",
            institution="ynu.edu.cn",
            signer=Ed25519Signer.generate(),
            clock=lambda: WHEN,
        )
        entries = [entry(access_log.new_entry_key(), [NAME] * (i % 2)) for i in range(13)]
        for data in entries:
            await store.append_log("ynu.edu.cn", data, access_log.new_entry_key())
        leaves = [merkle.leaf_hash(e) for e in entries]
        reads: list[str] = []
        for name in ("log_size", "log_nodes"):
            method = getattr(store, name)

            async def counted(*args: Any, _method: Any = method, _name: str = name) -> Any:
                reads.append(_name)
                return await _method(*args)

            monkeypatch.setattr(store, name, counted)
        for size in range(1, 14):
            for index in range(size):
                reads.clear()
                assert await log.inclusion(index, size) == (
                    leaves[index],
                    merkle.inclusion_proof(index, leaves[:size]),
                )
                assert reads == ["log_nodes"]
            for old in range(1, size):
                reads.clear()
                assert await log.consistency(old, size) == merkle.consistency_proof(
                    old, leaves[:size]
                )
                assert reads == ["log_nodes"]
            assert await log.consistency(size, size) == []

        async def refusal(proof: Any) -> tuple[str, dict[str, str]]:
            with pytest.raises(ProtocolError) as caught:
                await proof
            assert caught.value.reason is Reason.OUT_OF_RANGE
            return caught.value.message, dict(caught.value.metadata)

        beyond = ("tree_size is outside the log", {"tree-size": "14"})
        assert await refusal(log.inclusion(0, 14)) == beyond
        assert await refusal(log.inclusion(13, 14)) == beyond
        assert await refusal(log.inclusion(20, 14)) == beyond  # the size is checked first
        assert await refusal(log.inclusion(0, 0)) == (
            "tree_size is outside the log",
            {"tree-size": "0"},
        )
        assert await refusal(log.inclusion(13, 13)) == (
            "index is outside the tree",
            {"index": "13"},
        )
        new_beyond = ("new_size is outside the log", {"new-size": "14"})
        assert await refusal(log.consistency(3, 14)) == new_beyond
        assert await refusal(log.consistency(14, 14)) == new_beyond
        assert await refusal(log.consistency(0, 14)) == new_beyond
        assert await refusal(log.consistency(1, 0)) == (
            "new_size is outside the log",
            {"new-size": "0"},
        )
        for old in (0, 6):
            assert await refusal(log.consistency(old, 5)) == (
                "old_size is outside the tree",
                {"old-size": str(old)},
            )

        # A node missing within the log is the store's error, after one more try; a log that
        # reached the size meanwhile gets its proof.
        nodes = store.log_nodes
        failures = [StoreError("log 'ynu.edu.cn' holds no node")]

        async def flaky(*args: Any) -> Any:
            if failures:
                raise failures.pop()
            return await nodes(*args)

        monkeypatch.setattr(store, "log_nodes", flaky)
        assert await log.inclusion(3, 13) == (leaves[3], merkle.inclusion_proof(3, leaves))
        failures[:] = [StoreError("lost"), StoreError("lost")]
        with pytest.raises(StoreError, match="lost"):
            await log.consistency(3, 13)


def _child_key(queue: Any) -> None:
    queue.put(access_log.new_entry_key())


def test_entry_keys_are_never_handed_out_twice_not_even_across_a_fork() -> None:
    keys = [access_log.new_entry_key() for _ in range(200)]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == access_log.ENTRY_KEY_SIZE for k in keys)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_key, args=(queue,))
    child.start()
    from_child = queue.get(timeout=30)
    child.join(30)
    mine = [access_log.new_entry_key() for _ in range(64)]
    assert from_child not in mine and from_child not in keys
