"""Lifecycle state machines of mobility and credit records (spec lifecycle.md). Pure, no IO.

A record's state is a function of its signed envelopes and the signed decisions about it (LC-5):
``record_state`` verifies every input, merges the signatures that copies of one version carry,
and folds the versions and decisions in a canonical order through the transition table of the
record's kind. Every party that holds the same envelopes and decisions computes the same state,
whatever order it received them in. ``apply_decision`` and ``apply_envelope`` are the strict,
incremental forms a node uses when something new arrives: they refuse what the table does not
allow (ILLEGAL_TRANSITION, STALE_VERSION, SIGNER_MISMATCH) and otherwise return the state that
``record_state`` computes with the new input added.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Final, cast

from google.protobuf.message import Message

from sseaun.v1.catalogue_pb2 import RecordHeader
from sseaun.v1.envelope_pb2 import Envelope, Signature
from sseaun.v1.manifest_pb2 import KeyPurpose, MemberStatus
from sseaun.v1.records_pb2 import (
    Consent,
    Credential,
    CredentialStatus,
    CredentialStatusList,
    Decision,
    DecisionKind,
    InterInstitutionalAgreement,
    LearningAgreement,
    Nomination,
    RecognitionDecision,
    RecordRef,
    TranscriptOfRecords,
)
from sseaun.v1.types_pb2 import Date

from ._envelope import add_signatures, check_structure, pae, sign_envelope
from ._errors import FieldProblem, ProtocolError, Reason
from ._keyring import KeyRing, TrustedKey, _trusted_key
from ._keys import Signer, verify_signature
from ._records import (
    CERTIFICATION_SIGNATORY,
    DECISION,
    RecordKind,
    Role,
    Roles,
    identity_problems,
    names_equal,
    open_payload,
    payload_sha256,
    record_name,
    roles_of,
    validate_record,
)
from ._time import from_timestamp, to_timestamp, utc

__all__ = [
    "REMOTE_CONSENT_TTL",
    "TRANSITIONS",
    "Condition",
    "CredentialCheck",
    "Effect",
    "Event",
    "HistoryEntry",
    "OpenedRecord",
    "RecordState",
    "State",
    "Transition",
    "VersionInfo",
    "apply_decision",
    "apply_envelope",
    "check_reference",
    "consent_in_force",
    "consent_permits",
    "cosign_record",
    "credential_status",
    "open_record",
    "record_state",
    "sign_decision",
    "sign_record",
]

#: A consent held by a node other than the home institution's stops counting this long after
#: home last refreshed it (CONSENT-5).
REMOTE_CONSENT_TTL: Final = timedelta(hours=24)

_ISSUING = KeyPurpose.KEY_PURPOSE_ISSUING
_CERTIFICATION = KeyPurpose.KEY_PURPOSE_CERTIFICATION


class State(enum.Enum):
    """A lifecycle state. Which states a record kind uses is in its transition table."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    TERMINATED = "terminated"
    NOMINATED = "nominated"
    ACCEPTED = "accepted"
    STARTED = "started"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    DRAFT = "draft"
    ISSUED = "issued"
    CORRECTED = "corrected"
    REVISED = "revised"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    GIVEN = "given"


class Event(enum.Enum):
    """What moves a record: a new version (by the class of its content and signatures), the last
    missing co-signature, a decision, or (credentials only) a status list."""

    #: A version that cannot be approved yet: a learning agreement without the student's consent.
    VERSION_DRAFT = "version-draft"
    #: A version that still lacks signatures of some signatories.
    VERSION_PROPOSED = "version-proposed"
    #: A version signed by every signatory.
    VERSION_SIGNED = "version-signed"
    #: A consent version with withdrawn = true.
    VERSION_WITHDRAWAL = "version-withdrawal"
    #: The last missing co-signature of the pending version arrived (apply_envelope).
    SIGNATURES_COMPLETE = "signatures-complete"
    ACCEPT = "accept"
    REJECT = "reject"
    TERMINATE = "terminate"
    WITHDRAW = "withdraw"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"
    APPROVE = "approve"
    #: A status list of an awarding institution suspends or revokes a credential (CRED-5).
    STATUS_SUSPENDED = "status-suspended"
    STATUS_REVOKED = "status-revoked"


class Effect(enum.Enum):
    """What a transition does to the in-force and pending versions."""

    #: The event's version becomes the pending one (awaiting signatures or a decision).
    PEND = "pend"
    #: The event's version comes into force; nothing is pending.
    FORCE = "force"
    #: The pending version is dropped; the version in force stays.
    DROP = "drop"
    #: Nothing is in force or pending any more.
    END = "end"
    #: Neither changes.
    KEEP = "keep"


class Condition(enum.Enum):
    """An extra condition of a transition."""

    ALWAYS = "always"
    #: Only while a newer version is pending.
    PENDING = "pending"
    #: Only while a pending version is a proposal (not a draft).
    PENDING_PROPOSAL = "pending-proposal"


@dataclass(frozen=True)
class Transition:
    """One row of a transition table.

    Attributes:
        source: the state before (None: the record does not exist yet).
        event: what happens.
        target: the state after.
        by: the roles that may make it happen.
        effect: what happens to the in-force and pending versions.
        when: an extra condition.
        reason: whether a decision must give a reason.
    """

    source: State | None
    event: Event
    target: State
    by: frozenset[Role]
    effect: Effect
    when: Condition = Condition.ALWAYS
    reason: bool = False


_DECISION_EVENTS: Mapping[int, Event] = {
    DecisionKind.DECISION_KIND_ACCEPT: Event.ACCEPT,
    DecisionKind.DECISION_KIND_REJECT: Event.REJECT,
    DecisionKind.DECISION_KIND_TERMINATE: Event.TERMINATE,
    DecisionKind.DECISION_KIND_WITHDRAW: Event.WITHDRAW,
    DecisionKind.DECISION_KIND_START: Event.START,
    DecisionKind.DECISION_KIND_COMPLETE: Event.COMPLETE,
    DecisionKind.DECISION_KIND_CANCEL: Event.CANCEL,
    DecisionKind.DECISION_KIND_APPROVE: Event.APPROVE,
}
_DECISION_ONLY = frozenset(_DECISION_EVENTS.values())


# --- the transition tables (spec IIA-2, NOM-2, LA-2, TOR-2, RCG-2, CRED-4, CONSENT-2) ------------

_S = State
_E = Event
_ISSUER = frozenset({Role.ISSUER})
_PARTNER = frozenset({Role.PARTNER})
_COUNTERPART = frozenset({Role.COUNTERPART})
_HOME = frozenset({Role.HOME})
_HOST = frozenset({Role.HOST})
_HOME_OR_HOST = frozenset({Role.HOME, Role.HOST})


def _row(
    sources: Iterable[State | None],
    event: Event,
    target: State | None,
    by: frozenset[Role],
    effect: Effect,
    when: Condition = Condition.ALWAYS,
    *,
    reason: bool = False,
) -> list[Transition]:
    """Rows for several source states; target None keeps the source state."""
    return [
        Transition(s, event, target or cast(State, s), by, effect, when, reason) for s in sources
    ]


def _table(*rows: list[Transition]) -> Mapping[tuple[State | None, Event], Transition]:
    out: dict[tuple[State | None, Event], Transition] = {}
    for group in rows:
        for row in group:
            key = (row.source, row.event)
            assert key not in out, key
            out[key] = row
    return out


_P = Effect.PEND
_F = Effect.FORCE
_D = Effect.DROP
_X = Effect.END
_K = Effect.KEEP
_PEND = Condition.PENDING
_PROP = Condition.PENDING_PROPOSAL

_AGREEMENT = _table(
    _row(
        [None, _S.PROPOSED, _S.REJECTED, _S.WITHDRAWN],
        _E.VERSION_PROPOSED,
        _S.PROPOSED,
        _ISSUER,
        _P,
    ),
    _row(
        [None, _S.PROPOSED, _S.REJECTED, _S.WITHDRAWN], _E.VERSION_SIGNED, _S.APPROVED, _ISSUER, _F
    ),
    _row([_S.PROPOSED], _E.SIGNATURES_COMPLETE, _S.APPROVED, _PARTNER, _F),
    _row([_S.PROPOSED], _E.REJECT, _S.REJECTED, _COUNTERPART, _D, reason=True),
    _row([_S.PROPOSED], _E.WITHDRAW, _S.WITHDRAWN, _ISSUER, _D),
    _row([_S.APPROVED], _E.VERSION_PROPOSED, None, _ISSUER, _P),
    _row([_S.APPROVED], _E.VERSION_SIGNED, None, _ISSUER, _F),
    _row([_S.APPROVED], _E.SIGNATURES_COMPLETE, None, _PARTNER, _F, _PEND),
    _row([_S.APPROVED], _E.REJECT, None, _COUNTERPART, _D, _PEND, reason=True),
    _row([_S.APPROVED], _E.WITHDRAW, None, _ISSUER, _D, _PEND),
    _row([_S.APPROVED], _E.TERMINATE, _S.TERMINATED, _PARTNER, _X, reason=True),
)
_NOMINATION = _table(
    _row([None, _S.NOMINATED, _S.REJECTED], _E.VERSION_SIGNED, _S.NOMINATED, _ISSUER, _P),
    _row([_S.NOMINATED], _E.ACCEPT, _S.ACCEPTED, _HOST, _F),
    _row([_S.NOMINATED], _E.REJECT, _S.REJECTED, _HOST, _D, reason=True),
    _row([_S.NOMINATED], _E.CANCEL, _S.CANCELLED, _HOME, _X, reason=True),
    _row([_S.ACCEPTED, _S.STARTED], _E.VERSION_SIGNED, None, _ISSUER, _P),
    _row([_S.ACCEPTED, _S.STARTED], _E.ACCEPT, None, _HOST, _F, _PEND),
    _row([_S.ACCEPTED, _S.STARTED], _E.REJECT, None, _HOST, _D, _PEND, reason=True),
    _row([_S.ACCEPTED, _S.STARTED], _E.WITHDRAW, None, _HOME, _D, _PEND),
    _row([_S.ACCEPTED, _S.STARTED], _E.CANCEL, _S.CANCELLED, _HOME_OR_HOST, _X, reason=True),
    _row([_S.ACCEPTED], _E.START, _S.STARTED, _HOST, _K),
    _row([_S.STARTED], _E.COMPLETE, _S.COMPLETED, _HOST, _D),
)
_LA_OPEN = [None, _S.DRAFT, _S.PROPOSED, _S.REJECTED, _S.WITHDRAWN]
_LEARNING_AGREEMENT = _table(
    _row(_LA_OPEN, _E.VERSION_DRAFT, _S.DRAFT, _ISSUER, _P),
    _row(_LA_OPEN, _E.VERSION_PROPOSED, _S.PROPOSED, _ISSUER, _P),
    _row(_LA_OPEN, _E.VERSION_SIGNED, _S.APPROVED, _ISSUER, _F),
    _row([_S.PROPOSED], _E.SIGNATURES_COMPLETE, _S.APPROVED, _PARTNER, _F),
    _row([_S.PROPOSED], _E.REJECT, _S.REJECTED, _COUNTERPART, _D, reason=True),
    _row([_S.DRAFT, _S.PROPOSED], _E.WITHDRAW, _S.WITHDRAWN, _ISSUER, _D),
    _row([_S.APPROVED], _E.VERSION_DRAFT, None, _ISSUER, _P),
    _row([_S.APPROVED], _E.VERSION_PROPOSED, None, _ISSUER, _P),
    _row([_S.APPROVED], _E.VERSION_SIGNED, None, _ISSUER, _F),
    _row([_S.APPROVED], _E.SIGNATURES_COMPLETE, None, _PARTNER, _F, _PROP),
    _row([_S.APPROVED], _E.REJECT, None, _COUNTERPART, _D, _PROP, reason=True),
    _row([_S.APPROVED], _E.WITHDRAW, None, _ISSUER, _D, _PEND),
)
_TRANSCRIPT = _table(
    _row([None], _E.VERSION_SIGNED, _S.ISSUED, _ISSUER, _F),
    _row([_S.ISSUED, _S.CORRECTED], _E.VERSION_SIGNED, _S.CORRECTED, _ISSUER, _F),
    _row([_S.ISSUED, _S.CORRECTED], _E.WITHDRAW, _S.WITHDRAWN, _ISSUER, _X, reason=True),
)
_RECOGNITION = _table(
    _row([None], _E.VERSION_SIGNED, _S.ISSUED, _ISSUER, _F),
    _row([_S.ISSUED, _S.REVISED], _E.VERSION_SIGNED, _S.REVISED, _ISSUER, _F),
    _row([_S.ISSUED, _S.REVISED], _E.WITHDRAW, _S.WITHDRAWN, _ISSUER, _X, reason=True),
)
_CREDENTIAL = _table(
    _row(
        [None, _S.PROPOSED, _S.REJECTED, _S.WITHDRAWN],
        _E.VERSION_PROPOSED,
        _S.PROPOSED,
        _ISSUER,
        _P,
    ),
    _row([None, _S.PROPOSED, _S.REJECTED, _S.WITHDRAWN], _E.VERSION_SIGNED, _S.ISSUED, _ISSUER, _F),
    _row([_S.PROPOSED], _E.SIGNATURES_COMPLETE, _S.ISSUED, _PARTNER, _F),
    _row([_S.PROPOSED], _E.REJECT, _S.REJECTED, _COUNTERPART, _D, reason=True),
    _row([_S.PROPOSED], _E.WITHDRAW, _S.WITHDRAWN, _ISSUER, _D),
    _row([_S.ISSUED], _E.VERSION_PROPOSED, None, _ISSUER, _P),
    _row([_S.ISSUED], _E.VERSION_SIGNED, None, _ISSUER, _F),
    _row([_S.ISSUED], _E.SIGNATURES_COMPLETE, None, _PARTNER, _F, _PEND),
    _row([_S.ISSUED], _E.REJECT, None, _COUNTERPART, _D, _PEND, reason=True),
    _row([_S.ISSUED], _E.WITHDRAW, None, _ISSUER, _D, _PEND),
)
_STATUS_LIST = _table(
    _row([None, _S.ISSUED], _E.VERSION_SIGNED, _S.ISSUED, _ISSUER, _F),
)
_CONSENT = _table(
    _row([None, _S.GIVEN], _E.VERSION_SIGNED, _S.GIVEN, _ISSUER, _F),
    _row([_S.GIVEN], _E.VERSION_WITHDRAWAL, _S.WITHDRAWN, _ISSUER, _X),
)

#: The transition table of every record kind that has a lifecycle: (state before, event) → row.
#: Anything not listed is ILLEGAL_TRANSITION.
TRANSITIONS: Mapping[RecordKind, Mapping[tuple[State | None, Event], Transition]] = {
    RecordKind.AGREEMENT: _AGREEMENT,
    RecordKind.NOMINATION: _NOMINATION,
    RecordKind.LEARNING_AGREEMENT: _LEARNING_AGREEMENT,
    RecordKind.TRANSCRIPT: _TRANSCRIPT,
    RecordKind.RECOGNITION: _RECOGNITION,
    RecordKind.CREDENTIAL: _CREDENTIAL,
    RecordKind.CREDENTIAL_STATUS_LIST: _STATUS_LIST,
    RecordKind.CONSENT: _CONSENT,
}


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionInfo:
    """One verified version of a record.

    Attributes:
        envelope: the version's payload with every distinct signature its copies carried
            (sorted by key ID), so co-signatures made on different copies count together.
        message: the record message parsed from the verified payload.
        payload_sha256: SHA-256 of the payload (what decisions and references name).
        signed_by: the signatories whose valid signature the envelope carries.
        event: the class of the version (draft, proposed, signed, withdrawal).
    """

    version: int
    envelope: Envelope
    message: Message
    payload_sha256: bytes
    issued_at: datetime
    roles: Roles
    signed_by: frozenset[str]
    event: Event

    @property
    def header(self) -> RecordHeader:
        """The record header of the version."""
        return _header(self.message)

    @property
    def approved(self) -> bool:
        """Whether every signatory signed (LC-3)."""
        return set(self.roles.signatories) <= self.signed_by

    @property
    def missing(self) -> tuple[str, ...]:
        """The signatories whose signature is missing, sorted."""
        return tuple(sorted(set(self.roles.signatories) - self.signed_by))


@dataclass(frozen=True)
class HistoryEntry:
    """One event of a record, in canonical order; refused events are kept, marked.

    Attributes:
        event: what happened.
        version: the version it concerns.
        by: the institution (issuer of a version, decider, status list issuer).
        at: its signed time (header.issued_at).
        source: the state before.
        target: the state after; None when refused.
        digest: SHA-256 of the version's, decision's or status list's payload.
        refused: why the event did not count, or None.
        detail: the refusal's message, or the decision's reason as given.
    """

    event: Event
    version: int
    by: str
    at: datetime
    source: State | None
    target: State | None
    digest: bytes
    refused: Reason | None = None
    detail: str = ""


@dataclass(frozen=True)
class RecordState:
    """The state of one record, computed from its envelopes and decisions (LC-5).

    Attributes:
        kind: the record kind.
        name: the record's resource name.
        state: the lifecycle state.
        in_force_version: the version whose terms hold now, or None (LC-6).
        pending_version: a newer version awaiting signatures or a decision, or None.
        latest_version: the highest version held.
        awaiting: the institutions that must act next, sorted (LC-6); may hold
            CERTIFICATION_SIGNATORY for a network certificate.
        history: every version and decision in canonical order, refused ones marked.
        versions: the verified versions, 1 to latest_version.
        decisions: the decision envelopes considered, once each, in canonical order.
        status_lists: the status list envelopes considered (credentials).
    """

    kind: RecordKind
    name: str
    state: State
    in_force_version: int | None
    pending_version: int | None
    latest_version: int
    awaiting: tuple[str, ...]
    history: tuple[HistoryEntry, ...]
    versions: tuple[VersionInfo, ...] = field(repr=False)
    decisions: tuple[Envelope, ...] = field(repr=False)
    status_lists: tuple[Envelope, ...] = field(default=(), repr=False)

    def version(self, number: int) -> VersionInfo:
        """A version by number.

        Raises:
            ProtocolError: NOT_FOUND when the state holds no such version.
        """
        if not 1 <= number <= len(self.versions):
            raise ProtocolError(Reason.NOT_FOUND, "no such version")
        return self.versions[number - 1]

    @property
    def latest(self) -> VersionInfo:
        """The highest version held."""
        return self.versions[-1]

    @property
    def in_force(self) -> VersionInfo | None:
        """The version in force, if any."""
        return None if self.in_force_version is None else self.version(self.in_force_version)


# --- verifying inputs ----------------------------------------------------------------------------


def _header(message: Message) -> RecordHeader:
    return cast(RecordHeader, message.header)  # type: ignore[attr-defined]


def _signer_of(message: Message) -> tuple[str, str, datetime]:
    header = _header(message)
    return header.network_id, header.issuer, from_timestamp(header.issued_at)


def _certification_keys(keyring: KeyRing) -> dict[str, TrustedKey]:
    return {k.key_id: _trusted_key(k) for k in keyring.manifest.manifest.certification_keys}


def _signature_problem(
    sig: Signature,
    message: bytes,
    roles: Roles,
    at: datetime,
    keyring: KeyRing,
    certification: Mapping[str, TrustedKey],
) -> tuple[str | None, ProtocolError | None]:
    """(the signatory a signature counts for, or None; why it does not count, or None)."""
    key = keyring.key(sig.keyid)
    purpose = _ISSUING
    if key is None:
        key = certification.get(sig.keyid)
        purpose = _CERTIFICATION
    if key is None:
        return None, ProtocolError(Reason.KEY_UNKNOWN, "a signature names an unknown key")
    if not verify_signature(key.public_key, sig.sig, message):
        return None, ProtocolError(
            Reason.SIGNATURE_INVALID, "a signature does not verify", metadata={"key-id": key.key_id}
        )
    try:
        keyring.check_key(key, signer=key.holder, purpose=purpose, at=at, new_call=False)
    except ProtocolError as exc:
        return None, exc
    label = CERTIFICATION_SIGNATORY if purpose == _CERTIFICATION else key.holder
    if label not in roles.signatories:
        return None, ProtocolError(
            Reason.SIGNER_MISMATCH,
            "signed by an institution that is not a signatory of the record",
            metadata={"signer": label},
        )
    return label, None


def _version_event(kind: RecordKind, message: Message, approved: bool) -> Event:
    if isinstance(message, Consent) and message.withdrawn:
        return Event.VERSION_WITHDRAWAL
    if isinstance(message, LearningAgreement) and not message.HasField("student_consent"):
        return Event.VERSION_DRAFT
    return Event.VERSION_SIGNED if approved else Event.VERSION_PROPOSED


def _open_version(kind: RecordKind, envelope: Envelope, keyring: KeyRing) -> VersionInfo:
    """Verify one version: the issuer's signature (ENV-6, KEY-5 as a record), its content, and
    which signatories' signatures count (LC-3)."""
    verified = keyring.verify(
        envelope,
        allowed_types={kind.payload_type},
        message_type=kind.message_type,
        signer_of=_signer_of,
        purpose=_ISSUING,
        new_call=False,
        precheck=lambda message, _at: validate_record(message),
    )
    message = verified.message
    header = _header(message)
    roles = roles_of(message)
    at = from_timestamp(header.issued_at)
    data = pae(envelope.payload_type, envelope.payload)
    certification = (
        _certification_keys(keyring) if CERTIFICATION_SIGNATORY in roles.signatories else {}
    )
    signed: set[str] = set()
    for sig in envelope.signatures:
        label, _ = _signature_problem(sig, data, roles, at, keyring, certification)
        if label is not None:
            signed.add(label)
    approved = set(roles.signatories) <= signed
    return VersionInfo(
        version=header.version,
        envelope=envelope,
        message=message,
        payload_sha256=payload_sha256(envelope.payload),
        issued_at=at,
        roles=roles,
        signed_by=frozenset(signed),
        event=_version_event(kind, message, approved),
    )


def _merge(copies: Sequence[Envelope]) -> Envelope:
    """One envelope with every distinct signature of copies of the same payload, sorted."""
    first = copies[0]
    seen: dict[tuple[str, bytes], Signature] = {}
    for copy in copies:
        for sig in copy.signatures:
            seen.setdefault((sig.keyid, sig.sig), sig)
    out = Envelope(payload=first.payload, payload_type=first.payload_type)
    out.signatures.extend(seen[k] for k in sorted(seen))
    return out


def _kind_of(envelope: Envelope) -> RecordKind:
    check_structure(envelope)
    kind = RecordKind.of_payload_type(envelope.payload_type)
    if kind is RecordKind.DECISION:
        raise ProtocolError(
            Reason.PAYLOAD_TYPE_UNSUPPORTED,
            "a decision is not a version of the record it decides on",
            metadata={"payload-type": envelope.payload_type},
        )
    return kind


def _malformed(message: str, field_name: str, description: str, **meta: str) -> ProtocolError:
    return ProtocolError(
        Reason.MALFORMED,
        message,
        field_problems=[FieldProblem(field_name, description)],
        metadata=meta,
    )


def _open_versions(
    envelopes: Sequence[Envelope], keyring: KeyRing
) -> tuple[RecordKind, list[VersionInfo]]:
    if not envelopes:
        raise ProtocolError(Reason.MALFORMED, "a record needs at least one version")
    kinds = {_kind_of(e) for e in envelopes}
    if len(kinds) != 1:
        raise ProtocolError(Reason.MALFORMED, "envelopes of different record kinds")
    kind = kinds.pop()
    groups: dict[bytes, list[Envelope]] = {}
    for envelope in envelopes:
        groups.setdefault(envelope.payload, []).append(envelope)
    by_version: dict[int, VersionInfo] = {}
    name = ""
    for payload in sorted(groups):
        info = _open_version(kind, _merge(groups[payload]), keyring)
        name = name or info.header.name
        if info.header.name != name:
            raise _malformed("envelopes of different records", "header.name", "differs")
        if info.version in by_version:
            raise _malformed(
                "two different envelopes for one version: the issuer equivocated (REC-4)",
                "header.version",
                "two payloads for one version",
                version=str(info.version),
            )
        by_version[info.version] = info
    versions = [by_version[v] for v in sorted(by_version)]
    for expected, info in enumerate(versions, start=1):
        if info.version != expected:
            raise _malformed(
                "versions must run from 1 without gaps (REC-4)",
                "header.version",
                f"version {expected} is missing",
                version=str(expected),
            )
        if expected > 1 and (
            problems := identity_problems(versions[expected - 2].message, info.message)
        ):
            raise ProtocolError(
                Reason.MALFORMED,
                "a new version changes what identifies the record (LC-4)",
                field_problems=problems,
                metadata={"version": str(expected)},
            )
    return kind, versions


@dataclass(frozen=True)
class _Decided:
    envelope: Envelope
    decision: Decision
    digest: bytes
    at: datetime
    by: str

    @property
    def order(self) -> tuple[int, int, datetime, bytes]:
        # Canonical order (LC-5): by the version decided on, after that version itself; within a
        # version by signed time, then by payload digest.
        return (self.decision.record.version, 1, self.at, self.digest)


def _open_decision(envelope: Envelope, keyring: KeyRing) -> _Decided:
    verified = keyring.verify(
        envelope,
        allowed_types={DECISION},
        message_type=Decision,
        signer_of=_signer_of,
        purpose=_ISSUING,
        new_call=False,
        precheck=lambda message, _at: validate_record(message),
    )
    decision = cast(Decision, verified.message)
    return _Decided(
        envelope=envelope,
        decision=decision,
        digest=payload_sha256(envelope.payload),
        at=from_timestamp(decision.header.issued_at),
        by=decision.header.issuer,
    )


def _open_decisions(decisions: Iterable[Envelope], name: str, keyring: KeyRing) -> list[_Decided]:
    out: dict[bytes, _Decided] = {}
    for envelope in decisions:
        decided = _open_decision(envelope, keyring)
        if decided.decision.record.name != name:
            raise _malformed(
                "a decision about another record",
                "record.name",
                f"must be {name}",
                name=decided.decision.record.name,
            )
        out.setdefault(decided.digest, decided)
    return sorted(out.values(), key=lambda d: d.order)


# --- the fold (spec LC-5) ------------------------------------------------------------------------


@dataclass
class _Fold:
    state: State | None = None
    in_force: int | None = None
    pending: int | None = None


def _illegal(kind: RecordKind, state: State | None, event: Event, version: int) -> ProtocolError:
    return ProtocolError(
        Reason.ILLEGAL_TRANSITION,
        f"{kind.value}: {event.value} is not allowed in state {_state_name(state)}",
        metadata={
            "kind": kind.value,
            "state": _state_name(state),
            "transition": event.value,
            "version": str(version),
        },
    )


def _state_name(state: State | None) -> str:
    return "none" if state is None else state.value


def _condition_holds(rule: Transition, fold: _Fold, versions: Sequence[VersionInfo]) -> bool:
    if rule.when is Condition.ALWAYS:
        return True
    if fold.pending is None:
        return False
    if rule.when is Condition.PENDING_PROPOSAL:
        return versions[fold.pending - 1].event is not Event.VERSION_DRAFT
    return True


def _apply(fold: _Fold, rule: Transition, version: int) -> None:
    fold.state = rule.target
    if rule.effect is Effect.PEND:
        fold.pending = version
    elif rule.effect is Effect.FORCE:
        fold.in_force, fold.pending = version, None
    elif rule.effect is Effect.DROP:
        fold.pending = None
    elif rule.effect is Effect.END:
        fold.in_force, fold.pending = None, None


def _decision_rule(
    kind: RecordKind,
    fold: _Fold,
    versions: Sequence[VersionInfo],
    target: VersionInfo,
    decided: _Decided,
) -> Transition:
    """The transition a decision on target makes from fold, or the reason it is refused (DEC-4).

    Order: party (SIGNER_MISMATCH), parties listed (MALFORMED), table row and condition
    (ILLEGAL_TRANSITION), role (SIGNER_MISMATCH), reason (MALFORMED).
    """
    decision = decided.decision
    roles = target.roles
    if decided.by not in roles.parties:
        raise ProtocolError(
            Reason.SIGNER_MISMATCH,
            "the deciding institution is not a party of the record",
            metadata={"signer": decided.by},
        )
    listed = set(decision.header.parties)
    if missing := sorted(roles.parties - listed):
        raise _malformed(
            "a decision must be readable by every party of the record",
            "header.parties",
            f"must list {', '.join(missing)}",
        )
    event = _DECISION_EVENTS[decision.kind]
    rule = TRANSITIONS[kind].get((fold.state, event))
    if rule is None or not _condition_holds(rule, fold, versions):
        raise _illegal(kind, fold.state, event, target.version)
    if not roles.holds(decided.by, rule.by):
        raise ProtocolError(
            Reason.SIGNER_MISMATCH,
            f"only the {' or '.join(sorted(r.value for r in rule.by))} may {event.value} a "
            f"{kind.value} here",
            metadata={"signer": decided.by, "transition": event.value},
        )
    if rule.reason and not decision.reason.strip():
        raise _malformed("this decision needs a reason", "reason", "required")
    return rule


def _refused(entry: HistoryEntry, exc: ProtocolError) -> HistoryEntry:
    return replace(entry, target=None, refused=exc.reason, detail=exc.message)


def _fold(
    kind: RecordKind, versions: Sequence[VersionInfo], decided: Sequence[_Decided]
) -> tuple[_Fold, list[HistoryEntry]]:
    fold = _Fold()
    history: list[HistoryEntry] = []
    events: list[tuple[tuple[int, int, datetime, bytes], VersionInfo | _Decided]] = [
        ((v.version, 0, v.issued_at, v.payload_sha256), v) for v in versions
    ]
    events += [(d.order, d) for d in decided]
    events.sort(key=lambda item: item[0])
    table = TRANSITIONS[kind]
    for _, item in events:
        source = fold.state
        if isinstance(item, VersionInfo):
            entry = HistoryEntry(
                item.event, item.version, item.header.issuer, item.issued_at, source, None,
                item.payload_sha256,
            )  # fmt: skip
            rule = table.get((source, item.event))
            if rule is None:
                history.append(_refused(entry, _illegal(kind, source, item.event, item.version)))
                continue
            _apply(fold, rule, item.version)
            history.append(replace(entry, target=fold.state))
            continue
        decision = item.decision
        event = _DECISION_EVENTS.get(decision.kind, Event.APPROVE)
        number = decision.record.version
        entry = HistoryEntry(
            event, number, item.by, item.at, source, None, item.digest, None, decision.reason
        )
        if number > len(versions):
            history.append(
                _refused(
                    entry,
                    ProtocolError(Reason.STALE_VERSION, "names a version this holder lacks"),
                )
            )
            continue
        target = versions[number - 1]
        if decision.record.payload_sha256 != target.payload_sha256:
            history.append(
                _refused(
                    entry,
                    ProtocolError(Reason.STALE_VERSION, "names other content than the version"),
                )
            )
            continue
        try:
            rule = _decision_rule(kind, fold, versions, target, item)
        except ProtocolError as exc:
            history.append(_refused(entry, exc))
            continue
        _apply(fold, rule, number)
        history.append(replace(entry, target=fold.state))
    return fold, history


def _awaiting(kind: RecordKind, fold: _Fold, versions: Sequence[VersionInfo]) -> tuple[str, ...]:
    """Who must act next (LC-6), per the 'awaiting' column of each table."""
    latest = versions[-1]
    pending = None if fold.pending is None else versions[fold.pending - 1]
    if pending is not None:
        if pending.event is Event.VERSION_DRAFT:
            return (pending.header.issuer,)
        if pending.event is Event.VERSION_PROPOSED:
            return pending.missing
        if kind is RecordKind.NOMINATION:
            return tuple(sorted(pending.roles.by_role[Role.HOST]))
    if kind is RecordKind.NOMINATION and fold.state in (State.ACCEPTED, State.STARTED):
        return tuple(sorted(latest.roles.by_role[Role.HOST]))
    if kind is RecordKind.LEARNING_AGREEMENT and fold.state is State.REJECTED:
        return (latest.header.issuer,)
    return ()


# --- credential status (spec CRED-5) -------------------------------------------------------------


def _open_status_lists(lists: Sequence[Envelope], keyring: KeyRing) -> list[VersionInfo]:
    groups: dict[bytes, list[Envelope]] = {}
    for envelope in lists:
        check_structure(envelope)
        if envelope.payload_type != RecordKind.CREDENTIAL_STATUS_LIST.payload_type:
            raise ProtocolError(
                Reason.PAYLOAD_TYPE_UNSUPPORTED,
                "not a credential status list",
                metadata={"payload-type": envelope.payload_type},
            )
        groups.setdefault(envelope.payload, []).append(envelope)
    return [
        _open_version(RecordKind.CREDENTIAL_STATUS_LIST, _merge(groups[p]), keyring)
        for p in sorted(groups)
    ]


def _status_at(status_list: CredentialStatusList, index: int) -> int:
    for entry in status_list.entries:
        if entry.index == index:
            return entry.status
    return CredentialStatus.CREDENTIAL_STATUS_ACTIVE


_SEVERITY: dict[int, int] = {
    CredentialStatus.CREDENTIAL_STATUS_ACTIVE: 0,
    CredentialStatus.CREDENTIAL_STATUS_SUSPENDED: 1,
    CredentialStatus.CREDENTIAL_STATUS_REVOKED: 2,
}


def _statuses(
    credential: Credential, lists: Sequence[VersionInfo]
) -> list[tuple[str, int, VersionInfo | None]]:
    """For each awarding institution: (institution, status, the list version that decided)."""
    out: list[tuple[str, int, VersionInfo | None]] = []
    for ref in credential.status:
        mine = [
            info
            for info in lists
            if info.header.name == ref.list_name and info.header.issuer == ref.institution
        ]
        if not mine:
            out.append((ref.institution, CredentialStatus.CREDENTIAL_STATUS_UNSPECIFIED, None))
            continue
        revoked = [
            info
            for info in mine
            if _status_at(cast(CredentialStatusList, info.message), ref.index)
            == CredentialStatus.CREDENTIAL_STATUS_REVOKED
        ]
        if revoked:  # revocation is final: a later list cannot lift it (CRED-5)
            first = min(revoked, key=lambda i: (i.version, i.payload_sha256))
            out.append((ref.institution, CredentialStatus.CREDENTIAL_STATUS_REVOKED, first))
            continue
        newest = max(i.version for i in mine)
        candidates = [i for i in mine if i.version == newest]
        worst = max(
            candidates,
            key=lambda i: (
                _SEVERITY.get(_status_at(cast(CredentialStatusList, i.message), ref.index), 0),
                i.payload_sha256,
            ),
        )
        out.append(
            (
                ref.institution,
                _status_at(cast(CredentialStatusList, worst.message), ref.index),
                worst,
            )
        )
    return out


def _overlay(
    fold: _Fold,
    versions: Sequence[VersionInfo],
    lists: Sequence[VersionInfo],
    history: list[HistoryEntry],
) -> None:
    if fold.state is not State.ISSUED or fold.in_force is None:
        return
    in_force = versions[fold.in_force - 1]
    statuses = _statuses(cast(Credential, in_force.message), lists)
    for wanted, state, event in (
        (CredentialStatus.CREDENTIAL_STATUS_REVOKED, State.REVOKED, Event.STATUS_REVOKED),
        (CredentialStatus.CREDENTIAL_STATUS_SUSPENDED, State.SUSPENDED, Event.STATUS_SUSPENDED),
    ):
        hits = [(inst, info) for inst, status, info in statuses if status == wanted and info]
        if hits:
            for inst, info in sorted(hits, key=lambda h: h[0]):
                history.append(
                    HistoryEntry(
                        event,
                        in_force.version,
                        inst,
                        info.issued_at,
                        fold.state,
                        state,
                        info.payload_sha256,
                    )
                )
            fold.state, fold.in_force, fold.pending = state, None, None
            return


# --- the public functions ------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedRecord:
    """One lifecycle envelope verified on its own: a version of a record, or a decision.

    Attributes:
        kind: the record kind (DECISION for a decision).
        message: the record message parsed from the verified payload.
        subject: for a decision, the name of the record it decides on; else "".
    """

    kind: RecordKind
    message: Message

    @property
    def header(self) -> RecordHeader:
        return _header(self.message)

    @property
    def subject(self) -> str:
        return self.message.record.name if isinstance(self.message, Decision) else ""


def open_record(envelope: Envelope, keyring: KeyRing) -> OpenedRecord:
    """Verify one version or decision on its own: the issuer's ISSUING signature at the signed
    time, the content rules, the header (LC-1, LC-2, DEC-1); not the lifecycle, which needs the
    record's other inputs (record_state).

    Raises:
        ProtocolError: PAYLOAD_TYPE_UNSUPPORTED (not a lifecycle kind), MALFORMED, and the
            verification reasons of ENV-6 and KEY-5.
    """
    check_structure(envelope)
    kind = RecordKind.of_payload_type(envelope.payload_type)
    if kind is RecordKind.DECISION:
        return OpenedRecord(kind, _open_decision(envelope, keyring).decision)
    return OpenedRecord(kind, _open_version(kind, envelope, keyring).message)


def record_state(
    envelopes: Sequence[Envelope],
    decisions: Sequence[Envelope],
    keyring: KeyRing,
    *,
    status_lists: Sequence[Envelope] = (),
) -> RecordState:
    """The state of a record from its envelopes and decisions (LC-5).

    Args:
        envelopes: every envelope held of the record: one or more per version (copies whose
            signatures differ are merged), versions 1 to the latest without gaps.
        decisions: the decision envelopes about the record, in any order, duplicates allowed.
        keyring: the key ring of the manifest in force.
        status_lists: for a credential, the status list envelopes of its awarding institutions
            (any versions; unrelated lists are ignored).

    Raises:
        ProtocolError: the verification reasons of ENV-6 and KEY-5 (an envelope or decision whose
            issuer's signature does not count), MALFORMED (content rules, equivocation, version
            gaps, changed identity, a decision about another record), PAYLOAD_TYPE_UNSUPPORTED.
            A valid decision that the table does not allow is not an error: it is kept in the
            history, marked refused, and changes nothing.
    """
    kind, versions = _open_versions(envelopes, keyring)
    name = versions[0].header.name
    decided = _open_decisions(decisions, name, keyring)
    lists: list[VersionInfo] = []
    if status_lists:
        lists = _open_status_lists(status_lists, keyring)
    fold, history = _fold(kind, versions, decided)
    if kind is RecordKind.CREDENTIAL:
        _overlay(fold, versions, lists, history)
    assert fold.state is not None  # version 1 is always legal from nothing
    return RecordState(
        kind=kind,
        name=name,
        state=fold.state,
        in_force_version=fold.in_force,
        pending_version=fold.pending,
        latest_version=len(versions),
        awaiting=_awaiting(kind, fold, versions) if fold.state is not State.REVOKED else (),
        history=tuple(history),
        versions=tuple(versions),
        decisions=tuple(d.envelope for d in decided),
        status_lists=tuple(_merge([e]) for e in _dedupe(status_lists)),
    )


def _dedupe(envelopes: Iterable[Envelope]) -> list[Envelope]:
    seen: dict[tuple[str, bytes, tuple[tuple[str, bytes], ...]], Envelope] = {}
    for e in envelopes:
        key = (e.payload_type, e.payload, tuple(sorted((s.keyid, s.sig) for s in e.signatures)))
        seen.setdefault(key, e)
    return [seen[k] for k in sorted(seen)]


def _fold_of(state: RecordState) -> _Fold:
    return _Fold(state.state, state.in_force_version, state.pending_version)


def _recompute(
    state: RecordState,
    versions: Sequence[Envelope],
    decisions: Sequence[Envelope],
    keyring: KeyRing,
) -> RecordState:
    return record_state(versions, decisions, keyring, status_lists=state.status_lists)


def apply_decision(state: RecordState, decision: Envelope, keyring: KeyRing) -> RecordState:
    """The state after one new decision, refusing a decision the lifecycle does not allow (DEC-4).

    Delivering a decision already in the state again returns the state unchanged.

    Raises:
        ProtocolError: the verification reasons of ENV-6 and KEY-5; MALFORMED (content, another
            record's name, parties not listed, a missing reason); SIGNER_MISMATCH (a non-party,
            or a party in a role the table does not allow); STALE_VERSION (not the latest
            version, other content, or dated before the last decision on that version);
            ILLEGAL_TRANSITION (with ``state``, ``transition`` and ``version`` in metadata).
    """
    decided = _open_decision(decision, keyring)
    known = {payload_sha256(e.payload) for e in state.decisions}
    if decided.digest in known:
        return state
    ref = decided.decision.record
    if ref.name != state.name:
        raise _malformed("a decision about another record", "record.name", f"must be {state.name}")
    latest = state.latest
    if decided.by not in latest.roles.parties:
        raise ProtocolError(
            Reason.SIGNER_MISMATCH,
            "the deciding institution is not a party of the record",
            metadata={"signer": decided.by},
        )
    if ref.version != latest.version or ref.payload_sha256 != latest.payload_sha256:
        raise ProtocolError(
            Reason.STALE_VERSION,
            "the decision names a version other than the latest",
            metadata={"version": str(ref.version), "latest-version": str(latest.version)},
        )
    # The fold orders the decisions on one version by (time, digest): a decision that would sort
    # before one already held would rewrite history, so it must be made again (LC-5).
    earlier = [
        (h.at, h.digest)
        for h in state.history
        if h.version == latest.version and h.event in _DECISION_ONLY
    ]
    if earlier and (decided.at, decided.digest) < max(earlier):
        raise ProtocolError(
            Reason.STALE_VERSION,
            "the decision is dated before the last decision on this version: decide again",
            metadata={"latest-version": str(latest.version)},
        )
    _decision_rule(state.kind, _fold_of(state), state.versions, latest, decided)
    return _recompute(
        state, [v.envelope for v in state.versions], [*state.decisions, decision], keyring
    )


def apply_envelope(state: RecordState, envelope: Envelope, keyring: KeyRing) -> RecordState:
    """The state after a new version or new co-signatures arrive, refusing what the lifecycle
    does not allow (LC-3, LC-4).

    Delivering an envelope whose signatures are all known returns the state unchanged.

    Raises:
        ProtocolError: the verification reasons of ENV-6 and KEY-5 (for the issuer's signature);
            PAYLOAD_TYPE_UNSUPPORTED (another kind); MALFORMED (another record, content, a
            version gap, equivocation); SIGNER_MISMATCH, KEY_UNKNOWN, SIGNATURE_INVALID or a
            key reason for an added signature that does not count; STALE_VERSION (co-signing a
            version that is not the latest); ILLEGAL_TRANSITION (a new version or the completing
            signature where the table does not allow it).
    """
    kind = _kind_of(envelope)
    if kind is not state.kind:
        raise ProtocolError(
            Reason.PAYLOAD_TYPE_UNSUPPORTED,
            f"not a {state.kind.value}",
            metadata={"payload-type": envelope.payload_type},
        )
    info = _open_version(kind, envelope, keyring)
    if info.header.name != state.name:
        raise _malformed("an envelope of another record", "header.name", f"must be {state.name}")
    number = info.version
    envelopes = [v.envelope for v in state.versions]
    if number > state.latest_version + 1:
        raise _malformed(
            "versions must run from 1 without gaps (REC-4)",
            "header.version",
            f"the next version is {state.latest_version + 1}",
        )
    if number == state.latest_version + 1:
        rule = TRANSITIONS[kind].get((state.state, info.event))
        if rule is None:
            raise _illegal(kind, state.state, info.event, number)
        return _recompute(state, [*envelopes, envelope], state.decisions, keyring)
    held = state.version(number)
    if envelope.payload != held.envelope.payload:
        raise _malformed(
            "two different envelopes for one version: the issuer equivocated (REC-4)",
            "header.version",
            "two payloads for one version",
            version=str(number),
        )
    known = {(s.keyid, s.sig) for s in held.envelope.signatures}
    added = [s for s in envelope.signatures if (s.keyid, s.sig) not in known]
    if not added:
        return state
    data = pae(envelope.payload_type, envelope.payload)
    certification = (
        _certification_keys(keyring) if CERTIFICATION_SIGNATORY in held.roles.signatories else {}
    )
    for sig in added:
        _, problem = _signature_problem(
            sig, data, held.roles, held.issued_at, keyring, certification
        )
        if problem is not None:
            raise problem
    merged = _open_version(kind, _merge([held.envelope, envelope]), keyring)
    if merged.signed_by == held.signed_by:
        return state
    if number < state.latest_version:
        raise ProtocolError(
            Reason.STALE_VERSION,
            "co-signing a version that a newer version replaced",
            metadata={"version": str(number), "latest-version": str(state.latest_version)},
        )
    if state.pending_version != number:
        raise _illegal(kind, state.state, Event.SIGNATURES_COMPLETE, number)
    if merged.approved:
        rule = TRANSITIONS[kind].get((state.state, Event.SIGNATURES_COMPLETE))
        if rule is None or not _condition_holds(rule, _fold_of(state), state.versions):
            raise _illegal(kind, state.state, Event.SIGNATURES_COMPLETE, number)
    envelopes[number - 1] = merged.envelope
    return _recompute(state, envelopes, state.decisions, keyring)


# --- builders (spec LC-10) -----------------------------------------------------------------------


def sign_record(
    message: Message,
    signer: Signer,
    *,
    keyring: KeyRing | None = None,
    state: RecordState | None = None,
) -> Envelope:
    """Validate a record version and sign its exact bytes as its issuer (LC-10).

    With a keyring, the signer's key must be an ISSUING key of header.issuer valid at
    header.issued_at. With a state (needs the keyring), the version must also be the next one and
    the table must allow it (apply_envelope's checks).

    Raises:
        ProtocolError: MALFORMED, PAYLOAD_TYPE_UNSUPPORTED (not a record, or a Decision: use
            sign_decision), the key reasons of KEY-5, and with a state those of apply_envelope.
    """
    kind = RecordKind.of_message(message)
    if kind is RecordKind.DECISION:
        raise ProtocolError(Reason.PAYLOAD_TYPE_UNSUPPORTED, "sign decisions with sign_decision")
    validate_record(message)
    envelope = sign_envelope(
        message.SerializeToString(deterministic=True), kind.payload_type, [signer]
    )
    if keyring is not None:
        _open_version(kind, envelope, keyring)
    if state is not None:
        if keyring is None:
            raise ValueError("checking against a state needs the keyring")
        apply_envelope(state, envelope, keyring)
    return envelope


def cosign_record(
    envelope: Envelope,
    signer: Signer,
    *,
    keyring: KeyRing | None = None,
    state: RecordState | None = None,
) -> Envelope:
    """Add the signer's signature to a record version over the same bytes (LC-3, ENV-7).

    Refuses a learning agreement draft (no student consent) with ILLEGAL_TRANSITION. With a
    keyring, the issuer's signature is verified first and the signer's key must be the ISSUING key
    of a signatory (else SIGNER_MISMATCH) valid at header.issued_at. With a state (needs the
    keyring), the co-signature must also be one apply_envelope accepts (STALE_VERSION for a
    replaced version, ILLEGAL_TRANSITION for a version no longer awaiting signatures).

    Raises:
        ProtocolError: as described, plus MALFORMED for content and the reasons of ENV-6/KEY-5.
    """
    kind = _kind_of(envelope)
    if keyring is not None:
        info = _open_version(kind, envelope, keyring)
        message, roles, at = info.message, info.roles, info.issued_at
    else:
        message = open_payload(kind, envelope.payload)
        validate_record(message)
        roles, at = roles_of(message), from_timestamp(_header(message).issued_at)
    if isinstance(message, LearningAgreement) and not message.HasField("student_consent"):
        raise _illegal(kind, State.DRAFT, Event.SIGNATURES_COMPLETE, _header(message).version)
    out = add_signatures(envelope, [signer])
    if keyring is not None:
        certification = (
            _certification_keys(keyring) if CERTIFICATION_SIGNATORY in roles.signatories else {}
        )
        sig = next(s for s in out.signatures if s.keyid == signer.key_id)
        _, problem = _signature_problem(
            sig, pae(out.payload_type, out.payload), roles, at, keyring, certification
        )
        if problem is not None:
            raise problem
    if state is not None:
        if keyring is None:
            raise ValueError("checking against a state needs the keyring")
        apply_envelope(state, out, keyring)
    return out


def sign_decision(
    record: RecordState | Envelope,
    kind: DecisionKind.ValueType,
    *,
    decided_by: str,
    decided_at: datetime,
    signer: Signer,
    decision_id: str,
    reason: str = "",
    effective_date: date | None = None,
    keyring: KeyRing | None = None,
) -> Envelope:
    """Build, check and sign a decision about the latest version of a record (DEC-1..DEC-4).

    Args:
        record: the record's state (the decision names its latest version and is checked against
            its transition table), or one envelope of the version decided on (then only whether
            the record kind ever allows this decision by this institution is checked).
        kind: what is decided.
        decided_by: the deciding institution (the decision's issuer).
        decided_at: the time of the decision (header.issued_at), aware.
        signer: an ISSUING key of decided_by.
        decision_id: the decision's record ID: its name is
            institutions/{decided_by}/decisions/{decision_id}.
        reason: why; required for REJECT, CANCEL and TERMINATE.
        effective_date: when it takes effect, if not at once.
        keyring: when given, the signer's key is checked, and with a state the whole decision is
            checked as apply_decision does.

    Raises:
        ProtocolError: MALFORMED, ILLEGAL_TRANSITION, SIGNER_MISMATCH, STALE_VERSION, and the key
            reasons of KEY-5.
    """
    if isinstance(record, RecordState):
        target_message, digest, version = (
            record.latest.message,
            record.latest.payload_sha256,
            record.latest_version,
        )
        record_kind = record.kind
    else:
        record_kind = _kind_of(record)
        target_message = open_payload(record_kind, record.payload)
        validate_record(target_message)
        digest, version = payload_sha256(record.payload), _header(target_message).version
    header = _header(target_message)
    roles = roles_of(target_message)
    parties = sorted((set(header.parties) | roles.parties) - {CERTIFICATION_SIGNATORY})
    decision = Decision(
        header=RecordHeader(
            network_id=header.network_id,
            name=record_name(RecordKind.DECISION, decided_by, decision_id),
            version=1,
            issuer=decided_by,
            issued_at=to_timestamp(decided_at),
            parties=parties,
        ),
        record=RecordRef(name=header.name, version=version, payload_sha256=digest),
        kind=kind,
        reason=reason,
    )
    if effective_date is not None:
        decision.effective_date.CopyFrom(
            Date(year=effective_date.year, month=effective_date.month, day=effective_date.day)
        )
    validate_record(decision)
    decided = _Decided(Envelope(), decision, b"", utc(decided_at), decided_by)
    if isinstance(record, RecordState):
        _decision_rule(record_kind, _fold_of(record), record.versions, record.latest, decided)
    else:
        _ever_allowed(record_kind, roles, decided)
    envelope = sign_envelope(decision.SerializeToString(deterministic=True), DECISION, [signer])
    if keyring is not None:
        _open_decision(envelope, keyring)
        if isinstance(record, RecordState):
            apply_decision(record, envelope, keyring)
    return envelope


def _ever_allowed(kind: RecordKind, roles: Roles, decided: _Decided) -> None:
    event = _DECISION_EVENTS[decided.decision.kind]
    rows = [r for r in TRANSITIONS.get(kind, {}).values() if r.event is event]
    if not rows:
        raise _illegal(kind, None, event, decided.decision.record.version)
    if decided.by not in roles.parties:
        raise ProtocolError(
            Reason.SIGNER_MISMATCH,
            "the deciding institution is not a party of the record",
            metadata={"signer": decided.by},
        )
    if not any(roles.holds(decided.by, r.by) for r in rows):
        raise ProtocolError(
            Reason.SIGNER_MISMATCH,
            f"this institution may never {event.value} a {kind.value}",
            metadata={"signer": decided.by, "transition": event.value},
        )


# --- consent (spec CONSENT-4, CONSENT-5) ---------------------------------------------------------


def _consent_message(consent: Consent | RecordState) -> Consent | None:
    if isinstance(consent, Consent):
        return consent
    if consent.kind is not RecordKind.CONSENT:
        raise ProtocolError(Reason.PAYLOAD_TYPE_UNSUPPORTED, "not a consent")
    if consent.state is not State.GIVEN or consent.in_force is None:
        return None
    return cast(Consent, consent.in_force.message)


def consent_in_force(
    consent: Consent | RecordState, now: datetime, refreshed_at: datetime | None
) -> bool:
    """Whether a consent counts at now (CONSENT-4, CONSENT-5).

    Args:
        consent: the latest version the holder has (a Consent), or the consent's RecordState.
        now: the holder's current time, aware.
        refreshed_at: for a copy held by a node other than the home institution's, when home last
            pushed or refreshed it; None for home's own copy. A remote copy stops counting
            REMOTE_CONSENT_TTL (24 h) after it, even if it has not expired.

    Returns:
        False when withdrawn, expired (at or after expires_at), not yet given (issued after now),
        or a remote copy not refreshed within 24 hours; otherwise True.
    """
    message = _consent_message(consent)
    if message is None or message.withdrawn or not message.HasField("expires_at"):
        return False
    now = utc(now)
    if now >= from_timestamp(message.expires_at):
        return False
    if message.header.HasField("issued_at") and from_timestamp(message.header.issued_at) > now:
        return False
    return refreshed_at is None or now < utc(refreshed_at) + REMOTE_CONSENT_TTL


def consent_permits(
    consent: Consent | RecordState,
    *,
    recipient: str,
    purpose: int,
    category: int,
    now: datetime,
    refreshed_at: datetime | None,
) -> bool:
    """Whether a consent lets recipient read data of category for purpose now (CONSENT-6)."""
    message = _consent_message(consent)
    if message is None or not consent_in_force(message, now, refreshed_at):
        return False
    return (
        message.recipient == recipient
        and message.purpose == purpose
        and category in message.data_categories
    )


# --- credentials (spec CRED-5, CRED-6) -----------------------------------------------------------


@dataclass(frozen=True)
class CredentialCheck:
    """What a verifier reports about a credential: signatures and status, separately (CRED-6).

    Attributes:
        signatures_valid: every awarding institution (and, for a network certificate, a
            certification key) signed the version in force.
        state: ISSUED, SUSPENDED or REVOKED (or PROPOSED, REJECTED, WITHDRAWN when never issued).
        status_fresh: every awarding institution's newest status list is present and now is
            before its valid_until.
        stale: the awarding institutions whose status list is missing or stale.
        former_members: awarding institutions that are former members of the network (their
            credentials issued while members still verify).
        record: the full record state.
    """

    signatures_valid: bool
    state: State
    status_fresh: bool
    stale: tuple[str, ...]
    former_members: tuple[str, ...]
    record: RecordState


def credential_status(
    envelopes: Sequence[Envelope],
    status_lists: Sequence[Envelope],
    keyring: KeyRing,
    now: datetime,
) -> CredentialCheck:
    """Check a credential offline against the key ring and the status lists given (CRED-6).

    Raises:
        ProtocolError: the reasons of record_state; PAYLOAD_TYPE_UNSUPPORTED for a non-credential.
    """
    state = record_state(envelopes, (), keyring, status_lists=status_lists)
    if state.kind is not RecordKind.CREDENTIAL:
        raise ProtocolError(Reason.PAYLOAD_TYPE_UNSUPPORTED, "not a credential")
    issued = [v for v in state.versions if v.approved]
    version = issued[-1] if issued else state.latest
    credential = cast(Credential, version.message)
    lists = _open_status_lists(state.status_lists, keyring) if state.status_lists else []
    former = [
        inst
        for inst in credential.awarding_institutions
        if (member := keyring.member(inst)) is not None
        and member.status == MemberStatus.MEMBER_STATUS_FORMER
    ]
    stale: list[str] = []
    now = utc(now)
    for ref in credential.status:
        mine = [i for i in lists if i.header.name == ref.list_name]
        newest = max(mine, key=lambda i: i.version, default=None)
        if newest is not None and ref.institution in former:
            continue  # a former member signs no new list: its last one is final (CRED-7)
        valid_until = (
            None
            if newest is None
            else from_timestamp(cast(CredentialStatusList, newest.message).valid_until)
        )
        if valid_until is None or now >= valid_until:
            stale.append(ref.institution)
    return CredentialCheck(
        signatures_valid=bool(issued),
        state=state.state,
        status_fresh=not stale,
        stale=tuple(sorted(stale)),
        former_members=tuple(sorted(former)),
        record=state,
    )


# --- references between records (spec LC-11) -----------------------------------------------------


def _ref_target(ref: RecordRef, referenced: RecordState, field_name: str) -> VersionInfo:
    if ref.name != referenced.name:
        raise _malformed(
            "refers to another record", f"{field_name}.name", f"is not {referenced.name}"
        )
    if not 1 <= ref.version <= referenced.latest_version:
        raise ProtocolError(
            Reason.STALE_VERSION,
            "refers to a version the holder lacks",
            metadata={
                "version": str(ref.version),
                "latest-version": str(referenced.latest_version),
            },
        )
    target = referenced.version(ref.version)
    if ref.payload_sha256 != target.payload_sha256:
        raise _malformed(
            "refers to other content than the version held",
            f"{field_name}.payload_sha256",
            "does not match",
        )
    return target


def _not_in(
    referenced: RecordState, allowed: Collection[State], what: str, version: int
) -> ProtocolError:
    return ProtocolError(
        Reason.ILLEGAL_TRANSITION,
        what,
        metadata={
            "kind": referenced.kind.value,
            "state": referenced.state.value,
            "version": str(version),
            "allowed": ",".join(s.value for s in sorted(allowed, key=lambda s: s.value)),
        },
    )


def _same(problems: list[FieldProblem], field_name: str, a: str, b: str) -> None:
    if a != b:
        problems.append(FieldProblem(field_name, "differs from the record it refers to"))


def check_reference(message: Message, referenced: RecordState) -> None:
    """Check a new record against the record it refers to (LC-11).

    - a Nomination's agreement must be in force at exactly the version named, list home and host
      as partners and have a quota from home to host for the mobility type (NOM-3);
    - a LearningAgreement's nomination must be ACCEPTED or STARTED at exactly the version named
      (the one in force), with the same home, host, student ID and (after NFC) student name
      (LA-3);
    - a TranscriptOfRecords' nomination must have STARTED (STARTED, COMPLETED, or CANCELLED after
      a START), with the same home, host and student (TOR-3);
    - a RecognitionDecision's transcript must be the transcript's version in force, every line it
      decides must exist there, with the same home, host and student (RCG-3).

    Raises:
        ProtocolError: ILLEGAL_TRANSITION (the referenced record is not in a state that allows
            it), STALE_VERSION (a superseded or unknown version), MALFORMED (content that does
            not match), PAYLOAD_TYPE_UNSUPPORTED (a record kind with no such reference).
    """
    problems: list[FieldProblem] = []
    if isinstance(message, Nomination):
        target = _ref_target(message.agreement, referenced, "agreement")
        in_force = (State.APPROVED,)
        if referenced.state not in in_force or referenced.in_force_version != target.version:
            raise _not_in(
                referenced,
                in_force,
                "the agreement is not in force at that version",
                target.version,
            )
        agreement = cast(InterInstitutionalAgreement, target.message)
        partners = {p.institution_id for p in agreement.partners}
        for name, value in (
            ("home_institution", message.home_institution),
            ("host_institution", message.host_institution),
        ):
            if value not in partners:
                problems.append(FieldProblem(name, "not a partner of the agreement"))
        if not any(
            q.sending_institution == message.home_institution
            and q.receiving_institution == message.host_institution
            and q.mobility_type == message.mobility_type
            and (not q.isced_f_codes or message.isced_f_code in q.isced_f_codes)
            for q in agreement.quotas
        ):
            problems.append(
                FieldProblem("mobility_type", "the agreement has no quota for it in this direction")
            )
        areas = {a.isced_f_code for a in agreement.subject_areas}
        if message.isced_f_code and areas and message.isced_f_code not in areas:
            problems.append(FieldProblem("isced_f_code", "not a subject area of the agreement"))
    elif isinstance(message, LearningAgreement | TranscriptOfRecords):
        target = _ref_target(message.nomination, referenced, "nomination")
        nomination = cast(Nomination, target.message)
        if isinstance(message, LearningAgreement):
            allowed: tuple[State, ...] = (State.ACCEPTED, State.STARTED)
            ok = referenced.state in allowed
        else:
            allowed = (State.STARTED, State.COMPLETED, State.CANCELLED)
            started = any(h.event is Event.START and h.refused is None for h in referenced.history)
            ok = referenced.state in allowed and started
        if not ok:
            raise _not_in(
                referenced,
                allowed,
                "the nomination is not in a state that allows it",
                target.version,
            )
        if isinstance(message, LearningAgreement) and referenced.in_force_version != target.version:
            raise ProtocolError(
                Reason.STALE_VERSION,
                "the learning agreement must name the nomination version in force",
                metadata={
                    "version": str(target.version),
                    "latest-version": str(referenced.in_force_version),
                },
            )
        _same(problems, "home_institution", message.home_institution, nomination.home_institution)
        _same(problems, "host_institution", message.host_institution, nomination.host_institution)
        _same(problems, "student_id", message.student_id, nomination.student_id)
        if not names_equal(message.student_name, nomination.student_name):
            problems.append(
                FieldProblem("student_name", "differs from the nomination's (after NFC)")
            )
    elif isinstance(message, RecognitionDecision):
        target = _ref_target(message.transcript, referenced, "transcript")
        live = (State.ISSUED, State.CORRECTED)
        if referenced.state not in live:
            raise _not_in(referenced, live, "the transcript is withdrawn", target.version)
        if referenced.in_force_version != target.version:
            raise ProtocolError(
                Reason.STALE_VERSION,
                "a correction superseded the transcript version recognised",
                metadata={
                    "version": str(target.version),
                    "latest-version": str(referenced.in_force_version),
                },
            )
        transcript = cast(TranscriptOfRecords, target.message)
        _same(problems, "home_institution", message.home_institution, transcript.home_institution)
        _same(problems, "host_institution", message.host_institution, transcript.host_institution)
        _same(problems, "student_id", message.student_id, transcript.student_id)
        lines = {line.line_id for line in transcript.lines}
        for i, line in enumerate(message.lines):
            if line.transcript_line_id not in lines:
                problems.append(
                    FieldProblem(f"lines[{i}].transcript_line_id", "not a line of the transcript")
                )
    else:
        raise ProtocolError(
            Reason.PAYLOAD_TYPE_UNSUPPORTED, "this record kind refers to no other record"
        )
    if problems:
        raise ProtocolError(
            Reason.MALFORMED,
            "the record does not match the record it refers to",
            field_problems=problems,
        )
