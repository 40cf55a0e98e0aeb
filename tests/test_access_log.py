"""Access-log entries carry no personal data and can be opened only with their key (LOG-*)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sseaun.sdk.core import access_log, merkle
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
