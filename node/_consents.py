"""Reads under consent: a student's records served to an institution that is neither home nor
host only under a consent in force for that reader, purpose and data category (CONSENT-4..7)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sseaun.sdk.core import ProtocolError, consent_permits, envelope_from_bytes, records
from sseaun.v1.records_pb2 import DataCategory

from .store import StoredRecord

if TYPE_CHECKING:
    from ._runtime import Node

__all__ = ["CATEGORIES", "Consents", "consent_refresh_setting", "student_of"]

_K = records.RecordKind
#: The data category of each kind of a student's record (CONSENT-1).
CATEGORIES = {
    _K.NOMINATION: DataCategory.DATA_CATEGORY_MOBILITY,
    _K.LEARNING_AGREEMENT: DataCategory.DATA_CATEGORY_LEARNING_AGREEMENT,
    _K.TRANSCRIPT: DataCategory.DATA_CATEGORY_TRANSCRIPT,
    _K.RECOGNITION: DataCategory.DATA_CATEGORY_RECOGNITION,
    _K.CREDENTIAL: DataCategory.DATA_CATEGORY_CREDENTIAL,
}
_PAGE = 500


def consent_refresh_setting(home: str) -> str:
    """The setting holding when this node last pulled home's whole exchange feed (CONSENT-5)."""
    return f"consent-refresh/{home}"


def student_of(record: StoredRecord) -> tuple[records.RecordKind, str, str] | None:
    """(kind, home institution, network student ID) of a student's record; None otherwise."""
    try:
        kind = records.RecordKind.of_payload_type(record.payload_type)
    except ProtocolError:
        return None
    if kind not in CATEGORIES:
        return None
    message = records.open_payload(kind, envelope_from_bytes(record.envelope).payload)
    if kind is _K.CREDENTIAL:
        return kind, message.student_id_issuer, message.holder_student_id  # type: ignore[attr-defined]
    return kind, message.home_institution, message.student_id  # type: ignore[attr-defined]


class Consents:
    """Answers whether a reader may read a record under a consent this node holds."""

    def __init__(self, node: Node) -> None:
        self.node = node

    async def _refreshed_at(self, home: str) -> datetime | None:
        if home in self.node.config.institutions:
            return None  # home's own copy needs no refresh (CONSENT-5)
        raw = await self.node.store.get_setting(consent_refresh_setting(home))
        if raw is None:
            return datetime.min.replace(tzinfo=self.node.clock().tzinfo)  # never refreshed
        return datetime.fromisoformat(raw.decode())

    async def permit(self, record: StoredRecord, reader: str, purpose: int) -> bool:
        """Whether a consent in force lets reader read record for purpose now (CONSENT-6)."""
        subject = student_of(record)
        if subject is None:
            return False
        kind, home, student_id = subject
        store, now = self.node.store, self.node.clock()
        refreshed_at = await self._refreshed_at(home)
        after = ""
        while True:
            page = await store.list_records(
                f"institutions/{home}/consents", reader=reader, after_name=after, limit=_PAGE
            )
            for stored in page:
                try:
                    state = await self.node.exchange.state(stored.name)
                except ProtocolError:
                    continue
                if state is None or state.latest.message.student_id != student_id:  # type: ignore[attr-defined]
                    continue
                if consent_permits(
                    state,
                    recipient=reader,
                    purpose=purpose,
                    category=CATEGORIES[kind],
                    now=now,
                    refreshed_at=refreshed_at,
                ):
                    return True
            if len(page) < _PAGE:
                return False
            after = page[-1].name
