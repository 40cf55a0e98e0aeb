"""Mobility and credit records: their kinds, names, roles and content rules (spec lifecycle.md).

Pure: every function takes messages and returns values or raises ProtocolError. The lifecycle state
machines built on these rules are in _lifecycle.

Text is stored exactly as given and compared after Unicode NFC normalisation (LC-8): "Nguyễn"
typed with combining marks equals "Nguyễn" typed precomposed.
"""

from __future__ import annotations

import enum
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final

from google.protobuf.message import DecodeError, Message

from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.catalogue_pb2 import CourseLevel, RecordHeader
from sseaun.v1.envelope_pb2 import Envelope
from sseaun.v1.records_pb2 import (
    Consent,
    ConsentStatement,
    CourseResultStatus,
    Credential,
    CredentialKind,
    CredentialStatus,
    CredentialStatusList,
    DataCategory,
    Decision,
    DecisionKind,
    InterInstitutionalAgreement,
    LanguageLevel,
    LearningAgreement,
    MobilityType,
    Nomination,
    RecognitionDecision,
    RecognitionOutcome,
    RecordRef,
    TranscriptOfRecords,
)
from sseaun.v1.types_pb2 import AcademicTerm, CreditValue, Date, Grade, MultilingualText, PersonName

from ._catalogue import (
    _DECIMAL,
    _INSTITUTION_ID,
    _NETWORK_ID,
    MAX_DESCRIPTION_LENGTH,
    MAX_TITLE_LENGTH,
    _code_error,
    _credits_error,
    _isced_error,
    _scheme_error,
    _tag_error,
    _text_error,
    _texts_problems,
    _website_error,
)
from ._errors import FieldProblem, ProtocolError, Reason
from ._payload_types import payload_type

__all__ = [
    "AGREEMENT",
    "CERTIFICATION_SIGNATORY",
    "CONSENT",
    "CREDENTIAL",
    "CREDENTIAL_STATUS_LIST",
    "DECISION",
    "LEARNING_AGREEMENT",
    "MAX_PARTIES",
    "NOMINATION",
    "REASON_REQUIRED",
    "RECOGNITION",
    "RECORD_KINDS",
    "TRANSCRIPT",
    "RecordKind",
    "Role",
    "Roles",
    "identity_problems",
    "names_equal",
    "open_payload",
    "payload_sha256",
    "record_name",
    "record_problems",
    "record_ref",
    "roles_of",
    "text_equal",
    "validate_record",
]

# --- kinds and payload types (spec LC-1) ---------------------------------------------------------

AGREEMENT: Final = payload_type("agreement")
NOMINATION: Final = payload_type("nomination")
LEARNING_AGREEMENT: Final = payload_type("learning-agreement")
TRANSCRIPT: Final = payload_type("transcript")
RECOGNITION: Final = payload_type("recognition")
CREDENTIAL: Final = payload_type("credential")
CREDENTIAL_STATUS_LIST: Final = payload_type("credential-status-list")
CONSENT: Final = payload_type("consent")
DECISION: Final = payload_type("decision")

#: Every payload type of this module.
RECORD_KINDS: Final = frozenset(
    {
        AGREEMENT,
        NOMINATION,
        LEARNING_AGREEMENT,
        TRANSCRIPT,
        RECOGNITION,
        CREDENTIAL,
        CREDENTIAL_STATUS_LIST,
        CONSENT,
        DECISION,
    }
)

#: The most institutions one record may need signatures from (ENV-4 allows 16 signatures).
MAX_PARTIES: Final = 16

#: Stands for "a CERTIFICATION key of the manifest" among the signatories of a network
#: certificate (CRED-3); never an institution ID (those contain a dot).
CERTIFICATION_SIGNATORY: Final = "network-certification"

_MAX_REASON = 2000
_MAX_SHORT = 64
_MAX_LINES = 500


class RecordKind(enum.Enum):
    """A kind of mobility or credit record, with its payload type, collection and message."""

    AGREEMENT = "agreement"
    NOMINATION = "nomination"
    LEARNING_AGREEMENT = "learning-agreement"
    TRANSCRIPT = "transcript"
    RECOGNITION = "recognition"
    CREDENTIAL = "credential"
    CREDENTIAL_STATUS_LIST = "credential-status-list"
    CONSENT = "consent"
    DECISION = "decision"

    @property
    def payload_type(self) -> str:
        """``application/vnd.sseaun.<kind>.v1+protobuf``."""
        return payload_type(self.value)

    @property
    def collection(self) -> str:
        """The collection ID in record names (AIP-122 camelCase), e.g. ``learningAgreements``."""
        return _COLLECTIONS[self]

    @property
    def message_type(self) -> type[Message]:
        """The protobuf message of the payload."""
        return _MESSAGES[self]

    @classmethod
    def of_payload_type(cls, value: str) -> RecordKind:
        """The kind of a payload type.

        Raises:
            ProtocolError: PAYLOAD_TYPE_UNSUPPORTED for any other payload type.
        """
        kind = _BY_TYPE.get(value)
        if kind is None:
            raise ProtocolError(
                Reason.PAYLOAD_TYPE_UNSUPPORTED,
                "not a mobility or credit record",
                metadata={"payload-type": value},
            )
        return kind

    @classmethod
    def of_message(cls, message: Message) -> RecordKind:
        """The kind of a record message.

        Raises:
            ProtocolError: PAYLOAD_TYPE_UNSUPPORTED for any other message.
        """
        for kind, message_type in _MESSAGES.items():
            if isinstance(message, message_type):
                return kind
        raise ProtocolError(
            Reason.PAYLOAD_TYPE_UNSUPPORTED,
            "not a mobility or credit record",
            metadata={"message": type(message).__name__},
        )


_COLLECTIONS: Mapping[RecordKind, str] = {
    RecordKind.AGREEMENT: "agreements",
    RecordKind.NOMINATION: "nominations",
    RecordKind.LEARNING_AGREEMENT: "learningAgreements",
    RecordKind.TRANSCRIPT: "transcripts",
    RecordKind.RECOGNITION: "recognitions",
    RecordKind.CREDENTIAL: "credentials",
    RecordKind.CREDENTIAL_STATUS_LIST: "credentialStatusLists",
    RecordKind.CONSENT: "consents",
    RecordKind.DECISION: "decisions",
}
_MESSAGES: Mapping[RecordKind, type[Message]] = {
    RecordKind.AGREEMENT: InterInstitutionalAgreement,
    RecordKind.NOMINATION: Nomination,
    RecordKind.LEARNING_AGREEMENT: LearningAgreement,
    RecordKind.TRANSCRIPT: TranscriptOfRecords,
    RecordKind.RECOGNITION: RecognitionDecision,
    RecordKind.CREDENTIAL: Credential,
    RecordKind.CREDENTIAL_STATUS_LIST: CredentialStatusList,
    RecordKind.CONSENT: Consent,
    RecordKind.DECISION: Decision,
}
_BY_TYPE: Mapping[str, RecordKind] = {kind.payload_type: kind for kind in RecordKind}

# A record ID (the last segment of a name): a surrogate, not a human code (EWP's lesson).
_RECORD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$")
# A pseudonymous network student ID: at least one letter, so that no bare national number
# (Aadhaar: 12 digits, CNIC: 13, a resident ID) can pass as one (LC-9).
_STUDENT_ID = re.compile(r"^(?=[A-Za-z0-9._~-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9._~-]{7,63}$")
_ACADEMIC_YEAR = re.compile(r"^([0-9]{4})/([0-9]{4})$")
_NAME = re.compile(r"^institutions/([^/]+)/([A-Za-z]+)/([^/]+)$")


# --- text (spec LC-8) ----------------------------------------------------------------------------


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def text_equal(a: str, b: str) -> bool:
    """Whether two texts are the same after Unicode NFC normalisation (LC-8)."""
    return a == b or _nfc(a) == _nfc(b)


def names_equal(a: PersonName, b: PersonName) -> bool:
    """Whether two names are the same person's name as written, after NFC (LC-8).

    Compares the full name, script and the ordered parts (kind and value); transliterations and
    the language tag are presentation and are not compared.
    """
    if not text_equal(a.full_name, b.full_name) or a.script != b.script:
        return False
    if len(a.parts) != len(b.parts):
        return False
    return all(
        p.kind == q.kind and text_equal(p.value, q.value)
        for p, q in zip(a.parts, b.parts, strict=True)
    )


# --- names, digests, references (spec LC-2) ------------------------------------------------------


def record_name(kind: RecordKind, issuer: str, record_id: str) -> str:
    """The resource name ``institutions/{issuer}/{collection}/{record_id}``.

    Raises:
        ProtocolError: MALFORMED when the issuer or the record ID breaks its rule.
    """
    problems = []
    if not _INSTITUTION_ID.fullmatch(issuer):
        problems.append(FieldProblem("issuer", "must be a lower-case SCHAC domain"))
    if not _RECORD_ID.fullmatch(record_id):
        problems.append(
            FieldProblem(
                "record_id", "1 to 64 of A-Z a-z 0-9 . _ ~ -, starting with a letter/digit"
            )
        )
    if problems:
        raise ProtocolError(Reason.MALFORMED, "not a record name", field_problems=problems)
    return f"institutions/{issuer}/{kind.collection}/{record_id}"


def _split_name(name: str) -> tuple[str, str, str] | None:
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return match[1], match[2], match[3]


def payload_sha256(payload: bytes) -> bytes:
    """SHA-256 of a record envelope's payload exactly as signed (DEC-2)."""
    return hashlib.sha256(payload).digest()


def record_ref(envelope: Envelope) -> RecordRef:
    """The reference to the record version an envelope holds (its payload is parsed, not verified).

    Raises:
        ProtocolError: PAYLOAD_TYPE_UNSUPPORTED for an envelope that holds no record; MALFORMED if
            its payload does not parse or has no name or version.
    """
    kind = RecordKind.of_payload_type(envelope.payload_type)
    header: RecordHeader = open_payload(kind, envelope.payload).header  # type: ignore[attr-defined]
    if not header.name or header.version < 1:
        raise ProtocolError(Reason.MALFORMED, "payload has no record header")
    return RecordRef(
        name=header.name, version=header.version, payload_sha256=payload_sha256(envelope.payload)
    )


def open_payload(kind: RecordKind, payload: bytes) -> Message:
    """Parse a payload of a kind (call it on verified bytes only, ENV-3).

    Raises:
        ProtocolError: MALFORMED.
    """
    message = kind.message_type()
    try:
        message.ParseFromString(payload)
    except DecodeError as exc:
        raise ProtocolError(Reason.MALFORMED, "payload does not parse") from exc
    return message


# --- roles (spec LC-3) ---------------------------------------------------------------------------


class Role(enum.Enum):
    """A part an institution plays in a record, as the transition tables name it."""

    #: header.issuer: the institution that drafts every version.
    ISSUER = "issuer"
    #: Any signatory (an agreement partner, an awarding institution, home or host of a LA).
    PARTNER = "partner"
    #: A signatory other than the issuer.
    COUNTERPART = "counterpart"
    HOME = "home"
    HOST = "host"
    #: The institution a consent lets read.
    RECIPIENT = "recipient"


@dataclass(frozen=True)
class Roles:
    """Who signs and who plays which role in one version of a record.

    Attributes:
        issuer: header.issuer.
        signatories: the institutions whose ISSUING signatures approve a version, in payload
            order; for a network certificate also CERTIFICATION_SIGNATORY.
        by_role: the institutions of each role.
    """

    issuer: str
    signatories: tuple[str, ...]
    by_role: Mapping[Role, frozenset[str]]

    @property
    def parties(self) -> frozenset[str]:
        """Every institution with a role (the ones that may decide, if the table lets them)."""
        out: set[str] = set()
        for members in self.by_role.values():
            out |= members
        return frozenset(out)

    def holds(self, institution: str, roles: Iterable[Role]) -> bool:
        """Whether institution plays one of roles."""
        return any(institution in self.by_role.get(role, frozenset()) for role in roles)


def roles_of(message: Message) -> Roles:
    """The roles of a record message (LC-3).

    Raises:
        ProtocolError: PAYLOAD_TYPE_UNSUPPORTED for a message that is not a record.
    """
    kind = RecordKind.of_message(message)
    issuer = message.header.issuer  # type: ignore[attr-defined]
    signatories: tuple[str, ...] = (issuer,)
    by_role: dict[Role, frozenset[str]] = {Role.ISSUER: frozenset({issuer})}
    if isinstance(message, InterInstitutionalAgreement):
        signatories = tuple(_unique(p.institution_id for p in message.partners))
    elif isinstance(message, LearningAgreement):
        signatories = (message.home_institution, message.host_institution)
    elif isinstance(message, Credential):
        signatories = tuple(_unique(message.awarding_institutions))
        if message.kind == CredentialKind.CREDENTIAL_KIND_NETWORK_CERTIFICATE:
            signatories += (CERTIFICATION_SIGNATORY,)
    if isinstance(
        message, Nomination | LearningAgreement | TranscriptOfRecords | RecognitionDecision
    ):
        by_role[Role.HOME] = frozenset({message.home_institution})
        by_role[Role.HOST] = frozenset({message.host_institution})
    elif isinstance(message, Consent):
        by_role[Role.HOME] = frozenset({message.home_institution})
        by_role[Role.RECIPIENT] = frozenset({message.recipient})
    institutions = frozenset(s for s in signatories if s != CERTIFICATION_SIGNATORY)
    if kind in (RecordKind.AGREEMENT, RecordKind.LEARNING_AGREEMENT, RecordKind.CREDENTIAL):
        by_role[Role.PARTNER] = institutions
        by_role[Role.COUNTERPART] = institutions - {issuer}
    return Roles(issuer, signatories, by_role)


def _unique(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


# --- content rules (spec LC-7 and the per-kind chapters) -----------------------------------------


class _Problems:
    """Collects field problems with dotted paths."""

    def __init__(self) -> None:
        self.items: list[FieldProblem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(FieldProblem(path, message))

    def extend(self, problems: Iterable[FieldProblem]) -> None:
        self.items.extend(problems)

    def institution(self, path: str, value: str) -> bool:
        if not value:
            self.add(path, "required")
            return False
        if not _INSTITUTION_ID.fullmatch(value):
            self.add(path, "must be a lower-case SCHAC domain")
            return False
        return True

    def text(self, path: str, value: str, *, required: bool, limit: int = _MAX_REASON) -> None:
        if not value.strip():
            if required:
                self.add(path, "required")
            return
        if error := _text_error(value, limit=limit, multiline=True):
            self.add(path, error)

    def short(self, path: str, value: str, *, required: bool = False) -> None:
        self.text(path, value, required=required, limit=_MAX_SHORT)
        if "\n" in value:
            self.add(path, "one line")

    def texts(self, path: str, value: MultilingualText, *, required: bool, long: bool) -> None:
        self.extend(
            _texts_problems(
                value,
                path,
                limit=MAX_DESCRIPTION_LENGTH if long else MAX_TITLE_LENGTH,
                multiline=long,
                required=required,
            )
        )

    def code(self, path: str, value: str, *, required: bool, what: str = "a course code") -> None:
        if not value and not required:
            return
        if error := _code_error(value, what):
            self.add(path, error)

    def isced(self, path: str, value: str, *, required: bool = False) -> None:
        if not value:
            if required:
                self.add(path, "required")
            return
        if error := _isced_error(value):
            self.add(path, error)

    def tag(self, path: str, value: str) -> None:
        if error := _tag_error(value):
            self.add(path, error)

    def student_id(self, path: str, value: str) -> None:
        if not value:
            self.add(path, "required")
        elif not _STUDENT_ID.fullmatch(value):
            self.add(
                path,
                "a pseudonymous network student ID: 8 to 64 of A-Z a-z 0-9 . _ ~ -, with at least "
                "one letter (never a national ID number)",
            )

    def name(self, path: str, value: PersonName, *, present: bool, depth: int = 0) -> None:
        if not present:
            self.add(path, "required")
            return
        if not value.full_name.strip():
            self.add(f"{path}.full_name", "required: the full name exactly as written")
        elif error := _text_error(value.full_name, limit=MAX_TITLE_LENGTH, multiline=False):
            self.add(f"{path}.full_name", error)
        for i, part in enumerate(value.parts):
            if not part.value.strip():
                self.add(f"{path}.parts[{i}].value", "must not be empty")
            elif error := _text_error(part.value, limit=MAX_TITLE_LENGTH, multiline=False):
                self.add(f"{path}.parts[{i}].value", error)
        if value.lang:
            self.tag(f"{path}.lang", value.lang)
        if value.script and not re.fullmatch(r"[A-Z][a-z]{3}", value.script):
            self.add(f"{path}.script", "an ISO 15924 script code such as Hans, Thai, Beng, Mymr")
        if depth > 0 and value.transliterations:
            self.add(f"{path}.transliterations", "a transliteration has no transliterations")
        for i, other in enumerate(value.transliterations):
            self.name(f"{path}.transliterations[{i}]", other, present=True, depth=depth + 1)

    def day(self, path: str, value: Date, *, present: bool, required: bool = True) -> date | None:
        if not present:
            if required:
                self.add(path, "required")
            return None
        try:
            return date(value.year, value.month, value.day)
        except ValueError:
            self.add(path, "not a calendar date")
            return None

    def span(self, path: str, start: date | None, end: date | None) -> None:
        if start is not None and end is not None and end < start:
            self.add(f"{path}.end_date", "before the start date")

    def academic_year(self, path: str, value: str, *, required: bool = True) -> int | None:
        if not value:
            if required:
                self.add(path, "required")
            return None
        match = _ACADEMIC_YEAR.fullmatch(value)
        if match is None or int(match[2]) - int(match[1]) not in (0, 1):
            self.add(path, 'an academic year "YYYY/YYYY": 2026/2027, or 2027/2027 (southern)')
            return None
        return int(match[1])

    def term(self, path: str, value: AcademicTerm) -> None:
        self.academic_year(f"{path}.academic_year", value.academic_year, required=False)
        self.texts(f"{path}.label", value.label, required=False, long=False)
        start = self.day(
            f"{path}.start_date",
            value.start_date,
            present=value.HasField("start_date"),
            required=False,
        )
        end = self.day(
            f"{path}.end_date", value.end_date, present=value.HasField("end_date"), required=False
        )
        self.span(path, start, end)

    def credits(self, path: str, value: CreditValue, *, present: bool, required: bool) -> None:
        if not present:
            if required:
                self.add(path, "required")
            return
        if error := _scheme_error(value.scheme_id, None):
            self.add(f"{path}.scheme_id", error)
        if error := _credits_error(value.value):
            self.add(f"{path}.value", error)

    def grade(self, path: str, value: Grade, *, present: bool, required: bool) -> None:
        if not present:
            if required:
                self.add(path, "required")
            return
        if error := _scheme_error(value.scale_id, None, "grade scale"):
            self.add(f"{path}.scale_id", error)
        if not value.symbol.strip():
            self.add(f"{path}.symbol", "required: the grade exactly as awarded")
        elif len(value.symbol) > _MAX_SHORT or "\n" in value.symbol:
            self.add(f"{path}.symbol", f"one line of at most {_MAX_SHORT} characters")
        if value.numeric and not _DECIMAL.fullmatch(value.numeric):
            self.add(f"{path}.numeric", "a decimal string such as 85 or 1.25")

    def decimal(self, path: str, value: str, *, required: bool) -> None:
        if not value:
            if required:
                self.add(path, "required")
            return
        if error := _credits_error(value):
            self.add(path, error)

    def ref(
        self, path: str, ref: RecordRef, *, present: bool, kind: RecordKind, owner: str | None
    ) -> None:
        if not present:
            self.add(path, "required")
            return
        split = _split_name(ref.name)
        if split is None or split[1] != kind.collection or not _RECORD_ID.fullmatch(split[2]):
            self.add(f"{path}.name", f"must name a record of institutions/{{id}}/{kind.collection}")
        elif owner is not None and split[0] != owner:
            self.add(f"{path}.name", f"must be a record of {owner}")
        if ref.version < 1:
            self.add(f"{path}.version", "must be 1 or more")
        if len(ref.payload_sha256) != 32:
            self.add(f"{path}.payload_sha256", "the 32-byte SHA-256 of the version's payload")

    def consent(
        self, path: str, value: ConsentStatement, *, present: bool, issued_at: int | None
    ) -> None:
        if not present:
            self.add(path, "required")
            return
        if not value.HasField("given_at"):
            self.add(f"{path}.given_at", "required")
        elif issued_at is not None and value.given_at.ToNanoseconds() > issued_at:
            self.add(f"{path}.given_at", "after the record was issued")
        self.short(f"{path}.notice_version", value.notice_version, required=True)
        if len(value.notice_sha256) != 32:
            self.add(f"{path}.notice_sha256", "the 32-byte SHA-256 of the notice text shown")
        self.tag(f"{path}.notice_lang", value.notice_lang)
        if value.given_by == 0:
            self.add(f"{path}.given_by", "required: STUDENT or GUARDIAN")
        self.short(f"{path}.channel", value.channel)


def _header_problems(out: _Problems, kind: RecordKind, header: RecordHeader, present: bool) -> None:
    if not present:
        out.add("header", "required")
        return
    if not _NETWORK_ID.fullmatch(header.network_id):
        out.add("header.network_id", "not a network ID")
    if header.version < 1:
        out.add("header.version", "must be 1 or more")
    elif kind is RecordKind.DECISION and header.version != 1:
        out.add("header.version", "a decision has version 1 only: decide again instead")
    issuer_ok = out.institution("header.issuer", header.issuer)
    split = _split_name(header.name)
    if (
        split is None
        or split[1] != kind.collection
        or not _RECORD_ID.fullmatch(split[2])
        or (issuer_ok and split[0] != header.issuer)
    ):
        out.add(
            "header.name",
            f"must be institutions/{header.issuer or '{issuer}'}/{kind.collection}/{{id}}, the id "
            "1 to 64 of A-Z a-z 0-9 . _ ~ -",
        )
    if not header.HasField("issued_at"):
        out.add("header.issued_at", "required")
    if header.deleted:
        out.add("header.deleted", "mobility and credit records have no tombstones (LC-2)")
    if kind is RecordKind.CREDENTIAL_STATUS_LIST:
        if header.parties:
            out.add("header.parties", "a status list is public: no parties")
    elif not header.parties:
        out.add("header.parties", "required: every party of the record")
    seen: set[str] = set()
    for i, party in enumerate(header.parties):
        if not _INSTITUTION_ID.fullmatch(party):
            out.add(f"header.parties[{i}]", "must be a lower-case SCHAC domain")
        elif party in seen:
            out.add(f"header.parties[{i}]", "listed twice")
        seen.add(party)


def _parties_cover(out: _Problems, header: RecordHeader, needed: Iterable[str]) -> None:
    listed = set(header.parties)
    for institution in needed:
        if institution and institution != CERTIFICATION_SIGNATORY and institution not in listed:
            out.add("header.parties", f"must list {institution}")


def _issued_ns(header: RecordHeader) -> int | None:
    return header.issued_at.ToNanoseconds() if header.HasField("issued_at") else None


def _agreement(out: _Problems, m: InterInstitutionalAgreement) -> None:
    partners: list[str] = []
    if not 2 <= len(m.partners) <= MAX_PARTIES:
        out.add("partners", f"2 to {MAX_PARTIES} partners")
    for i, partner in enumerate(m.partners):
        if out.institution(f"partners[{i}].institution_id", partner.institution_id):
            if partner.institution_id in partners:
                out.add(f"partners[{i}].institution_id", "listed twice")
            partners.append(partner.institution_id)
        out.code(f"partners[{i}].unit_code", partner.unit_code, required=False, what="a unit code")
        out.short(f"partners[{i}].local_reference", partner.local_reference)
    if m.header.issuer and m.header.issuer not in partners:
        out.add("partners", "the issuer must be a partner")
    areas: list[str] = []
    for i, area in enumerate(m.subject_areas):
        out.isced(f"subject_areas[{i}].isced_f_code", area.isced_f_code, required=True)
        if area.isced_f_code in areas:
            out.add(f"subject_areas[{i}].isced_f_code", "listed twice")
        areas.append(area.isced_f_code)
        out.texts(
            f"subject_areas[{i}].clarification", area.clarification, required=False, long=False
        )
    first = out.academic_year("first_academic_year", m.first_academic_year)
    last = out.academic_year("last_academic_year", m.last_academic_year)
    if first is not None and last is not None and last < first:
        out.add("last_academic_year", "before the first academic year")
    for i, quota in enumerate(m.quotas):
        where = f"quotas[{i}]"
        for field, value in (
            ("sending_institution", quota.sending_institution),
            ("receiving_institution", quota.receiving_institution),
        ):
            if out.institution(f"{where}.{field}", value) and value not in partners:
                out.add(f"{where}.{field}", "must be a partner")
        if quota.sending_institution == quota.receiving_institution:
            out.add(f"{where}.receiving_institution", "must differ from the sending institution")
        if quota.mobility_type == MobilityType.MOBILITY_TYPE_UNSPECIFIED:
            out.add(f"{where}.mobility_type", "required")
        if quota.mobilities_per_year < 1:
            out.add(f"{where}.mobilities_per_year", "1 or more")
        out.decimal(f"{where}.total_months_per_year", quota.total_months_per_year, required=False)
        for j, code in enumerate(quota.isced_f_codes):
            out.isced(f"{where}.isced_f_codes[{j}]", code, required=True)
            if areas and code not in areas:
                out.add(f"{where}.isced_f_codes[{j}]", "not a subject area of the agreement")
        for j, level in enumerate(quota.levels):
            if level == CourseLevel.COURSE_LEVEL_UNSPECIFIED:
                out.add(f"{where}.levels[{j}]", "must be a level")
    for i, req in enumerate(m.language_requirements):
        where = f"language_requirements[{i}]"
        out.tag(f"{where}.language", req.language)
        if req.level == LanguageLevel.LANGUAGE_LEVEL_UNSPECIFIED:
            out.add(f"{where}.level", "required (A1 to C2)")
        out.short(f"{where}.equivalent", req.equivalent)
        if req.receiving_institution and (
            out.institution(f"{where}.receiving_institution", req.receiving_institution)
            and req.receiving_institution not in partners
        ):
            out.add(f"{where}.receiving_institution", "must be a partner")
        out.isced(f"{where}.isced_f_code", req.isced_f_code)
    out.texts("recognition_rules", m.recognition_rules, required=False, long=True)
    for i, conv in enumerate(m.credit_conversions):
        where = f"credit_conversions[{i}]"
        for field, value in (
            ("from_scheme_id", conv.from_scheme_id),
            ("to_scheme_id", conv.to_scheme_id),
        ):
            if error := _scheme_error(value, None):
                out.add(f"{where}.{field}", error)
        if conv.from_scheme_id == conv.to_scheme_id:
            out.add(f"{where}.to_scheme_id", "must differ from from_scheme_id")
        out.decimal(f"{where}.factor", conv.factor, required=True)
        out.texts(f"{where}.note", conv.note, required=False, long=True)
    for i, grades in enumerate(m.grade_conversions):
        where = f"grade_conversions[{i}]"
        for field, value in (
            ("from_scale_id", grades.from_scale_id),
            ("to_scale_id", grades.to_scale_id),
        ):
            if error := _scheme_error(value, None, "grade scale"):
                out.add(f"{where}.{field}", error)
        if not grades.mappings:
            out.add(f"{where}.mappings", "at least one mapping")
        symbols: set[str] = set()
        for j, mapping in enumerate(grades.mappings):
            out.short(f"{where}.mappings[{j}].from_symbol", mapping.from_symbol, required=True)
            out.short(f"{where}.mappings[{j}].to_symbol", mapping.to_symbol, required=True)
            if _nfc(mapping.from_symbol) in symbols:
                out.add(f"{where}.mappings[{j}].from_symbol", "mapped twice")
            symbols.add(_nfc(mapping.from_symbol))
        out.texts(f"{where}.note", grades.note, required=False, long=True)
    _parties_cover(out, m.header, partners)


def _home_host(out: _Problems, home: str, host: str, issuer: str, *, issued_by: Role) -> None:
    """home_institution and host_institution, one of which (issued_by) is header.issuer."""
    out.institution("home_institution", home)
    out.institution("host_institution", host)
    if home and home == host:
        out.add("host_institution", "must differ from the home institution")
    own = (home, "home_institution") if issued_by is Role.HOME else (host, "host_institution")
    if issuer and own[0] != issuer:
        out.add(own[1], "must be header.issuer")


def _nomination(out: _Problems, m: Nomination) -> None:
    _home_host(out, m.home_institution, m.host_institution, m.header.issuer, issued_by=Role.HOME)
    out.ref(
        "agreement",
        m.agreement,
        present=m.HasField("agreement"),
        kind=RecordKind.AGREEMENT,
        owner=None,
    )
    out.student_id("student_id", m.student_id)
    out.name("student_name", m.student_name, present=m.HasField("student_name"))
    if m.mobility_type not in (
        MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
        MobilityType.MOBILITY_TYPE_STUDENT_TRAINEESHIP,
        MobilityType.MOBILITY_TYPE_STUDENT_SHORT_TERM,
    ):
        out.add("mobility_type", "a student mobility type")
    if not m.HasField("period"):
        out.add("period", "required")
    else:
        start = out.day(
            "period.start_date", m.period.start_date, present=m.period.HasField("start_date")
        )
        end = out.day("period.end_date", m.period.end_date, present=m.period.HasField("end_date"))
        out.span("period", start, end)
        for i, term in enumerate(m.period.terms):
            out.term(f"period.terms[{i}]", term)
    out.texts("programme", m.programme, required=False, long=False)
    out.isced("isced_f_code", m.isced_f_code)
    out.code("home_unit_code", m.home_unit_code, required=False, what="a unit code")
    out.code("host_unit_code", m.host_unit_code, required=False, what="a unit code")
    out.consent(
        "transfer_consent",
        m.transfer_consent,
        present=m.HasField("transfer_consent"),
        issued_at=_issued_ns(m.header),
    )
    _parties_cover(out, m.header, (m.home_institution, m.host_institution))


def _learning_agreement(out: _Problems, m: LearningAgreement) -> None:
    _home_host(out, m.home_institution, m.host_institution, m.header.issuer, issued_by=Role.HOME)
    out.ref(
        "nomination",
        m.nomination,
        present=m.HasField("nomination"),
        kind=RecordKind.NOMINATION,
        owner=m.home_institution or None,
    )
    out.student_id("student_id", m.student_id)
    out.name("student_name", m.student_name, present=m.HasField("student_name"))
    proposed = m.HasField("student_consent")
    if proposed and not m.components:
        out.add("components", "a proposed learning agreement has at least one component")
    if len(m.components) > _MAX_LINES:
        out.add("components", f"at most {_MAX_LINES}")
    seen: dict[tuple[str, str], int] = {}
    for i, c in enumerate(m.components):
        where = f"components[{i}]"
        out.code(f"{where}.host_course_code", c.host_course_code, required=True)
        out.texts(f"{where}.host_course_title", c.host_course_title, required=True, long=False)
        out.credits(
            f"{where}.host_credits",
            c.host_credits,
            present=c.HasField("host_credits"),
            required=True,
        )
        if c.HasField("term"):
            out.term(f"{where}.term", c.term)
        out.code(f"{where}.home_course_code", c.home_course_code, required=False)
        out.texts(f"{where}.home_course_title", c.home_course_title, required=False, long=False)
        out.credits(
            f"{where}.recognised_credits",
            c.recognised_credits,
            present=c.HasField("recognised_credits"),
            required=False,
        )
        if not c.home_course_code and not c.HasField("recognised_credits"):
            out.add(where, "name the home course or the credits it is recognised as")
        out.texts(
            f"{where}.recognition_conditions", c.recognition_conditions, required=False, long=True
        )
        key = (_nfc(c.host_course_code), c.term.academic_year if c.HasField("term") else "")
        if key in seen:
            out.add(f"{where}.host_course_code", f"same course as components[{seen[key]}]")
        seen.setdefault(key, i)
    if proposed:
        out.consent(
            "student_consent", m.student_consent, present=True, issued_at=_issued_ns(m.header)
        )
    out.texts("change_summary", m.change_summary, required=False, long=True)
    _parties_cover(out, m.header, (m.home_institution, m.host_institution))


def _transcript(out: _Problems, m: TranscriptOfRecords) -> None:
    _home_host(out, m.home_institution, m.host_institution, m.header.issuer, issued_by=Role.HOST)
    out.ref(
        "nomination",
        m.nomination,
        present=m.HasField("nomination"),
        kind=RecordKind.NOMINATION,
        owner=m.home_institution or None,
    )
    out.student_id("student_id", m.student_id)
    out.name("student_name", m.student_name, present=m.HasField("student_name"))
    if not m.lines:
        out.add("lines", "at least one course unit")
    if len(m.lines) > _MAX_LINES:
        out.add("lines", f"at most {_MAX_LINES}")
    ids: set[str] = set()
    for i, line in enumerate(m.lines):
        where = f"lines[{i}]"
        if not _RECORD_ID.fullmatch(line.line_id):
            out.add(f"{where}.line_id", "1 to 64 of A-Z a-z 0-9 . _ ~ -")
        elif line.line_id in ids:
            out.add(f"{where}.line_id", "listed twice")
        ids.add(line.line_id)
        out.code(f"{where}.course_code", line.course_code, required=True)
        out.texts(f"{where}.course_title", line.course_title, required=True, long=False)
        out.credits(
            f"{where}.credits", line.credits, present=line.HasField("credits"), required=True
        )
        graded = line.status in (
            CourseResultStatus.COURSE_RESULT_STATUS_PASSED,
            CourseResultStatus.COURSE_RESULT_STATUS_FAILED,
        )
        if line.status == CourseResultStatus.COURSE_RESULT_STATUS_UNSPECIFIED:
            out.add(f"{where}.status", "required")
        out.grade(f"{where}.grade", line.grade, present=line.HasField("grade"), required=graded)
        if line.attempt < 1:
            out.add(f"{where}.attempt", "1 for the first attempt")
        start = out.day(
            f"{where}.start_date",
            line.start_date,
            present=line.HasField("start_date"),
            required=False,
        )
        end = out.day(
            f"{where}.end_date", line.end_date, present=line.HasField("end_date"), required=False
        )
        out.span(where, start, end)
        if line.HasField("term"):
            out.term(f"{where}.term", line.term)
        out.isced(f"{where}.isced_f_code", line.isced_f_code)
    version = m.header.version
    if version >= 1 and m.supersedes_version != version - 1:
        out.add(
            "supersedes_version",
            f"must be {version - 1}: a correction supersedes the version before it",
        )
    out.text("correction_reason", m.correction_reason, required=version > 1)
    _parties_cover(out, m.header, (m.home_institution, m.host_institution))


def _recognition(out: _Problems, m: RecognitionDecision) -> None:
    _home_host(out, m.home_institution, m.host_institution, m.header.issuer, issued_by=Role.HOME)
    out.ref(
        "transcript",
        m.transcript,
        present=m.HasField("transcript"),
        kind=RecordKind.TRANSCRIPT,
        owner=m.host_institution or None,
    )
    if m.HasField("learning_agreement"):
        out.ref(
            "learning_agreement",
            m.learning_agreement,
            present=True,
            kind=RecordKind.LEARNING_AGREEMENT,
            owner=m.home_institution or None,
        )
    out.student_id("student_id", m.student_id)
    if not m.lines:
        out.add("lines", "at least one transcript line")
    ids: set[str] = set()
    for i, line in enumerate(m.lines):
        where = f"lines[{i}]"
        if not _RECORD_ID.fullmatch(line.transcript_line_id):
            out.add(f"{where}.transcript_line_id", "a TranscriptLine.line_id")
        elif line.transcript_line_id in ids:
            out.add(f"{where}.transcript_line_id", "decided twice")
        ids.add(line.transcript_line_id)
        if line.outcome == RecognitionOutcome.RECOGNITION_OUTCOME_RECOGNISED:
            if not line.home_course_code and not line.HasField("recognised_credits"):
                out.add(where, "name the home course or the credits it was recognised as")
        elif line.outcome == RecognitionOutcome.RECOGNITION_OUTCOME_NOT_RECOGNISED:
            out.text(f"{where}.not_recognised_reason", line.not_recognised_reason, required=True)
        else:
            out.add(f"{where}.outcome", "required")
        if line.HasField("credits"):
            c = line.credits
            out.credits(
                f"{where}.credits.original",
                c.original,
                present=c.HasField("original"),
                required=True,
            )
            out.credits(
                f"{where}.credits.converted",
                c.converted,
                present=c.HasField("converted"),
                required=True,
            )
            out.short(f"{where}.credits.method", c.method, required=True)
        if line.HasField("grade"):
            g = line.grade
            out.grade(
                f"{where}.grade.original", g.original, present=g.HasField("original"), required=True
            )
            out.grade(
                f"{where}.grade.suggested",
                g.suggested,
                present=g.HasField("suggested"),
                required=False,
            )
            out.grade(
                f"{where}.grade.converted",
                g.converted,
                present=g.HasField("converted"),
                required=True,
            )
            out.short(f"{where}.grade.method", g.method, required=True)
        out.code(f"{where}.home_course_code", line.home_course_code, required=False)
        out.texts(f"{where}.home_course_title", line.home_course_title, required=False, long=False)
        out.credits(
            f"{where}.recognised_credits",
            line.recognised_credits,
            present=line.HasField("recognised_credits"),
            required=False,
        )
    out.text("revision_reason", m.revision_reason, required=m.header.version > 1)
    _parties_cover(out, m.header, (m.home_institution, m.host_institution))


def _credential(out: _Problems, m: Credential) -> None:
    if m.kind == CredentialKind.CREDENTIAL_KIND_UNSPECIFIED:
        out.add("kind", "required")
    out.name("holder_name", m.holder_name, present=m.HasField("holder_name"))
    out.student_id("holder_student_id", m.holder_student_id)
    out.institution("student_id_issuer", m.student_id_issuer)
    awarding: list[str] = []
    if not 1 <= len(m.awarding_institutions) <= MAX_PARTIES - 1:
        out.add("awarding_institutions", f"1 to {MAX_PARTIES - 1} institutions")
    for i, inst in enumerate(m.awarding_institutions):
        if out.institution(f"awarding_institutions[{i}]", inst):
            if inst in awarding:
                out.add(f"awarding_institutions[{i}]", "listed twice")
            awarding.append(inst)
    if m.header.issuer and m.header.issuer not in awarding:
        out.add("awarding_institutions", "the issuer must be an awarding institution")
    out.texts("title", m.title, required=True, long=False)
    out.isced("isced_f_code", m.isced_f_code)
    out.texts("field", m.field, required=False, long=False)
    out.day("award_date", m.award_date, present=m.HasField("award_date"))
    out.texts("classification", m.classification, required=False, long=False)
    covered: list[str] = []
    for i, ref in enumerate(m.status):
        where = f"status[{i}]"
        if out.institution(f"{where}.institution", ref.institution):
            if ref.institution not in awarding:
                out.add(f"{where}.institution", "must be an awarding institution")
            elif ref.institution in covered:
                out.add(f"{where}.institution", "one status list per awarding institution")
            covered.append(ref.institution)
        split = _split_name(ref.list_name)
        if (
            split is None
            or split[0] != ref.institution
            or split[1] != RecordKind.CREDENTIAL_STATUS_LIST.collection
            or not _RECORD_ID.fullmatch(split[2])
        ):
            out.add(
                f"{where}.list_name",
                f"must be institutions/{ref.institution}/credentialStatusLists/{{id}}",
            )
        if ref.url and (error := _website_error(ref.url)):
            out.add(f"{where}.url", error)
    for inst in awarding:
        if inst not in covered:
            out.add("status", f"needs the status list of {inst}")
    _parties_cover(out, m.header, awarding)


def _status_list(out: _Problems, m: CredentialStatusList) -> None:
    split = _split_name(m.header.name)
    if not _RECORD_ID.fullmatch(m.list_id):
        out.add("list_id", "1 to 64 of A-Z a-z 0-9 . _ ~ -")
    elif split is not None and split[2] != m.list_id:
        out.add("list_id", "must be the last segment of header.name")
    if not m.HasField("valid_until"):
        out.add("valid_until", "required")
    elif (
        m.header.HasField("issued_at")
        and m.valid_until.ToNanoseconds() <= m.header.issued_at.ToNanoseconds()
    ):
        out.add("valid_until", "must be after header.issued_at")
    if m.size < 1:
        out.add("size", "1 or more")
    seen: set[int] = set()
    for i, entry in enumerate(m.entries):
        where = f"entries[{i}]"
        if entry.index >= m.size:
            out.add(f"{where}.index", "beyond the list's size")
        elif entry.index in seen:
            out.add(f"{where}.index", "listed twice")
        seen.add(entry.index)
        if entry.status == CredentialStatus.CREDENTIAL_STATUS_UNSPECIFIED:
            out.add(f"{where}.status", "required")
        out.text(f"{where}.reason", entry.reason, required=False, limit=200)


def _consent(out: _Problems, m: Consent) -> None:
    out.institution("home_institution", m.home_institution)
    if m.header.issuer and m.home_institution != m.header.issuer:
        out.add("home_institution", "must be header.issuer")
    out.student_id("student_id", m.student_id)
    if out.institution("recipient", m.recipient) and m.recipient == m.home_institution:
        out.add("recipient", "the home institution needs no consent to read its own records")
    if m.purpose == Purpose.PURPOSE_UNSPECIFIED:
        out.add("purpose", "required")
    if not m.data_categories:
        out.add("data_categories", "at least one")
    seen: set[int] = set()
    for i, category in enumerate(m.data_categories):
        if category == DataCategory.DATA_CATEGORY_UNSPECIFIED:
            out.add(f"data_categories[{i}]", "must be a category")
        elif category in seen:
            out.add(f"data_categories[{i}]", "listed twice")
        seen.add(category)
    if not m.HasField("expires_at"):
        out.add("expires_at", "required: every consent expires")
    elif (
        m.header.HasField("issued_at")
        and m.expires_at.ToNanoseconds() <= m.header.issued_at.ToNanoseconds()
    ):
        out.add("expires_at", "must be after header.issued_at")
    if m.withdrawn:
        if not m.HasField("withdrawn_at"):
            out.add("withdrawn_at", "required when withdrawn")
        if m.header.version == 1:
            out.add("withdrawn", "a consent is given (version 1) before it is withdrawn")
    elif m.HasField("withdrawn_at"):
        out.add("withdrawn_at", "only when withdrawn")
    out.consent(
        "statement", m.statement, present=m.HasField("statement"), issued_at=_issued_ns(m.header)
    )
    _parties_cover(out, m.header, (m.home_institution, m.recipient))


#: Decision kinds that MUST give a reason (DEC-3).
REASON_REQUIRED = frozenset(
    {
        DecisionKind.DECISION_KIND_REJECT,
        DecisionKind.DECISION_KIND_CANCEL,
        DecisionKind.DECISION_KIND_TERMINATE,
    }
)


def _decision(out: _Problems, m: Decision) -> None:
    present = m.HasField("record")
    if not present:
        out.add("record", "required")
    else:
        split = _split_name(m.record.name)
        if split is None or split[1] not in _DECIDABLE or not _RECORD_ID.fullmatch(split[2]):
            out.add("record.name", "must name a mobility or credit record")
        if m.record.version < 1:
            out.add("record.version", "must be 1 or more")
        if len(m.record.payload_sha256) != 32:
            out.add("record.payload_sha256", "the 32-byte SHA-256 of the version's payload")
    if m.kind == DecisionKind.DECISION_KIND_UNSPECIFIED:
        out.add("kind", "required")
    out.text("reason", m.reason, required=m.kind in REASON_REQUIRED)
    if m.HasField("effective_date"):
        out.day("effective_date", m.effective_date, present=True)


_DECIDABLE = frozenset(kind.collection for kind in RecordKind if kind is not RecordKind.DECISION)

_CHECKS: Mapping[RecordKind, Callable[[_Problems, Message], None]] = {
    RecordKind.AGREEMENT: _agreement,  # type: ignore[dict-item]
    RecordKind.NOMINATION: _nomination,  # type: ignore[dict-item]
    RecordKind.LEARNING_AGREEMENT: _learning_agreement,  # type: ignore[dict-item]
    RecordKind.TRANSCRIPT: _transcript,  # type: ignore[dict-item]
    RecordKind.RECOGNITION: _recognition,  # type: ignore[dict-item]
    RecordKind.CREDENTIAL: _credential,  # type: ignore[dict-item]
    RecordKind.CREDENTIAL_STATUS_LIST: _status_list,  # type: ignore[dict-item]
    RecordKind.CONSENT: _consent,  # type: ignore[dict-item]
    RecordKind.DECISION: _decision,  # type: ignore[dict-item]
}


def record_problems(message: Message) -> list[FieldProblem]:
    """Every broken content rule of a record message, as field problems (LC-7)."""
    kind = RecordKind.of_message(message)
    out = _Problems()
    header: RecordHeader = message.header  # type: ignore[attr-defined]
    _header_problems(out, kind, header, message.HasField("header"))
    _CHECKS[kind](out, message)
    return out.items


def validate_record(message: Message) -> None:
    """Check a record message against its content rules (LC-7).

    Raises:
        ProtocolError: MALFORMED with one field problem per broken rule;
            PAYLOAD_TYPE_UNSUPPORTED for a message that is not a record.
    """
    problems = record_problems(message)
    if problems:
        kind = RecordKind.of_message(message)
        raise ProtocolError(
            Reason.MALFORMED,
            f"{kind.value} breaks its content rules",
            field_problems=problems,
        )


# --- what must not change between versions (spec LC-4) -------------------------------------------


def _identity(message: Message) -> dict[str, object]:
    if isinstance(message, InterInstitutionalAgreement):
        return {"partners": sorted(p.institution_id for p in message.partners)}
    if isinstance(message, Nomination):
        return {
            "home_institution": message.home_institution,
            "host_institution": message.host_institution,
            "student_id": message.student_id,
        }
    if isinstance(message, LearningAgreement | TranscriptOfRecords):
        return {
            "home_institution": message.home_institution,
            "host_institution": message.host_institution,
            "student_id": message.student_id,
            "nomination.name": message.nomination.name,
        }
    if isinstance(message, RecognitionDecision):
        return {
            "home_institution": message.home_institution,
            "host_institution": message.host_institution,
            "student_id": message.student_id,
            "transcript.name": message.transcript.name,
        }
    if isinstance(message, Credential):
        return {
            "kind": message.kind,
            "holder_student_id": message.holder_student_id,
            "student_id_issuer": message.student_id_issuer,
            "awarding_institutions": sorted(message.awarding_institutions),
        }
    if isinstance(message, Consent):
        return {
            "home_institution": message.home_institution,
            "student_id": message.student_id,
            "recipient": message.recipient,
            "purpose": message.purpose,
        }
    return {}


def identity_problems(previous: Message, current: Message) -> list[FieldProblem]:
    """The fields that identify a record and changed from one version to the next (LC-4)."""
    before, after = _identity(previous), _identity(current)
    problems = [
        FieldProblem(field, "must not change between versions of a record")
        for field, value in after.items()
        if before.get(field) != value
    ]
    header_before: RecordHeader = previous.header  # type: ignore[attr-defined]
    header_after: RecordHeader = current.header  # type: ignore[attr-defined]
    if header_before.issuer != header_after.issuer:
        problems.append(FieldProblem("header.issuer", "every version has the same issuer (REC-4)"))
    if header_before.network_id != header_after.network_id:
        problems.append(FieldProblem("header.network_id", "must not change"))
    return problems
