"""Conversions between aware UTC datetimes and protobuf Timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["from_timestamp", "to_timestamp", "utc"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(value: datetime) -> datetime:
    """Return value as an aware UTC datetime; naive values are refused."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def to_timestamp(value: datetime) -> Timestamp:
    """The Timestamp for an aware datetime (microsecond precision)."""
    delta = utc(value) - _EPOCH
    # Integer arithmetic: Timestamp.FromDatetime is several times slower on the hot path.
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000)


def from_timestamp(ts: Timestamp) -> datetime:
    """The aware UTC datetime of a Timestamp (nanoseconds truncated to microseconds)."""
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)
