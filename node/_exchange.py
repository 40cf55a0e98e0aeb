"""Mobility and credit records on a node: issue, co-sign and decide locally; take in what
partners hold for us; compute every record's state from its signed inputs (spec LC, XCH).

Every envelope is kept exactly as signed (a co-signed copy replaces the stored one only as the
merged envelope of the same payload, LC-13). What may be stored is decided by the sdk core:
``open_record`` for an envelope on its own, ``apply_envelope`` / ``record_state`` for the
lifecycle. After each change the node queues a hint for every other party in the outbox
(see _notify.py); partners then pull this node's exchange feed.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from google.protobuf.message import Message

from sseaun.sdk.core import (
    Envelope,
    FieldProblem,
    ProtocolError,
    Reason,
    RecordState,
    Signer,
    apply_decision,
    apply_envelope,
    check_reference,
    cosign_record,
    envelope_from_bytes,
    from_timestamp,
    open_record,
    record_state,
    records,
    sign_decision,
    sign_record,
    to_timestamp,
)
from sseaun.v1.catalogue_pb2 import RecordHeader
from sseaun.v1.records_pb2 import DecisionKind

from .store import NewRecord, StoredRecord

if TYPE_CHECKING:
    from ._runtime import Node

__all__ = ["EXCHANGE", "Exchange", "IngestOutcome", "exchange_parent", "is_exchange_parent"]

log = logging.getLogger("sseaun.node.exchange")

#: The collection ID of a node's exchange feed: every record, copy and decision it holds for the
#: reader (spec XCH-2).
EXCHANGE = "exchange"
_TOPIC = "exchange"


def exchange_parent(institution: str) -> str:
    return f"institutions/{institution}/{EXCHANGE}"


def is_exchange_parent(parent: str) -> bool:
    parts = parent.split("/")
    return len(parts) == 3 and parts[0] == "institutions" and parts[2] == EXCHANGE


@dataclass(frozen=True)
class IngestOutcome:
    """What taking in one envelope did: "stored", "merged", "unchanged" or "refused"."""

    status: str
    name: str = ""
    reason: Reason | None = None
    detail: str = ""


def _new_record(envelope: Envelope, header: RecordHeader, subject: str = "") -> NewRecord:
    h = header
    name: str = h.name
    return NewRecord(
        name=name,
        parent=name.rpartition("/")[0],
        version=h.version,
        issuer=h.issuer,
        payload_type=envelope.payload_type,
        envelope=envelope.SerializeToString(),
        parties=tuple(h.parties),
        deleted=False,
        issued_at=from_timestamp(h.issued_at),
        subject=subject,
    )


#: The field of each kind that names the record it rests on (LC-11).
_REFERENCE_FIELDS = {
    records.RecordKind.NOMINATION: "agreement",
    records.RecordKind.LEARNING_AGREEMENT: "nomination",
    records.RecordKind.TRANSCRIPT: "nomination",
    records.RecordKind.RECOGNITION: "transcript",
}


class Exchange:
    """The lifecycle records a node holds, for the institutions it serves."""

    def __init__(self, node: Node) -> None:
        self.node = node

    # -- reading --------------------------------------------------------------------------------

    async def versions(self, name: str) -> list[StoredRecord]:
        store = self.node.store
        latest = await store.latest_version(name)
        out: list[StoredRecord] = []
        for version in range(1, latest + 1):
            stored = await store.get_record(name, version)
            if stored is not None:
                out.append(stored)
        return out

    async def decisions(self, name: str) -> list[Envelope]:
        """The decision envelopes held about a record."""
        store = self.node.store
        out = []
        for decision in await store.names_about(name):
            stored = await store.get_record(decision, 0)
            if stored is not None:
                out.append(envelope_from_bytes(stored.envelope))
        return out

    async def state(self, name: str) -> RecordState | None:
        """The record's state from every version and decision held; None if none is held.

        Raises:
            ProtocolError: the held inputs do not verify (they did when stored: a key revoked
                since with an earlier compromise time, say).
        """
        held = await self.versions(name)
        if not held:
            return None
        envelopes = [envelope_from_bytes(r.envelope) for r in held]
        lists: list[Envelope] = []
        if held[-1].payload_type == records.RecordKind.CREDENTIAL.payload_type:
            # A credential's state includes the status lists of its awarding institutions
            # that this node holds (LC-5 step 5, CRED-5).
            credential = records.open_payload(records.RecordKind.CREDENTIAL, envelopes[-1].payload)
            for ref in credential.status:  # type: ignore[attr-defined]
                lists.extend(
                    envelope_from_bytes(r.envelope) for r in await self.versions(ref.list_name)
                )
        return record_state(
            envelopes, await self.decisions(name), self.node.keyring, status_lists=lists
        )

    async def check_reference(self, message: Message) -> None:
        """The record a new version rests on must be held and allow it (LC-11).

        Raises:
            ProtocolError: MALFORMED (not held: the node cannot check it), and the reasons of
                check_reference.
        """
        field = _REFERENCE_FIELDS.get(records.RecordKind.of_message(message))
        if field is None:
            return
        ref = getattr(message, field)
        referenced = await self.state(ref.name)
        if referenced is None:
            raise ProtocolError(
                Reason.MALFORMED,
                "the record it rests on is not held here",
                field_problems=[FieldProblem(f"{field}.name", "a record this node holds")],
            )
        check_reference(message, referenced)

    async def _check_arriving_reference(self, message: Message) -> None:
        """A version from a partner: its issuer checked the reference when it signed (LC-11);
        here only content that contradicts what this node holds is refused. The referenced
        record may have moved on since (a later state) or not be held (a third party)."""
        field = _REFERENCE_FIELDS.get(records.RecordKind.of_message(message))
        if field is None:
            return
        referenced = await self.state(getattr(message, field).name)
        if referenced is None:
            log.info("reference not checked here: %s is not held", field)
            return
        try:
            check_reference(message, referenced)
        except ProtocolError as exc:
            if exc.reason is Reason.MALFORMED:
                raise
            log.info("reference not checked here: %s: %s", exc.reason.value, exc.message)

    # -- acting as an institution this node serves ----------------------------------------------

    def _signer(self, institution: str) -> Signer:
        keys = self.node.keys.get(institution)
        if keys is None:
            raise ProtocolError(Reason.NOT_FOUND, f"this node does not serve {institution}")
        return keys.issuing

    async def issue(self, message: Message) -> Envelope:
        """Fill the header of a new version (network, time, version, parties) and sign it as
        its issuer, who must be served here; store it and notify the other parties.

        The caller sets header.issuer and, for a new record, may leave header.name empty: a
        random surrogate ID is chosen (LC-2).

        Raises:
            ProtocolError: MALFORMED and the lifecycle reasons of sign_record.
        """
        node = self.node
        header = message.header  # type: ignore[attr-defined]
        issuer = header.issuer
        signer = self._signer(issuer)
        kind = records.RecordKind.of_message(message)
        if not header.name:
            header.name = records.record_name(kind, issuer, secrets.token_hex(8))
        state = await self.state(header.name)
        header.network_id = node.config.network_id
        header.version = 1 if state is None else state.latest_version + 1
        header.issued_at.CopyFrom(to_timestamp(node.clock()))
        if not header.parties and kind is not records.RecordKind.CREDENTIAL_STATUS_LIST:
            header.parties.extend(sorted(records.roles_of(message).parties))
        await self.check_reference(message)
        envelope = sign_record(message, signer, keyring=node.keyring, state=state)
        await node.store.put_records([_new_record(envelope, header)])
        await self._changed(header.parties)
        return envelope

    async def cosign(self, institution: str, name: str) -> Envelope:
        """Add institution's signature to the latest version of a record it must sign.

        Raises:
            ProtocolError: NOT_FOUND, and the reasons of cosign_record (STALE_VERSION,
                ILLEGAL_TRANSITION, SIGNER_MISMATCH...).
        """
        node = self.node
        state = await self.state(name)
        if state is None:
            raise ProtocolError(Reason.NOT_FOUND, "no such record")
        signer = self._signer(institution)
        merged = cosign_record(
            state.latest.envelope,
            signer,
            keyring=node.keyring,
            state=state,
        )
        await node.store.merge_version(name, state.latest_version, merged.SerializeToString())
        await self._changed(state.latest.header.parties)
        return merged

    async def decide(
        self,
        institution: str,
        name: str,
        kind: DecisionKind.ValueType,
        *,
        reason: str = "",
        decision_id: str | None = None,
    ) -> Envelope:
        """Sign and store a decision by institution about the latest version of a record.

        Raises:
            ProtocolError: NOT_FOUND, and the reasons of sign_decision (ILLEGAL_TRANSITION with
                the states, MALFORMED for a missing reason...).
        """
        node = self.node
        state = await self.state(name)
        if state is None:
            raise ProtocolError(Reason.NOT_FOUND, "no such record")
        envelope = sign_decision(
            state,
            kind,
            decided_by=institution,
            decided_at=node.clock(),
            signer=self._signer(institution),
            decision_id=decision_id or secrets.token_hex(8),
            reason=reason,
            keyring=node.keyring,
        )
        opened = open_record(envelope, node.keyring)
        await node.store.put_records([_new_record(envelope, opened.header, name)])
        await self._changed(opened.header.parties)
        return envelope

    # -- taking in what partners hold --------------------------------------------------------

    async def ingest(self, envelope: Envelope, source: str) -> IngestOutcome:
        """Verify one envelope pulled from source's exchange feed and keep it if the lifecycle
        allows: a new version, a copy with new co-signatures (merged), or a decision.

        Never raises for a bad envelope: the outcome says why it was refused.
        """
        node = self.node
        try:
            opened = open_record(envelope, node.keyring)
            header = opened.header
            if opened.kind is records.RecordKind.DECISION:
                return await self._ingest_decision(envelope, opened.subject, header, source)
            return await self._ingest_version(envelope, header, source)
        except ProtocolError as exc:
            log.info("from %s: refused: %s: %s", source, exc.reason.value, exc.message)
            return IngestOutcome("refused", "", exc.reason, exc.message)

    async def _ingest_version(
        self, envelope: Envelope, header: RecordHeader, source: str
    ) -> IngestOutcome:
        node = self.node
        name: str = header.name
        version: int = header.version
        state = await self.state(name)
        if state is None or version > state.latest_version:
            await self._check_arriving_reference(open_record(envelope, node.keyring).message)
        if state is None:
            if version != 1:
                raise ProtocolError(Reason.MALFORMED, "a record must arrive from version 1")
            record_state([envelope], [], node.keyring)
            await node.store.put_records([_new_record(envelope, header)])
            await self._changed(header.parties, source=source)
            return IngestOutcome("stored", name)
        after = apply_envelope(state, envelope, node.keyring)
        if after.latest_version > state.latest_version:
            await node.store.put_records([_new_record(envelope, header)])
            await self._changed(header.parties, source=source)
            return IngestOutcome("stored", name)
        held = state.version(version).envelope
        merged = after.version(version).envelope
        if {(s.keyid, s.sig) for s in merged.signatures} == {
            (s.keyid, s.sig) for s in held.signatures
        }:
            return IngestOutcome("unchanged", name)
        await node.store.merge_version(name, version, merged.SerializeToString())
        await self._changed(header.parties, source=source)
        return IngestOutcome("merged", name)

    async def _ingest_decision(
        self, envelope: Envelope, subject: str, header: RecordHeader, source: str
    ) -> IngestOutcome:
        node = self.node
        name: str = header.name
        held = await node.store.get_record(name, 1)
        if held is not None:
            if envelope_from_bytes(held.envelope).payload != envelope.payload:
                # Two decisions under one name: the decider equivocated (REC-4). Keep both.
                await node.store.put_evidence(
                    "decision-equivocation",
                    f"{header.issuer}: two decisions named {name}",
                    [held.envelope, envelope.SerializeToString()],
                )
                raise ProtocolError(Reason.MALFORMED, "another decision under a held name")
            return IngestOutcome("unchanged", name)
        state = await self.state(subject)
        if state is None:
            raise ProtocolError(Reason.NOT_FOUND, "a decision about a record not held here")
        apply_decision(state, envelope, node.keyring)
        await node.store.put_records([_new_record(envelope, header, subject)])
        await self._changed(header.parties, source=source)
        return IngestOutcome("stored", name)

    # -- telling partners -----------------------------------------------------------------------

    async def _changed(self, parties: Sequence[str], *, source: str = "") -> None:
        """Queue a "look again" hint for every other party but the source (spec XCH-4): what
        was received from a partner is announced too, so a third party learns of it from us."""
        node = self.node
        served = set(node.config.institutions)
        speakers = sorted(served & set(parties)) or sorted(served)[:1]
        for party in parties:
            if party in served or party == source:
                continue
            for institution in speakers:
                await node.store.enqueue(party, f"{_TOPIC}:{institution}", b"")
