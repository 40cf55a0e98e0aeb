"""Peer sync between real nodes on loopback: `sseaun node sync` and the background sync of
`sseaun node serve`, following a partner's catalogue through its change feed.

The partner (ynu.edu.cn) holds its imported example catalogue plus records a misbehaving node
might hand out, written straight into its database before it starts: a course signed with its
transport key instead of its issuing key, a course whose payload was changed after signing, a
course of another institution's placed in its collection, and a properly signed version 2 of the
first bad course. A syncing node must store exactly the genuine records, byte for byte.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sseaun.node._config import ConfigError, NodeConfig
from sseaun.node._keys import InstitutionKeys
from sseaun.node._peer_sync import cursor_setting
from sseaun.node.store import NewRecord, SqliteStore
from sseaun.sdk.cli import main as sseaun
from sseaun.sdk.client import ClientConfig, NodeClient, NodeError
from sseaun.sdk.core import (
    KeyRing,
    ManifestTrust,
    Reason,
    catalogue,
    envelope_from_json,
)
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.catalogue_pb2 import Course
from sseaun.v1.envelope_pb2 import Envelope
from sseaun.v1.types_pb2 import CreditValue, LocalizedText
from tests.live_network import NETWORK, LiveNetwork, Row, build, set_section, stored_rows

pytestmark = pytest.mark.timeout(180)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "catalogue"
YNU, CHULA, DU = "ynu.edu.cn", "chula.ac.th", "du.ac.bd"
COURSES = f"institutions/{YNU}/courses"
PROFILE = f"institutions/{YNU}"
BAD = {
    "FAKE-TRANSPORT": "KEY_WRONG_PURPOSE",
    "FAKE-TAMPERED": "SIGNATURE_INVALID",
    "FAKE-OTHER-ISSUER": "SIGNER_MISMATCH",
}


def _course(code: str, title: str) -> Course:
    course = Course(code=code, credits=CreditValue(value="3", scheme_id="cn-credit"))
    course.titles.texts.append(LocalizedText(lang="en", text=title))
    return course


def _signed(code: str, title: str, issuer: InstitutionKeys, *, version: int = 1) -> Envelope:
    return catalogue.sign_course(
        _course(code, title),
        network_id=NETWORK,
        institution_id=issuer.institution,
        version=version,
        issued_at=datetime.now(UTC),
        signer=issuer.issuing,
    )


def _record(code: str, envelope: Envelope, *, version: int = 1) -> NewRecord:
    return NewRecord(
        name=f"{COURSES}/{code}",
        parent=COURSES,
        version=version,
        issuer=YNU,
        payload_type=envelope.payload_type,
        envelope=envelope.SerializeToString(),
        parties=(),
        deleted=False,
        issued_at=datetime.now(UTC),
    )


def _bad_records(net: LiveNetwork) -> list[NewRecord]:
    """What a misbehaving node could hold and hand out in its courses feed."""
    ynu = InstitutionKeys.load(net.nodes[YNU].folder / "keys", YNU, None)
    chula = InstitutionKeys.load(net.nodes[CHULA].folder / "keys", CHULA, None)
    wrong_key = catalogue.sign_course(
        _course("FAKE-TRANSPORT", "Signed with the transport key"),
        network_id=NETWORK,
        institution_id=YNU,
        version=1,
        issued_at=datetime.now(UTC),
        signer=ynu.transport,
    )
    tampered = _signed("FAKE-TAMPERED", "Original title", ynu)
    changed = Course.FromString(tampered.payload)
    changed.titles.texts[0].text = "Changed title"
    tampered.payload = changed.SerializeToString(deterministic=True)
    other = _signed("FAKE-OTHER-ISSUER", "Issued by another institution", chula)
    # A genuine version 2 of a course whose version 1 is not genuine: it cannot be stored
    # without its version 1 (versions are kept without gaps).
    second = _signed("FAKE-TRANSPORT", "Genuine second version", ynu, version=2)
    return [
        _record("FAKE-TRANSPORT", wrong_key),
        _record("FAKE-TAMPERED", tampered),
        _record("FAKE-OTHER-ISSUER", other),
        _record("FAKE-TRANSPORT", second, version=2),
    ]


async def _put(database: Path, records: list[NewRecord]) -> None:
    async with await SqliteStore.open(database) as store:
        await store.put_records(records)


def _import(node_config: Path, what: str, file: Path) -> None:
    argv = ["node", "import", what, "--config", str(node_config), "--file", str(file), "--quiet"]
    assert sseaun(argv) == 0


@dataclass
class SyncRun:
    status: int
    stdout: str
    stderr: str

    def counts(self, parent: str) -> dict[str, int]:
        """The counts of the summary line of one collection."""
        line = next(
            line for line in self.stdout.splitlines() if line.startswith(f"{YNU} {parent}:")
        )
        counts = {
            what: int(n)
            for n, what in re.findall(r"(\d+) (?:change\(s\) )?(received|stored|unchanged)", line)
        }
        counts["refused"] = int(re.search(r"(\d+) refused", line).group(1))  # type: ignore[union-attr]
        for reason, n in re.findall(r"([A-Z_]+): (\d+)", line):
            counts[reason] = int(n)
        return counts


def sync(config: Path, *extra: str) -> SyncRun:
    """`sseaun node sync --config CONFIG --peer ynu.edu.cn` as a child process."""
    done = subprocess.run(
        [sys.executable, "-m", "sseaun.sdk.cli", "node", "sync", "--config", str(config),
         "--peer", YNU, *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return SyncRun(done.returncode, done.stdout, done.stderr)


def genuine(rows: list[Row]) -> dict[tuple[str, int], bytes]:
    """The rows that are not among the bad records, by (name, version)."""
    return {(r.name, r.version): r.envelope for r in rows if "/FAKE-" not in r.name}


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    """ynu.edu.cn serving its profile, bad records, then its courses (so genuine records
    follow the bad ones in the feed)."""
    net = build(tmp_path_factory.mktemp("net"))
    ynu = net.nodes[YNU]
    _import(ynu.config, "profile", EXAMPLES / "ynu-profile.json")
    asyncio.run(_put(ynu.folder / "node.db", _bad_records(net)))
    _import(ynu.config, "courses", EXAMPLES / "ynu-courses.csv")
    ynu.start()
    try:
        yield net
    finally:
        ynu.stop()


def test_sync_stores_every_genuine_record_byte_for_byte(network: LiveNetwork) -> None:
    chula = network.nodes[CHULA]
    run = sync(chula.config)
    assert run.status == 0, run.stderr
    assert run.counts(PROFILE) == {"received": 1, "stored": 1, "unchanged": 0, "refused": 0}
    courses = run.counts(COURSES)
    assert courses["received"] == 13 + 4
    assert courses["stored"] == 13
    assert courses["refused"] == 4
    assert {k: courses[k] for k in (*BAD.values(), "STALE_VERSION")} == {
        "KEY_WRONG_PURPOSE": 1,
        "SIGNATURE_INVALID": 1,
        "SIGNER_MISMATCH": 1,
        "STALE_VERSION": 1,
    }
    source = network.nodes[YNU].folder / "node.db"
    copy = chula.folder / "node.db"
    for parent in (PROFILE, COURSES):
        mine = stored_rows(copy, parent)
        # Exactly the genuine records, as the bytes their issuer signed, none twice.
        assert {(r.name, r.version): r.envelope for r in mine} == genuine(
            stored_rows(source, parent)
        )
        assert len(mine) == len({(r.name, r.version) for r in mine})
    # The progress lines report each committed page; the log names reasons, never content.
    assert "page 1 committed" in run.stderr
    assert "KEY_WRONG_PURPOSE" in run.stderr
    assert "Signed with the transport key" not in run.stderr
    assert "Changed title" not in run.stderr


def test_a_second_sync_gets_exactly_the_new_versions(network: LiveNetwork, tmp_path: Path) -> None:
    chula = network.nodes[CHULA]
    assert sync(chula.config).status == 0  # up to date whatever ran before
    assert sync(chula.config).counts(COURSES) == {
        "received": 0,
        "stored": 0,
        "unchanged": 0,
        "refused": 0,
    }
    lines = (EXAMPLES / "ynu-courses.csv").read_text().splitlines()
    changed = [lines[0]]
    for line in lines[1:]:
        renamed = line.replace("Fundamentals of Programming", "Programming Fundamentals")
        changed.append(renamed.replace("Advanced Mathematics I", "Calculus I"))
    changed.append("NEW9001,新课程,A New Course,2,cn-credit,bachelor,en,SISE-CS,0613,")
    file = tmp_path / "ynu-courses-changed.csv"
    file.write_text("\n".join(changed) + "\n")
    _import(network.nodes[YNU].config, "courses", file)  # while ynu.edu.cn serves

    run = sync(chula.config)
    assert run.status == 0, run.stderr
    assert run.counts(COURSES) == {"received": 3, "stored": 3, "unchanged": 0, "refused": 0}
    assert run.counts(PROFILE)["received"] == 0
    mine = stored_rows(chula.folder / "node.db", COURSES)
    newest = {(r.name, r.version) for r in mine[-3:]}
    assert newest == {
        (f"{COURSES}/SISE1001", 2),
        (f"{COURSES}/MATH1101", 2),
        (f"{COURSES}/NEW9001", 1),
    }
    assert {(r.name, r.version): r.envelope for r in mine} == genuine(
        stored_rows(network.nodes[YNU].folder / "node.db", COURSES)
    )


def test_a_forgotten_cursor_re_reads_the_feed_without_duplicates(network: LiveNetwork) -> None:
    chula = network.nodes[CHULA]
    assert sync(chula.config).status == 0
    before = stored_rows(chula.folder / "node.db", COURSES)
    run = sync(chula.config, "--from-start")
    assert run.status == 0, run.stderr
    counts = run.counts(COURSES)
    assert counts["stored"] == 0
    assert counts["unchanged"] == len(before)
    assert stored_rows(chula.folder / "node.db", COURSES) == before


def test_a_peer_that_is_not_a_member_is_reported(network: LiveNetwork) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sseaun.sdk.cli", "node", "sync", "--config",
         str(network.nodes[CHULA].config), "--peer", "nowhere.example.org"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "nowhere.example.org: cannot sync: nowhere.example.org is not a member" in done.stderr


def _client(net: LiveNetwork, audience: str) -> NodeClient:
    keys = InstitutionKeys.load(net.tester.folder / "keys", net.tester.institution, None)
    config = ClientConfig(
        network_id=NETWORK,
        sender=net.tester.institution,
        signer=keys.transport,
        plaintext=True,
        deadline=15,
    )
    ring = KeyRing(
        ManifestTrust.bootstrap(envelope_from_json(net.manifest.read_bytes()), None).current
    )
    return NodeClient(config, ring, net.nodes[audience].target, audience)


def _wait_for(condition: object, timeout: float = 30.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_serving_node_syncs_in_the_background(network: LiveNetwork) -> None:
    """du.ac.bd serves with [sync] peers: polling, it converges; following (follow = true), it
    receives a new version within moments; it serves the records it copied; and it stops cleanly
    both times (the sync is cancelled before the store closes)."""
    du = network.nodes[DU]
    set_section(du.config, "sync", peers=[YNU], follow=False, interval_seconds=0.3)
    source = network.nodes[YNU].folder / "node.db"
    copy = du.folder / "node.db"

    def converged() -> bool:
        return all(
            {(r.name, r.version): r.envelope for r in stored_rows(copy, parent)}
            == genuine(stored_rows(source, parent))
            for parent in (PROFILE, COURSES)
        )

    du.start()
    try:
        _wait_for(converged)
        # The feed lag shows in the metrics: when each collection last caught up.
        with urllib.request.urlopen(f"{du.http}/metrics", timeout=10) as reply:
            metrics = reply.read().decode()
        assert (
            f'sseaun_sync_caught_up_timestamp_seconds{{peer="{YNU}",collection="{COURSES}"}}'
            in (metrics)
        )
    finally:
        assert du.stop() == 0
    set_section(du.config, "sync", follow=True, interval_seconds=30)
    du.start()
    try:
        _wait_for(converged)
        ynu_keys = InstitutionKeys.load(network.nodes[YNU].folder / "keys", YNU, None)
        head = stored_rows(source, COURSES)[-1]
        course = Course.FromString(Envelope.FromString(head.envelope).payload)
        course.titles.texts[0].text += " (revised)"
        newer = catalogue.sign_course(
            course,
            network_id=NETWORK,
            institution_id=YNU,
            version=head.version + 1,
            issued_at=datetime.now(UTC),
            signer=ynu_keys.issuing,
        )
        code = head.name.rpartition("/")[2]
        asyncio.run(_put(source, [_record(code, newer, version=head.version + 1)]))
        _wait_for(converged, timeout=10)
        with _client(network, DU) as node:
            try:
                served = node.get_record(head.name, purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION)
            except NodeError as exc:
                assert exc.reason is Reason.NOT_FOUND
                served = None
    finally:
        assert du.stop() == 0
    log = "".join(du.log)
    assert "Traceback" not in log
    assert "never retrieved" not in log
    # The copy is in du's store (converged above), but a node answers only for the institutions
    # it serves (spec REC-11): readers ask the issuer, or verify a copy handed on out of band.
    assert served is None


def test_the_cursor_is_kept_per_caller_and_collection(network: LiveNetwork) -> None:
    async def read() -> tuple[bytes | None, bytes | None]:
        async with await SqliteStore.open(network.nodes[CHULA].folder / "node.db") as store:
            return (
                await store.get_setting(cursor_setting(CHULA, COURSES)),
                await store.get_setting(cursor_setting(CHULA, PROFILE)),
            )

    courses, profile = asyncio.run(read())
    assert courses and profile and courses != profile


@pytest.mark.parametrize(
    ("sync_table", "problem"),
    [
        ('peers = ["ynu.edu.cn", "ynu.edu.cn"]', "sync.peers lists an institution twice"),
        ('peers = ["chula.ac.th"]', "which this node serves itself"),
        ("page_size = 0", "sync.page_size must be 1..10000"),
        ("interval_seconds = 0", "sync.interval_seconds must be more than 0"),
        ("follow = 1", "sync.follow must be true or false"),
        ('peers = "ynu.edu.cn"', "sync.peers must be a list of strings"),
    ],
)
def test_sync_options_are_checked(tmp_path: Path, sync_table: str, problem: str) -> None:
    path = tmp_path / "node.toml"
    path.write_text(
        '[node]\nnetwork_id = "n"\ninstitutions = ["chula.ac.th"]\n'
        f"[grpc]\nplaintext = true\n[sync]\n{sync_table}\n"
    )
    with pytest.raises(ConfigError, match=re.escape(problem)):
        NodeConfig.load(path)


def test_sync_options_default_to_no_peers(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(
        '[node]\nnetwork_id = "n"\ninstitutions = ["a.example"]\n[grpc]\nplaintext = true\n'
    )
    config = NodeConfig.load(path)
    assert config.sync_peers == ()
    assert not config.sync_follow
    assert config.sync_page_size >= 1 and config.sync_interval_seconds > 0


def test_two_envelopes_of_one_version_are_refused_and_kept_as_evidence(
    network: LiveNetwork,
) -> None:
    """The issuer signed two different envelopes as version 1 of one course: the copy keeps
    the one it had, refuses the other and keeps both as evidence."""
    chula = network.nodes[CHULA]
    ynu_keys = InstitutionKeys.load(network.nodes[YNU].folder / "keys", YNU, None)
    held = _signed("EQV1", "One title", ynu_keys)
    offered = _signed("EQV1", "Another title", ynu_keys)
    asyncio.run(_put(chula.folder / "node.db", [_record("EQV1", held)]))
    asyncio.run(_put(network.nodes[YNU].folder / "node.db", [_record("EQV1", offered)]))

    run = sync(chula.config)
    assert run.status == 0, run.stderr
    assert run.counts(COURSES)["EQUIVOCATION"] == 1
    assert "Another title" not in run.stderr

    async def evidence() -> list[tuple[str, tuple[bytes, ...]]]:
        async with await SqliteStore.open(chula.folder / "node.db") as store:
            return [(e.kind, e.envelopes) for e in await store.evidence()]

    assert ("record-equivocation", (offered.SerializeToString(), held.SerializeToString())) in (
        asyncio.run(evidence())
    )
    rows = [r for r in stored_rows(chula.folder / "node.db", COURSES) if r.name.endswith("/EQV1")]
    assert [r.envelope for r in rows] == [held.SerializeToString()]


def test_an_unreachable_peer_fails_the_command(network: LiveNetwork) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sseaun.sdk.cli", "node", "sync", "--config",
         str(network.nodes[CHULA].config), "--peer", DU],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"{DU} institutions/{DU}: 0 change(s) received" in done.stdout
    assert "stopped: UNAVAILABLE" in done.stdout


def test_a_peer_that_no_longer_knows_the_cursor_is_read_again_from_the_start(
    network: LiveNetwork,
) -> None:
    """ynu.edu.cn's cursors stop verifying (as after a database restored without its settings):
    the copy reads the feed again from the start, once, and nothing is stored twice."""
    chula, ynu = network.nodes[CHULA], network.nodes[YNU]
    assert sync(chula.config).status == 0
    before = stored_rows(chula.folder / "node.db", COURSES)

    async def new_secret() -> None:
        async with await SqliteStore.open(ynu.folder / "node.db") as store:
            await store.set_setting("page-token-secret", b"\x01" * 32)

    ynu.stop()
    asyncio.run(new_secret())
    ynu.start()
    run = sync(chula.config)
    assert run.status == 0, run.stderr
    assert "refused the cursor" in run.stderr
    counts = run.counts(COURSES)
    assert counts["stored"] == 0
    # Every record held comes again: unchanged, or refused again as the issuer's equivocation.
    assert counts["unchanged"] + counts.get("EQUIVOCATION", 0) == len(before)
    assert stored_rows(chula.folder / "node.db", COURSES) == before
