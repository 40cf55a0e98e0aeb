"""The whole life of one mobility between three real nodes on loopback (spec LC, XCH).

ynu.edu.cn (home) and chula.ac.th (host) co-sign an agreement, then a nomination, its acceptance,
a learning agreement (changed and co-signed again), the mobility's start, a transcript and its
correction, and a recognition with converted credits. Each step is taken by an operator on one
node (`sseaun node records ...`) and checked from the other party's side once its node has pulled
it. du.ac.bd, a member but no party, sees none of it unless a consent lets it.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from sseaun.sdk.cli import main as sseaun
from sseaun.sdk.client import NodeError
from sseaun.sdk.core import Reason, envelope_from_json, recognition_line, records
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.catalogue_pb2 import CourseLevel, RecordHeader
from sseaun.v1.records_pb2 import (
    AgreementPartner,
    ConsentGiver,
    ConsentStatement,
    CourseResultStatus,
    DataCategory,
    InterInstitutionalAgreement,
    LearningAgreement,
    LearningAgreementComponent,
    MobilityPeriod,
    MobilityQuota,
    MobilityType,
    Nomination,
    RecognitionDecision,
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
from tests.live_network import LiveNetwork, build, node_client, running, wait_for

pytestmark = pytest.mark.timeout(300)
YNU, CHULA, DU = "ynu.edu.cn", "chula.ac.th", "du.ac.bd"
STUDENT = "s-2026-7f3a9c"
NAME = PersonName(
    full_name="李明",
    parts=[
        NamePart(kind=NamePartKind.NAME_PART_KIND_FAMILY, value="李"),
        NamePart(kind=NamePartKind.NAME_PART_KIND_GIVEN, value="明"),
    ],
    script="Hans",
    lang="zh",
)
SHA = bytes(range(32))
K = records.RecordKind


def text(value: str, lang: str = "en") -> MultilingualText:
    return MultilingualText(texts=[LocalizedText(lang=lang, text=value)])


def statement() -> ConsentStatement:
    from datetime import UTC, datetime, timedelta

    from sseaun.sdk.core import to_timestamp

    return ConsentStatement(
        given_at=to_timestamp(datetime.now(UTC) - timedelta(hours=1)),
        notice_version="transfer-2026.1",
        notice_sha256=SHA,
        notice_lang="zh-Hans",
        given_by=ConsentGiver.CONSENT_GIVER_STUDENT,
        channel="sis-portal",
    )


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    net = build(tmp_path_factory.mktemp("mobility"))
    for node in net.nodes.values():
        # Pull only on hints and at start, so each step shows the hint path; the
        # reconciliation test turns hints off and pulls on a short interval instead.
        node.configure(**{"exchange.interval_seconds": 2, "log.witness_interval_seconds": 0})
    with running(net):
        yield net


def act(network: LiveNetwork, institution: str, *argv: str) -> dict[str, Any]:
    """`sseaun node records ARGV` on institution's node; its JSON output."""
    out = io.StringIO()
    config = str(network.nodes[institution].config)
    with contextlib.redirect_stdout(out):
        status = sseaun(["node", "records", argv[0], "--config", config, *argv[1:]])
    assert status == 0, f"sseaun node records {' '.join(argv)} exited {status}"
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def issue(
    network: LiveNetwork, institution: str, kind: records.RecordKind, message: Message
) -> dict[str, Any]:
    path = network.root / f"{kind.collection}-{len(list(network.root.glob('*.json')))}.json"
    path.write_text(json_format.MessageToJson(message))
    return act(network, institution, "issue", "--kind", kind.collection, "--file", str(path))


def ref(issued: dict[str, Any]) -> RecordRef:
    envelope = envelope_from_json(json.dumps(issued["envelope"]))
    message = records.open_payload(
        records.RecordKind.of_payload_type(envelope.payload_type), envelope.payload
    )
    return RecordRef(
        name=issued["name"],
        version=message.header.version,  # type: ignore[attr-defined]
        payload_sha256=records.payload_sha256(envelope.payload),
    )


def state_at(network: LiveNetwork, institution: str, name: str) -> dict[str, Any] | None:
    out = io.StringIO()
    config = str(network.nodes[institution].config)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = sseaun(["node", "records", "state", "--config", config, name])
    return json.loads(out.getvalue()) if status == 0 else None


def eventually(
    network: LiveNetwork, institution: str, name: str, **expected: object
) -> dict[str, Any]:
    """Wait until institution's node holds the record in the expected state."""
    seen: dict[str, Any] = {}

    def holds() -> bool:
        nonlocal seen
        seen = state_at(network, institution, name) or {}
        return all(seen.get(k) == v for k, v in expected.items())

    wait_for(holds, timeout=60, interval=0.5, what=f"{name} at {institution}: {expected}")
    return seen


def header(issuer: str, parties: list[str]) -> RecordHeader:
    return RecordHeader(issuer=issuer, parties=sorted(parties))


def test_the_whole_life_of_one_mobility(network: LiveNetwork) -> None:
    # 1. An agreement co-signed by both partners.
    iia = InterInstitutionalAgreement(
        header=header(YNU, [YNU, CHULA]),
        partners=[AgreementPartner(institution_id=YNU), AgreementPartner(institution_id=CHULA)],
        subject_areas=[SubjectArea(isced_f_code="0613")],
        first_academic_year="2026/2027",
        last_academic_year="2029/2030",
        quotas=[
            MobilityQuota(
                sending_institution=YNU,
                receiving_institution=CHULA,
                mobility_type=MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
                mobilities_per_year=3,
            )
        ],
        recognition_rules=text("Full recognition of courses passed under an approved LA."),
    )
    agreement = issue(network, YNU, K.AGREEMENT, iia)
    name = agreement["name"]
    eventually(network, CHULA, name, state="proposed", awaiting=[CHULA])
    act(network, CHULA, "cosign", name)
    eventually(network, YNU, name, state="approved", in_force_version=1, awaiting=[])
    agreement_ref = ref({"name": name, "envelope": agreement["envelope"]})

    # 2. Nomination by home, accepted by host.
    nomination = issue(
        network,
        YNU,
        K.NOMINATION,
        Nomination(
            header=header(YNU, [YNU, CHULA]),
            home_institution=YNU,
            host_institution=CHULA,
            agreement=agreement_ref,
            student_id=STUDENT,
            student_name=NAME,
            mobility_type=MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
            period=MobilityPeriod(
                start_date=Date(year=2027, month=1, day=10),
                end_date=Date(year=2027, month=5, day=31),
            ),
            level=CourseLevel.COURSE_LEVEL_BACHELOR,
            isced_f_code="0613",
            transfer_consent=statement(),
        ),
    )
    nom = nomination["name"]
    eventually(network, CHULA, nom, state="nominated", awaiting=[CHULA])
    act(network, CHULA, "decide", nom, "--decision", "accept")
    eventually(network, YNU, nom, state="accepted", in_force_version=1)

    # 3. A learning agreement, co-signed; then changed and co-signed again.
    def la(credits: str, change: str = "") -> LearningAgreement:
        message = LearningAgreement(
            header=header(YNU, [YNU, CHULA]),
            home_institution=YNU,
            host_institution=CHULA,
            nomination=ref(nomination),
            student_id=STUDENT,
            student_name=NAME,
            components=[
                LearningAgreementComponent(
                    host_course_code="2110101",
                    host_course_title=text("การเขียนโปรแกรมคอมพิวเตอร์", "th"),
                    host_credits=CreditValue(scheme_id="th-credit", value=credits),
                    home_course_code="CS101",
                    home_course_title=text("程序设计基础", "zh-Hans"),
                )
            ],
            student_consent=statement(),
        )
        if change:
            message.header.name = learning["name"]
            message.change_summary.CopyFrom(text(change))
        return message

    learning = issue(network, YNU, K.LEARNING_AGREEMENT, la("3"))
    la_name = learning["name"]
    eventually(network, CHULA, la_name, state="proposed", awaiting=[CHULA])
    act(network, CHULA, "cosign", la_name)
    eventually(network, YNU, la_name, state="approved", in_force_version=1)
    issue(network, YNU, K.LEARNING_AGREEMENT, la("4", "One more credit."))
    eventually(network, CHULA, la_name, state="approved", in_force_version=1, pending_version=2)
    act(network, CHULA, "cosign", la_name)
    eventually(network, YNU, la_name, state="approved", in_force_version=2, awaiting=[])

    # 4. The host starts the mobility, issues a transcript and corrects it.
    act(network, CHULA, "decide", nom, "--decision", "start")
    eventually(network, YNU, nom, state="started")

    def tor(symbol: str, version: int) -> TranscriptOfRecords:
        message = TranscriptOfRecords(
            header=header(CHULA, [YNU, CHULA]),
            host_institution=CHULA,
            home_institution=YNU,
            nomination=ref(nomination),
            student_id=STUDENT,
            student_name=NAME,
            lines=[
                TranscriptLine(
                    line_id="l1",
                    course_code="2110101",
                    course_title=text("การเขียนโปรแกรมคอมพิวเตอร์", "th"),
                    credits=CreditValue(scheme_id="th-credit", value="3"),
                    grade=Grade(scale_id="th-4.0", symbol=symbol),
                    attempt=1,
                    status=CourseResultStatus.COURSE_RESULT_STATUS_PASSED,
                    start_date=Date(year=2027, month=1, day=10),
                    end_date=Date(year=2027, month=5, day=20),
                )
            ],
            supersedes_version=version - 1,
            correction_reason="grade entered wrongly" if version > 1 else "",
        )
        if version > 1:
            message.header.name = transcript["name"]
        return message

    transcript = issue(network, CHULA, K.TRANSCRIPT, tor("B+", 1))
    tor_name = transcript["name"]
    eventually(network, YNU, tor_name, state="issued", in_force_version=1)
    corrected = issue(network, CHULA, K.TRANSCRIPT, tor("A", 2))
    eventually(network, YNU, tor_name, state="corrected", in_force_version=2)

    # 5. Home recognises the course: credits and grade converted by the engine (a suggestion),
    # the grade as home confirms it.
    corrected_line = tor("A", 2).lines[0]
    line = recognition_line(
        corrected_line,
        to_scheme="cn-credit",
        to_scale="cn-100",
        home_course_code="CS101",
        confirmed_grade=Grade(scale_id="cn-100", symbol="95", numeric="95"),
    )
    assert line.credits.method == "year-fraction" and line.recognised_credits.value == "3.8"
    recognition = issue(
        network,
        YNU,
        K.RECOGNITION,
        RecognitionDecision(
            header=header(YNU, [YNU, CHULA]),
            home_institution=YNU,
            host_institution=CHULA,
            transcript=ref(corrected),
            student_id=STUDENT,
            lines=[line],
        ),
    )
    eventually(network, CHULA, recognition["name"], state="issued", in_force_version=1)
    with node_client(network, CHULA, sender=YNU) as client:
        held = client.get_record(recognition["name"], purpose=Purpose.PURPOSE_RECOGNITION)
    decided = RecognitionDecision.FromString(held.record.payload).lines[0]
    assert decided.grade.suggested.symbol == "100"  # the engine's suggestion, kept
    assert decided.grade.converted.symbol == "95"  # what home confirmed
    assert decided.grade.original.symbol == "A"  # the host's own symbol, kept

    # 7. A joint degree, co-signed by both universities, verified offline; then one of them
    # revokes it and the same check fails with the reason.
    degree, lists = _joint_degree(network)
    verify = ["credential", "verify", str(degree), "--manifest", str(network.manifest)]
    urls = [a for i in (YNU, CHULA) for a in ("--status-url", lists[i])]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert sseaun([*verify, *urls]) == 0
    assert "signatures: valid" in out.getvalue() and "state: issued" in out.getvalue()
    _status_list(network, CHULA, revoked=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert sseaun([*verify, *urls]) == 1
    assert "signatures: valid" in out.getvalue()  # still genuine,
    assert "revoked by chula.ac.th" in out.getvalue()  # but revoked, and by whom

    # What each node took in from its partner is in its own access log, as an import (XCH-8).
    import sqlite3

    from sseaun.v1.access_log_pb2 import AccessLogEntry

    database = network.nodes[CHULA].folder / "node.db"
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as conn:
        rows = conn.execute("SELECT entry FROM log_entries WHERE log = ?", (CHULA,)).fetchall()
    pulls = [
        e
        for e in (AccessLogEntry.FromString(bytes(r[0])) for r in rows)
        if e.method == "local:exchange-pull"
    ]
    assert pulls and all(e.caller == YNU and e.record_commitments for e in pulls)

    # 6. The other party reads each record over gRPC with its decisions and state; du does not.
    with node_client(network, YNU, sender=CHULA) as client:
        result = client.get_record(nom, purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION)
        assert result.status.state == "started"
        assert len(result.decisions) == 2  # accept, start
    with node_client(network, CHULA, sender=YNU) as client:
        result = client.get_record(la_name, purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION)
        assert result.status.in_force_version == 2
        assert len(result.record.signatures) >= 2  # home's and host's, merged
    for node in (YNU, CHULA):
        with node_client(network, node, sender=DU) as client:
            with pytest.raises(NodeError) as info:
                client.get_record(tor_name, purpose=Purpose.PURPOSE_RECOGNITION)
            assert info.value.reason is Reason.NOT_FOUND
            with pytest.raises(NodeError) as missing:
                client.get_record(tor_name + "x", purpose=Purpose.PURPOSE_RECOGNITION)
            assert missing.value.message == info.value.message  # not a party = not found
    _ = DataCategory  # consent tests follow in test_consent_live


def fails(network: LiveNetwork, institution: str, *argv: str) -> str:
    """`sseaun node records ARGV` that must fail: its error line."""
    err = io.StringIO()
    config = str(network.nodes[institution].config)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = sseaun(["node", "records", argv[0], "--config", config, *argv[1:]])
    assert status != 0, f"sseaun node records {' '.join(argv)} should have failed"
    return err.getvalue()


def _agreement_and_nomination(network: LiveNetwork) -> tuple[str, dict[str, Any]]:
    """An approved agreement and an accepted nomination between ynu and chula."""
    iia = InterInstitutionalAgreement(
        header=header(YNU, [YNU, CHULA]),
        partners=[AgreementPartner(institution_id=YNU), AgreementPartner(institution_id=CHULA)],
        subject_areas=[SubjectArea(isced_f_code="0613")],
        first_academic_year="2026/2027",
        last_academic_year="2029/2030",
        quotas=[
            MobilityQuota(
                sending_institution=YNU,
                receiving_institution=CHULA,
                mobility_type=MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
                mobilities_per_year=3,
            )
        ],
    )
    agreement = issue(network, YNU, K.AGREEMENT, iia)
    eventually(network, CHULA, agreement["name"], awaiting=[CHULA])
    act(network, CHULA, "cosign", agreement["name"])
    eventually(network, YNU, agreement["name"], state="approved")
    nomination = issue(
        network,
        YNU,
        K.NOMINATION,
        Nomination(
            header=header(YNU, [YNU, CHULA]),
            home_institution=YNU,
            host_institution=CHULA,
            agreement=ref(agreement),
            student_id=STUDENT,
            student_name=NAME,
            mobility_type=MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
            period=MobilityPeriod(
                start_date=Date(year=2027, month=1, day=10),
                end_date=Date(year=2027, month=5, day=31),
            ),
            level=CourseLevel.COURSE_LEVEL_BACHELOR,
            isced_f_code="0613",
            transfer_consent=statement(),
        ),
    )
    eventually(network, CHULA, nomination["name"], state="nominated")
    return agreement["name"], nomination


def test_illegal_transitions_and_wrong_parties_are_refused_with_the_reason(
    network: LiveNetwork,
) -> None:
    agreement, nomination = _agreement_and_nomination(network)
    nom = nomination["name"]
    # Home may not accept its own nomination; the host may not complete what has not started.
    assert "SIGNER_MISMATCH" in fails(network, YNU, "decide", nom, "--decision", "accept")
    complete = fails(network, CHULA, "decide", nom, "--decision", "complete")
    assert "ILLEGAL_TRANSITION" in complete and "nominated" in complete
    # A rejection needs a reason.
    assert "MALFORMED" in fails(network, CHULA, "decide", nom, "--decision", "reject")
    # The host is no signatory of a nomination; co-signing again what one signed changes nothing.
    assert "SIGNER_MISMATCH" in fails(network, CHULA, "cosign", nom)
    before = state_at(network, CHULA, agreement)
    assert act(network, CHULA, "cosign", agreement) == before
    # Nothing refused reached the other party: the nomination still awaits the host.
    assert eventually(network, YNU, nom, state="nominated")["awaiting"] == [CHULA]


def _consent(network: LiveNetwork, *, withdraw: str = "") -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    from sseaun.sdk.core import to_timestamp
    from sseaun.v1.records_pb2 import Consent

    consent = Consent(
        header=header(YNU, [YNU, DU, CHULA]),  # home, recipient, and the host that holds data
        home_institution=YNU,
        student_id=STUDENT,
        recipient=DU,
        purpose=Purpose.PURPOSE_RECOGNITION,
        data_categories=[DataCategory.DATA_CATEGORY_MOBILITY],
        expires_at=to_timestamp(datetime.now(UTC) + timedelta(days=30)),
        statement=statement(),
    )
    if withdraw:
        consent.header.name = withdraw
        consent.withdrawn = True
        consent.withdrawn_at.CopyFrom(to_timestamp(datetime.now(UTC)))
    return issue(network, YNU, K.CONSENT, consent)


def _du_reads(network: LiveNetwork, holder: str, name: str) -> bool:
    with node_client(network, holder, sender=DU) as client:
        try:
            client.get_record(name, purpose=Purpose.PURPOSE_RECOGNITION)
        except NodeError as exc:
            assert exc.reason is Reason.NOT_FOUND
            return False
    return True


def test_a_consent_opens_a_students_record_to_its_recipient_until_withdrawn(
    network: LiveNetwork,
) -> None:
    _, nomination = _agreement_and_nomination(network)
    nom = nomination["name"]
    assert not _du_reads(network, CHULA, nom)
    consent = _consent(network)
    eventually(network, CHULA, consent["name"], state="given")
    # Under the consent du reads the nomination at the host and at home, for that purpose only.
    assert _du_reads(network, CHULA, nom)
    assert _du_reads(network, YNU, nom)
    with node_client(network, CHULA, sender=DU) as client, pytest.raises(NodeError) as info:
        client.get_record(nom, purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION)
    assert info.value.reason is Reason.NOT_FOUND
    # Withdrawn at home: the host stops serving as soon as the withdrawal arrives there.
    _consent(network, withdraw=consent["name"])
    eventually(network, CHULA, consent["name"], state="withdrawn")
    assert not _du_reads(network, CHULA, nom)
    assert not _du_reads(network, YNU, nom)


def test_a_remote_consent_not_refreshed_for_a_day_stops_counting(network: LiveNetwork) -> None:
    import sqlite3
    from datetime import UTC, datetime, timedelta

    _, nomination = _agreement_and_nomination(network)
    consent = _consent(network)
    eventually(network, CHULA, consent["name"], state="given")
    assert _du_reads(network, CHULA, nomination["name"])
    ynu = network.nodes[YNU]
    ynu.stop()  # home is unreachable: the host cannot refresh the consent
    try:
        stale = (datetime.now(UTC) - timedelta(hours=25)).isoformat().encode()
        database = network.nodes[CHULA].folder / "node.db"
        with contextlib.closing(sqlite3.connect(database, timeout=10)) as conn, conn:
            conn.execute(
                "UPDATE settings SET value = ? WHERE key = ?", (stale, f"consent-refresh/{YNU}")
            )
        assert not _du_reads(network, CHULA, nomination["name"])
    finally:
        ynu.start()
    # Home is back: the host's next pull reaches the end of home's feed and refreshes it.
    wait_for(
        lambda: _du_reads(network, CHULA, nomination["name"]),
        timeout=60,
        interval=0.5,
        what="the consent to be refreshed",
    )


LIST_ID = "degrees-2028"


def _status_list(network: LiveNetwork, institution: str, *, revoked: bool = False) -> str:
    """Publish (a new version of) institution's status list; its public URL."""
    from datetime import UTC, datetime, timedelta

    from sseaun.sdk.core import to_timestamp
    from sseaun.v1.records_pb2 import (
        CredentialStatus,
        CredentialStatusEntry,
        CredentialStatusList,
    )

    name = records.record_name(K.CREDENTIAL_STATUS_LIST, institution, LIST_ID)
    message = CredentialStatusList(
        header=RecordHeader(issuer=institution, name=name),
        list_id=LIST_ID,
        valid_until=to_timestamp(datetime.now(UTC) + timedelta(days=7)),
        size=1024,
    )
    if revoked:
        message.entries.append(
            CredentialStatusEntry(
                index=7, status=CredentialStatus.CREDENTIAL_STATUS_REVOKED, reason="fraud"
            )
        )
    issue(network, institution, K.CREDENTIAL_STATUS_LIST, message)
    return f"{network.nodes[institution].http}/.well-known/sseaun/status/{institution}/{LIST_ID}"


def _joint_degree(network: LiveNetwork) -> tuple[Path, dict[str, str]]:
    from sseaun.v1.records_pb2 import (
        Credential,
        CredentialKind,
        CredentialStatusRef,
    )

    lists = {i: _status_list(network, i) for i in (YNU, CHULA)}
    degree = issue(
        network,
        YNU,
        K.CREDENTIAL,
        Credential(
            header=header(YNU, [YNU, CHULA]),
            kind=CredentialKind.CREDENTIAL_KIND_DEGREE,
            holder_name=NAME,
            holder_student_id=STUDENT,
            student_id_issuer=YNU,
            awarding_institutions=[YNU, CHULA],
            title=text("Bachelor of Computer Science (joint)"),
            level=CourseLevel.COURSE_LEVEL_BACHELOR,
            isced_f_code="0613",
            award_date=Date(year=2028, month=7, day=1),
            status=[
                CredentialStatusRef(
                    institution=i,
                    list_name=records.record_name(K.CREDENTIAL_STATUS_LIST, i, LIST_ID),
                    index=7,
                )
                for i in (YNU, CHULA)
            ],
        ),
    )
    eventually(network, CHULA, degree["name"], state="proposed", awaiting=[CHULA])
    act(network, CHULA, "cosign", degree["name"])
    eventually(network, YNU, degree["name"], state="issued")
    # The holder's copy: the merged envelope, as home's node serves it.
    with node_client(network, YNU, sender=CHULA) as client:
        held = client.get_record(degree["name"], purpose=Purpose.PURPOSE_CREDENTIAL_VERIFICATION)
    from sseaun.sdk.core import envelope_to_json

    path = network.root / "degree.json"
    path.write_text(envelope_to_json(held.record))
    return path, lists
