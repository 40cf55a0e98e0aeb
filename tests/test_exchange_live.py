"""Replication without hints, hints that survive a restart, and text in the region's scripts
surviving every hop unchanged (spec XCH-3, XCH-4, LC-8)."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import unicodedata
from collections.abc import Iterator

import pytest

from sseaun.sdk.core import envelope_from_bytes, records
from sseaun.v1.catalogue_pb2 import Course
from sseaun.v1.records_pb2 import Nomination
from sseaun.v1.types_pb2 import NamePart, NamePartKind, PersonName
from tests.live_network import LiveNetwork, build, running, stored_rows, wait_for
from tests.test_mobility_live import (
    CHULA,
    YNU,
    K,
    _agreement_and_nomination,
    act,
    eventually,
    issue,
)

pytestmark = pytest.mark.timeout(300)

#: Decomposed input that NFC changes, in the scripts of the region: Bengali ো (U+09C7 U+09BE),
#: Burmese ဦ (U+1025 U+102E), a CJK compatibility ideograph (U+F900 → U+8C48), Vietnamese
#: (e + combining marks), and Thai (unchanged by NFC).
BENGALI = "ঢাকা বিশ্ববিদ্যাল\u09c7\u09be"
BURMESE = "\u1025\u102e\u1038 အောင်"
CHINESE = "\uf900程序设计"
THAI = "การเขียนโปรแกรม"
VIETNAMESE = "Nguye\u0302\u0303n"


def test_the_inputs_really_change_under_nfc() -> None:
    for text in (BENGALI, BURMESE, CHINESE, VIETNAMESE):
        assert unicodedata.normalize("NFC", text) != text
    assert unicodedata.normalize("NFC", THAI) == THAI


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    net = build(tmp_path_factory.mktemp("exchange"))
    for node in net.nodes.values():
        # Every hint is dropped: partners learn of changes only by pulling every half second.
        node.configure(
            **{
                "exchange.hints": False,
                "exchange.interval_seconds": 0.5,
                "log.witness_interval_seconds": 0,
            }
        )
    with running(net):
        yield net


def _outbox(network: LiveNetwork, institution: str) -> list[tuple[str, int, object]]:
    database = network.nodes[institution].folder / "node.db"
    uri = database.resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
        rows = conn.execute("SELECT recipient, attempts, delivered_at FROM outbox").fetchall()
    return [(str(r), int(a), d) for r, a, d in rows]


def test_reconciliation_through_the_feeds_alone_converges(network: LiveNetwork) -> None:
    agreement, nomination = _agreement_and_nomination(network)
    act(network, CHULA, "decide", nomination["name"], "--decision", "accept")
    eventually(network, YNU, nomination["name"], state="accepted")
    eventually(network, YNU, agreement, state="approved")
    # Hints were queued and dropped, never sent: the pulls alone carried every change.
    assert _outbox(network, YNU) and all(d is not None for _, _, d in _outbox(network, YNU))


def test_names_and_titles_in_the_regions_scripts_survive_every_hop(network: LiveNetwork) -> None:
    # A course catalogue imported with decomposed titles, read by a partner through its feed.
    csv = network.root / "scripts.csv"
    csv.write_text(
        "code,title:bn,title:my,title:zh-Hans,title:th,credits,credit_scheme,level,languages,"
        "unit,isced_f\n"
        f"NFC101,{BENGALI},{BURMESE},{CHINESE},{THAI},3,cn-credit,bachelor,en,SISE,0613\n",
        encoding="utf-8",
    )
    ynu, chula = network.nodes[YNU], network.nodes[CHULA]
    for argv in (
        ["node", "import", "courses", "--config", str(ynu.config), "--file", str(csv)],
        ["node", "sync", "--config", str(chula.config), "--peer", YNU, "--quiet"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "sseaun.sdk.cli", *argv],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    parent = f"institutions/{YNU}/courses"
    source = {r.name: r.envelope for r in stored_rows(ynu.folder / "node.db", parent)}
    copy = {r.name: r.envelope for r in stored_rows(chula.folder / "node.db", parent)}
    name = f"{parent}/NFC101"
    assert copy[name] == source[name]  # byte for byte: the issuer's signature travels on
    course = Course.FromString(envelope_from_bytes(copy[name]).payload)
    titles = {t.lang: t.text for t in course.titles.texts}
    assert titles == {"bn": BENGALI, "my": BURMESE, "zh-Hans": CHINESE, "th": THAI}
    for got, given in zip(titles.values(), (BENGALI, BURMESE, CHINESE, THAI), strict=True):
        assert unicodedata.normalize("NFC", got) == unicodedata.normalize("NFC", given)

    # A nomination whose student has a decomposed Burmese name reaches the host unchanged.
    _, nomination = _agreement_and_nomination(network)
    envelope = envelope_from_bytes(
        next(
            r.envelope
            for r in stored_rows(chula.folder / "node.db", f"institutions/{YNU}/nominations")
            if r.name == nomination["name"]
        )
    )
    held = Nomination.FromString(envelope.payload)
    assert held.student_name.full_name == "李明"  # the fixture's name, stored as given
    burmese = PersonName(
        full_name=BURMESE,
        parts=[NamePart(kind=NamePartKind.NAME_PART_KIND_GIVEN, value=BURMESE)],
        script="Mymr",
        lang="my",
    )
    renamed = Nomination()
    renamed.CopyFrom(held)
    renamed.header.Clear()
    renamed.header.name = nomination["name"]
    renamed.header.issuer = YNU
    renamed.student_name.CopyFrom(burmese)
    issue(network, YNU, K.NOMINATION, renamed)
    state = eventually(network, CHULA, nomination["name"], latest_version=2)
    assert state["awaiting"] == [CHULA]
    rows = stored_rows(chula.folder / "node.db", f"institutions/{YNU}/nominations")
    version2 = next(r for r in rows if r.name == nomination["name"] and r.version == 2)
    at_home = next(
        r
        for r in stored_rows(ynu.folder / "node.db", f"institutions/{YNU}/nominations")
        if r.name == nomination["name"] and r.version == 2
    )
    assert version2.envelope == at_home.envelope
    stored_name = Nomination.FromString(envelope_from_bytes(version2.envelope).payload)
    assert stored_name.student_name.full_name == BURMESE  # as given, not normalised
    assert records.text_equal(
        stored_name.student_name.full_name, unicodedata.normalize("NFC", BURMESE)
    )


def test_hints_wait_in_the_outbox_across_a_restart(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    net = build(tmp_path_factory.mktemp("outbox"))
    for node in net.nodes.values():
        node.configure(**{"exchange.interval_seconds": 0, "log.witness_interval_seconds": 0})
    with running(net, YNU):
        agreement, _ = _issue_agreement_only(net)
        # chula is down: the hint cannot be delivered and is tried again later.
        wait_for(lambda: any(a > 0 for _, a, _ in _outbox(net, YNU)), timeout=30, interval=0.3)
    pending = [row for row in _outbox(net, YNU) if row[2] is None]
    assert pending and pending[0][0] == CHULA  # still queued after ynu stopped
    with running(net, YNU, CHULA):
        # chula pulls only on hints here (interval 0): the restarted ynu delivers the old one.
        eventually(net, CHULA, agreement, awaiting=[CHULA])
        wait_for(
            lambda: all(d is not None for _, _, d in _outbox(net, YNU)), timeout=60, interval=0.5
        )


def _issue_agreement_only(network: LiveNetwork) -> tuple[str, dict[str, object]]:
    from sseaun.v1.records_pb2 import (
        AgreementPartner,
        InterInstitutionalAgreement,
        MobilityQuota,
        MobilityType,
        SubjectArea,
    )
    from tests.test_mobility_live import header

    issued = issue(
        network,
        YNU,
        K.AGREEMENT,
        InterInstitutionalAgreement(
            header=header(YNU, [YNU, CHULA]),
            partners=[
                AgreementPartner(institution_id=YNU),
                AgreementPartner(institution_id=CHULA),
            ],
            subject_areas=[SubjectArea(isced_f_code="0613")],
            first_academic_year="2026/2027",
            last_academic_year="2027/2028",
            quotas=[
                MobilityQuota(
                    sending_institution=YNU,
                    receiving_institution=CHULA,
                    mobility_type=MobilityType.MOBILITY_TYPE_STUDENT_STUDIES,
                    mobilities_per_year=1,
                )
            ],
        ),
    )
    return str(issued["name"]), issued
