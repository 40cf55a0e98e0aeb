"""Conversions between aware UTC datetimes and protobuf Timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["from_timestamp", "to_timestamp", "utc"]


def utc(value: datetime) -> datetime:
    """Return value as an aware UTC datetime; naive values are refused."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return value.astimezone(UTC)


def to_timestamp(value: datetime) -> Timestamp:
    """The Timestamp for an aware datetime."""
    ts = Timestamp()
    ts.FromDatetime(utc(value))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    """The aware UTC datetime of a Timestamp."""
    return ts.ToDatetime(tzinfo=UTC)
