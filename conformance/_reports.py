"""Reports of a conformance run: a console summary, JSON, JUnit XML and a self-contained HTML page.

Every report says, per area, how many checks passed, failed, were skipped or errored, and for each
check its ID, the requirement IDs it tests, its level and what was observed. The run's verdict is
the exit code: 1 when a MUST check failed or errored, else 0 (a SHOULD check that fails is
reported, not fatal).

The details come from the node under test (error messages, observed values), so every report
treats them as untrusted text: control and bidirectional-override characters are shown as escapes
in text, XML and HTML, and HTML is escaped throughout (no scripts, no external files).
"""

from __future__ import annotations

import html
import json
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from ._framework import AREAS, CheckSpec, Outcome, Result

__all__ = [
    "FORMAT",
    "REPORT_FILES",
    "RunInfo",
    "console_summary",
    "counts",
    "exit_code",
    "html_report",
    "json_report",
    "junit_case_name",
    "junit_xml",
    "read_json_report",
    "suite_version",
    "write_reports",
]

#: The identifier of the JSON report's format (changes only incompatibly).
FORMAT = "sseaun-conformance-report/1"
#: The files write_reports writes, by kind.
REPORT_FILES = {
    "summary": "summary.txt",
    "json": "report.json",
    "junit": "junit.xml",
    "html": "report.html",
}
_ORDER = (Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED, Outcome.ERROR)
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)}


def suite_version() -> str:
    try:
        return metadata.version("sseaun")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class RunInfo:
    """What was tested, how and when."""

    target: str
    audience: str
    network_id: str
    manifest_version: int
    manifest_digest: str
    started: datetime
    seconds: float
    level: str = "should"
    only: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    adapter: str | None = None
    auditors: tuple[str, ...] = ()
    suite_version: str = field(default_factory=suite_version)


# --- the rule and the counts --------------------------------------------------------------------


def _fatal(result: Result) -> bool:
    return result.spec.level == "MUST" and result.outcome in (Outcome.FAILED, Outcome.ERROR)


def exit_code(results: Iterable[Result]) -> int:
    """1 if any MUST check failed or errored, else 0."""
    return 1 if any(_fatal(r) for r in results) else 0


def _areas_of(results: Iterable[Result]) -> list[str]:
    present = {r.spec.area for r in results}
    return [a for a in AREAS if a in present] + sorted(present - set(AREAS))


def counts(results: Sequence[Result]) -> dict[str, dict[Outcome, int]]:
    """Per area with results (in AREAS order): how many checks had each outcome."""
    table = {area: dict.fromkeys(_ORDER, 0) for area in _areas_of(results)}
    for result in results:
        table[result.spec.area][result.outcome] += 1
    return table


def _total(results: Sequence[Result]) -> dict[Outcome, int]:
    return {o: sum(1 for r in results if r.outcome is o) for o in _ORDER}


def _verdict(results: Sequence[Result]) -> str:
    fatal = sum(1 for r in results if _fatal(r))
    should = sum(
        1
        for r in results
        if r.spec.level != "MUST" and r.outcome in (Outcome.FAILED, Outcome.ERROR)
    )
    skipped = sum(1 for r in results if r.spec.level == "MUST" and r.outcome is Outcome.SKIPPED)
    if not results:
        return "no checks ran"
    tail = f"; {should} SHOULD check(s) failed or errored" if should else ""
    tail += f"; {skipped} MUST check(s) skipped (not tested)" if skipped else ""
    if fatal:
        return f"FAIL: {fatal} MUST check(s) failed or errored{tail}"
    return f"PASS: no MUST check failed or errored{tail}"


# --- untrusted text -----------------------------------------------------------------------------


def _clean(text: str, *, keep_newlines: bool = True) -> str:
    """text with control, surrogate, non-character and bidi-override characters as escapes."""
    out = []
    for char in text:
        if (char == "\n" and keep_newlines) or char == "\t":
            out.append(char)
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co") or char in _BIDI or char in "\ufffe\uffff":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def _one_line(text: str, limit: int = 200) -> str:
    line = _clean(" ".join(text.split()), keep_newlines=False)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _ids(spec: CheckSpec) -> str:
    return ", ".join(spec.requirements)


# --- console ------------------------------------------------------------------------------------


def _header(info: RunInfo | None) -> list[str]:
    if info is None:
        return ["SSEAUN conformance"]
    when = info.started.isoformat(timespec="seconds")
    return [
        f"SSEAUN conformance of {_clean(info.audience)} at {_clean(info.target)}",
        f"network {_clean(info.network_id)}, manifest version {info.manifest_version} "
        f"(sha256 {info.manifest_digest})",
        f"level {info.level}; started {when}, {info.seconds:.1f} s; suite {info.suite_version}",
    ]


def console_summary(results: Sequence[Result], info: RunInfo | None = None) -> str:
    """Counts per area, then every failure and error (ID, requirements, level, what was observed),
    then the skipped checks with why, then the verdict."""
    lines = [*_header(info), ""]
    width = max([len(AREAS.get(a, a)) for a in _areas_of(results)] + [len("total")])
    heading = "".join(f"{o.value:>9}" for o in _ORDER)
    lines.append(f"{'area':<{width}}{heading}")
    for area, row in counts(results).items():
        lines.append(f"{AREAS.get(area, area):<{width}}" + "".join(f"{row[o]:>9}" for o in _ORDER))
    total = _total(results)
    lines.append(f"{'total':<{width}}" + "".join(f"{total[o]:>9}" for o in _ORDER))
    bad = [r for r in results if r.outcome in (Outcome.FAILED, Outcome.ERROR)]
    if bad:
        lines += ["", "Failures and errors:"]
        for r in bad:
            lines.append(
                f"{r.outcome.value.upper()} {r.spec.id} [{_ids(r.spec)}] {r.spec.level}: "
                f"{_clean(r.spec.title)}"
            )
            label = "observed" if r.outcome is Outcome.FAILED else "error"
            detail = _clean(r.detail or "(no detail)").splitlines() or [""]
            lines.append(f"  {label}: {detail[0]}")
            lines += [f"    {more}" for more in detail[1:]]
    skipped = [r for r in results if r.outcome is Outcome.SKIPPED]
    if skipped:
        lines += ["", "Skipped:"]
        lines += [
            f"SKIPPED {r.spec.id} [{_ids(r.spec)}] {r.spec.level}: {_one_line(r.detail)}"
            for r in skipped
        ]
    lines += ["", f"result: {_verdict(results)} (exit {exit_code(results)})"]
    return "\n".join(lines) + "\n"


# --- JSON ---------------------------------------------------------------------------------------


def _info_json(info: RunInfo) -> dict[str, Any]:
    return {
        "target": info.target,
        "audience": info.audience,
        "network_id": info.network_id,
        "manifest_version": info.manifest_version,
        "manifest_digest": info.manifest_digest,
        "started": info.started.isoformat(),
        "seconds": info.seconds,
        "level": info.level,
        "only": list(info.only),
        "areas": list(info.areas),
        "adapter": info.adapter,
        "auditors": list(info.auditors),
        "suite_version": info.suite_version,
    }


def _count_json(row: Mapping[Outcome, int]) -> dict[str, int]:
    return {o.value: row[o] for o in _ORDER}


def json_report(results: Sequence[Result], info: RunInfo | None = None) -> str:
    """Every result, the counts, the run and the verdict, as JSON text."""
    document = {
        "format": FORMAT,
        "run": _info_json(info) if info is not None else None,
        "verdict": {"exit_code": exit_code(results), "summary": _verdict(results)},
        "counts": {
            "total": _count_json(_total(results)),
            "areas": {
                area: {"title": AREAS.get(area, area), **_count_json(row)}
                for area, row in counts(results).items()
            },
        },
        "results": [
            {
                "id": r.spec.id,
                "area": r.spec.area,
                "title": r.spec.title,
                "requirements": list(r.spec.requirements),
                "level": r.spec.level,
                "outcome": r.outcome.value,
                "detail": r.detail,
                "seconds": r.seconds,
            }
            for r in results
        ],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in a detail: keep it as a \u escape
        text = json.dumps(document, indent=2)
    return text + "\n"


async def _not_runnable(_: Any) -> None:
    raise RuntimeError("a check read back from a report cannot run")


def read_json_report(text: str) -> tuple[RunInfo | None, list[Result]]:
    """The run and the results of a JSON report (the checks cannot be run again from it).

    Raises:
        ValueError: not a report of this format.
    """
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} document")
    try:
        results = [
            Result(
                CheckSpec(
                    r["id"],
                    r["area"],
                    r["title"],
                    tuple(r["requirements"]),
                    r["level"],
                    _not_runnable,
                ),
                Outcome(r["outcome"]),
                r["detail"],
                float(r["seconds"]),
            )
            for r in document["results"]
        ]
        run = document["run"]
        info = None
        if run is not None:
            info = RunInfo(
                target=run["target"],
                audience=run["audience"],
                network_id=run["network_id"],
                manifest_version=int(run["manifest_version"]),
                manifest_digest=run["manifest_digest"],
                started=datetime.fromisoformat(run["started"]),
                seconds=float(run["seconds"]),
                level=run["level"],
                only=tuple(run["only"]),
                areas=tuple(run["areas"]),
                adapter=run["adapter"],
                auditors=tuple(run["auditors"]),
                suite_version=run["suite_version"],
            )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"incomplete report: {exc}") from exc
    return info, results


# --- JUnit XML ----------------------------------------------------------------------------------


def junit_case_name(spec: CheckSpec) -> str:
    """``<check id> [<REQ-IDs>]``: what CI systems show for a check."""
    return f"{spec.id} [{_ids(spec)}]"


def junit_xml(results: Sequence[Result], info: RunInfo | None = None) -> str:
    """One testsuite per area with results, one testcase per check (classname = the area); a
    failed, skipped or errored check carries the element of that name with the detail."""
    total = _total(results)
    root = ET.Element(
        "testsuites",
        name="sseaun-conformance",
        tests=str(len(results)),
        failures=str(total[Outcome.FAILED]),
        errors=str(total[Outcome.ERROR]),
        skipped=str(total[Outcome.SKIPPED]),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for area, row in counts(results).items():
        in_area = [r for r in results if r.spec.area == area]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=area,
            tests=str(len(in_area)),
            failures=str(row[Outcome.FAILED]),
            errors=str(row[Outcome.ERROR]),
            skipped=str(row[Outcome.SKIPPED]),
            time=f"{sum(r.seconds for r in in_area):.3f}",
        )
        if info is not None:
            suite.set("timestamp", info.started.isoformat(timespec="seconds"))
            suite.set("hostname", _clean(info.target, keep_newlines=False))
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="title", value=AREAS.get(area, area))
        if info is not None:
            for name, value in (
                ("audience", info.audience),
                ("network_id", info.network_id),
                ("manifest_version", str(info.manifest_version)),
                ("manifest_digest", info.manifest_digest),
                ("suite_version", info.suite_version),
            ):
                ET.SubElement(
                    properties, "property", name=name, value=_clean(value, keep_newlines=False)
                )
        for r in in_area:
            case = ET.SubElement(
                suite,
                "testcase",
                name=_clean(junit_case_name(r.spec), keep_newlines=False),
                classname=area,
                time=f"{r.seconds:.3f}",
            )
            if r.outcome is Outcome.PASSED:
                continue
            tag = {
                Outcome.FAILED: "failure",
                Outcome.SKIPPED: "skipped",
                Outcome.ERROR: "error",
            }[r.outcome]
            element = ET.SubElement(case, tag, message=_one_line(r.detail))
            if r.outcome is not Outcome.SKIPPED:
                element.set("type", f"{r.spec.level} {r.outcome.value}")
            element.text = _clean(
                f"{r.spec.title}\nlevel: {r.spec.level}\nrequirements: {_ids(r.spec)}\n"
                f"{'observed' if r.outcome is Outcome.FAILED else r.outcome.value}: {r.detail}"
            )
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# --- HTML ---------------------------------------------------------------------------------------

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", sans-serif;
  margin: 2em auto; max-width: 75em; padding: 0 1em; color: #1b1f23; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; width: 100%; margin: .5em 0; }
th, td { border: 1px solid #d0d7de; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
dl.run { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dl.run dt { font-weight: 600; } dl.run dd { margin: 0; }
code, .id { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
.detail { white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, monospace;
  font-size: .92em; }
.outcome { font-weight: 700; text-transform: uppercase; font-size: .85em; }
.passed .outcome { color: #1a7f37; } .failed .outcome { color: #cf222e; }
.error .outcome { color: #8250df; } .skipped .outcome { color: #6e7781; }
tr.failed { background: #ffebe9; } tr.error { background: #fbefff; }
.verdict { padding: .6em 1em; border-radius: 6px; font-weight: 600; margin: 1em 0; }
.verdict.pass { background: #dafbe1; border: 1px solid #1a7f37; }
.verdict.fail { background: #ffebe9; border: 1px solid #cf222e; }
footer { margin-top: 2em; color: #6e7781; font-size: .9em; }
@media print { body { margin: 0; max-width: none; } }
"""


def _e(text: str) -> str:
    return html.escape(_clean(text), quote=True)


def html_report(results: Sequence[Result], info: RunInfo | None = None) -> str:
    """One HTML page an auditor can hand on: inline CSS, no scripts, no external files, every
    value escaped."""
    failed = exit_code(results) != 0
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>SSEAUN conformance report{_e(' – ' + info.audience) if info else ''}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<h1>SSEAUN conformance report</h1>",
        f'<p class="verdict {"fail" if failed else "pass"}">{_e(_verdict(results))} '
        f"(exit code {exit_code(results)})</p>",
    ]
    if info is not None:
        rows = [
            ("Institution (audience)", info.audience),
            ("Node (target)", info.target),
            ("Network", info.network_id),
            ("Manifest", f"version {info.manifest_version}, SHA-256 {info.manifest_digest}"),
            ("Started", info.started.isoformat(timespec="seconds")),
            ("Duration", f"{info.seconds:.1f} s"),
            ("Level", "MUST and SHOULD" if info.level == "should" else "MUST only"),
            ("Selected", ", ".join(info.only + info.areas) or "every check"),
            ("Auditor institutions", ", ".join(info.auditors) or "–"),
            ("Adapter", info.adapter or "none (lifecycle checks are skipped)"),
            ("Suite", f"sseaun {info.suite_version}"),
        ]
        out.append('<dl class="run">')
        out += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows]
        out.append("</dl>")
    out += [
        "<h2>Summary</h2>",
        "<table>",
        "<thead><tr><th>Area</th>"
        + "".join(f"<th>{o.value}</th>" for o in _ORDER)
        + "<th>total</th></tr></thead>",
        "<tbody>",
    ]
    for area, row in counts(results).items():
        out.append(
            f'<tr><td><a href="#area-{_e(area)}">{_e(AREAS.get(area, area))}</a></td>'
            + "".join(f'<td class="n">{row[o]}</td>' for o in _ORDER)
            + f'<td class="n">{sum(row.values())}</td></tr>'
        )
    total = _total(results)
    out.append(
        "<tr><th>total</th>"
        + "".join(f'<th class="n">{total[o]}</th>' for o in _ORDER)
        + f'<th class="n">{len(results)}</th></tr>'
    )
    out += ["</tbody>", "</table>"]
    for area in counts(results):
        out += [
            f'<h2 id="area-{_e(area)}">{_e(AREAS.get(area, area))}</h2>',
            "<table>",
            "<thead><tr><th>Outcome</th><th>Check</th><th>Requirements</th><th>Level</th>"
            "<th>Detail</th><th>Seconds</th></tr></thead>",
            "<tbody>",
        ]
        for r in (r for r in results if r.spec.area == area):
            outcome = r.outcome.value
            out.append(
                f'<tr class="{outcome}"><td class="outcome">{outcome}</td>'
                f'<td><span class="id">{_e(r.spec.id)}</span><br>{_e(r.spec.title)}</td>'
                f'<td class="id">{_e(_ids(r.spec))}</td><td>{_e(r.spec.level)}</td>'
                f'<td class="detail">{_e(r.detail)}</td><td class="n">{r.seconds:.3f}</td></tr>'
            )
        out += ["</tbody>", "</table>"]
    out += [
        "<footer>MUST checks decide the verdict: the run fails when one fails or errors. "
        "A SHOULD check that fails is reported, not fatal. A skipped check was not run against "
        "this node (its detail says why). Requirement IDs refer to the SSEAUN specification "
        "(docs/spec).</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"


# --- files --------------------------------------------------------------------------------------


def write_reports(folder: Path, results: Sequence[Result], info: RunInfo | None) -> list[Path]:
    """Write every report into folder (made if missing); the paths written.

    Raises:
        OSError: folder cannot be made or written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "summary": console_summary(results, info),
        "json": json_report(results, info),
        "junit": junit_xml(results, info),
        "html": html_report(results, info),
    }
    written = []
    for kind, text in texts.items():
        path = folder / REPORT_FILES[kind]
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
        written.append(path)
    return written
