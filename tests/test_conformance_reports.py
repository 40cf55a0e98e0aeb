"""The conformance suite's shell: reports, the exit rule, requirement coverage, setup of the
auditor's test institutions, the vectors command, and `sseaun conformance run` against a live
node."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sseaun.conformance._context import Context, load_auditors
from sseaun.conformance._framework import AREAS, CheckSpec, Outcome, Result
from sseaun.conformance._reports import (
    REPORT_FILES,
    RunInfo,
    console_summary,
    exit_code,
    html_report,
    json_report,
    junit_case_name,
    junit_xml,
    read_json_report,
)
from sseaun.conformance._requirements import (
    REQUIREMENTS_JSON,
    Requirement,
    SpecFormatError,
    load_requirements,
    parse_spec,
    render_json,
    uncovered_must,
)
from sseaun.conformance._requirements import (
    main as requirements_main,
)
from sseaun.conformance._vector_files import VECTORS
from sseaun.sdk.cli import main as sseaun
from sseaun.sdk.core import ManifestTrust, envelope_from_json

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "spec"
#: Needs escaping in every format: markup, quotes, an entity, a terminal escape, a NUL, a bidi
#: override and text in the region's scripts.
NASTY = "<script>alert(\"x\")</script> & 'q' \x1b[31mred\x00 \u202eevil 云南大学\nsecond line"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = sseaun(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


async def _never(_: Context) -> None:
    raise AssertionError("not run")


def spec(
    id: str, area: str, requirements: tuple[str, ...], level: str = "MUST", title: str = ""
) -> CheckSpec:
    return CheckSpec(id, area, title or f"title of {id}", requirements, level, _never)  # type: ignore[arg-type]


def sample() -> list[Result]:
    """One result per outcome, MUST and SHOULD, in three areas, with details that need escaping."""
    return [
        Result(spec("env-good", "envelope", ("ENV-1",)), Outcome.PASSED, "", 0.01),
        Result(
            spec("auth-replayed-nonce", "auth", ("AUTH-5", "AUTH-6"), title="Replays <refused>"),
            Outcome.FAILED,
            "accepted a replayed nonce: " + NASTY,
            0.25,
        ),
        Result(
            spec("auth-rate-limit", "auth", ("AUTH-19",), "SHOULD"),
            Outcome.FAILED,
            "no limit",
            1.5,
        ),
        Result(
            spec("log-lifecycle", "log", ("LOG-3",)), Outcome.SKIPPED, "no adapter " + NASTY, 0.0
        ),
        Result(
            spec("log-checkpoint", "log", ("LOG-7",)),
            Outcome.ERROR,
            "KeyError: 'size' " + NASTY,
            0.002,
        ),
    ]


def info() -> RunInfo:
    return RunInfo(
        target="127.0.0.1:5000",
        audience="ynu.edu.cn",
        network_id="sseaun-test",
        manifest_version=3,
        manifest_digest="ab" * 32,
        started=datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
        seconds=2.5,
        only=("AUTH-5",),
        adapter="sseaun node records --config <node.toml>",
        auditors=("auditor-1.sseaun-test.example",),
    )


# --- reports ------------------------------------------------------------------------------------


def test_console_summary_counts_per_area_and_lists_failures_with_ids_level_and_detail() -> None:
    text = console_summary(sample(), info())
    lines = text.splitlines()
    assert "ynu.edu.cn" in lines[0] and "127.0.0.1:5000" in lines[0]
    header = next(line for line in lines if line.startswith("area"))
    assert header.split()[1:] == ["passed", "failed", "skipped", "error"]
    rows = {line[: line.index("  ")]: line.split()[-4:] for line in lines if "  " in line}
    assert rows[AREAS["envelope"]] == ["1", "0", "0", "0"]
    assert rows[AREAS["auth"]] == ["0", "2", "0", "0"]
    assert rows[AREAS["log"]] == ["0", "0", "1", "1"]
    assert next(line for line in lines if line.startswith("total")).split()[1:] == [
        "1",
        "2",
        "1",
        "1",
    ]
    failure = next(line for line in lines if line.startswith("FAILED auth-replayed-nonce"))
    assert "[AUTH-5, AUTH-6]" in failure and "MUST" in failure
    assert any(line.startswith("FAILED auth-rate-limit [AUTH-19] SHOULD") for line in lines)
    assert any(line.startswith("ERROR log-checkpoint [LOG-7] MUST") for line in lines)
    assert any(line.startswith("SKIPPED log-lifecycle [LOG-3] MUST") for line in lines)
    observed = lines[lines.index(failure) + 1]
    assert observed.startswith("  observed: accepted a replayed nonce: <script>")
    assert "云南大学" in text and "    second line" in text
    # The node's text cannot drive the auditor's terminal.
    assert "\x1b" not in text and "\x00" not in text and "\u202e" not in text
    assert "\\x1b[31m" in text and "\\u202e" in text
    assert lines[-1] == (
        "result: FAIL: 2 MUST check(s) failed or errored; 1 SHOULD check(s) failed or errored; "
        "1 MUST check(s) skipped (not tested) (exit 1)"
    )


def test_console_summary_of_a_clean_run_and_of_none() -> None:
    good = [r for r in sample() if r.outcome is Outcome.PASSED]
    assert console_summary(good).splitlines()[-1].startswith("result: PASS")
    assert "Failures" not in console_summary(good)
    assert console_summary([]).splitlines()[-1] == "result: no checks ran (exit 0)"


def test_json_report_round_trips_every_result_and_the_run() -> None:
    results, run_info = sample(), info()
    text = json_report(results, run_info)
    document = json.loads(text)
    assert document["format"] == "sseaun-conformance-report/1"
    assert document["verdict"]["exit_code"] == 1
    assert document["counts"]["areas"]["log"] == {
        "title": AREAS["log"],
        "passed": 0,
        "failed": 0,
        "skipped": 1,
        "error": 1,
    }
    assert [r["outcome"] for r in document["results"]] == [r.outcome.value for r in results]
    assert read_json_report(text) == (run_info, results)
    assert read_json_report(json_report(results)) == (None, results)
    with pytest.raises(ValueError, match="not a"):
        read_json_report('{"format": "other"}')


def test_json_report_survives_a_lone_surrogate_in_a_detail() -> None:
    result = Result(spec("env-x", "envelope", ("ENV-1",)), Outcome.FAILED, "bad \udc80 byte", 0.1)
    text = json_report([result])
    text.encode("utf-8")
    assert read_json_report(text)[1] == [result]


def test_junit_xml_parses_with_a_suite_per_area_and_a_case_per_check() -> None:
    results = sample()
    root = ET.fromstring(junit_xml(results, info()))
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "5",
        "2",
        "1",
        "1",
    )
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["envelope", "auth", "log"]
    cases = root.findall("testsuite/testcase")
    assert len(cases) == len(results)
    assert [c.get("name") for c in cases] == [
        "env-good [ENV-1]",
        "auth-replayed-nonce [AUTH-5, AUTH-6]",
        "auth-rate-limit [AUTH-19]",
        "log-lifecycle [LOG-3]",
        "log-checkpoint [LOG-7]",
    ]
    assert [c.get("name") for c in cases] == [junit_case_name(r.spec) for r in results]
    for suite in suites:
        assert {c.get("classname") for c in suite.findall("testcase")} == {suite.get("name")}
    by_name = {c.get("name"): c for c in cases}
    assert list(by_name["env-good [ENV-1]"]) == []
    failure = by_name["auth-replayed-nonce [AUTH-5, AUTH-6]"].find("failure")
    assert failure is not None and failure.text is not None
    assert "<script>alert(\"x\")</script> & 'q'" in failure.text
    assert "level: MUST" in failure.text and "requirements: AUTH-5, AUTH-6" in failure.text
    assert "\\x1b[31mred\\x00" in failure.text
    assert (failure.get("message") or "").startswith("accepted a replayed nonce")
    assert by_name["auth-rate-limit [AUTH-19]"].find("failure") is not None
    skipped = by_name["log-lifecycle [LOG-3]"].find("skipped")
    assert skipped is not None and "no adapter" in (skipped.get("message") or "")
    error = by_name["log-checkpoint [LOG-7]"].find("error")
    assert error is not None and "KeyError" in (error.text or "")
    auth = suites[1]
    assert (auth.get("tests"), auth.get("failures"), auth.get("errors")) == ("2", "2", "0")


def test_html_report_is_self_contained_escaped_and_summarised() -> None:
    page = html_report(sample(), info())
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page and "<style>" in page
    assert "src=" not in page and "http://" not in page and "https://" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;q&#x27;" in page
    assert "Replays &lt;refused&gt;" in page
    assert "&lt;node.toml&gt;" in page  # the run's own values are escaped too
    assert "\x1b" not in page and "\x00" not in page and "\u202e" not in page
    assert "云南大学" in page
    assert "<h2>Summary</h2>" in page
    for area in ("envelope", "auth", "log"):
        assert f'<h2 id="area-{area}">' in page
    assert page.count('<tr class="') == 5
    assert '<tr class="failed"><td class="outcome">failed</td>' in page
    assert "AUTH-5, AUTH-6" in page and "SHOULD" in page
    assert "FAIL: 2 MUST check(s) failed or errored" in page
    # It parses as (X)HTML-like markup with balanced tables.
    assert page.count("<table>") == page.count("</table>") == 4


def test_exit_code_is_1_only_when_a_must_check_failed_or_errored() -> None:
    passed, must_failed, should_failed, skipped, errored = sample()
    assert exit_code([]) == 0
    assert exit_code([passed, skipped]) == 0
    assert exit_code([passed, should_failed]) == 0
    assert exit_code([passed, must_failed]) == 1
    assert exit_code([errored]) == 1
    should_error = Result(spec("x-y", "auth", ("AUTH-19",), "SHOULD"), Outcome.ERROR, "boom", 0.0)
    assert exit_code([should_error]) == 0


# --- requirements -------------------------------------------------------------------------------


def test_the_spec_parses_into_requirements_with_levels_titles_and_chapters() -> None:
    requirements = parse_spec(SPEC)
    assert len(requirements) > 100
    assert requirements["AUTH-5"] == Requirement("MUST", "Order of request checks", "auth.md")
    assert requirements["LOG-12"].level == "SHOULD"
    assert requirements["ENV-2"].chapter == "envelope.md"
    assert requirements["MAN-16"].title == "One set of bytes per version"
    assert {"ENV-1", "KEY-9", "PAGE-8", "FEED-11", "LC-1", "CONSENT-7", "XCH-8"} <= set(
        requirements
    )
    # The tag right after the title marks a requirement; inside its text, only that sentence.
    not_wire = {i for i, r in requirements.items() if not r.wire_testable}
    assert {"REC-10", "FEED-4", "LOG-12", "LOG-13", "XCH-5"} <= not_wire
    assert requirements["LOG-3"].wire_testable and requirements["XCH-3"].wire_testable
    # Chapters in the README's order, numbers in order within a prefix.
    ids = list(requirements)
    assert ids[0] == "ENV-1" and ids.index("ENV-10") == ids.index("ENV-9") + 1
    assert ids.index("MAN-16") == ids.index("MAN-15") + 1


def test_the_parser_refuses_a_malformed_requirement(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\n**A-1** (MUST) *Fine.* Text.\n\n**A-2** MUST no title\n")
    with pytest.raises(SpecFormatError, match=r"a\.md:5"):
        parse_spec(tmp_path)
    (tmp_path / "a.md").write_text("**A-1** (MUST) *One.*\n\n**A-1** (SHOULD) *Two.*\n")
    with pytest.raises(SpecFormatError, match="twice"):
        parse_spec(tmp_path)


def test_requirements_json_is_in_sync_with_docs_spec() -> None:
    committed = REQUIREMENTS_JSON.read_text(encoding="utf-8")
    fresh = render_json(parse_spec(SPEC))
    assert committed == fresh, "run `python -m sseaun.conformance._requirements` and commit"
    assert load_requirements() == parse_spec(SPEC)


def test_the_generator_check_mode_catches_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "requirements.json"
    assert requirements_main(["--out", str(out)]) == 0
    assert requirements_main(["--check", "--out", str(out)]) == 0
    out.write_text(out.read_text().replace('"MUST"', '"SHOULD"', 1))
    assert requirements_main(["--check", "--out", str(out)]) == 1
    assert "stale" in capsys.readouterr().err


def test_uncovered_must_names_wire_testable_must_requirements_without_a_check() -> None:
    requirements = {
        "A-1": Requirement("MUST", "covered", "a.md"),
        "A-2": Requirement("MUST", "uncovered", "a.md"),
        "A-3": Requirement("MUST", "not testable", "a.md", wire_testable=False),
        "A-4": Requirement("SHOULD", "optional", "a.md"),
        "B-1": Requirement("MUST", "also uncovered", "b.md"),
    }
    specs = [spec("a-one", "auth", ("A-1", "Z-9")), spec("a-four", "auth", ("A-4",), "SHOULD")]
    assert uncovered_must(requirements, specs) == ["A-2", "B-1"]
    assert uncovered_must(requirements, []) == ["A-1", "A-2", "B-1"]
    assert uncovered_must({}, specs) == []


def test_requirements_command_lists_every_requirement_with_its_checks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "conformance", "requirements", "--json")
    assert status == 0
    document = json.loads(out)
    rows = {r["id"]: r for r in document["requirements"]}
    assert len(rows) == len(load_requirements())
    assert rows["AUTH-5"]["level"] == "MUST" and rows["LOG-12"]["level"] == "SHOULD"
    assert rows["LOG-12"]["wire_testable"] is False and rows["LOG-12"]["uncovered_must"] is False
    assert set(document["uncovered_must"]) == {i for i, r in rows.items() if r["uncovered_must"]}
    assert all(r["checks"] == [] for r in rows.values() if r["uncovered_must"])
    status, out, _ = run(capsys, "conformance", "requirements")
    assert status == 0 and out.splitlines()[0].split()[:3] == ["ID", "level", "title"]
    assert any(line.startswith("AUTH-5 ") for line in out.splitlines())


# --- setup --------------------------------------------------------------------------------------


def test_setup_makes_keys_and_join_requests_that_add_member_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "auditor"
    status, text, _ = run(
        capsys, "conformance", "setup", "--out", str(out), "--network-id", "sseaun-test",
        "--institutions", "3",
    )  # fmt: skip
    assert status == 0, text
    ids = [f"auditor-{i}.sseaun-test.example" for i in (1, 2, 3)]
    for institution in ids:
        folder = out / "keys" / institution
        for role in ("root", "transport", "issuing", "log"):
            assert (folder / f"{role}.private.pem").stat().st_mode & 0o777 == 0o600
            assert (folder / f"{role}.public.pem").read_text().startswith("-----BEGIN PUBLIC")
        assert f"--join-request {out / 'join-requests' / institution}.json" in text
    auditors = load_auditors(out / "keys")
    assert [a.institution for a in auditors] == ids

    # A test network's governance adds them to a manifest.
    assert run(capsys, "keys", "generate", "--out", str(tmp_path / "gov"), "--name", "g")[0] == 0
    draft, manifest = tmp_path / "draft.json", tmp_path / "manifest.json"
    status, _, err = run(
        capsys, "manifest", "init", "--network-id", "sseaun-test", "--threshold", "1",
        f"--governance={tmp_path}/gov/g.public.pem=ynu.edu.cn", "--out", str(draft),
    )  # fmt: skip
    assert status == 0, err
    for institution in ids:
        request = out / "join-requests" / f"{institution}.json"
        status, _, err = run(
            capsys, "manifest", "add-member", "--in", str(draft), "--join-request", str(request),
            "--test-institution",
        )  # fmt: skip
        assert status == 0, err
    status, _, err = run(
        capsys, "manifest", "sign", "--in", str(draft), "--key", f"{tmp_path}/gov/g.private.pem",
        "--out", str(manifest),
    )  # fmt: skip
    assert status == 0, err
    trusted = ManifestTrust.bootstrap(envelope_from_json(manifest.read_bytes()), None).current
    members = {m.institution_id: m for m in trusted.manifest.members}
    assert set(members) == set(ids)
    for auditor in auditors:
        member = members[auditor.institution]
        assert member.test_institution and member.country == "ZZ" and not member.endpoints
        listed = {k.key_id for k in member.keys}
        assert {auditor.root.key_id, auditor.transport.key_id, auditor.issuing.key_id} <= listed
        assert auditor.log.key_id in listed

    # Never overwrites test keys; bad input is a one-line error with status 2.
    again = ("conformance", "setup", "--out", str(out), "--network-id", "sseaun-test")
    status, _, err = run(capsys, *again)
    assert status == 2 and "refusing to overwrite" in err and err.count("\n") == 1
    status, _, err = run(capsys, "conformance", "setup", "--out", str(tmp_path / "x"),
                         "--network-id", "Bad Network")  # fmt: skip
    assert status == 2 and "--network-id" in err


# --- vectors ------------------------------------------------------------------------------------


def test_vectors_self_agrees_with_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "conformance", "vectors", "--self")
    assert status == 0, out
    index = json.loads((VECTORS / "index.json").read_text())
    cases = len(index["envelopes"]) + len(index["manifests"]) + len(index["requests"])
    cases += len(json.loads((VECTORS / "pae.json").read_text())["vectors"])
    cases += len(json.loads((VECTORS / "keys" / "keys.json").read_text())["keys"])
    assert out.splitlines()[-1].endswith(f"{cases} of {cases} case(s) agree with the vectors")
    assert "ok         envelopes/tampered-payload" in out


def test_vectors_dir_reports_a_wrong_missing_or_unreadable_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "impl"
    status, _, _ = run(capsys, "conformance", "vectors", "--self", "--write", str(outputs))
    assert status == 0
    assert json.loads((outputs / "pae" / "dsse-spec.json").read_text())["pae_hex"].startswith(
        "445353457631"
    )
    status, out, _ = run(capsys, "conformance", "vectors", "--dir", str(outputs), "--quiet")
    assert status == 0 and out.count("\n") == 1

    wrong = outputs / "envelopes" / "tampered-payload.json"
    assert json.loads(wrong.read_text()) == {"valid": False, "reason": "SIGNATURE_INVALID"}
    wrong.write_text(json.dumps({"valid": False, "reason": "KEY_UNKNOWN", "extra": 1}))
    steps = outputs / "manifests" / "rollback.json"
    document = json.loads(steps.read_text())
    document["steps"][-1]["current_version"] = 99
    steps.write_text(json.dumps(document))
    (outputs / "requests" / "valid.json").unlink()
    (outputs / "keys" / "gov-ynu.json").write_text("{not json")
    status, out, _ = run(capsys, "conformance", "vectors", "--dir", str(outputs))
    assert status == 1
    lines = out.splitlines()
    at = lines.index("differs    envelopes/tampered-payload")
    assert lines[at + 1] == '    reason: expected "SIGNATURE_INVALID", got "KEY_UNKNOWN"'
    assert any(line.startswith("differs    manifests/rollback") for line in lines)
    assert any("current_version: expected" in line and "got 99" in line for line in lines)
    assert "missing    requests/valid" in lines
    assert "unreadable keys/gov-ynu" in lines
    assert "ok         envelopes/valid-single-signature" in lines
    assert "2 differs, 1 missing, 1 unreadable" in lines[-1]

    # A section at a time: an implementation of PAE alone checks just that.
    status, out, _ = run(
        capsys, "conformance", "vectors", "--dir", str(outputs), "--section", "pae", "--quiet"
    )
    assert status == 0


def test_vectors_refuses_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "conformance", "vectors", "--dir", str(tmp_path / "none"))
    assert status == 2 and "not a folder" in err
    status, _, err = run(capsys, "conformance", "vectors", "--dir", str(tmp_path), "--write", "x")
    assert status == 2 and "--write" in err


# --- the suite talks over the wire only ----------------------------------------------------------


def test_the_suite_loads_no_module_of_the_node() -> None:
    code = (
        "import sys\n"
        "from sseaun.conformance import _cli, _reports, _requirements, _setup, _vector_files\n"
        "from sseaun.conformance._framework import checks\n"
        "checks()\n"
        "print(','.join(m for m in sys.modules if m.startswith('sseaun.node')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


# --- `sseaun conformance run` against a live node ------------------------------------------------


def test_run_refuses_unusable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keys").mkdir()
    base = ("conformance", "run", "--target", "127.0.0.1:1", "--plaintext")
    status, _, err = run(capsys, *base, "--manifest", str(tmp_path / "m.json"),
                         "--auditor-keys", str(tmp_path / "keys"))  # fmt: skip
    assert status == 2 and "no auditor institution" in err
    status, _, err = run(capsys, *base, "--manifest", "m", "--auditor-keys", "k",
                         "--only", "no-such-check")  # fmt: skip
    assert status == 2 and "no-such-check" in err
    status, _, err = run(capsys, *base, "--manifest", "m", "--auditor-keys", "k", "--area", "x")
    assert status == 2 and "unknown x" in err
    assert all("Traceback" not in e for e in (err,))


@pytest.mark.timeout(600)
def test_run_against_a_live_node_writes_every_report_and_follows_the_exit_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conformance_network import AUDITED, audited_network

    with audited_network(tmp_path / "net") as net:
        keys = net.tester.folder / "keys"
        target = net.nodes[AUDITED].target
        # Auditor keys the manifest does not list are refused before any call.
        strangers = tmp_path / "strangers"
        assert run(capsys, "conformance", "setup", "--out", str(strangers),
                   "--network-id", "sseaun-test")[0] == 0  # fmt: skip
        status, _, err = run(
            capsys, "conformance", "run", "--target", target, "--manifest", str(net.manifest),
            "--auditor-keys", str(strangers / "keys"), "--plaintext",
        )  # fmt: skip
        assert status == 2 and "not a member" in err and err.count("\n") == 1

        reports = tmp_path / "reports"
        status, out, err = run(
            capsys, "conformance", "run", "--target", target, "--manifest", str(net.manifest),
            "--auditor-keys", str(keys), "--plaintext", "--report-dir", str(reports),
        )  # fmt: skip
    assert "Traceback" not in err
    assert status in (0, 1), err
    assert f"SSEAUN conformance of {AUDITED} at {target}" in out
    # With the node stopped: a one-line usage error, no report.
    status_stopped, _, err = run(
        capsys, "conformance", "run", "--target", target, "--manifest", str(net.manifest),
        "--auditor-keys", str(keys), "--plaintext", "--deadline", "1",
        "--report-dir", str(tmp_path / "none"),
    )  # fmt: skip
    assert status_stopped == 2 and f"cannot reach {target}" in err and err.count("\n") == 1
    assert not (tmp_path / "none" / "report.json").exists()
    for name in REPORT_FILES.values():
        assert (reports / name).is_file(), name
    run_info, results = read_json_report((reports / "report.json").read_text())
    assert run_info is not None and run_info.audience == AUDITED
    assert run_info.auditors == ("tester.sseaun-test.example",)
    assert status == exit_code(results)
    root = ET.fromstring((reports / "junit.xml").read_text())
    assert len(root.findall("testsuite/testcase")) == len(results)
    assert (reports / "summary.txt").read_text() in out
    assert "<script" not in (reports / "report.html").read_text()
    if results:
        first = results[0]
        assert f"{first.outcome.value:<7} {first.spec.id}" in out
