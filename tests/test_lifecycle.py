"""Lifecycles of mobility and credit records (spec lifecycle.md: LC-*, IIA-*, NOM-*, LA-*, TOR-*,
RCG-*, CRED-*, CONSENT-*, DEC-*).

The legal transitions are written out here independently of the implementation's tables
(EXPECTED); every (state, event) pair of every record kind is driven through apply_envelope /
apply_decision and checked against them, and the implementation's TRANSITIONS must say the same.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sseaun.sdk.core import (
    Envelope,
    KeyRing,
    ManifestTrust,
    ProtocolError,
    Reason,
    add_signatures,
    sign_envelope,
    to_timestamp,
)
from sseaun.sdk.core._lifecycle import (
    REMOTE_CONSENT_TTL,
    TRANSITIONS,
    Event,
    RecordState,
    State,
    apply_decision,
    apply_envelope,
    check_reference,
    consent_in_force,
    consent_permits,
    cosign_record,
    credential_status,
    record_state,
    sign_decision,
    sign_record,
)
from sseaun.sdk.core._records import (
    CERTIFICATION_SIGNATORY,
    DECISION,
    RecordKind,
    names_equal,
    payload_sha256,
    record_name,
    record_problems,
    record_ref,
    text_equal,
    validate_record,
)
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.catalogue_pb2 import CourseLevel, RecordHeader
from sseaun.v1.manifest_pb2 import KeyPurpose, MemberStatus
from sseaun.v1.records_pb2 import (
    AgreementPartner,
    Consent,
    ConsentGiver,
    ConsentStatement,
    CourseResultStatus,
    Credential,
    CredentialKind,
    CredentialStatus,
    CredentialStatusEntry,
    CredentialStatusList,
    CredentialStatusRef,
    DataCategory,
    Decision,
    DecisionKind,
    InterInstitutionalAgreement,
    LearningAgreement,
    LearningAgreementComponent,
    MobilityPeriod,
    MobilityQuota,
    MobilityType,
    Nomination,
    RecognitionDecision,
    RecognitionLine,
    RecognitionOutcome,
    RecordRef,
    SubjectArea,
    TranscriptLine,
    TranscriptOfRecords,
)
from sseaun.v1.types_pb2 import (
    CreditValue,
    Date,
    Grade,
    LocalizedText,
    MultilingualText,
    NamePart,
    NamePartKind,
    PersonName,
)
from tests.factories import NETWORK, T0, Institution, TestNetwork, public_key, seeded

NET = TestNetwork()
RING = NET.keyring()
YNU, CHULA, DU, UM = (NET.by_id(i) for i in ("ynu.edu.cn", "chula.ac.th", "du.ac.bd", "um.edu.my"))
HOUR = timedelta(hours=1)
SHA = bytes(range(32))
STUDENT = "s-2026-7f3a9c"
NAME = PersonName(
    full_name="Nguy\u1ec5n Th\u1ecb Minh Khai",
    parts=[
        NamePart(kind=NamePartKind.NAME_PART_KIND_FAMILY, value="Nguy\u1ec5n"),
        NamePart(kind=NamePartKind.NAME_PART_KIND_GIVEN, value="Th\u1ecb Minh Khai"),
    ],
    script="Latn",
    lang="vi",
)
DECISIONS = [k for k in DecisionKind.values() if k != DecisionKind.DECISION_KIND_UNSPECIFIED]
_EVENT_OF = {
    DecisionKind.DECISION_KIND_ACCEPT: Event.ACCEPT,
    DecisionKind.DECISION_KIND_REJECT: Event.REJECT,
    DecisionKind.DECISION_KIND_TERMINATE: Event.TERMINATE,
    DecisionKind.DECISION_KIND_WITHDRAW: Event.WITHDRAW,
    DecisionKind.DECISION_KIND_START: Event.START,
    DecisionKind.DECISION_KIND_COMPLETE: Event.COMPLETE,
    DecisionKind.DECISION_KIND_CANCEL: Event.CANCEL,
    DecisionKind.DECISION_KIND_APPROVE: Event.APPROVE,
}
_KIND_OF = {event: kind for kind, event in _EVENT_OF.items()}


def reason_of(call: Callable[[], object]) -> Reason:
    with pytest.raises(ProtocolError) as info:
        call()
    return info.value.reason


def text(value: str, lang: str = "en") -> MultilingualText:
    return MultilingualText(texts=[LocalizedText(lang=lang, text=value)])


def day(d: datetime) -> Date:
    return Date(year=d.year, month=d.month, day=d.day)


def header(
    kind: RecordKind,
    issuer: Institution,
    rid: str,
    version: int,
    at: datetime,
    parties: Sequence[str],
) -> RecordHeader:
    return RecordHeader(
        network_id=NETWORK,
        name=record_name(kind, issuer.id, rid),
        version=version,
        issuer=issuer.id,
        issued_at=to_timestamp(at),
        parties=sorted(parties),
    )


def statement(at: datetime) -> ConsentStatement:
    return ConsentStatement(
        given_at=to_timestamp(at - HOUR),
        notice_version="transfer-2026.1",
        notice_sha256=SHA,
        notice_lang="zh-Hans",
        given_by=ConsentGiver.CONSENT_GIVER_STUDENT,
        channel="sis-portal",
    )


# --- builders of each record kind ----------------------------------------------------------------


def agreement(
    version: int = 1, at: datetime = T0, *, partners: Sequence[Institution] = (YNU, CHULA)
) -> InterInstitutionalAgreement:
    return InterInstitutionalAgreement(
        header=header(
            RecordKind.AGREEMENT, YNU, "iia-2026-01", version, at, [p.id for p in partners]
        ),
        partners=[
            AgreementPartner(institution_id=p.id, local_reference=f"R-{version}") for p in partners
        ],
        subject_areas=[SubjectArea(isced_f_code="0613"), SubjectArea(isced_f_code="0413")],
        first_academic_year="2026/2027",
        last_academic_year="2029/2030",
        quotas=[
            MobilityQuota(
                sending_institution=YNU.id,
                receiving_institution=CHULA.id,
                mobility_type=MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
                mobilities_per_year=2 + version,
            ),
            MobilityQuota(
                sending_institution=CHULA.id,
                receiving_institution=YNU.id,
                mobility_type=MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
                mobilities_per_year=2,
            ),
        ],
        recognition_rules=text("Full recognition of courses passed under an approved LA."),
    )


def nomination(
    version: int = 1,
    at: datetime = T0,
    *,
    agreement_ref: RecordRef | None = None,
    name: PersonName = NAME,
) -> Nomination:
    return Nomination(
        header=header(RecordKind.NOMINATION, YNU, "nom-0042", version, at, [YNU.id, CHULA.id]),
        home_institution=YNU.id,
        host_institution=CHULA.id,
        agreement=agreement_ref
        or RecordRef(
            name=record_name(RecordKind.AGREEMENT, YNU.id, "iia-2026-01"),
            version=1,
            payload_sha256=SHA,
        ),
        student_id=STUDENT,
        student_name=name,
        mobility_type=MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
        period=MobilityPeriod(
            start_date=Date(year=2027, month=1, day=10 + version),
            end_date=Date(year=2027, month=5, day=31),
        ),
        level=CourseLevel.COURSE_LEVEL_BACHELOR,
        isced_f_code="0613",
        transfer_consent=statement(at),
    )


def learning_agreement(
    version: int = 1,
    at: datetime = T0,
    *,
    consent: bool = True,
    nomination_ref: RecordRef | None = None,
    name: PersonName = NAME,
) -> LearningAgreement:
    la = LearningAgreement(
        header=header(
            RecordKind.LEARNING_AGREEMENT, YNU, "la-0042", version, at, [YNU.id, CHULA.id]
        ),
        home_institution=YNU.id,
        host_institution=CHULA.id,
        nomination=nomination_ref
        or RecordRef(
            name=record_name(RecordKind.NOMINATION, YNU.id, "nom-0042"),
            version=1,
            payload_sha256=SHA,
        ),
        student_id=STUDENT,
        student_name=name,
        components=[
            LearningAgreementComponent(
                host_course_code="2110101",
                host_course_title=text("การเขียนโปรแกรมคอมพิวเตอร์", "th"),
                host_credits=CreditValue(scheme_id="th-credit", value=str(3 + version)),
                home_course_code="CS101",
                home_course_title=text("程序设计基础", "zh-Hans"),
            )
        ],
    )
    if consent:
        la.student_consent.CopyFrom(statement(at))
    if version > 1:
        la.change_summary.CopyFrom(text("One more credit."))
    return la


def transcript(
    version: int = 1, at: datetime = T0, *, nomination_ref: RecordRef | None = None
) -> TranscriptOfRecords:
    tor = TranscriptOfRecords(
        header=header(RecordKind.TRANSCRIPT, CHULA, "tor-0042", version, at, [YNU.id, CHULA.id]),
        host_institution=CHULA.id,
        home_institution=YNU.id,
        nomination=nomination_ref
        or RecordRef(
            name=record_name(RecordKind.NOMINATION, YNU.id, "nom-0042"),
            version=1,
            payload_sha256=SHA,
        ),
        student_id=STUDENT,
        student_name=NAME,
        lines=[
            TranscriptLine(
                line_id="l1",
                course_code="2110101",
                course_title=text("การเขียนโปรแกรมคอมพิวเตอร์", "th"),
                credits=CreditValue(scheme_id="th-credit", value="3"),
                grade=Grade(scale_id="th-4.0", symbol="B+" if version == 1 else "A", numeric="3.5"),
                attempt=1,
                status=CourseResultStatus.COURSE_RESULT_STATUS_PASSED,
                start_date=Date(year=2027, month=1, day=10),
                end_date=Date(year=2027, month=5, day=20),
            )
        ],
        supersedes_version=version - 1,
        correction_reason="grade entered wrongly" if version > 1 else "",
    )
    return tor


def recognition(
    version: int = 1,
    at: datetime = T0,
    *,
    transcript_ref: RecordRef | None = None,
    line: str = "l1",
) -> RecognitionDecision:
    return RecognitionDecision(
        header=header(RecordKind.RECOGNITION, YNU, "rcg-0042", version, at, [YNU.id, CHULA.id]),
        home_institution=YNU.id,
        host_institution=CHULA.id,
        transcript=transcript_ref
        or RecordRef(
            name=record_name(RecordKind.TRANSCRIPT, CHULA.id, "tor-0042"),
            version=1,
            payload_sha256=SHA,
        ),
        student_id=STUDENT,
        lines=[
            RecognitionLine(
                transcript_line_id=line,
                outcome=RecognitionOutcome.RECOGNITION_OUTCOME_RECOGNISED,
                home_course_code="CS101",
                recognised_credits=CreditValue(scheme_id="cn-credit", value=str(2 + version)),
            )
        ],
        revision_reason="credits recounted" if version > 1 else "",
    )


def credential(
    version: int = 1,
    at: datetime = T0,
    *,
    awarding: Sequence[Institution] = (YNU, CHULA),
    kind: int = CredentialKind.CREDENTIAL_KIND_DEGREE,
) -> Credential:
    return Credential(
        header=header(
            RecordKind.CREDENTIAL, awarding[0], "deg-0042", version, at, [a.id for a in awarding]
        ),
        kind=kind,  # type: ignore[arg-type]
        holder_name=NAME,
        holder_student_id=STUDENT,
        student_id_issuer=YNU.id,
        awarding_institutions=[a.id for a in awarding],
        title=text(f"Bachelor of Computer Science (edition {version})"),
        level=CourseLevel.COURSE_LEVEL_BACHELOR,
        isced_f_code="0613",
        award_date=Date(year=2028, month=7, day=1),
        status=[
            CredentialStatusRef(
                institution=a.id,
                list_name=record_name(RecordKind.CREDENTIAL_STATUS_LIST, a.id, "degrees-2028"),
                index=7,
            )
            for a in awarding
        ],
    )


def status_list(
    issuer: Institution,
    version: int = 1,
    at: datetime = T0,
    status: int = CredentialStatus.CREDENTIAL_STATUS_ACTIVE,
    *,
    valid: timedelta = timedelta(days=7),
) -> CredentialStatusList:
    entries = []
    if status != CredentialStatus.CREDENTIAL_STATUS_ACTIVE:
        entries = [CredentialStatusEntry(index=7, status=status, reason="registrar decision")]  # type: ignore[arg-type]
    return CredentialStatusList(
        header=header(RecordKind.CREDENTIAL_STATUS_LIST, issuer, "degrees-2028", version, at, []),
        list_id="degrees-2028",
        valid_until=to_timestamp(at + valid),
        size=1024,
        entries=entries,
    )


def consent(
    version: int = 1, at: datetime = T0, *, withdrawn: bool = False, expires: datetime | None = None
) -> Consent:
    c = Consent(
        header=header(RecordKind.CONSENT, YNU, "cns-0042", version, at, [YNU.id, UM.id]),
        home_institution=YNU.id,
        student_id=STUDENT,
        recipient=UM.id,
        purpose=Purpose.PURPOSE_RECOGNITION,
        data_categories=[
            DataCategory.DATA_CATEGORY_TRANSCRIPT,
            DataCategory.DATA_CATEGORY_IDENTITY,
        ],
        expires_at=to_timestamp(expires or T0 + timedelta(days=180)),
        withdrawn=withdrawn,
        statement=statement(at),
    )
    if withdrawn:
        c.withdrawn_at.CopyFrom(to_timestamp(at))
    return c


def signed(message: object, *signers: Institution) -> Envelope:
    """Sign raw (no builder checks), so tests can present anything to the state machines."""
    kind = RecordKind.of_message(message)  # type: ignore[arg-type]
    env = sign_envelope(message.SerializeToString(), kind.payload_type, [signers[0].issuing])  # type: ignore[attr-defined]
    return add_signatures(env, [s.issuing for s in signers[1:]])


_serial = itertools.count()


def decision(
    state: RecordState,
    kind: int,
    by: Institution,
    at: datetime,
    *,
    reason: str = "as agreed",
    version: int | None = None,
    digest: bytes | None = None,
    parties: Sequence[str] | None = None,
) -> Envelope:
    target = state.latest if version is None else state.version(version)
    message = Decision(
        header=RecordHeader(
            network_id=NETWORK,
            name=record_name(RecordKind.DECISION, by.id, f"d-{next(_serial)}"),
            version=1,
            issuer=by.id,
            issued_at=to_timestamp(at),
            parties=sorted(
                parties if parties is not None else set(target.header.parties) | {by.id}
            ),
        ),
        record=RecordRef(
            name=state.name,
            version=target.version,
            payload_sha256=digest if digest is not None else target.payload_sha256,
        ),
        kind=kind,  # type: ignore[arg-type]
        reason=reason,
    )
    return sign_envelope(message.SerializeToString(), DECISION, [by.issuing])


# --- the harness for the transition tables -------------------------------------------------------


@dataclass(frozen=True)
class Kit:
    """How to make versions of one record kind, and who plays which part."""

    kind: RecordKind
    make: Callable[[int, datetime, Event], object]
    issuer: Institution
    signatories: tuple[Institution, ...]
    parties: tuple[Institution, ...]
    events: tuple[Event, ...]  # the version events this kind can produce
    actors: dict[Event, tuple[Institution, ...]]  # who may make each decision (EXPECTED's roles)
    actors_at: dict[tuple[str, Event], tuple[Institution, ...]] | None = None  # per configuration

    def allowed(self, label: str, event: Event) -> tuple[Institution, ...]:
        return (self.actors_at or {}).get((label, event)) or self.actors.get(event, ())


def _la(n: int, at: datetime, event: Event) -> object:
    return learning_agreement(n, at, consent=event is not Event.VERSION_DRAFT)


def _consent(n: int, at: datetime, event: Event) -> object:
    return consent(n, at, withdrawn=event is Event.VERSION_WITHDRAWAL)


KITS = {
    RecordKind.AGREEMENT: Kit(
        RecordKind.AGREEMENT, lambda n, at, e: agreement(n, at), YNU, (YNU, CHULA), (YNU, CHULA),
        (Event.VERSION_PROPOSED, Event.VERSION_SIGNED),
        {Event.REJECT: (CHULA,), Event.WITHDRAW: (YNU,), Event.TERMINATE: (YNU, CHULA)},
    ),
    RecordKind.NOMINATION: Kit(
        RecordKind.NOMINATION, lambda n, at, e: nomination(n, at), YNU, (YNU,), (YNU, CHULA),
        (Event.VERSION_SIGNED,),
        {
            Event.ACCEPT: (CHULA,), Event.REJECT: (CHULA,), Event.START: (CHULA,),
            Event.COMPLETE: (CHULA,), Event.WITHDRAW: (YNU,), Event.CANCEL: (YNU, CHULA),
        },
        {("nominated", Event.CANCEL): (YNU,)},
    ),
    RecordKind.LEARNING_AGREEMENT: Kit(
        RecordKind.LEARNING_AGREEMENT, _la, YNU, (YNU, CHULA), (YNU, CHULA),
        (Event.VERSION_DRAFT, Event.VERSION_PROPOSED, Event.VERSION_SIGNED),
        {Event.REJECT: (CHULA,), Event.WITHDRAW: (YNU,)},
    ),
    RecordKind.TRANSCRIPT: Kit(
        RecordKind.TRANSCRIPT, lambda n, at, e: transcript(n, at), CHULA, (CHULA,), (YNU, CHULA),
        (Event.VERSION_SIGNED,), {Event.WITHDRAW: (CHULA,)},
    ),
    RecordKind.RECOGNITION: Kit(
        RecordKind.RECOGNITION, lambda n, at, e: recognition(n, at), YNU, (YNU,), (YNU, CHULA),
        (Event.VERSION_SIGNED,), {Event.WITHDRAW: (YNU,)},
    ),
    RecordKind.CREDENTIAL: Kit(
        RecordKind.CREDENTIAL, lambda n, at, e: credential(n, at), YNU, (YNU, CHULA), (YNU, CHULA),
        (Event.VERSION_PROPOSED, Event.VERSION_SIGNED),
        {Event.REJECT: (CHULA,), Event.WITHDRAW: (YNU,)},
    ),
    RecordKind.CREDENTIAL_STATUS_LIST: Kit(
        RecordKind.CREDENTIAL_STATUS_LIST, lambda n, at, e: status_list(CHULA, n, at),
        CHULA, (CHULA,), (CHULA,),
        (Event.VERSION_SIGNED,), {},
    ),
    RecordKind.CONSENT: Kit(
        RecordKind.CONSENT, _consent, YNU, (YNU,), (YNU, UM),
        (Event.VERSION_SIGNED, Event.VERSION_WITHDRAWAL), {},
    ),
}  # fmt: skip

# Configurations: a label (state, "+p" when a proposal is pending, "+d" when a draft is pending)
# and the events that reach it from nothing.
V_P, V_S, V_D, V_W = (
    Event.VERSION_PROPOSED,
    Event.VERSION_SIGNED,
    Event.VERSION_DRAFT,
    Event.VERSION_WITHDRAWAL,
)
PATHS: dict[RecordKind, dict[str, list[Event]]] = {
    RecordKind.AGREEMENT: {
        "proposed": [V_P],
        "approved": [V_S],
        "approved+p": [V_S, V_P],
        "rejected": [V_P, Event.REJECT],
        "withdrawn": [V_P, Event.WITHDRAW],
        "terminated": [V_S, Event.TERMINATE],
    },
    RecordKind.NOMINATION: {
        "nominated": [V_S],
        "accepted": [V_S, Event.ACCEPT],
        "accepted+p": [V_S, Event.ACCEPT, V_S],
        "rejected": [V_S, Event.REJECT],
        "started": [V_S, Event.ACCEPT, Event.START],
        "started+p": [V_S, Event.ACCEPT, Event.START, V_S],
        "completed": [V_S, Event.ACCEPT, Event.START, Event.COMPLETE],
        "cancelled": [V_S, Event.CANCEL],
    },
    RecordKind.LEARNING_AGREEMENT: {
        "draft": [V_D],
        "proposed": [V_P],
        "approved": [V_S],
        "approved+p": [V_S, V_P],
        "approved+d": [V_S, V_D],
        "rejected": [V_P, Event.REJECT],
        "withdrawn": [V_P, Event.WITHDRAW],
    },
    RecordKind.TRANSCRIPT: {
        "issued": [V_S],
        "corrected": [V_S, V_S],
        "withdrawn": [V_S, Event.WITHDRAW],
    },
    RecordKind.RECOGNITION: {
        "issued": [V_S],
        "revised": [V_S, V_S],
        "withdrawn": [V_S, Event.WITHDRAW],
    },
    RecordKind.CREDENTIAL: {
        "proposed": [V_P],
        "issued": [V_S],
        "issued+p": [V_S, V_P],
        "rejected": [V_P, Event.REJECT],
        "withdrawn": [V_P, Event.WITHDRAW],
    },
    RecordKind.CREDENTIAL_STATUS_LIST: {"issued": [V_S]},
    RecordKind.CONSENT: {"given": [V_S], "withdrawn": [V_S, V_W]},
}

# The legal transitions as the spec writes them: (configuration, event) -> configuration after.
# Every other (configuration, event) pair is ILLEGAL_TRANSITION. "new" is no record yet.
C = Event.SIGNATURES_COMPLETE
EXPECTED: dict[RecordKind, dict[tuple[str, Event], str]] = {
    RecordKind.AGREEMENT: {
        ("new", V_P): "proposed", ("new", V_S): "approved",
        ("proposed", V_P): "proposed", ("proposed", V_S): "approved", ("proposed", C): "approved",
        ("proposed", Event.REJECT): "rejected", ("proposed", Event.WITHDRAW): "withdrawn",
        ("rejected", V_P): "proposed", ("rejected", V_S): "approved",
        ("withdrawn", V_P): "proposed", ("withdrawn", V_S): "approved",
        ("approved", V_P): "approved+p", ("approved", V_S): "approved",
        ("approved", Event.TERMINATE): "terminated",
        ("approved+p", V_P): "approved+p", ("approved+p", V_S): "approved",
        ("approved+p", C): "approved", ("approved+p", Event.REJECT): "approved",
        ("approved+p", Event.WITHDRAW): "approved", ("approved+p", Event.TERMINATE): "terminated",
    },
    RecordKind.NOMINATION: {
        ("new", V_S): "nominated",
        ("nominated", V_S): "nominated", ("nominated", Event.ACCEPT): "accepted",
        ("nominated", Event.REJECT): "rejected", ("nominated", Event.CANCEL): "cancelled",
        ("rejected", V_S): "nominated",
        ("accepted", V_S): "accepted+p", ("accepted", Event.START): "started",
        ("accepted", Event.CANCEL): "cancelled",
        ("accepted+p", V_S): "accepted+p", ("accepted+p", Event.ACCEPT): "accepted",
        ("accepted+p", Event.REJECT): "accepted", ("accepted+p", Event.WITHDRAW): "accepted",
        ("accepted+p", Event.START): "started+p", ("accepted+p", Event.CANCEL): "cancelled",
        ("started", V_S): "started+p", ("started", Event.COMPLETE): "completed",
        ("started", Event.CANCEL): "cancelled",
        ("started+p", V_S): "started+p", ("started+p", Event.ACCEPT): "started",
        ("started+p", Event.REJECT): "started", ("started+p", Event.WITHDRAW): "started",
        ("started+p", Event.COMPLETE): "completed", ("started+p", Event.CANCEL): "cancelled",
    },
    RecordKind.LEARNING_AGREEMENT: {
        **{
            (src, ev): to
            for src in ("new", "draft", "proposed", "rejected", "withdrawn")
            for ev, to in ((V_D, "draft"), (V_P, "proposed"), (V_S, "approved"))
        },
        ("proposed", C): "approved", ("proposed", Event.REJECT): "rejected",
        ("proposed", Event.WITHDRAW): "withdrawn", ("draft", Event.WITHDRAW): "withdrawn",
        **{
            (src, ev): to
            for src in ("approved", "approved+p", "approved+d")
            for ev, to in ((V_D, "approved+d"), (V_P, "approved+p"), (V_S, "approved"))
        },
        ("approved+p", C): "approved", ("approved+p", Event.REJECT): "approved",
        ("approved+p", Event.WITHDRAW): "approved", ("approved+d", Event.WITHDRAW): "approved",
    },
    RecordKind.TRANSCRIPT: {
        ("new", V_S): "issued", ("issued", V_S): "corrected", ("corrected", V_S): "corrected",
        ("issued", Event.WITHDRAW): "withdrawn", ("corrected", Event.WITHDRAW): "withdrawn",
    },
    RecordKind.RECOGNITION: {
        ("new", V_S): "issued", ("issued", V_S): "revised", ("revised", V_S): "revised",
        ("issued", Event.WITHDRAW): "withdrawn", ("revised", Event.WITHDRAW): "withdrawn",
    },
    RecordKind.CREDENTIAL: {
        ("new", V_P): "proposed", ("new", V_S): "issued",
        ("proposed", V_P): "proposed", ("proposed", V_S): "issued", ("proposed", C): "issued",
        ("proposed", Event.REJECT): "rejected", ("proposed", Event.WITHDRAW): "withdrawn",
        ("rejected", V_P): "proposed", ("rejected", V_S): "issued",
        ("withdrawn", V_P): "proposed", ("withdrawn", V_S): "issued",
        ("issued", V_P): "issued+p", ("issued", V_S): "issued",
        ("issued+p", V_P): "issued+p", ("issued+p", V_S): "issued", ("issued+p", C): "issued",
        ("issued+p", Event.REJECT): "issued", ("issued+p", Event.WITHDRAW): "issued",
    },
    RecordKind.CREDENTIAL_STATUS_LIST: {("new", V_S): "issued", ("issued", V_S): "issued"},
    RecordKind.CONSENT: {
        ("new", V_S): "given", ("given", V_S): "given", ("given", V_W): "withdrawn",
    },
}  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def tick(self) -> datetime:
        self.now += HOUR
        return self.now


def new_version(kit: Kit, state: RecordState | None, event: Event, at: datetime) -> Envelope:
    number = 1 if state is None else state.latest_version + 1
    message = kit.make(number, at, event)
    signers = kit.signatories if event is Event.VERSION_SIGNED else (kit.issuer,)
    if event is Event.VERSION_DRAFT:
        signers = (kit.issuer,)
    return signed(message, kit.issuer, *[s for s in signers if s is not kit.issuer])


def perform(
    kit: Kit, state: RecordState | None, event: Event, clock: Clock, by: Institution | None = None
) -> RecordState:
    """Make one event happen through the strict incremental API."""
    at = clock.tick()
    if event in (V_P, V_S, V_D, V_W):
        env = new_version(kit, state, event, at)
        return record_state([env], [], RING) if state is None else apply_envelope(state, env, RING)
    assert state is not None
    if event is C:
        latest = state.latest
        missing = [i for i in kit.signatories if i.id not in latest.signed_by]
        env = add_signatures(latest.envelope, [m.issuing for m in missing] or [kit.issuer.issuing])
        return apply_envelope(state, env, RING)
    actor = by or (kit.actors.get(event) or kit.parties)[0]
    return apply_decision(state, decision(state, _KIND_OF[event], actor, at), RING)


def reach(kit: Kit, label: str, clock: Clock) -> RecordState:
    state: RecordState | None = None
    for event in PATHS[kit.kind][label]:
        state = perform(kit, state, event, clock)
    assert state is not None
    assert config(state) == label, (kit.kind, label, config(state))
    return state


def config(state: RecordState) -> str:
    label = state.state.value
    if state.pending_version is not None and state.state in (
        State.APPROVED,
        State.ACCEPTED,
        State.STARTED,
        State.ISSUED,
    ):
        pending = state.version(state.pending_version)
        label += "+d" if pending.event is Event.VERSION_DRAFT else "+p"
    return label


def _events(kit: Kit) -> list[Event]:
    events = list(kit.events) + [_EVENT_OF[k] for k in DECISIONS]
    if len(kit.signatories) > 1:
        events.append(C)
    return events


# A consent is given (version 1) before it is withdrawn: a first version with withdrawn = true
# breaks a content rule (CONSENT-1) before the table is consulted.
MALFORMED_INSTEAD = {(RecordKind.CONSENT, "new", V_W)}

CASES = [
    pytest.param(kind, label, event, id=f"{kind.value}-{label}-{event.value}")
    for kind, kit in KITS.items()
    for label in ["new", *PATHS[kind]]
    for event in _events(kit)
    if not (label == "new" and event not in kit.events)
]


@pytest.mark.parametrize(("kind", "label", "event"), CASES)
def test_every_transition_of_every_record_kind(kind: RecordKind, label: str, event: Event) -> None:
    kit = KITS[kind]
    clock = Clock()
    before = None if label == "new" else reach(kit, label, clock)
    expected = EXPECTED[kind].get((label, event))
    if (
        event is C
        and before is not None
        and before.latest.approved
        and before.latest.event is not V_D
    ):
        # Nothing is missing: co-signing again changes nothing (idempotent), legal or not.
        assert perform(kit, before, event, clock) == before
        return
    if (kind, label, event) in MALFORMED_INSTEAD:
        assert reason_of(lambda: perform(kit, before, event, clock)) is Reason.MALFORMED
        return
    if expected is None:
        with pytest.raises(ProtocolError) as info:
            perform(kit, before, event, clock)
        assert info.value.reason is Reason.ILLEGAL_TRANSITION, info.value
        assert info.value.metadata["transition"] == event.value
        assert info.value.metadata["state"] == (before.state.value if before else "none")
        if before is not None and event in _KIND_OF:
            # The same decision in a set is kept, refused, and changes nothing (LC-5).
            d = decision(
                before, _KIND_OF[event], (kit.actors.get(event) or kit.parties)[0], clock.tick()
            )
            again = record_state(
                [v.envelope for v in before.versions], [*before.decisions, d], RING
            )
            assert again.state is before.state and again.in_force_version == before.in_force_version
            assert again.history[-1].refused is Reason.ILLEGAL_TRANSITION
        return
    after = perform(kit, before, event, clock)
    assert config(after) == expected
    # The strict incremental result is what the set of inputs gives (LC-5).
    assert record_state([v.envelope for v in after.versions], after.decisions, RING) == after


def test_the_implementation_tables_say_what_the_spec_says() -> None:
    for kind, kit in KITS.items():
        clock = Clock()
        reachable = {label: reach(kit, label, clock) for label in PATHS[kind]}
        states: set[State | None] = {None, *(s.state for s in reachable.values())}
        table = TRANSITIONS[kind]
        for (source, event), row in table.items():
            assert source in states, (kind, source)
            # Every row is exercised legal from at least one configuration of its source state.
            labels = (
                ["new"]
                if source is None
                else [lb for lb, s in reachable.items() if s.state is source]
            )
            assert any((lb, event) in EXPECTED[kind] for lb in labels), (kind, source, event)
            if event in _KIND_OF:
                label = next(lb for lb in labels if (lb, event) in EXPECTED[kind])
                allowed = {i.id for i in kit.allowed(label, event)}
                sample = reachable[label]
                holders = {
                    i for i in sample.latest.roles.parties if sample.latest.roles.holds(i, row.by)
                }
                assert holders == allowed, (kind, source, event)
        assert sum(len(v) for v in EXPECTED.values()) > 0


WRONG_ROLE = [
    pytest.param(kind, label, event, id=f"{kind.value}-{label}-{event.value}")
    for kind, kit in KITS.items()
    for (label, event), _ in EXPECTED[kind].items()
    if event in _KIND_OF
]


@pytest.mark.parametrize(("kind", "label", "event"), WRONG_ROLE)
def test_a_decision_by_the_wrong_party_is_refused(
    kind: RecordKind, label: str, event: Event
) -> None:
    kit = KITS[kind]
    clock = Clock()
    state = reach(kit, label, clock)
    allowed = kit.allowed(label, event)
    for wrong in [p for p in kit.parties if p not in allowed] + [DU]:
        d = decision(state, _KIND_OF[event], wrong, clock.tick())
        with pytest.raises(ProtocolError) as info:
            apply_decision(state, d, RING)
        assert info.value.reason is Reason.SIGNER_MISMATCH
        assert info.value.reason.status_code == "UNAUTHENTICATED"
        with pytest.raises(ProtocolError) as built:
            sign_decision(
                state,
                _KIND_OF[event],
                decided_by=wrong.id,
                decided_at=clock.tick(),
                signer=wrong.issuing,
                decision_id="x1",
                reason="r",
            )
        assert built.value.reason is Reason.SIGNER_MISMATCH


def test_illegal_transition_travels_as_failed_precondition_with_the_state() -> None:
    clock = Clock()
    kit = KITS[RecordKind.NOMINATION]
    done = reach(kit, "completed", clock)
    d = decision(done, DecisionKind.DECISION_KIND_CANCEL, YNU, clock.tick())
    with pytest.raises(ProtocolError) as info:
        apply_decision(done, d, RING)
    assert info.value.reason is Reason.ILLEGAL_TRANSITION
    assert info.value.reason.status_code == "FAILED_PRECONDITION"
    assert info.value.metadata == {
        "kind": "nomination",
        "state": "completed",
        "transition": "cancel",
        "version": "1",
    }


# --- agreements (IIA-*) --------------------------------------------------------------------------


def test_an_agreement_is_approved_only_when_both_partners_signed_the_same_envelope() -> None:
    env = sign_record(agreement(), YNU.issuing, keyring=RING)
    state = record_state([env], [], RING)
    assert (state.state, state.in_force_version, state.awaiting) == (
        State.PROPOSED,
        None,
        (CHULA.id,),
    )
    cosigned = cosign_record(env, CHULA.issuing, keyring=RING, state=state)
    approved = apply_envelope(state, cosigned, RING)
    assert (approved.state, approved.in_force_version, approved.awaiting) == (State.APPROVED, 1, ())
    # Each partner holds its own copy; the signatures of both copies count together.
    host_copy = cosign_record(env, CHULA.issuing)
    home_copy = env
    assert record_state([home_copy, host_copy], [], RING) == approved
    assert record_state([host_copy, home_copy, home_copy], [], RING) == approved


def test_an_amendment_leaves_the_old_version_in_force_until_both_sign_it() -> None:
    v1 = add_signatures(signed(agreement(1), YNU), [CHULA.issuing])
    state = record_state([v1], [], RING)
    v2 = sign_record(agreement(2, T0 + HOUR), YNU.issuing, keyring=RING, state=state)
    amended = apply_envelope(state, v2, RING)
    assert (amended.state, amended.in_force_version, amended.pending_version) == (
        State.APPROVED,
        1,
        2,
    )
    assert amended.awaiting == (CHULA.id,)
    done = apply_envelope(
        amended, cosign_record(v2, CHULA.issuing, keyring=RING, state=amended), RING
    )
    assert (done.state, done.in_force_version, done.pending_version) == (State.APPROVED, 2, None)


def test_a_cosignature_over_a_different_version_does_not_count() -> None:
    v1 = signed(agreement(1), YNU)
    v2 = signed(agreement(2, T0 + HOUR), YNU)
    host_v1 = cosign_record(v1, CHULA.issuing)
    # The host's signature of version 1 moved onto version 2's envelope.
    forged = Envelope()
    forged.CopyFrom(v2)
    forged.signatures.append(host_v1.signatures[-1])
    state = record_state([v1, forged], [], RING)
    assert state.latest.signed_by == {YNU.id}
    assert (state.state, state.awaiting) == (State.PROPOSED, (CHULA.id,))
    base = record_state([v1, v2], [], RING)
    assert reason_of(lambda: apply_envelope(base, forged, RING)) is Reason.SIGNATURE_INVALID
    # Co-signing the replaced version itself is stale (LC-4).
    assert reason_of(lambda: apply_envelope(base, host_v1, RING)) is Reason.STALE_VERSION
    assert (
        reason_of(lambda: cosign_record(v1, CHULA.issuing, keyring=RING, state=base))
        is Reason.STALE_VERSION
    )


def test_a_signature_by_a_non_partner_or_a_wrong_key_does_not_count() -> None:
    env = signed(agreement(), YNU)
    state = record_state([env], [], RING)
    by_du = add_signatures(env, [DU.issuing])
    assert reason_of(lambda: cosign_record(env, DU.issuing, keyring=RING)) is Reason.SIGNER_MISMATCH
    assert reason_of(lambda: apply_envelope(state, by_du, RING)) is Reason.SIGNER_MISMATCH
    assert record_state([by_du], [], RING).state is State.PROPOSED  # counted institutions only
    by_transport = add_signatures(env, [CHULA.transport])
    assert reason_of(lambda: apply_envelope(state, by_transport, RING)) is Reason.KEY_WRONG_PURPOSE
    assert record_state([by_transport], [], RING).state is State.PROPOSED
    # Two keys of one institution are one institution (counting institutions, not keys).
    second = seeded("ynu/issuing-2")
    assert record_state([add_signatures(env, [second])], [], RING).latest.signed_by == {YNU.id}


def test_a_record_signed_by_another_institution_than_its_issuer_is_refused() -> None:
    env = signed(nomination(), CHULA)  # header.issuer is ynu.edu.cn
    assert reason_of(lambda: record_state([env], [], RING)) is Reason.SIGNER_MISMATCH
    assert (
        reason_of(lambda: sign_record(nomination(), CHULA.issuing, keyring=RING))
        is Reason.SIGNER_MISMATCH
    )


def test_terminate_needs_a_reason_and_is_final() -> None:
    v1 = add_signatures(signed(agreement(1), YNU), [CHULA.issuing])
    state = record_state([v1], [], RING)
    no_reason = decision(state, DecisionKind.DECISION_KIND_TERMINATE, CHULA, T0 + HOUR, reason="  ")
    assert reason_of(lambda: apply_decision(state, no_reason, RING)) is Reason.MALFORMED
    ended = apply_decision(
        state, decision(state, DecisionKind.DECISION_KIND_TERMINATE, CHULA, T0 + HOUR), RING
    )
    assert (ended.state, ended.in_force_version, ended.awaiting) == (State.TERMINATED, None, ())
    v2 = signed(agreement(2, T0 + 2 * HOUR), YNU)
    assert reason_of(lambda: apply_envelope(ended, v2, RING)) is Reason.ILLEGAL_TRANSITION
    # In a set, the later version is kept and refused: the termination stands (LC-5).
    again = record_state([v1, v2], ended.decisions, RING)
    assert (
        again.state is State.TERMINATED and again.history[-1].refused is Reason.ILLEGAL_TRANSITION
    )


# --- nominations (NOM-*) -------------------------------------------------------------------------


def test_the_life_of_a_mobility_and_who_acts_next() -> None:
    clock = Clock()
    kit = KITS[RecordKind.NOMINATION]
    state = perform(kit, None, V_S, clock)
    assert (state.state, state.awaiting) == (State.NOMINATED, (CHULA.id,))
    state = perform(kit, state, Event.ACCEPT, clock)
    assert (state.state, state.in_force_version, state.awaiting) == (State.ACCEPTED, 1, (CHULA.id,))
    state = perform(kit, state, Event.START, clock)
    assert state.state is State.STARTED
    state = perform(kit, state, Event.COMPLETE, clock)
    assert (state.state, state.in_force_version, state.awaiting) == (State.COMPLETED, 1, ())
    assert [h.event for h in state.history] == [V_S, Event.ACCEPT, Event.START, Event.COMPLETE]


def test_a_rejection_needs_a_reason_and_keeps_it_as_given() -> None:
    state = record_state([signed(nomination(), YNU)], [], RING)
    bare = decision(state, DecisionKind.DECISION_KIND_REJECT, CHULA, T0 + HOUR, reason="")
    assert reason_of(lambda: apply_decision(state, bare, RING)) is Reason.MALFORMED
    why = "ระดับภาษาไม่ถึง B2"  # Thai: language level below B2
    rejected = apply_decision(
        state,
        decision(state, DecisionKind.DECISION_KIND_REJECT, CHULA, T0 + HOUR, reason=why),
        RING,
    )
    assert rejected.state is State.REJECTED and rejected.history[-1].detail == why
    assert rejected.awaiting == ()


def test_a_decision_on_a_replaced_version_is_stale() -> None:
    v1 = signed(nomination(1), YNU)
    v2 = signed(nomination(2, T0 + HOUR), YNU)
    state = record_state([v1, v2], [], RING)
    old = decision(state, DecisionKind.DECISION_KIND_ACCEPT, CHULA, T0 + 2 * HOUR, version=1)
    with pytest.raises(ProtocolError) as info:
        apply_decision(state, old, RING)
    assert info.value.reason is Reason.STALE_VERSION and info.value.reason.status_code == "ABORTED"
    assert info.value.metadata["latest-version"] == "2"
    other = decision(state, DecisionKind.DECISION_KIND_ACCEPT, CHULA, T0 + 2 * HOUR, digest=SHA)
    assert reason_of(lambda: apply_decision(state, other, RING)) is Reason.STALE_VERSION
    # In a set, the acceptance of version 1 is history: version 2 still awaits the host (LC-5).
    mixed = record_state([v1, v2], [old], RING)
    assert (mixed.state, mixed.in_force_version, mixed.pending_version) == (State.ACCEPTED, 1, 2)
    assert mixed.awaiting == (CHULA.id,)


def test_a_decision_dated_before_the_last_one_must_be_made_again() -> None:
    state = record_state([signed(nomination(), YNU)], [], RING)
    state = apply_decision(
        state, decision(state, DecisionKind.DECISION_KIND_ACCEPT, CHULA, T0 + 3 * HOUR), RING
    )
    early = decision(state, DecisionKind.DECISION_KIND_START, CHULA, T0 + 2 * HOUR)
    assert reason_of(lambda: apply_decision(state, early, RING)) is Reason.STALE_VERSION
    late = decision(state, DecisionKind.DECISION_KIND_START, CHULA, T0 + 4 * HOUR)
    assert apply_decision(state, late, RING).state is State.STARTED


def test_delivering_a_decision_twice_changes_nothing() -> None:
    state = record_state([signed(nomination(), YNU)], [], RING)
    accept = decision(state, DecisionKind.DECISION_KIND_ACCEPT, CHULA, T0 + HOUR)
    once = apply_decision(state, accept, RING)
    assert apply_decision(once, accept, RING) is once
    assert record_state([state.latest.envelope], [accept, accept], RING) == once


def test_a_decision_about_another_record_or_missing_a_party_is_malformed() -> None:
    state = record_state([signed(nomination(), YNU)], [], RING)
    other = record_state([signed(agreement(), YNU)], [], RING)
    foreign = decision(other, DecisionKind.DECISION_KIND_REJECT, CHULA, T0 + HOUR)
    assert reason_of(lambda: apply_decision(state, foreign, RING)) is Reason.MALFORMED
    assert (
        reason_of(lambda: record_state([state.latest.envelope], [foreign], RING))
        is Reason.MALFORMED
    )
    hidden = decision(
        state, DecisionKind.DECISION_KIND_ACCEPT, CHULA, T0 + HOUR, parties=[CHULA.id]
    )
    assert reason_of(lambda: apply_decision(state, hidden, RING)) is Reason.MALFORMED


def test_a_nomination_needs_an_agreement_in_force_that_covers_it() -> None:
    proposed = record_state([signed(agreement(), YNU)], [], RING)
    ref = record_ref(proposed.latest.envelope)
    assert (
        reason_of(lambda: check_reference(nomination(agreement_ref=ref), proposed))
        is Reason.ILLEGAL_TRANSITION
    )
    approved = record_state([add_signatures(proposed.latest.envelope, [CHULA.issuing])], [], RING)
    check_reference(nomination(agreement_ref=ref), approved)
    outside = nomination(agreement_ref=ref)
    outside.isced_f_code = "0531"
    with pytest.raises(ProtocolError) as info:
        check_reference(outside, approved)
    assert info.value.reason is Reason.MALFORMED
    assert {p.field for p in info.value.field_problems} == {"isced_f_code"}
    terminated = apply_decision(
        approved, decision(approved, DecisionKind.DECISION_KIND_TERMINATE, YNU, T0 + HOUR), RING
    )
    assert (
        reason_of(lambda: check_reference(nomination(agreement_ref=ref), terminated))
        is Reason.ILLEGAL_TRANSITION
    )


# --- learning agreements (LA-*) ------------------------------------------------------------------


def test_a_learning_agreement_needs_the_students_consent_and_both_signatures() -> None:
    draft = sign_record(learning_agreement(consent=False), YNU.issuing, keyring=RING)
    state = record_state([draft], [], RING)
    assert (state.state, state.awaiting) == (State.DRAFT, (YNU.id,))
    assert reason_of(lambda: cosign_record(draft, CHULA.issuing)) is Reason.ILLEGAL_TRANSITION
    # Even both signatures do not approve a draft.
    assert record_state([add_signatures(draft, [CHULA.issuing])], [], RING).state is State.DRAFT
    proposal = sign_record(learning_agreement(2, T0 + HOUR), YNU.issuing, keyring=RING, state=state)
    state = apply_envelope(state, proposal, RING)
    assert (state.state, state.awaiting) == (State.PROPOSED, (CHULA.id,))
    state = apply_envelope(
        state, cosign_record(proposal, CHULA.issuing, keyring=RING, state=state), RING
    )
    assert (state.state, state.in_force_version) == (State.APPROVED, 2)


def test_a_change_is_a_new_version_and_approving_a_stale_one_is_aborted() -> None:
    v1 = add_signatures(signed(learning_agreement(1), YNU), [CHULA.issuing])
    v2 = signed(learning_agreement(2, T0 + HOUR), YNU)
    v3 = signed(learning_agreement(3, T0 + 2 * HOUR), YNU)
    state = record_state([v1, v2, v3], [], RING)
    assert (state.state, state.in_force_version, state.pending_version) == (State.APPROVED, 1, 3)
    with pytest.raises(ProtocolError) as info:
        apply_envelope(state, cosign_record(v2, CHULA.issuing), RING)
    assert info.value.reason is Reason.STALE_VERSION and info.value.reason.status_code == "ABORTED"
    reject_v2 = decision(state, DecisionKind.DECISION_KIND_REJECT, CHULA, T0 + 3 * HOUR, version=2)
    assert reason_of(lambda: apply_decision(state, reject_v2, RING)) is Reason.STALE_VERSION


def test_a_learning_agreement_must_match_an_accepted_nomination_after_nfc() -> None:
    nom = record_state([signed(nomination(), YNU)], [], RING)
    ref = record_ref(nom.latest.envelope)
    decomposed = PersonName()
    decomposed.CopyFrom(NAME)
    decomposed.full_name = "Nguye\u0302\u0303n Thi\u0323 Minh Khai"
    decomposed.parts[0].value = "Nguye\u0302\u0303n"
    assert decomposed.full_name != NAME.full_name and names_equal(decomposed, NAME)
    la = learning_agreement(nomination_ref=ref, name=decomposed)
    assert reason_of(lambda: check_reference(la, nom)) is Reason.ILLEGAL_TRANSITION  # not accepted
    accepted = apply_decision(
        nom, decision(nom, DecisionKind.DECISION_KIND_ACCEPT, CHULA, T0 + HOUR), RING
    )
    check_reference(la, accepted)
    other = learning_agreement(nomination_ref=ref, name=PersonName(full_name="Nguyen Van A"))
    assert reason_of(lambda: check_reference(other, accepted)) is Reason.MALFORMED
    changed = apply_envelope(accepted, signed(nomination(2, T0 + 2 * HOUR), YNU), RING)
    assert (changed.in_force_version, changed.pending_version) == (1, 2)
    check_reference(la, changed)  # version 1 stays in force until the host accepts version 2
    reaccepted = apply_decision(
        changed, decision(changed, DecisionKind.DECISION_KIND_ACCEPT, CHULA, T0 + 3 * HOUR), RING
    )
    assert reason_of(lambda: check_reference(la, reaccepted)) is Reason.STALE_VERSION


# --- transcripts (TOR-*) and recognition (RCG-*) -------------------------------------------------


def test_a_correction_supersedes_and_earlier_versions_stay_verifiable() -> None:
    v1 = sign_record(transcript(1), CHULA.issuing, keyring=RING)
    state = record_state([v1], [], RING)
    v2 = sign_record(transcript(2, T0 + HOUR), CHULA.issuing, keyring=RING, state=state)
    state = apply_envelope(state, v2, RING)
    assert (state.state, state.in_force_version) == (State.CORRECTED, 2)
    assert state.version(1).approved and state.version(1).envelope.payload == v1.payload
    wrong = transcript(3, T0 + 2 * HOUR)
    wrong.supersedes_version = 1
    assert {p.field for p in record_problems(wrong)} == {"supersedes_version"}
    unexplained = transcript(3, T0 + 2 * HOUR)
    unexplained.correction_reason = ""
    assert {p.field for p in record_problems(unexplained)} == {"correction_reason"}


def test_only_the_host_issues_a_transcript_and_only_after_the_start() -> None:
    assert (
        reason_of(lambda: record_state([signed(transcript(), YNU)], [], RING))
        is Reason.SIGNER_MISMATCH
    )
    clock = Clock()
    kit = KITS[RecordKind.NOMINATION]
    accepted = reach(kit, "accepted", clock)
    tor = transcript(nomination_ref=record_ref(accepted.latest.envelope))
    assert reason_of(lambda: check_reference(tor, accepted)) is Reason.ILLEGAL_TRANSITION
    check_reference(tor, perform(kit, accepted, Event.START, clock))
    cancelled_early = reach(kit, "cancelled", Clock())
    tor2 = transcript(nomination_ref=record_ref(cancelled_early.latest.envelope))
    assert reason_of(lambda: check_reference(tor2, cancelled_early)) is Reason.ILLEGAL_TRANSITION


def test_recognition_names_the_transcript_version_in_force_and_its_lines() -> None:
    v1 = signed(transcript(1), CHULA)
    tor = record_state([v1], [], RING)
    ref1 = record_ref(v1)
    check_reference(recognition(transcript_ref=ref1), tor)
    with pytest.raises(ProtocolError) as info:
        check_reference(recognition(transcript_ref=ref1, line="l9"), tor)
    assert [p.field for p in info.value.field_problems] == ["lines[0].transcript_line_id"]
    corrected = apply_envelope(tor, signed(transcript(2, T0 + HOUR), CHULA), RING)
    assert (
        reason_of(lambda: check_reference(recognition(transcript_ref=ref1), corrected))
        is Reason.STALE_VERSION
    )
    revised = record_state(
        [signed(recognition(1), YNU), signed(recognition(2, T0 + HOUR), YNU)], [], RING
    )
    assert (revised.state, revised.in_force_version) == (State.REVISED, 2)
    line = RecognitionLine(
        transcript_line_id="l1", outcome=RecognitionOutcome.RECOGNITION_OUTCOME_NOT_RECOGNISED
    )
    bad = recognition()
    bad.lines.append(line)
    assert "lines[1].not_recognised_reason" in {p.field for p in record_problems(bad)}


# --- credentials (CRED-*) ------------------------------------------------------------------------


def test_a_joint_degree_is_valid_while_no_awarding_university_revoked_it() -> None:
    proposed = signed(credential(), YNU)
    state = record_state([proposed], [], RING)
    assert (state.state, state.awaiting) == (State.PROPOSED, (CHULA.id,))
    both = add_signatures(proposed, [CHULA.issuing])
    lists = [signed(status_list(YNU, 1), YNU), signed(status_list(CHULA, 1), CHULA)]
    check = credential_status([both], lists, RING, T0 + HOUR)
    assert (check.signatures_valid, check.state, check.status_fresh) == (True, State.ISSUED, True)
    suspended = signed(
        status_list(CHULA, 2, T0 + HOUR, CredentialStatus.CREDENTIAL_STATUS_SUSPENDED), CHULA
    )
    assert record_state([both], [], RING, status_lists=[*lists, suspended]).state is State.SUSPENDED
    lifted = signed(status_list(CHULA, 3, T0 + 2 * HOUR), CHULA)
    assert (
        record_state([both], [], RING, status_lists=[*lists, suspended, lifted]).state
        is State.ISSUED
    )
    revoked = signed(
        status_list(YNU, 2, T0 + HOUR, CredentialStatus.CREDENTIAL_STATUS_REVOKED), YNU
    )
    restored = signed(status_list(YNU, 3, T0 + 2 * HOUR), YNU)
    final = record_state([both], [], RING, status_lists=[lifted, restored, revoked, *lists])
    assert (final.state, final.in_force_version, final.awaiting) == (State.REVOKED, None, ())
    assert final.history[-1].event is Event.STATUS_REVOKED and final.history[-1].by == YNU.id
    # A status list by someone who is not the list's institution does not count.
    fake = signed(status_list(CHULA, 9, T0, CredentialStatus.CREDENTIAL_STATUS_REVOKED), YNU)
    assert (
        reason_of(lambda: record_state([both], [], RING, status_lists=[fake]))
        is Reason.SIGNER_MISMATCH
    )


def test_signature_validity_and_status_freshness_are_reported_separately() -> None:
    both = add_signatures(signed(credential(), YNU), [CHULA.issuing])
    lists = [signed(status_list(YNU, 1), YNU), signed(status_list(CHULA, 1), CHULA)]
    late = credential_status([both], lists, RING, T0 + timedelta(days=8))
    assert late.signatures_valid and late.state is State.ISSUED
    assert (late.status_fresh, late.stale) == (False, (CHULA.id, YNU.id))
    missing = credential_status([both], lists[:1], RING, T0 + HOUR)
    assert missing.signatures_valid and missing.stale == (CHULA.id,)
    unsigned = credential_status([signed(credential(), YNU)], lists, RING, T0 + HOUR)
    assert not unsigned.signatures_valid and unsigned.state is State.PROPOSED


def test_a_credential_of_a_former_member_still_verifies() -> None:
    manifest = NET.manifest(2)
    for member in manifest.members:
        if member.institution_id == CHULA.id:
            member.status = MemberStatus.MEMBER_STATUS_FORMER
            member.left_at.CopyFrom(to_timestamp(T0 + timedelta(days=30)))
    trust = ManifestTrust.bootstrap(NET.sign(manifest), None)
    ring = KeyRing(trust.current)
    both = add_signatures(signed(credential(awarding=(YNU, CHULA)), YNU), [CHULA.issuing])
    lists = [signed(status_list(YNU, 1), YNU), signed(status_list(CHULA, 1), CHULA)]
    check = credential_status([both], lists, ring, T0 + HOUR)
    assert check.signatures_valid and check.former_members == (CHULA.id,)
    after = add_signatures(
        signed(credential(awarding=(YNU, CHULA), at=T0 + timedelta(days=31)), YNU), [CHULA.issuing]
    )
    assert (
        record_state([after], [], ring).state is State.PROPOSED
    )  # the former member signs nothing new


def test_a_network_certificate_needs_a_certification_key() -> None:
    cert = seeded("gov/certification")
    manifest = NET.manifest(2)
    manifest.certification_keys.append(
        public_key(cert, YNU.id, KeyPurpose.KEY_PURPOSE_CERTIFICATION)
    )
    ring = KeyRing(ManifestTrust.bootstrap(NET.sign(manifest), None).current)
    message = credential(awarding=(YNU,), kind=CredentialKind.CREDENTIAL_KIND_NETWORK_CERTIFICATE)
    env = signed(message, YNU)
    state = record_state([env], [], ring)
    assert (state.state, state.awaiting) == (State.PROPOSED, (CERTIFICATION_SIGNATORY,))
    certified = cosign_record(env, cert, keyring=ring, state=state)
    assert apply_envelope(state, certified, ring).state is State.ISSUED
    assert reason_of(lambda: cosign_record(env, UM.issuing, keyring=ring)) is Reason.SIGNER_MISMATCH


# --- consent (CONSENT-*) -------------------------------------------------------------------------


def test_consent_in_force_withdrawn_expired_and_the_24_hour_rule() -> None:
    given = consent(expires=T0 + timedelta(days=10))
    assert consent_in_force(given, T0 + HOUR, None)
    assert not consent_in_force(given, T0 + timedelta(days=10), None)  # expired at expires_at
    assert not consent_in_force(given, T0 - HOUR, None)  # not given yet
    pushed = T0 + HOUR
    assert consent_in_force(given, pushed + REMOTE_CONSENT_TTL - timedelta(seconds=1), pushed)
    assert not consent_in_force(given, pushed + REMOTE_CONSENT_TTL, pushed)
    assert consent_in_force(given, pushed + timedelta(days=3), pushed + timedelta(days=2, hours=23))
    assert not consent_in_force(consent(2, T0 + HOUR, withdrawn=True), T0 + 2 * HOUR, None)
    v1, v2 = signed(consent(1), YNU), signed(consent(2, T0 + HOUR, withdrawn=True), YNU)
    state = record_state([v1], [], RING)
    assert consent_in_force(state, T0 + HOUR, None)
    withdrawn = apply_envelope(state, v2, RING)
    assert (withdrawn.state, withdrawn.in_force_version) == (State.WITHDRAWN, None)
    assert not consent_in_force(withdrawn, T0 + 2 * HOUR, None)
    # A withdrawal is final: a later version cannot give it again under the same name.
    v3 = signed(consent(3, T0 + 2 * HOUR), YNU)
    assert reason_of(lambda: apply_envelope(withdrawn, v3, RING)) is Reason.ILLEGAL_TRANSITION
    assert record_state([v3, v1, v2], [], RING).state is State.WITHDRAWN


def test_consent_permits_only_its_recipient_purpose_and_categories() -> None:
    c = consent()
    now = T0 + HOUR
    recognition_purpose = Purpose.PURPOSE_RECOGNITION
    tor = DataCategory.DATA_CATEGORY_TRANSCRIPT

    def permits(recipient: str, purpose: int, category: int) -> bool:
        return consent_permits(
            c, recipient=recipient, purpose=purpose, category=category, now=now, refreshed_at=None
        )

    assert permits(UM.id, recognition_purpose, tor)
    assert not permits(DU.id, recognition_purpose, tor)
    assert not permits(UM.id, Purpose.PURPOSE_AUDIT, tor)
    assert not permits(UM.id, recognition_purpose, DataCategory.DATA_CATEGORY_CREDENTIAL)
    assert not consent_permits(
        c, recipient=UM.id, purpose=recognition_purpose, category=tor, now=now,
        refreshed_at=now - REMOTE_CONSENT_TTL,
    )  # fmt: skip


def test_consent_rules() -> None:
    born_withdrawn = consent(1, withdrawn=True)
    assert "withdrawn" in {p.field for p in record_problems(born_withdrawn)}
    no_expiry = consent()
    no_expiry.ClearField("expires_at")
    assert "expires_at" in {p.field for p in record_problems(no_expiry)}
    self_recipient = consent()
    self_recipient.recipient = YNU.id
    assert "recipient" in {p.field for p in record_problems(self_recipient)}


# --- content rules (LC-7, LC-9) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "student_id",
    ["123456789012", "3520212345671", "1234-5678-9012", "", "abc", "s/2026/1"],
)
def test_no_national_id_can_pass_as_a_network_student_id(student_id: str) -> None:
    n = nomination()
    n.student_id = student_id
    assert "student_id" in {p.field for p in record_problems(n)}


def test_records_without_their_parties_consent_or_with_a_tombstone_are_malformed() -> None:
    n = nomination()
    del n.header.parties[:]
    n.header.parties.append(YNU.id)
    n.ClearField("transfer_consent")
    n.header.deleted = True
    fields = {p.field for p in record_problems(n)}
    assert {"header.parties", "transfer_consent", "header.deleted"} <= fields
    assert reason_of(lambda: sign_record(n, YNU.issuing)) is Reason.MALFORMED
    ok = agreement()
    assert record_problems(ok) == []
    ok.partners[1].institution_id = YNU.id
    assert "partners[1].institution_id" in {p.field for p in record_problems(ok)}
    years = agreement()
    years.last_academic_year = "2025/2026"
    years.first_academic_year = "2026-2027"
    assert {"first_academic_year"} <= {p.field for p in record_problems(years)}
    southern = agreement()
    southern.first_academic_year, southern.last_academic_year = "2027/2027", "2028/2028"
    validate_record(southern)


def test_a_decision_is_version_one_with_a_reason_where_needed() -> None:
    state = record_state([signed(nomination(), YNU)], [], RING)
    env = decision(state, DecisionKind.DECISION_KIND_REJECT, CHULA, T0 + HOUR, reason="")
    message = Decision()
    message.ParseFromString(env.payload)
    assert {p.field for p in record_problems(message)} == {"reason"}
    message.header.version = 2
    assert "header.version" in {p.field for p in record_problems(message)}
    assert (
        reason_of(
            lambda: sign_decision(
                state,
                DecisionKind.DECISION_KIND_REJECT,
                decided_by=CHULA.id,
                decided_at=T0 + HOUR,
                signer=CHULA.issuing,
                decision_id="d-x",
            )
        )
        is Reason.MALFORMED
    )
    assert (
        reason_of(
            lambda: sign_decision(
                state,
                DecisionKind.DECISION_KIND_APPROVE,
                decided_by=CHULA.id,
                decided_at=T0 + HOUR,
                signer=CHULA.issuing,
                decision_id="d-x",
            )
        )
        is Reason.ILLEGAL_TRANSITION
    )
    # From one envelope only, sign_decision checks that the kind and role can ever apply.
    assert (
        reason_of(
            lambda: sign_decision(
                state.latest.envelope,
                DecisionKind.DECISION_KIND_START,
                decided_by=YNU.id,
                decided_at=T0 + HOUR,
                signer=YNU.issuing,
                decision_id="d-y",
            )
        )
        is Reason.SIGNER_MISMATCH
    )
    env2 = sign_decision(
        state.latest.envelope,
        DecisionKind.DECISION_KIND_ACCEPT,
        decided_by=CHULA.id,
        decided_at=T0 + HOUR,
        signer=CHULA.issuing,
        decision_id="d-z",
        keyring=RING,
    )
    assert apply_decision(state, env2, RING).state is State.ACCEPTED


def test_equivocation_gaps_and_identity_changes_are_malformed() -> None:
    v1 = signed(nomination(1), YNU)
    twin = nomination(1)
    twin.isced_f_code = "0413"
    assert reason_of(lambda: record_state([v1, signed(twin, YNU)], [], RING)) is Reason.MALFORMED
    v3 = signed(nomination(3, T0 + HOUR), YNU)
    assert reason_of(lambda: record_state([v1, v3], [], RING)) is Reason.MALFORMED
    assert (
        reason_of(lambda: apply_envelope(record_state([v1], [], RING), v3, RING))
        is Reason.MALFORMED
    )
    moved = nomination(2, T0 + HOUR)
    moved.host_institution = DU.id
    moved.header.parties.append(DU.id)
    with pytest.raises(ProtocolError) as info:
        record_state([v1, signed(moved, YNU)], [], RING)
    assert info.value.reason is Reason.MALFORMED
    assert [p.field for p in info.value.field_problems] == ["host_institution"]
    assert reason_of(lambda: record_state([], [], RING)) is Reason.MALFORMED
    assert (
        reason_of(lambda: record_state([v1, signed(agreement(), YNU)], [], RING))
        is Reason.MALFORMED
    )


# --- text (LC-8) ---------------------------------------------------------------------------------

SCRIPTS = [
    # (composed, decomposed): NFC turns the second into the first.
    ("Nguy\u1ec5n", "Nguye\u0302\u0303n"),  # Vietnamese: e + circumflex + tilde
    (
        "\u09ae\u09cb\u09b9\u09be\u09ae\u09cd\u09ae\u09a6",
        "\u09ae\u09c7\u09be\u09b9\u09be\u09ae\u09cd\u09ae\u09a6",
    ),  # Bengali
    (
        "\u1026\u1038\u1021\u1031\u102c\u1004\u103a",
        "\u1025\u102e\u1038\u1021\u1031\u102c\u1004\u103a",
    ),  # Burmese
    ("Caf\u00e9", "Cafe\u0301"),
]


@pytest.mark.parametrize(("composed", "decomposed"), SCRIPTS)
def test_decomposed_and_composed_text_compare_equal_and_are_stored_as_given(
    composed: str, decomposed: str
) -> None:
    assert composed != decomposed and unicodedata.normalize("NFC", decomposed) == composed
    assert text_equal(composed, decomposed)
    assert names_equal(PersonName(full_name=composed), PersonName(full_name=decomposed))
    assert not names_equal(PersonName(full_name=composed), PersonName(full_name=composed + "x"))
    n = nomination(name=PersonName(full_name=decomposed))
    env = sign_record(n, YNU.issuing, keyring=RING)
    assert decomposed.encode() in env.payload  # signed exactly as given
    state = record_state([env], [], RING)
    held = state.latest.message
    assert isinstance(held, Nomination) and held.student_name.full_name == decomposed
    for other in ("张伟", "สมชาย ใจดี"):  # no canonical compositions: unchanged
        assert text_equal(other, other)


# --- determinism (LC-5) --------------------------------------------------------------------------


def _nomination_pool() -> tuple[list[Envelope], list[Envelope]]:
    """Versions 1 and 2 of a nomination and a pool of valid decisions, some contradicting."""
    v1 = signed(nomination(1, T0), YNU)
    v2 = signed(nomination(2, T0 + 10 * HOUR), YNU)
    s1 = record_state([v1], [], RING)
    s2 = record_state([v1, v2], [], RING)
    pool = [
        decision(s1, DecisionKind.DECISION_KIND_ACCEPT, CHULA, T0 + HOUR),
        decision(
            s1, DecisionKind.DECISION_KIND_REJECT, CHULA, T0 + HOUR
        ),  # same time, contradicting
        decision(s1, DecisionKind.DECISION_KIND_START, CHULA, T0 + 2 * HOUR),
        decision(s1, DecisionKind.DECISION_KIND_CANCEL, YNU, T0 + 3 * HOUR),
        decision(s2, DecisionKind.DECISION_KIND_ACCEPT, CHULA, T0 + 11 * HOUR),
        decision(s2, DecisionKind.DECISION_KIND_REJECT, CHULA, T0 + 12 * HOUR),
        decision(s2, DecisionKind.DECISION_KIND_WITHDRAW, YNU, T0 + 12 * HOUR),
        decision(s2, DecisionKind.DECISION_KIND_START, CHULA, T0 + 13 * HOUR),
        decision(s2, DecisionKind.DECISION_KIND_COMPLETE, CHULA, T0 + 14 * HOUR),
        decision(s2, DecisionKind.DECISION_KIND_ACCEPT, YNU, T0 + 14 * HOUR),  # wrong party
        decision(s2, DecisionKind.DECISION_KIND_CANCEL, DU, T0 + 15 * HOUR),  # not a party
    ]
    return [v1, v2], pool


VERSIONS, POOL = _nomination_pool()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chosen=st.lists(st.sampled_from(range(len(POOL))), unique=True),
    seed=st.randoms(use_true_random=False),
    copies=st.booleans(),
)
def test_the_state_does_not_depend_on_the_order_of_the_same_decisions(
    chosen: list[int], seed: object, copies: bool
) -> None:
    decisions = [POOL[i] for i in chosen]
    shuffled = list(decisions) + (decisions[:1] if copies else [])
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    versions = list(reversed(VERSIONS)) if copies else VERSIONS
    home = record_state(VERSIONS, decisions, RING)
    # Another party, with its own key ring built from the same manifest, other order, duplicates.
    host = record_state(versions, shuffled, NET.keyring())
    assert host == home
    # Applying the same decisions one by one in canonical order, skipping what is refused, reaches
    # the same state.
    step = record_state(VERSIONS[:1], [], RING)
    order = sorted(
        [(1, 0, T0, b"", VERSIONS[0]), (2, 0, T0, b"", VERSIONS[1])]
        + [
            (_decided_version(d), 1, _decided_at(d), payload_sha256(d.payload), d)
            for d in decisions
        ],
        key=lambda item: item[:4],
    )
    for *_, env in order:
        try:
            if env.payload_type == DECISION:
                step = apply_decision(step, env, RING)
            elif env is not VERSIONS[0]:
                step = apply_envelope(step, env, RING)
        except ProtocolError as exc:
            assert exc.reason in {
                Reason.ILLEGAL_TRANSITION,
                Reason.SIGNER_MISMATCH,
                Reason.STALE_VERSION,
            }
    assert (step.state, step.in_force_version, step.pending_version, step.awaiting) == (
        home.state,
        home.in_force_version,
        home.pending_version,
        home.awaiting,
    )


def _decided_version(env: Envelope) -> int:
    d = Decision()
    d.ParseFromString(env.payload)
    return d.record.version


def _decided_at(env: Envelope) -> datetime:
    d = Decision()
    d.ParseFromString(env.payload)
    return d.header.issued_at.ToDatetime().replace(tzinfo=T0.tzinfo)


RANDOM_EVENTS = st.lists(
    st.tuples(
        st.sampled_from([*DECISIONS, "version", "cosign"]),
        st.sampled_from([YNU, CHULA, DU]),
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(
        [
            RecordKind.AGREEMENT,
            RecordKind.NOMINATION,
            RecordKind.LEARNING_AGREEMENT,
            RecordKind.CREDENTIAL,
        ]
    ),
    events=RANDOM_EVENTS,
    seed=st.randoms(use_true_random=False),
)
def test_random_histories_fold_to_one_state_for_every_party(
    kind: RecordKind, events: list[tuple[object, Institution]], seed: object
) -> None:
    """Random valid inputs, accepted or refused one by one; the set gives the same state."""
    kit = KITS[kind]
    clock = Clock()
    state = perform(kit, None, kit.events[0], clock)
    made_decisions: list[Envelope] = []
    for what, who in events:
        try:
            if what == "version":
                state = perform(
                    kit, state, kit.events[-1] if who is CHULA else kit.events[0], clock
                )
            elif what == "cosign":
                state = perform(kit, state, C, clock)
            else:
                env = decision(state, what, who, clock.tick())  # type: ignore[arg-type]
                made_decisions.append(env)
                state = apply_decision(state, env, RING)
        except ProtocolError as exc:
            assert exc.reason in {
                Reason.ILLEGAL_TRANSITION,
                Reason.SIGNER_MISMATCH,
                Reason.STALE_VERSION,
            }, exc
    envelopes = [v.envelope for v in state.versions]
    accepted = list(state.decisions)
    seed.shuffle(envelopes)  # type: ignore[attr-defined]
    seed.shuffle(accepted)  # type: ignore[attr-defined]
    assert record_state(envelopes, accepted, NET.keyring()) == state
    # With the refused decisions too, the state is still one function of the set. (It may differ
    # from the incremental one: a co-signature counts from its version's issuance, so a decision
    # refused before the co-signature arrived can count once it is known, LC-5.)
    everything = record_state(envelopes, made_decisions, RING)
    seed.shuffle(made_decisions)  # type: ignore[attr-defined]
    assert record_state(list(reversed(envelopes)), made_decisions, NET.keyring()) == everything
