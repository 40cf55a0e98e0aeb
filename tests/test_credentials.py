"""Credentials for verifiers (spec CRED-5..CRED-7): `sseaun credential verify` offline, and the
node's public status endpoint on a real node.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from sseaun.node.store import NewRecord, SqliteStore
from sseaun.sdk.cli import main
from sseaun.sdk.cli._credential import check
from sseaun.sdk.core import (
    Envelope,
    KeyRing,
    ManifestTrust,
    cosign_record,
    envelope_from_json,
    envelope_to_json,
    sign_envelope,
    sign_record,
    to_timestamp,
)
from sseaun.sdk.core._records import RecordKind, record_name
from sseaun.v1.catalogue_pb2 import CourseLevel, RecordHeader
from sseaun.v1.manifest_pb2 import KeyPurpose, MemberStatus, NetworkManifest
from sseaun.v1.records_pb2 import (
    Credential,
    CredentialKind,
    CredentialStatus,
    CredentialStatusEntry,
    CredentialStatusList,
    CredentialStatusRef,
)
from sseaun.v1.types_pb2 import (
    Date,
    LocalizedText,
    MultilingualText,
    NamePart,
    NamePartKind,
    PersonName,
)
from tests.factories import NETWORK, T0, Institution, TestNetwork, delegation, public_key, seeded
from tests.live_network import LiveNetwork, build, keys_of

NET = TestNetwork()
RING = NET.keyring()
YNU, CHULA = NET.by_id("ynu.edu.cn"), NET.by_id("chula.ac.th")
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
LIST_ID = "degrees-2028"
INDEX = 7


# --- builders ------------------------------------------------------------------------------------


def _header(
    kind: RecordKind, issuer: str, rid: str, version: int, at: datetime, parties: Sequence[str]
) -> RecordHeader:
    return RecordHeader(
        network_id=NETWORK,
        name=record_name(kind, issuer, rid),
        version=version,
        issuer=issuer,
        issued_at=to_timestamp(at),
        parties=sorted(parties),
    )


def degree(
    awarding: Sequence[str] = (YNU.id,),
    *,
    version: int = 1,
    at: datetime = T0,
    title: str = "Bachelor of Computer Science",
    url: str = "",
) -> Credential:
    return Credential(
        header=_header(RecordKind.CREDENTIAL, awarding[0], "deg-0042", version, at, awarding),
        kind=CredentialKind.CREDENTIAL_KIND_DEGREE,
        holder_name=PersonName(
            full_name="Nguyễn Thị Minh Khai",
            parts=[
                NamePart(kind=NamePartKind.NAME_PART_KIND_FAMILY, value="Nguyễn"),
                NamePart(kind=NamePartKind.NAME_PART_KIND_GIVEN, value="Thị Minh Khai"),
            ],
            script="Latn",
            lang="vi",
        ),
        holder_student_id="s-2026-7f3a9c",
        student_id_issuer=awarding[0],
        awarding_institutions=list(awarding),
        title=MultilingualText(texts=[LocalizedText(lang="en", text=title)]),
        level=CourseLevel.COURSE_LEVEL_BACHELOR,
        isced_f_code="0613",
        award_date=Date(year=2028, month=7, day=1),
        status=[
            CredentialStatusRef(
                institution=a,
                list_name=record_name(RecordKind.CREDENTIAL_STATUS_LIST, a, LIST_ID),
                index=INDEX,
                url=url and f"{url}/{a}/{LIST_ID}",
            )
            for a in awarding
        ],
    )


def status_list(
    issuer: str,
    version: int = 1,
    at: datetime = T0,
    status: int = CredentialStatus.CREDENTIAL_STATUS_ACTIVE,
    *,
    valid: timedelta = 7 * DAY,
    reason: str = "academic misconduct",
) -> CredentialStatusList:
    entries = []
    if status != CredentialStatus.CREDENTIAL_STATUS_ACTIVE:
        entries = [CredentialStatusEntry(index=INDEX, status=status, reason=reason)]  # type: ignore[arg-type]
    return CredentialStatusList(
        header=_header(RecordKind.CREDENTIAL_STATUS_LIST, issuer, LIST_ID, version, at, []),
        list_id=LIST_ID,
        valid_until=to_timestamp(at + valid),
        size=1024,
        entries=entries,
    )


def signed(message: Credential | CredentialStatusList, *by: Institution) -> Envelope:
    """Signed by the first institution (checked as the builders do), co-signed by the others."""
    envelope = sign_record(message, by[0].issuing, keyring=RING)
    for inst in by[1:]:
        envelope = cosign_record(envelope, inst.issuing, keyring=RING)
    return envelope


def write(path: Path, *envelopes: Envelope) -> str:
    if len(envelopes) == 1:
        path.write_text(envelope_to_json(envelopes[0]) + "\n")
    else:
        path.write_text(json.dumps([json.loads(envelope_to_json(e)) for e in envelopes]))
    return str(path)


def manifest_file(tmp_path: Path, manifest: NetworkManifest | None = None) -> str:
    return write(tmp_path / "manifest.json", NET.sign(manifest or NET.manifest()))


def verify(
    capsys: pytest.CaptureFixture[str], *argv: str, at: datetime = T0 + HOUR
) -> tuple[int, list[str], str]:
    status = main(["credential", "verify", *argv, "--at", at.isoformat()])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


@pytest.fixture
def manifest(tmp_path: Path) -> str:
    return manifest_file(tmp_path)


# --- sseaun credential verify --------------------------------------------------------------------


def test_a_degree_with_an_active_status_list_verifies(
    tmp_path: Path, manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deg = write(tmp_path / "deg.json", signed(degree(), YNU))
    sl = write(tmp_path / "sl.json", signed(status_list(YNU.id), YNU))
    status, lines, err = verify(capsys, deg, "--manifest", manifest, "--status", sl)
    assert status == 0, (lines, err)
    assert lines[0].startswith("credential: institutions/ynu.edu.cn/credentials/deg-0042 ")
    assert "Bachelor of Computer Science" in lines[0] and "Nguyễn Thị Minh Khai" in lines[0]
    assert lines[1:] == [
        "signatures: valid (issued by ynu.edu.cn)",
        "state: issued",
        "status: fresh until 2026-11-08T00:00:00Z",
    ]
    assert err == ""
    status, out, _ = verify(capsys, deg, "--manifest", manifest, "--status", sl, "--json")
    report = json.loads("\n".join(out))
    assert status == 0 and report["ok"] is True
    assert report["signatures"] == {
        "valid": True,
        "signed_by": [YNU.id],
        "missing": [],
        "error": None,
    }
    assert report["state"] == "issued"
    assert report["status"]["fresh"] and report["status"]["fresh_until"] == "2026-11-08T00:00:00Z"
    assert report["content"]["award_date"] == "2028-07-01"


def test_a_joint_degree_needs_every_awarding_institution(
    tmp_path: Path, manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    joint = degree((YNU.id, CHULA.id))
    proposed = signed(joint, YNU)
    both = cosign_record(proposed, CHULA.issuing, keyring=RING)
    lists = [
        write(tmp_path / "ynu.json", signed(status_list(YNU.id), YNU)),
        write(tmp_path / "chula.json", signed(status_list(CHULA.id), CHULA)),
    ]
    status_args = [a for path in lists for a in ("--status", path)]
    deg = write(tmp_path / "both.json", both)
    status, lines, _ = verify(capsys, deg, "--manifest", manifest, *status_args)
    assert status == 0
    assert "signatures: valid (issued by ynu.edu.cn, chula.ac.th)" in lines
    assert "state: issued" in lines
    # Copies each institution holds, given together, merge (LC-3).
    chula_only = Envelope(payload=proposed.payload, payload_type=proposed.payload_type)
    chula_only.signatures.extend(s for s in both.signatures if s.keyid == CHULA.issuing.key_id)
    copies = write(tmp_path / "copies.json", proposed, chula_only)
    assert verify(capsys, copies, "--manifest", manifest, *status_args)[0] == 0
    # Signed by the issuer only: proposed, not issued.
    one = write(tmp_path / "one.json", proposed)
    status, lines, _ = verify(capsys, one, "--manifest", manifest, *status_args)
    assert status == 1
    assert "signatures: INVALID: not signed by chula.ac.th (signed by ynu.edu.cn)" in lines
    assert "state: proposed (awaiting chula.ac.th)" in lines


def test_a_revoked_degree_keeps_valid_signatures_but_fails(
    tmp_path: Path, manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deg = write(tmp_path / "deg.json", signed(degree(), YNU))
    v1 = signed(status_list(YNU.id), YNU)
    v2 = signed(status_list(YNU.id, 2, T0 + HOUR, CredentialStatus.CREDENTIAL_STATUS_REVOKED), YNU)
    v3 = signed(status_list(YNU.id, 3, T0 + 2 * HOUR), YNU)
    lists = write(tmp_path / "lists.json", v1, v2)
    status, lines, _ = verify(
        capsys, deg, "--manifest", manifest, "--status", lists, at=T0 + 2 * HOUR
    )
    assert status == 1
    assert "signatures: valid (issued by ynu.edu.cn)" in lines
    assert "state: revoked by ynu.edu.cn (status list version 2): academic misconduct" in lines
    assert "status: fresh until 2026-11-08T01:00:00Z" in lines
    # Revocation is final: a later list cannot lift it (CRED-5).
    later = write(tmp_path / "v3.json", v3)
    status, lines, _ = verify(
        capsys, deg, "--manifest", manifest, "--status", lists, "--status", later,
        at=T0 + 3 * HOUR,
    )  # fmt: skip
    assert status == 1 and any(line.startswith("state: revoked") for line in lines)


def test_a_suspension_is_lifted_by_a_newer_list(
    tmp_path: Path, manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deg = write(tmp_path / "deg.json", signed(degree(), YNU))
    suspended = status_list(
        YNU.id, 2, T0 + HOUR, CredentialStatus.CREDENTIAL_STATUS_SUSPENDED, reason="under review"
    )
    lists = [signed(status_list(YNU.id), YNU), signed(suspended, YNU)]
    path = write(tmp_path / "lists.json", *lists)
    status, lines, _ = verify(
        capsys, deg, "--manifest", manifest, "--status", path, at=T0 + 2 * HOUR
    )
    assert status == 1
    assert "state: suspended by ynu.edu.cn (status list version 2): under review" in lines
    lifted = write(tmp_path / "v3.json", signed(status_list(YNU.id, 3, T0 + 2 * HOUR), YNU))
    status, lines, _ = verify(
        capsys, deg, "--manifest", manifest, "--status", path, "--status", lifted,
        at=T0 + 3 * HOUR,
    )  # fmt: skip
    assert status == 0 and "state: issued" in lines


def test_a_stale_or_missing_status_list_fails_without_being_a_revocation(
    tmp_path: Path, manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    joint = signed(degree((YNU.id, CHULA.id)), YNU, CHULA)
    deg = write(tmp_path / "deg.json", joint)
    ynu = write(tmp_path / "ynu.json", signed(status_list(YNU.id), YNU))
    chula = write(tmp_path / "chula.json", signed(status_list(CHULA.id, valid=DAY), CHULA))
    args = [deg, "--manifest", manifest, "--status", ynu, "--status", chula]
    status, lines, _ = verify(capsys, *args, at=T0 + 2 * DAY)
    assert status == 1
    assert "signatures: valid (issued by ynu.edu.cn, chula.ac.th)" in lines
    assert "state: issued" in lines
    assert "status: STALE for chula.ac.th (list expired at 2026-11-02T00:00:00Z)" in lines
    status, lines, _ = verify(capsys, deg, "--manifest", manifest, "--status", ynu)
    assert status == 1
    assert "status: STALE for chula.ac.th (no status list given)" in lines
    status, lines, _ = verify(capsys, deg, "--manifest", manifest)
    assert status == 1
    assert lines[1:] == [
        "signatures: valid (issued by ynu.edu.cn, chula.ac.th)",
        "state: issued",
        "status: unknown (no status list given)",
    ]


def test_the_status_list_urls_of_the_credential_are_shown_when_the_status_is_not_fresh(
    tmp_path: Path, manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = "https://sseaun.ynu.edu.cn/.well-known/sseaun/status"
    deg = write(tmp_path / "deg.json", signed(degree(url=base), YNU))
    status, lines, _ = verify(capsys, deg, "--manifest", manifest)
    assert status == 1
    assert f"  status list of ynu.edu.cn: {base}/ynu.edu.cn/{LIST_ID}" in lines


def test_a_tampered_credential_has_invalid_signatures(
    tmp_path: Path, manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = signed(degree(), YNU)
    forged = degree(title="Doctor of Philosophy")
    tampered = Envelope(
        payload=forged.SerializeToString(deterministic=True), payload_type=good.payload_type
    )
    tampered.signatures.extend(good.signatures)
    deg = write(tmp_path / "deg.json", tampered)
    sl = write(tmp_path / "sl.json", signed(status_list(YNU.id), YNU))
    status, lines, _ = verify(capsys, deg, "--manifest", manifest, "--status", sl)
    assert status == 1
    assert lines[0].startswith("signatures: INVALID: SIGNATURE_INVALID")
    assert lines[1:] == ["state: unknown (the credential does not verify)", "status: not checked"]
    assert not any("Doctor" in line for line in lines)  # nothing unverified is shown


def test_a_status_list_signed_by_another_institution_does_not_count(
    tmp_path: Path, manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deg = write(tmp_path / "deg.json", signed(degree((YNU.id, CHULA.id)), YNU, CHULA))
    fake = status_list(CHULA.id, 9, T0, CredentialStatus.CREDENTIAL_STATUS_ACTIVE)
    fake_type = RecordKind.CREDENTIAL_STATUS_LIST.payload_type
    forged = sign_envelope(fake.SerializeToString(), fake_type, [YNU.issuing])
    ynu = write(tmp_path / "ynu.json", signed(status_list(YNU.id), YNU))
    bad = write(tmp_path / "bad.json", forged)
    status, lines, err = verify(
        capsys, deg, "--manifest", manifest, "--status", ynu, "--status", bad
    )
    assert status == 1
    assert "status: STALE for chula.ac.th (no valid status list given)" in lines
    assert "a status list was refused: SIGNER_MISMATCH" in err


def test_a_degree_of_a_former_member_still_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    left = T0 + 2 * DAY
    former = NET.manifest(2)
    for member in former.members:
        if member.institution_id == CHULA.id:
            member.status = MemberStatus.MEMBER_STATUS_FORMER
            member.left_at.CopyFrom(to_timestamp(left))
    manifest = manifest_file(tmp_path, former)
    deg = write(tmp_path / "deg.json", signed(degree((YNU.id, CHULA.id)), YNU, CHULA))
    lists = [
        write(tmp_path / "ynu.json", signed(status_list(YNU.id), YNU)),
        write(tmp_path / "chula.json", signed(status_list(CHULA.id), CHULA)),
    ]
    args = [deg, "--manifest", manifest, "--status", lists[0], "--status", lists[1]]
    status, lines, _ = verify(capsys, *args, at=T0 + 3 * DAY)
    assert status == 0, lines
    assert "signatures: valid (issued by ynu.edu.cn, chula.ac.th)" in lines
    assert "former members: chula.ac.th (left 2026-11-03T00:00:00Z)" in lines
    # A former member signs nothing new: a degree it co-signs after leaving is not issued.
    after = degree((YNU.id, CHULA.id), at=left + HOUR)
    ring = KeyRing(ManifestTrust.bootstrap(NET.sign(former), None).current)
    late = cosign_record(sign_record(after, YNU.issuing, keyring=ring), CHULA.issuing)
    report = check([late], [], ring, left + 2 * HOUR)
    assert not report.signatures_valid and report.missing == [CHULA.id]
    assert report.former_members == {CHULA.id: "2026-11-03T00:00:00Z"}


def test_delegated_issuing_keys_need_the_statements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A manifest that lists no issuing key of YNU: its issuing key is delegated (KEY-6).
    manifest = NET.manifest()
    for member in manifest.members:
        if member.institution_id == YNU.id:
            del member.keys[2]
    manifest_path = manifest_file(tmp_path, manifest)
    issuing = seeded("ynu.edu.cn/issuing-delegated")
    statement = delegation(
        YNU, [public_key(issuing, YNU.id, KeyPurpose.KEY_PURPOSE_ISSUING, not_before=T0)]
    )
    statements = tmp_path / "statements.json"
    statements.write_text(json.dumps({"statements": [json.loads(envelope_to_json(statement))]}))
    deg = write(tmp_path / "deg.json", sign_record(degree(at=T0 + HOUR), issuing))
    sl = write(tmp_path / "sl.json", sign_record(status_list(YNU.id, at=T0 + HOUR), issuing))
    args = [deg, "--manifest", manifest_path, "--status", sl]
    status, lines, _ = verify(capsys, *args, at=T0 + 2 * HOUR)
    assert status == 1 and lines[0].startswith("signatures: INVALID: KEY_UNKNOWN")
    status, lines, _ = verify(capsys, *args, "--statements", str(statements), at=T0 + 2 * HOUR)
    assert status == 0, lines
    # The delegation has expired a month later; what its key signed meanwhile still verifies.
    status, lines, _ = verify(capsys, *args, "--statements", str(statements), at=T0 + 30 * DAY)
    assert "signatures: valid (issued by ynu.edu.cn)" in lines
    assert status == 1 and any(line.startswith("status: STALE") for line in lines)


def test_bad_input_is_exit_status_2(
    tmp_path: Path, manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sl = write(tmp_path / "sl.json", signed(status_list(YNU.id), YNU))
    deg = write(tmp_path / "deg.json", signed(degree(), YNU))
    status, out, err = verify(capsys, str(tmp_path / "missing.json"), "--manifest", manifest)
    assert status == 2 and out == [] and err.startswith("error: cannot read")
    status, _, err = verify(capsys, sl, "--manifest", manifest)
    assert status == 2 and "not a credential" in err
    (tmp_path / "junk.json").write_text("{not json")
    status, _, err = verify(capsys, str(tmp_path / "junk.json"), "--manifest", manifest)
    assert status == 2 and "not JSON" in err
    status, _, err = verify(capsys, deg, "--manifest", deg)
    assert status == 2 and err.startswith("error: --manifest") and "Traceback" not in err
    status, _, err = verify(capsys, deg, "--manifest", manifest, "--pin", "00" * 32)
    assert status == 2 and "MANIFEST_PIN_MISMATCH" in err
    status, _, err = verify(
        capsys, deg, "--manifest", manifest, "--status-url", "file:///etc/passwd"
    )
    assert status == 2 and "https://" in err
    status, _, err = verify(
        capsys, deg, "--manifest", manifest, "--status-url", "http://127.0.0.1:9/x"
    )
    assert status == 2 and err.startswith("error: cannot fetch http://127.0.0.1:9/x")
    status = main(["credential", "verify", deg, "--manifest", manifest, "--at", "yesterday"])
    assert status == 2


# --- the public status endpoint on a real node ---------------------------------------------------


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> LiveNetwork:
    return build(tmp_path_factory.mktemp("credentials"))


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _issue(
    capsys: pytest.CaptureFixture[str], config: Path, kind: str, message: Message
) -> tuple[int, str, str]:
    """`sseaun node records issue --kind KIND --file F.json` as a registrar runs it."""
    path = config.parent / f"{kind}-{time.monotonic_ns()}.json"
    path.write_text(json_format.MessageToJson(message))
    argv = ["node", "records", "issue", "--config", str(config), "--kind", kind]
    status = main([*argv, "--file", str(path)])
    out, err = capsys.readouterr()
    return status, out, err


def _live_list(
    network: LiveNetwork, version: int, *, revoked: bool = False
) -> tuple[CredentialStatusList, Envelope]:
    """A status list of YNU signed with its node's issuing key, valid for a week from now."""
    now = datetime.now(UTC)
    message = CredentialStatusList(
        header=RecordHeader(
            network_id=NETWORK,
            name=record_name(RecordKind.CREDENTIAL_STATUS_LIST, YNU.id, LIST_ID),
            version=version,
            issuer=YNU.id,
            issued_at=to_timestamp(now),
        ),
        list_id=LIST_ID,
        valid_until=to_timestamp(now + 7 * DAY),
        size=1024,
    )
    if revoked:
        message.entries.append(
            CredentialStatusEntry(
                index=INDEX, status=CredentialStatus.CREDENTIAL_STATUS_REVOKED, reason="fraud"
            )
        )
    return message, sign_record(message, keys_of(network, YNU.id).issuing)


async def _put(database: Path, message: CredentialStatusList, envelope: Envelope) -> None:
    h = message.header
    async with await SqliteStore.open(database) as store:
        await store.put_records(
            [
                NewRecord(
                    name=h.name,
                    parent=h.name.rpartition("/")[0],
                    version=h.version,
                    issuer=h.issuer,
                    payload_type=envelope.payload_type,
                    envelope=envelope.SerializeToString(),
                    parties=(),
                    deleted=False,
                    issued_at=datetime.now(UTC),
                )
            ]
        )


@pytest.mark.timeout(240)
def test_the_status_endpoint_serves_only_status_lists_of_served_institutions(
    network: LiveNetwork, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = network.nodes[YNU.id]
    database = node.folder / "node.db"
    asyncio.run(_put(database, *_live_list(network, 1)))
    # The degree, issued by the registrar through the node (header filled by the node).
    cred = degree(at=datetime.now(UTC))
    cred.header.Clear()
    cred.header.name = record_name(RecordKind.CREDENTIAL, YNU.id, "deg-0042")
    status, out, err = _issue(capsys, node.config, "credentials", cred)
    assert status == 0, err
    deg = tmp_path / "deg.json"
    deg.write_text(out)  # {"name": ..., "envelope": ...} as printed: verify reads it as it is
    base = f"{node.http}/.well-known/sseaun/status"
    url = f"{base}/{YNU.id}/{LIST_ID}"
    node.start()
    try:
        status, headers, body = _get(url)
        assert status == 200, body
        envelope = envelope_from_json(body)
        assert envelope.payload_type == RecordKind.CREDENTIAL_STATUS_LIST.payload_type
        assert headers["Content-Type"].startswith("application/json")
        assert headers["Access-Control-Allow-Origin"] == "*"
        age = int(headers["Cache-Control"].rpartition("max-age=")[2])
        assert 0 < age <= 300
        assert _get(url + "?version=1")[0] == 200
        assert _get(url + "?version=2")[0] == 404
        assert _get(url + "?version=zero")[0] == 400
        # Anyone verifies the degree with the list fetched from the node.
        verify_args = ["credential", "verify", str(deg), "--manifest", str(network.manifest)]
        assert main([*verify_args, "--status-url", url]) == 0
        out, _ = capsys.readouterr()
        assert "state: issued" in out and "status: fresh until" in out
        # Nothing else is served through this path.
        for path in (
            f"/{YNU.id}/deg-0042",  # the credential's ID: no status list of that name
            f"/{YNU.id}/..%2Fcredentials%2Fdeg-0042",
            f"/{CHULA.id}/{LIST_ID}",  # an institution this node does not serve
            f"/{YNU.id}/{LIST_ID}/extra",
        ):
            status, _, body = _get(base + path)
            assert status == 404, path
            if body.startswith(b"{"):
                assert "error" in json.loads(body)
        # A revocation is a new version of the list, stored while the node runs.
        asyncio.run(_put(database, *_live_list(network, 2, revoked=True)))
        status, headers, body = _get(url)
        assert status == 200 and headers["SSEAUN-Record-Version"] == "2"
        assert main([*verify_args, "--status-url", url]) == 1
        out, _ = capsys.readouterr()
        assert "state: revoked by ynu.edu.cn (status list version 2): fraud" in out
        assert "signatures: valid (issued by ynu.edu.cn)" in out
        # Rate-limited per client address: a burst of 40, then 429 with Retry-After.
        limited = None
        for _ in range(300):
            status, headers, body = _get(url)
            if status == 429:
                limited = headers, body
                break
            assert status == 200
        assert limited is not None, "never rate-limited"
        assert int(limited[0]["Retry-After"]) >= 1
        assert "error" in json.loads(limited[1])
    finally:
        node.stop()


def test_a_registrar_issues_a_status_list_with_the_node_cli(
    network: LiveNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    message, _ = _live_list(network, 1)
    message.header.ClearField("version")
    message.header.ClearField("issued_at")
    status, _, err = _issue(capsys, network.nodes[YNU.id].config, "credentialStatusLists", message)
    assert status == 0, err
