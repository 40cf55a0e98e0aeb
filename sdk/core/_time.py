"""Conversions between aware UTC datetimes and protobuf Timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from ._errors import ProtocolError, Reason

__all__ = ["from_timestamp", "to_timestamp", "utc"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The range protobuf allows for a Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


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
    """The aware UTC datetime of a Timestamp (nanoseconds truncated to microseconds).

    Raises:
        ProtocolError: MALFORMED for a time outside 0001-01-01..9999-12-31 or bad nanos.
    """
    if not _MIN_SECONDS <= ts.seconds <= _MAX_SECONDS or not 0 <= ts.nanos < 1_000_000_000:
        raise ProtocolError(Reason.MALFORMED, "a time is out of range")
    return _EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)
