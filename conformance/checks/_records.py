"""Records and lifecycles: what the node does with the mobility and credit records of its own
institution, and what a party then sees over the wire (spec LC-*, DEC-*, IIA-*, NOM-*, CRED-*,
CONSENT-*, XCH-*).

The node acts through the adapter (docs/conformance.md, section 5): it issues, co-signs and
decides as its institution, with the auditor's institutions as the other parties. The auditor
then reads as those parties, over gRPC (GetRecord, the exchange feed) and the public HTTP status
path, and verifies everything itself with the SDK core (``open_record``, ``record_state``,
``credential_status``) against the trusted manifest and the delegations the node serves.

The node cannot receive anything from the auditor here: a partner's co-signature or decision
reaches a node only by a pull of the partner's own node, and the auditor runs none. So the checks
cover what the node does alone (proposed agreements, their versions and withdrawal, consents,
credentials of its own, status lists) and what it must refuse; a nomination, which needs an
agreement in force (co-signed by the partner), is only checked as refused.

Every check leaves its records behind (records are never deleted) and lets the node choose their
names, so the checks are independent; status lists, whose name is their list ID, get a fresh one.
Without an adapter every check here skips.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from sseaun.sdk.client import NodeError
from sseaun.sdk.core import (
    Envelope,
    KeyRing,
    ProtocolError,
    Reason,
    RecordState,
    envelope_from_json,
    lifecycle,
    open_record,
    record_state,
    records,
    to_timestamp,
)
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.catalogue_pb2 import CourseLevel, RecordHeader
from sseaun.v1.records_pb2 import (
    AgreementPartner,
    Consent,
    ConsentGiver,
    ConsentStatement,
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
    MobilityPeriod,
    MobilityQuota,
    MobilityType,
    Nomination,
    RecordRef,
    SubjectArea,
)
from sseaun.v1.service_pb2 import Change, GetRecordResult
from sseaun.v1.types_pb2 import (
    Date,
    LocalizedText,
    MultilingualText,
    NamePart,
    NamePartKind,
    PersonName,
)

from .._adapter import AdapterError, AdapterRefused, adapter
from .._context import Context
from .._framework import CheckFailed, CheckFunction, CheckSkipped, Level, check, expect
from ._feed import expect_reason, list_all, node_check, read_feed, record_header, refused
from ._support import http_fetch, other_member

AREA = "records"
K = records.RecordKind
State = lifecycle.State
MOBILITY = Purpose.PURPOSE_MOBILITY_ADMINISTRATION
RECOGNITION = Purpose.PURPOSE_RECOGNITION
VERIFICATION = Purpose.PURPOSE_CREDENTIAL_VERIFICATION
#: Where the reference node serves status lists (docs/credentials.md, section 4; CRED-5 asks for
#: a public endpoint and names no path).
STATUS_PATH = "/.well-known/sseaun/status"
_NOTICE_SHA256 = hashlib.sha256(b"sseaun conformance suite: the notice shown").digest()


def records_check(
    id: str, *, requirements: Iterable[str], level: Level = "MUST"
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check of this area: it skips without an adapter; what the node refuses or
    answers wrongly (over the wire or through the adapter) fails it."""

    def register(function: CheckFunction) -> CheckFunction:
        inner = node_check(function)

        @functools.wraps(function)
        async def run(ctx: Context) -> None:
            if ctx.adapter is None:
                raise CheckSkipped("needs an adapter (--adapter)")
            try:
                await inner(ctx)
            except AdapterRefused as exc:
                raise CheckFailed(f"the node refused an action through the adapter: {exc}") from exc

        return check(id, area=AREA, requirements=requirements, level=level)(run)

    return register


# -- the auditor's institutions ------------------------------------------------------------------


def first(ctx: Context) -> str:
    return ctx.auditor(0).institution


def second(ctx: Context) -> str:
    """The second auditor institution, for a reader that is no party.

    Raises:
        CheckSkipped: the run has one auditor institution.
    """
    if len(ctx.auditors) < 2:
        raise CheckSkipped("needs a second auditor institution (`setup --institutions 2`)")
    return ctx.auditor(1).institution


def fresh_student() -> str:
    """A pseudonymous network student ID of its own for one check (LC-9)."""
    return f"conf-{secrets.token_hex(6)}"


def exchange(ctx: Context) -> str:
    return f"institutions/{ctx.audience}/exchange"


def missing(ctx: Context, kind: records.RecordKind) -> str:
    """A well-formed name of the audience that names nothing."""
    return records.record_name(kind, ctx.audience, f"conf-missing-{secrets.token_hex(6)}")


# -- building records ----------------------------------------------------------------------------


def _text(value: str) -> MultilingualText:
    return MultilingualText(texts=[LocalizedText(lang="en", text=value)])


def _statement() -> ConsentStatement:
    return ConsentStatement(
        given_at=to_timestamp(datetime.now(UTC) - timedelta(hours=1)),
        notice_version="conformance-1",
        notice_sha256=_NOTICE_SHA256,
        notice_lang="en",
        given_by=ConsentGiver.CONSENT_GIVER_STUDENT,
        channel="conformance-suite",
    )


_STUDENT_NAME = PersonName(
    full_name="Test Student",
    parts=[
        NamePart(kind=NamePartKind.NAME_PART_KIND_GIVEN, value="Test"),
        NamePart(kind=NamePartKind.NAME_PART_KIND_FAMILY, value="Student"),
    ],
    script="Latn",
    lang="en",
)


def agreement(
    ctx: Context, partner: str, *, per_year: int = 3, name: str = ""
) -> InterInstitutionalAgreement:
    """A bilateral agreement between the audience (issuer) and partner."""
    me = ctx.audience
    return InterInstitutionalAgreement(
        header=RecordHeader(issuer=me, name=name, parties=sorted({me, partner})),
        partners=[AgreementPartner(institution_id=me), AgreementPartner(institution_id=partner)],
        subject_areas=[SubjectArea(isced_f_code="0613")],
        first_academic_year="2026/2027",
        last_academic_year="2029/2030",
        quotas=[
            MobilityQuota(
                sending_institution=me,
                receiving_institution=partner,
                mobility_type=MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
                mobilities_per_year=per_year,
            )
        ],
        recognition_rules=_text("Courses passed under an approved learning agreement count."),
    )


def nomination(ctx: Context, host: str, under: RecordRef, student: str) -> Nomination:
    """A nomination by the audience (home) to host under the agreement version named."""
    me = ctx.audience
    return Nomination(
        header=RecordHeader(issuer=me, parties=sorted({me, host})),
        home_institution=me,
        host_institution=host,
        agreement=under,
        student_id=student,
        student_name=_STUDENT_NAME,
        mobility_type=MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
        period=MobilityPeriod(
            start_date=Date(year=2027, month=1, day=10),
            end_date=Date(year=2027, month=5, day=31),
        ),
        level=CourseLevel.COURSE_LEVEL_BACHELOR,
        isced_f_code="0613",
        transfer_consent=_statement(),
    )


def consent(
    ctx: Context,
    recipient: str,
    student: str,
    *,
    purpose: Purpose.ValueType,
    categories: Sequence[DataCategory.ValueType],
    name: str = "",
    withdrawn: bool = False,
    expires_in: timedelta = timedelta(days=30),
) -> Consent:
    """A consent recorded by the audience (home) for student, read by recipient."""
    me = ctx.audience
    message = Consent(
        header=RecordHeader(issuer=me, name=name, parties=sorted({me, recipient})),
        home_institution=me,
        student_id=student,
        recipient=recipient,
        purpose=purpose,
        data_categories=list(categories),
        expires_at=to_timestamp(datetime.now(UTC) + expires_in),
        statement=_statement(),
    )
    if withdrawn:
        message.withdrawn = True
        message.withdrawn_at.CopyFrom(to_timestamp(datetime.now(UTC)))
    return message


def status_list_name(institution: str, list_id: str) -> str:
    return records.record_name(K.CREDENTIAL_STATUS_LIST, institution, list_id)


def status_list(ctx: Context, list_id: str, *, revoked: Iterable[int] = ()) -> CredentialStatusList:
    """A public status list of the audience (no parties, CRED-5), valid for a week."""
    return CredentialStatusList(
        header=RecordHeader(issuer=ctx.audience, name=status_list_name(ctx.audience, list_id)),
        list_id=list_id,
        valid_until=to_timestamp(datetime.now(UTC) + timedelta(days=7)),
        size=64,
        entries=[
            CredentialStatusEntry(
                index=i, status=CredentialStatus.CREDENTIAL_STATUS_REVOKED, reason="issued in error"
            )
            for i in revoked
        ],
    )


def credential(
    ctx: Context, student: str, awarding: Sequence[str], lists: dict[str, str], index: int
) -> Credential:
    """A degree of the audience's student, awarded by awarding (the audience first), with one
    status entry per awarding institution in the list named in lists."""
    return Credential(
        header=RecordHeader(issuer=ctx.audience, parties=sorted(set(awarding))),
        kind=CredentialKind.CREDENTIAL_KIND_DEGREE,
        holder_name=_STUDENT_NAME,
        holder_student_id=student,
        student_id_issuer=ctx.audience,
        awarding_institutions=list(awarding),
        title=_text("Bachelor of Computer Science"),
        level=CourseLevel.COURSE_LEVEL_BACHELOR,
        isced_f_code="0613",
        award_date=Date(year=2026, month=7, day=1),
        status=[
            CredentialStatusRef(institution=i, list_name=lists[i], index=index) for i in awarding
        ],
    )


# -- acting through the adapter ------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """A version the node issued, as the adapter printed it."""

    name: str
    envelope: Envelope
    version: int

    @property
    def payload_sha256(self) -> bytes:
        return records.payload_sha256(self.envelope.payload)

    def ref(self) -> RecordRef:
        return RecordRef(name=self.name, version=self.version, payload_sha256=self.payload_sha256)


def _as_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _issued(out: dict[str, Any], kind: records.RecordKind, what: str) -> Issued:
    name, printed = out.get("name"), out.get("envelope")
    if not isinstance(name, str) or not isinstance(printed, dict):
        raise AdapterError("the adapter's issue printed no 'name' and 'envelope'")
    try:
        envelope = envelope_from_json(json.dumps(printed))
    except (ProtocolError, ValueError) as exc:
        raise AdapterError(
            f"the adapter's issue printed an envelope that does not parse: {exc}"
        ) from exc
    expect(
        envelope.payload_type == kind.payload_type,
        f"{what}: the node signed it as {envelope.payload_type!r}, not {kind.payload_type!r} "
        "(LC-1)",
    )
    try:
        header: RecordHeader = records.open_payload(kind, envelope.payload).header  # type: ignore[attr-defined]
    except (ProtocolError, DecodeError) as exc:
        raise CheckFailed(f"{what}: the envelope the node signed holds no {kind.value}") from exc
    expect(
        header.name == name,
        f"{what}: the adapter printed the name {name!r}, the signed header says {header.name!r}",
    )
    return Issued(name, envelope, header.version)


async def issue(ctx: Context, message: Message, what: str) -> Issued:
    """Have the node issue a version; a refusal fails the check."""
    kind = records.RecordKind.of_message(message)
    try:
        out = await adapter(ctx, "issue", "--kind", kind.collection, input_json=_as_json(message))
    except AdapterRefused as exc:
        raise CheckFailed(f"the node refused to issue {what} through the adapter: {exc}") from exc
    return _issued(out, kind, what)


async def act(ctx: Context, action: str, *args: str, what: str) -> dict[str, Any]:
    """Have the node co-sign or decide; a refusal fails the check."""
    try:
        return await adapter(ctx, action, *args)
    except AdapterRefused as exc:
        raise CheckFailed(f"the node refused {what} through the adapter: {exc}") from exc


async def refusal(
    ctx: Context,
    action: str,
    *args: str,
    reasons: Iterable[Reason],
    what: str,
    message: Message | None = None,
) -> AdapterRefused:
    """The node must refuse the action with one of reasons (LC-12)."""
    wanted = sorted(r.value for r in reasons)
    extra: tuple[str, ...] = ()
    if message is not None:
        extra = ("--kind", records.RecordKind.of_message(message).collection)
    try:
        await adapter(
            ctx,
            action,
            *args,
            *extra,
            input_json=None if message is None else _as_json(message),
        )
    except AdapterRefused as exc:
        expect(
            exc.reason in wanted,
            f"{what}: refused with {exc.reason} ({exc.message}), expected {' or '.join(wanted)}",
        )
        return exc
    raise CheckFailed(f"{what} was done: the node should refuse it with {' or '.join(wanted)}")


async def refused_issue(
    ctx: Context, message: Message, reasons: Iterable[Reason], what: str
) -> AdapterRefused:
    return await refusal(ctx, "issue", reasons=reasons, what=what, message=message)


# -- reading as the auditor ----------------------------------------------------------------------


async def keyring(ctx: Context) -> KeyRing:
    """The trusted key ring with the delegations the node serves accepted (GetManifest
    statements), so records signed by delegated ISSUING keys verify; the context's ring is left
    as it is."""
    cached = ctx.shared.get("records.keyring")
    if isinstance(cached, KeyRing):
        return cached
    ring = copy.deepcopy(ctx.keyring)
    now = datetime.now(UTC)
    async with ctx.client() as client:
        statements = (await client.get_manifest()).statements
    for statement in statements:
        try:
            ring.accept_delegation(statement, now)
        except ProtocolError:
            try:
                ring.accept_revocation(statement)
            except ProtocolError:
                continue  # the manifest checks report statements that do not verify
    ctx.shared["records.keyring"] = ring
    return ring


async def get(
    ctx: Context, auditor: int, name: str, *, version: int = 0, purpose: int = MOBILITY
) -> GetRecordResult:
    """GetRecord as an auditor institution (the SDK verifies the answer)."""
    async with ctx.client(auditor) as client:
        return await client.get_record(name, version, purpose=purpose)


async def not_found(
    ctx: Context,
    auditor: int,
    name: str,
    what: str,
    *,
    version: int = 0,
    purpose: int = MOBILITY,
) -> NodeError:
    """GetRecord must be refused NOT_FOUND, with no metadata and no field violations (REC-12)."""
    async with ctx.client(auditor) as client:
        error = await refused(client.get_record(name, version, purpose=purpose), what)
    expect_reason(error, Reason.NOT_FOUND, what)
    expect(
        not error.metadata and not error.field_problems,
        f"{what}: NOT_FOUND carries metadata {error.metadata} or field violations "
        f"{[p.field for p in error.field_problems]}",
    )
    return error


def same_not_found(hidden: NodeError, absent: NodeError, what: str) -> None:
    """A record the reader may not read is answered as a name that names nothing (REC-12)."""
    expect(
        hidden.message == absent.message and hidden.code == absent.code,
        f"{what} is answered {hidden.code} {hidden.message!r}, a missing record {absent.code} "
        f"{absent.message!r}: the difference tells that it exists",
    )


def same_version(served: Envelope, issued: Issued, what: str) -> None:
    """The record served is the version the node signed: the same payload bytes (REC-9)."""
    expect(
        served.payload_type == issued.envelope.payload_type
        and served.payload == issued.envelope.payload,
        f"{what}: GetRecord served other bytes than the version {issued.version} the node signed",
    )


def computed(
    ring: KeyRing,
    versions: Sequence[Envelope],
    decisions: Sequence[Envelope],
    what: str,
    *,
    status_lists: Sequence[Envelope] = (),
) -> RecordState:
    """The state the auditor computes itself from what it was served (LC-5)."""
    try:
        for envelope in (*versions, *decisions):
            open_record(envelope, ring)
        return record_state(versions, decisions, ring, status_lists=status_lists)
    except ProtocolError as exc:
        raise CheckFailed(
            f"{what}: what the node served does not verify: {exc.reason.value}: {exc.message}"
        ) from exc


def expect_status(
    result: GetRecordResult,
    what: str,
    *,
    state: str,
    in_force: int | None,
    awaiting: Sequence[str],
) -> None:
    """GetRecord's RecordStatus is the one expected (XCH-6, LC-6)."""
    status = result.status
    has = result.HasField("status")
    shown = status.in_force_version if status.HasField("in_force_version") else None
    expect(
        has
        and status.state == state
        and shown == in_force
        and list(status.awaiting) == list(awaiting),
        f"{what}: GetRecord's status is "
        + (
            f"state {status.state!r}, in force {shown}, awaiting {list(status.awaiting)}"
            if has
            else "absent"
        )
        + f"; expected state {state!r}, in force {in_force}, awaiting {list(awaiting)}",
    )


def expect_state(
    state: RecordState,
    what: str,
    *,
    expected: lifecycle.State,
    in_force: int | None,
    awaiting: Sequence[str],
) -> None:
    """The state the auditor computed is the one expected (LC-5, LC-6)."""
    expect(
        state.state is expected
        and state.in_force_version == in_force
        and list(state.awaiting) == list(awaiting),
        f"{what}: computed from the signed inputs the node served, the state is "
        f"{state.state.value}, in force {state.in_force_version}, awaiting {list(state.awaiting)}; "
        f"expected {expected.value}, in force {in_force}, awaiting {list(awaiting)}",
    )


async def exchange_feed(ctx: Context, auditor: int) -> list[Change]:
    """Every change of the audience's exchange feed for one auditor, from the start."""
    async with ctx.client(auditor) as client:
        batches = await read_feed(client, exchange(ctx))
    return [change for batch in batches for change in batch.changes]


def by_name(changes: Iterable[Change]) -> dict[str, list[Envelope]]:
    out: dict[str, list[Envelope]] = {}
    for change in changes:
        out.setdefault(record_header(change.record).name, []).append(change.record)
    return out


def kind_of(envelope: Envelope) -> records.RecordKind | None:
    try:
        return records.RecordKind.of_payload_type(envelope.payload_type)
    except ProtocolError:
        return None


# -- a proposed agreement the read-only checks share ----------------------------------------------


async def shared_agreement(ctx: Context) -> Issued:
    """An agreement the node proposed to the first auditor, issued once per run for the checks
    that only read it or expect the node to refuse what would change it."""
    cached = ctx.shared.get("records.agreement")
    if isinstance(cached, Issued):
        return cached
    issued = await issue(ctx, agreement(ctx, first(ctx)), "an agreement with the first auditor")
    ctx.shared["records.agreement"] = issued
    return issued


async def fresh_agreement(ctx: Context) -> Issued:
    return await issue(ctx, agreement(ctx, first(ctx)), "an agreement with the first auditor")


# -- agreements --------------------------------------------------------------------------------


@records_check("rec-agreement-read-by-partner", requirements=["LC-3", "LC-6", "XCH-1", "XCH-6"])
async def agreement_read_by_partner(ctx: Context) -> None:
    """The partner reads an agreement the node proposed: exactly as signed by the node's ISSUING
    key, state proposed awaiting the partner, no decisions."""
    issued = await shared_agreement(ctx)
    partner = first(ctx)
    what = "the agreement read by its partner"
    result = await get(ctx, 0, issued.name)
    same_version(result.record, issued, what)
    expect(result.latest_version == 1, f"{what}: latest_version {result.latest_version}, not 1")
    expect(not result.decisions, f"{what}: {len(result.decisions)} decisions, none was made")
    state = computed(await keyring(ctx), [result.record], result.decisions, what)
    expect(
        state.latest.signed_by == {ctx.audience},
        f"{what}: the ISSUING signatures that count are {sorted(state.latest.signed_by)}, "
        f"expected {ctx.audience}'s alone (LC-3)",
    )
    expect_state(state, what, expected=State.PROPOSED, in_force=None, awaiting=[partner])
    expect_status(result, what, state="proposed", in_force=None, awaiting=[partner])


@records_check("rec-exchange-feed-parties", requirements=["XCH-2", "REC-5"])
async def exchange_feed_parties(ctx: Context) -> None:
    """The exchange feed carries each reader the records it is a party of, and nothing else:
    the agreement to its partner only, a consent to its recipient only, no public records."""
    reader = second(ctx)
    issued = await shared_agreement(ctx)
    given = await issue(
        ctx,
        consent(
            ctx,
            reader,
            fresh_student(),
            purpose=RECOGNITION,
            categories=[DataCategory.DATA_CATEGORY_MOBILITY],
        ),
        "a consent for the second auditor",
    )
    feeds = {first(ctx): await exchange_feed(ctx, 0), reader: await exchange_feed(ctx, 1)}
    for who, changes in feeds.items():
        for change in changes:
            kind = kind_of(change.record)
            header = record_header(change.record)
            expect(
                kind is not None and kind is not K.CREDENTIAL_STATUS_LIST,
                f"{who}'s exchange feed carries {header.name}, a public record "
                f"({change.record.payload_type})",
            )
            expect(
                who in header.parties,
                f"{who}'s exchange feed carries {header.name} v{header.version}, whose parties "
                f"{list(header.parties)} leave {who} out",
            )
    for record, reader_of, other in ((issued, first(ctx), reader), (given, reader, first(ctx))):
        name = record.name
        held = by_name(feeds[reader_of]).get(name, [])
        expect(bool(held), f"{reader_of}'s exchange feed does not carry {name}, it is a party")
        expect(
            held[-1].payload == record.envelope.payload,
            f"{reader_of}'s exchange feed carries other bytes for {name} than the node signed",
        )
        expect(
            name not in by_name(feeds[other]),
            f"{other}'s exchange feed carries {name}, it is no party",
        )


@records_check("rec-exchange-list-refused", requirements=["XCH-2"])
async def exchange_list_refused(ctx: Context) -> None:
    """ListRecords on the exchange collection is refused MALFORMED naming `parent`: it is a
    feed only (checked while it holds a record for the caller)."""
    await shared_agreement(ctx)
    what = "ListRecords on the exchange collection"
    async with ctx.client(0) as client:
        error = await refused(client.list_records_page(exchange(ctx), purpose=MOBILITY), what)
    expect_reason(error, Reason.MALFORMED, what, field="parent")


@records_check("rec-non-party-not-found", requirements=["REC-12", "XCH-1", "ERR-4"])
async def non_party_not_found(ctx: Context) -> None:
    """An institution that is no party of an agreement gets NOT_FOUND for it, every version,
    with the same answer as for a missing record; the partner reads it."""
    second(ctx)
    issued = await shared_agreement(ctx)
    await get(ctx, 0, issued.name)
    absent = await not_found(ctx, 1, missing(ctx, K.AGREEMENT), "a missing agreement")
    for version in (0, 1):
        what = f"the agreement (version {version}) read by an institution that is no party"
        hidden = await not_found(ctx, 1, issued.name, what, version=version)
        same_not_found(hidden, absent, what)


@records_check("rec-cosign-counts-institutions", requirements=["LC-3", "LC-6"])
async def cosign_counts_institutions(ctx: Context) -> None:
    """The node co-signing its own proposed agreement again changes nothing: institutions are
    counted, not signatures, so it stays proposed, awaiting the partner."""
    issued = await fresh_agreement(ctx)
    partner = first(ctx)
    with contextlib.suppress(AdapterRefused):  # refusing to sign again changes nothing too
        await adapter(ctx, "cosign", issued.name)
    what = "the agreement after its issuer co-signed it again"
    result = await get(ctx, 0, issued.name)
    same_version(result.record, issued, what)
    state = computed(await keyring(ctx), [result.record], result.decisions, what)
    expect_state(state, what, expected=State.PROPOSED, in_force=None, awaiting=[partner])
    expect_status(result, what, state="proposed", in_force=None, awaiting=[partner])


@records_check("rec-decision-wrong-role-refused", requirements=["DEC-4", "LC-12", "IIA-2"])
async def decision_wrong_role_refused(ctx: Context) -> None:
    """The node refuses decisions its role or the state does not allow: accepting or
    terminating its own proposed agreement (ILLEGAL_TRANSITION), rejecting it (only a
    counterpart may: SIGNER_MISMATCH); the partner then sees no decision."""
    issued = await fresh_agreement(ctx)
    name = issued.name
    await refusal(
        ctx,
        "decide",
        name,
        "--decision",
        "accept",
        reasons=[Reason.ILLEGAL_TRANSITION],
        what="the issuer accepting its own proposed agreement (agreements have no accept)",
    )
    await refusal(
        ctx,
        "decide",
        name,
        "--decision",
        "reject",
        "--reason",
        "conformance check: not the counterpart",
        reasons=[Reason.SIGNER_MISMATCH],
        what="the issuer rejecting its own agreement (only a counterpart rejects)",
    )
    await refusal(
        ctx,
        "decide",
        name,
        "--decision",
        "terminate",
        "--reason",
        "conformance check: not in force",
        reasons=[Reason.ILLEGAL_TRANSITION],
        what="terminating an agreement that is only proposed",
    )
    what = "the agreement after refused decisions"
    result = await get(ctx, 0, name)
    expect(not result.decisions, f"{what}: GetRecord carries {len(result.decisions)} decisions")
    expect_status(result, what, state="proposed", in_force=None, awaiting=[first(ctx)])


@records_check("rec-decision-reason-required", requirements=["DEC-3", "LC-12"])
async def decision_reason_required(ctx: Context) -> None:
    """A rejection or termination without a reason, or with a blank one, is refused MALFORMED;
    a withdrawal needs none, and only it reaches the partner."""
    issued = await fresh_agreement(ctx)
    name = issued.name
    for decision, reason in (("reject", None), ("reject", "   "), ("terminate", None)):
        given = [] if reason is None else ["--reason", reason]
        await refusal(
            ctx,
            "decide",
            name,
            "--decision",
            decision,
            *given,
            reasons=[Reason.MALFORMED],
            what=f"{decision} {'with a blank reason' if reason else 'without a reason'}",
        )
    await act(ctx, "decide", name, "--decision", "withdraw", what="withdrawing its own agreement")
    what = "the agreement after one withdrawal and refused decisions"
    result = await get(ctx, 0, name)
    expect(
        len(result.decisions) == 1,
        f"{what}: GetRecord carries {len(result.decisions)} decisions, expected the withdrawal",
    )
    expect_status(result, what, state="withdrawn", in_force=None, awaiting=[])


@records_check(
    "rec-agreement-withdrawn-decision",
    requirements=["IIA-2", "DEC-1", "DEC-2", "XCH-2", "XCH-6"],
)
async def agreement_withdrawn_decision(ctx: Context) -> None:
    """The node withdraws its proposed agreement: the partner gets the signed decision with the
    record (naming the exact version), in its exchange feed too, and state withdrawn; a second
    withdrawal is ILLEGAL_TRANSITION."""
    issued = await fresh_agreement(ctx)
    partner = first(ctx)
    await act(ctx, "decide", issued.name, "--decision", "withdraw", what="a withdrawal")
    what = "the withdrawn agreement"
    result = await get(ctx, 0, issued.name)
    same_version(result.record, issued, what)
    expect(
        len(result.decisions) == 1,
        f"{what}: GetRecord carries {len(result.decisions)} decisions, expected 1",
    )
    ring = await keyring(ctx)
    try:
        opened = open_record(result.decisions[0], ring)
    except ProtocolError as exc:
        raise CheckFailed(
            f"{what}: the decision does not verify: {exc.reason.value}: {exc.message}"
        ) from exc
    decision = opened.message
    expect(isinstance(decision, Decision), f"{what}: the decision envelope holds a {opened.kind}")
    assert isinstance(decision, Decision)
    header = decision.header
    expect(
        header.issuer == ctx.audience
        and header.name.startswith(f"institutions/{ctx.audience}/decisions/")
        and header.version == 1,
        f"{what}: the decision is {header.name} v{header.version} by {header.issuer} (DEC-1)",
    )
    expect(
        {ctx.audience, partner} <= set(header.parties),
        f"{what}: the decision's parties {list(header.parties)} leave a party out (DEC-1)",
    )
    expect(
        decision.kind == DecisionKind.DECISION_KIND_WITHDRAW
        and decision.record.name == issued.name
        and decision.record.version == 1
        and decision.record.payload_sha256 == issued.payload_sha256,
        f"{what}: the decision names {decision.record.name} v{decision.record.version} "
        "with another digest or kind than the version withdrawn (DEC-2)",
    )
    state = computed(ring, [result.record], result.decisions, what)
    expect_state(state, what, expected=State.WITHDRAWN, in_force=None, awaiting=[])
    expect_status(result, what, state="withdrawn", in_force=None, awaiting=[])
    feed = by_name(await exchange_feed(ctx, 0))
    expect(
        header.name in feed,
        f"the partner's exchange feed does not carry the decision {header.name} (XCH-2)",
    )
    await refusal(
        ctx,
        "decide",
        issued.name,
        "--decision",
        "withdraw",
        reasons=[Reason.ILLEGAL_TRANSITION],
        what="withdrawing a withdrawn agreement again",
    )


@records_check("rec-agreement-new-version", requirements=["LC-4", "LC-6", "IIA-3", "REC-11"])
async def agreement_new_version(ctx: Context) -> None:
    """A second version of a proposed agreement is pending in its place and each version is
    served by number; a version that changes the partners is refused MALFORMED."""
    v1 = await fresh_agreement(ctx)
    partner = first(ctx)
    v2 = await issue(
        ctx, agreement(ctx, partner, per_year=4, name=v1.name), "a second version of an agreement"
    )
    expect(v2.version == 2, f"the second version the node issued is numbered {v2.version}")
    stranger = other_member(ctx, exclude={partner})
    await refused_issue(
        ctx,
        agreement(ctx, stranger, name=v1.name),
        [Reason.MALFORMED],
        "a version of the agreement with another partner (LC-4)",
    )
    what = "the agreement with a second version"
    latest = await get(ctx, 0, v1.name)
    same_version(latest.record, v2, what)
    older = await get(ctx, 0, v1.name, version=1)
    same_version(older.record, v1, f"{what}, version 1")
    expect(
        latest.latest_version == 2 and older.latest_version == 2,
        f"{what}: latest_version {latest.latest_version} (newest) and {older.latest_version} "
        "(version 1), expected 2",
    )
    state = computed(await keyring(ctx), [older.record, latest.record], latest.decisions, what)
    expect_state(state, what, expected=State.PROPOSED, in_force=None, awaiting=[partner])
    expect(
        state.pending_version == 2,
        f"{what}: the pending version is {state.pending_version}, expected 2",
    )
    expect_status(latest, what, state="proposed", in_force=None, awaiting=[partner])


# -- nominations ---------------------------------------------------------------------------------


@records_check("rec-nomination-needs-agreement-in-force", requirements=["NOM-3", "LC-11"])
async def nomination_needs_agreement_in_force(ctx: Context) -> None:
    """A nomination under an agreement that is only proposed is ILLEGAL_TRANSITION; one naming
    other content MALFORMED, a version not held STALE_VERSION, an agreement not held MALFORMED;
    none reaches the host."""
    issued = await shared_agreement(ctx)
    host, student = first(ctx), fresh_student()
    good = issued.ref()
    other_content = RecordRef(name=good.name, version=1, payload_sha256=bytes(32))
    later = RecordRef(name=good.name, version=2, payload_sha256=good.payload_sha256)
    unheld = RecordRef(
        name=missing(ctx, K.AGREEMENT), version=1, payload_sha256=good.payload_sha256
    )
    for ref, reason, what in (
        (good, Reason.ILLEGAL_TRANSITION, "under an agreement that is only proposed"),
        (other_content, Reason.MALFORMED, "naming other content than the version held"),
        (later, Reason.STALE_VERSION, "naming a version of the agreement not held"),
        (unheld, Reason.MALFORMED, "under an agreement the node does not hold"),
    ):
        await refused_issue(
            ctx, nomination(ctx, host, ref, student), [reason], f"a nomination {what}"
        )
    for change in await exchange_feed(ctx, 0):
        if kind_of(change.record) is K.NOMINATION:
            held = records.open_payload(K.NOMINATION, change.record.payload)
            expect(
                getattr(held, "student_id", "") != student,
                f"a refused nomination reached the host's exchange feed: "
                f"{record_header(change.record).name}",
            )


# -- consents ------------------------------------------------------------------------------------


@records_check("rec-consent-lifecycle", requirements=["CONSENT-2", "LC-6", "XCH-6"])
async def consent_lifecycle(ctx: Context) -> None:
    """A consent is given (in force, version 1) and, after a withdrawn version, withdrawn with
    nothing in force, as its recipient reads it; withdrawn is final (ILLEGAL_TRANSITION)."""
    index = len(ctx.auditors) - 1  # the second auditor when there is one
    reader, student = ctx.auditor(index).institution, fresh_student()

    def version(name: str = "", *, withdrawn: bool = False) -> Consent:
        return consent(
            ctx,
            reader,
            student,
            purpose=RECOGNITION,
            categories=[DataCategory.DATA_CATEGORY_MOBILITY],
            name=name,
            withdrawn=withdrawn,
        )

    given = await issue(ctx, version(), "a consent")
    ring = await keyring(ctx)
    what = "the consent read by its recipient"
    result = await get(ctx, index, given.name, purpose=RECOGNITION)
    same_version(result.record, given, what)
    state = computed(ring, [result.record], result.decisions, what)
    expect_state(state, what, expected=State.GIVEN, in_force=1, awaiting=[])
    expect_status(result, what, state="given", in_force=1, awaiting=[])

    withdrawal = await issue(ctx, version(given.name, withdrawn=True), "the consent withdrawn")
    expect(withdrawal.version == 2, f"the withdrawal is numbered {withdrawal.version}, not 2")
    what = "the withdrawn consent read by its recipient"
    latest = await get(ctx, index, given.name, purpose=RECOGNITION)
    same_version(latest.record, withdrawal, what)
    older = await get(ctx, index, given.name, version=1, purpose=RECOGNITION)
    same_version(older.record, given, f"{what}, version 1")
    state = computed(ring, [older.record, latest.record], latest.decisions, what)
    expect_state(state, what, expected=State.WITHDRAWN, in_force=None, awaiting=[])
    expect_status(latest, what, state="withdrawn", in_force=None, awaiting=[])
    await refused_issue(
        ctx,
        version(given.name),
        [Reason.ILLEGAL_TRANSITION],
        "a version giving a withdrawn consent again",
    )


@records_check("rec-consent-content-refused", requirements=["CONSENT-1", "LC-9", "LC-7"])
async def consent_content_refused(ctx: Context) -> None:
    """The node issues a valid consent but refuses MALFORMED one withdrawn in version 1, one for
    a national-number-like student ID, one whose recipient is home, one already expired."""
    recipient, student = first(ctx), fresh_student()
    mobility = [DataCategory.DATA_CATEGORY_MOBILITY]

    def build(who: str = recipient, sid: str = student, **options: Any) -> Consent:
        return consent(ctx, who, sid, purpose=RECOGNITION, categories=mobility, **options)

    await issue(ctx, build(), "a valid consent")
    home_reads = build()
    home_reads.recipient = ctx.audience
    del home_reads.header.parties[:]
    home_reads.header.parties.append(ctx.audience)
    for message, what in (
        (build(withdrawn=True), "a consent withdrawn in its version 1"),
        (build(sid="123456789012"), "a consent for a 12-digit student ID (a national number)"),
        (home_reads, "a consent whose recipient is the home institution"),
        (build(expires_in=timedelta(hours=-1)), "a consent that expired before it was issued"),
    ):
        await refused_issue(ctx, message, [Reason.MALFORMED], what)


@records_check("rec-read-under-consent", requirements=["XCH-7", "CONSENT-6", "REC-12"])
async def read_under_consent(ctx: Context) -> None:
    """A student's credential is NOT_FOUND to an institution that is no party until home's
    consent for it (that reader, purpose and category) is given; then it reads it by GetRecord,
    for that purpose only, never in its feed; after the withdrawal NOT_FOUND again."""
    reader, student = second(ctx), fresh_student()
    lists = {ctx.audience: status_list_name(ctx.audience, f"conf-{secrets.token_hex(6)}")}
    degree = await issue(
        ctx, credential(ctx, student, [ctx.audience], lists, 0), "a credential of the node alone"
    )
    absent = await not_found(
        ctx, 1, missing(ctx, K.CREDENTIAL), "a missing credential", purpose=VERIFICATION
    )

    async def hidden(what: str, *, auditor: int = 1, purpose: int = VERIFICATION) -> None:
        error = await not_found(ctx, auditor, degree.name, what, purpose=purpose)
        same_not_found(error, absent, what)

    await hidden("the credential read by a non-party before any consent")

    def for_reader(*categories: DataCategory.ValueType, **options: Any) -> Consent:
        return consent(ctx, reader, student, purpose=VERIFICATION, categories=categories, **options)

    await issue(ctx, for_reader(DataCategory.DATA_CATEGORY_TRANSCRIPT), "a transcript consent")
    await hidden("the credential read under a consent for transcripts only")
    given = await issue(ctx, for_reader(DataCategory.DATA_CATEGORY_CREDENTIAL), "a consent")
    what = "the credential read under the consent"
    result = await get(ctx, 1, degree.name, purpose=VERIFICATION)
    same_version(result.record, degree, what)
    expect_status(result, what, state="issued", in_force=1, awaiting=[])
    await hidden("the credential read under the consent for another purpose", purpose=RECOGNITION)
    await hidden("the credential read by an institution the consent does not name", auditor=0)
    feed = by_name(await exchange_feed(ctx, 1))
    expect(
        degree.name not in feed,
        "the reader's exchange feed carries the credential: feeds never serve under consent",
    )
    async with ctx.client(1) as client:
        listing = await list_all(client, f"institutions/{ctx.audience}/{K.CREDENTIAL.collection}")
    expect(
        degree.name not in listing.names,
        "ListRecords shows the reader the credential: listings never serve under consent",
    )
    await issue(
        ctx,
        for_reader(DataCategory.DATA_CATEGORY_CREDENTIAL, name=given.name, withdrawn=True),
        "the consent withdrawn",
    )
    await hidden("the credential read after the consent was withdrawn")


# -- credentials and status lists ----------------------------------------------------------------


async def fetch_status_list(ctx: Context, list_id: str, what: str, *, version: int = 0) -> Envelope:
    """A status list of the audience from its public HTTP path, without authentication."""
    path = f"{STATUS_PATH}/{ctx.audience}/{list_id}" + (f"?version={version}" if version else "")
    status, _, body = await http_fetch(ctx, path)
    expect(status == 200, f"{what}: GET {path} answered {status}")
    try:
        return envelope_from_json(body)
    except (ProtocolError, ValueError) as exc:
        raise CheckFailed(f"{what}: GET {path} is not a DSSE JSON envelope: {exc}") from exc


@records_check("rec-status-list-public", requirements=["CRED-5", "REC-5", "XCH-2"])
async def status_list_public(ctx: Context) -> None:
    """A status list the node issues is public: served as signed, without authentication, at
    the status path, and to any member by GetRecord; it has no parties, a valid_until after its
    issue time, and no exchange feed carries it."""
    list_id = f"conf-{secrets.token_hex(6)}"
    issued = await issue(ctx, status_list(ctx, list_id), "a status list")
    what = "the status list"
    served = await fetch_status_list(ctx, list_id, what)
    expect(
        served.payload == issued.envelope.payload
        and {(s.keyid, s.sig) for s in issued.envelope.signatures}
        <= {(s.keyid, s.sig) for s in served.signatures},
        f"{what}: the status path serves other bytes or signatures than the node signed",
    )
    try:
        opened = open_record(served, await keyring(ctx))
    except ProtocolError as exc:
        raise CheckFailed(f"{what} does not verify: {exc.reason.value}: {exc.message}") from exc
    listed = opened.message
    assert isinstance(listed, CredentialStatusList)
    expect(
        opened.header.issuer == ctx.audience
        and not opened.header.parties
        and listed.list_id == list_id,
        f"{what}: issuer {opened.header.issuer}, parties {list(opened.header.parties)}, "
        f"list_id {listed.list_id!r}: expected {ctx.audience}, none, {list_id!r}",
    )
    expect(
        listed.valid_until.ToNanoseconds() > opened.header.issued_at.ToNanoseconds(),
        f"{what}: valid_until is not after its issue time",
    )
    last = len(ctx.auditors) - 1
    result = await get(ctx, last, issued.name, purpose=VERIFICATION)
    same_version(result.record, issued, f"{what} read by GetRecord")
    for auditor in range(len(ctx.auditors)):
        feed = by_name(await exchange_feed(ctx, auditor))
        expect(
            issued.name not in feed,
            f"{ctx.auditor(auditor).institution}'s exchange feed carries the public status list",
        )


@dataclass
class _Revocable:
    """A credential of the node alone, its status list and a consent letting the second
    auditor read it (the credential and status checks share it)."""

    list_id: str
    index: int
    credential: Issued
    revoked: bool = False
    lists: list[Envelope] = field(default_factory=list)


async def _revocable(ctx: Context) -> _Revocable:
    cached = ctx.shared.get("records.revocable")
    if isinstance(cached, _Revocable):
        return cached
    reader, student = second(ctx), fresh_student()
    list_id, index = f"conf-{secrets.token_hex(6)}", 5
    await issue(ctx, status_list(ctx, list_id), "a status list")
    lists = {ctx.audience: status_list_name(ctx.audience, list_id)}
    degree = await issue(
        ctx, credential(ctx, student, [ctx.audience], lists, index), "a credential"
    )
    await issue(
        ctx,
        consent(
            ctx,
            reader,
            student,
            purpose=VERIFICATION,
            categories=[DataCategory.DATA_CATEGORY_CREDENTIAL],
        ),
        "a consent to verify the credential",
    )
    shared = _Revocable(list_id, index, degree)
    ctx.shared["records.revocable"] = shared
    return shared


async def _revoke(ctx: Context, held: _Revocable) -> None:
    if held.revoked:
        return
    revoking = status_list(ctx, held.list_id, revoked=[held.index])
    await issue(ctx, revoking, "a status list version revoking the credential")
    held.revoked = True


async def _held_credential(ctx: Context, held: _Revocable, what: str) -> GetRecordResult:
    try:
        return await get(ctx, 1, held.credential.name, purpose=VERIFICATION)
    except NodeError as exc:
        raise CheckFailed(
            f"{what}: the reader cannot read the credential under its consent: "
            f"{exc.reason.value}: {exc.message} (see rec-read-under-consent)"
        ) from exc


def _verify(
    ring: KeyRing, credential_record: Envelope, lists: Sequence[Envelope], what: str
) -> lifecycle.CredentialCheck:
    try:
        found: lifecycle.CredentialCheck = lifecycle.credential_status(
            [credential_record], lists, ring, datetime.now(UTC)
        )
        return found
    except ProtocolError as exc:
        raise CheckFailed(
            f"{what}: the credential does not verify: {exc.reason.value}: {exc.message}"
        ) from exc


@records_check("rec-credential-verify-revoke", requirements=["CRED-5", "CRED-6"])
async def credential_verify_revoke(ctx: Context) -> None:
    """A credential of the node verifies with its public status list (signatures valid, issued,
    status fresh); after the node publishes a list version revoking it, the same check says
    revoked, the signatures still valid."""
    held = await _revocable(ctx)
    ring = await keyring(ctx)
    what = "the credential before the revocation"
    record = (await _held_credential(ctx, held, what)).record
    same_version(record, held.credential, what)
    before = await fetch_status_list(
        ctx, held.list_id, "the status list", version=1 if held.revoked else 0
    )
    found = _verify(ring, record, [before], what)
    expect(
        found.signatures_valid
        and found.state is State.ISSUED
        and found.status_fresh
        and not found.stale,
        f"{what}: signatures valid {found.signatures_valid}, state {found.state.value}, "
        f"status fresh {found.status_fresh} (stale: {list(found.stale)}); expected valid, "
        "issued, fresh",
    )
    await _revoke(ctx, held)
    what = "the credential after the revocation"
    after = await fetch_status_list(ctx, held.list_id, "the revoking status list")
    expect(
        after.payload != before.payload,
        f"{what}: the status path still serves the list version before the revocation",
    )
    found = _verify(ring, record, [before, after], what)
    expect(
        found.signatures_valid and found.state is State.REVOKED and found.status_fresh,
        f"{what}: signatures valid {found.signatures_valid}, state {found.state.value}, "
        f"status fresh {found.status_fresh}; expected valid, revoked, fresh",
    )


@records_check("rec-status-of-revoked-credential", requirements=["XCH-6", "LC-5", "LC-6", "CRED-5"])
async def status_of_revoked_credential(ctx: Context) -> None:
    """GetRecord's status of a credential that the node's own status list revokes is revoked,
    with nothing in force: the state includes the awarding institutions' lists."""
    held = await _revocable(ctx)
    await _revoke(ctx, held)
    what = "the revoked credential"
    result = await _held_credential(ctx, held, what)
    expect_status(result, what, state="revoked", in_force=None, awaiting=[])


@records_check("rec-joint-degree-proposed", requirements=["CRED-2", "CRED-4", "LC-6"])
async def joint_degree_proposed(ctx: Context) -> None:
    """A joint degree the node signed alone is proposed, awaiting the other awarding
    institution, and does not verify as issued until every awarding institution signed."""
    partner = first(ctx)
    token = secrets.token_hex(6)
    lists = {i: status_list_name(i, f"conf-{token}") for i in (ctx.audience, partner)}
    degree = await issue(
        ctx,
        credential(ctx, fresh_student(), [ctx.audience, partner], lists, 1),
        "a joint degree with the first auditor",
    )
    what = "the joint degree read by the other awarding institution"
    result = await get(ctx, 0, degree.name, purpose=VERIFICATION)
    same_version(result.record, degree, what)
    expect_status(result, what, state="proposed", in_force=None, awaiting=[partner])
    found = _verify(await keyring(ctx), result.record, [], what)
    expect(
        not found.signatures_valid and found.state is State.PROPOSED,
        f"{what}: verified with signatures valid {found.signatures_valid}, state "
        f"{found.state.value}; expected not valid, proposed (CRED-2)",
    )
    feed = by_name(await exchange_feed(ctx, 0))
    expect(degree.name in feed, "the other awarding institution's exchange feed lacks the degree")
