"""The requirements of docs/spec, and which conformance checks cover them.

The chapters of docs/spec are the source. The installed package has no docs/, so this module also
writes conformance/requirements.json, which is committed and shipped with the package:

    python -m sseaun.conformance._requirements           # regenerate requirements.json
    python -m sseaun.conformance._requirements --check   # exit 1 when it is stale

A requirement is a paragraph that starts ``**ID** (LEVEL) *Title.*``; a ``[not wire-testable]``
tag right after the title marks one a black-box check cannot test (docs/spec/README.md,
Conventions), which the coverage demand leaves out. The tag inside the text of a requirement marks
one sentence only, not the requirement.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ._framework import CheckSpec

__all__ = [
    "REQUIREMENTS_JSON",
    "SPEC_DIR",
    "Requirement",
    "SpecFormatError",
    "covering_checks",
    "load_requirements",
    "main",
    "parse_spec",
    "render_json",
    "uncovered_must",
    "unknown_citations",
]

_HERE = Path(__file__).resolve().parent
#: The committed, generated list the installed package reads.
REQUIREMENTS_JSON = _HERE / "requirements.json"
#: The specification in a checkout of the repository (absent from an installed package).
SPEC_DIR = _HERE.parent / "docs" / "spec"
GENERATOR = "python -m sseaun.conformance._requirements"

_START = re.compile(r"^\*\*(?P<id>[A-Z]+-\d+)\*\*")
_REQUIREMENT = re.compile(
    r"^\*\*(?P<id>[A-Z]+-\d+)\*\* \((?P<level>MUST|SHOULD|MAY|WITHDRAWN)\) "
    r"\*(?P<title>[^*]+)\*(?P<tag>\s*\[not wire-testable\])?"
)
_CHAPTER_ROW = re.compile(r"^\| \[(?P<file>[\w-]+\.md)\]\((?P=file)\) \|")
_NOT_WIRE_TESTABLE = "[not wire-testable]"


class Requirement(NamedTuple):
    """One requirement: its level, title and chapter file; False wire_testable for one tagged
    ``[not wire-testable]``."""

    level: str
    title: str
    chapter: str
    wire_testable: bool = True


class SpecFormatError(ValueError):
    """A chapter has a requirement paragraph this parser cannot read (file:line says where)."""


def _chapters(spec_dir: Path) -> list[Path]:
    """The chapter files in the order of the README's table, any others after them by name."""
    files = sorted(p for p in spec_dir.glob("*.md") if p.name != "README.md")
    readme = spec_dir / "README.md"
    order: list[str] = []
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8").splitlines():
            if (match := _CHAPTER_ROW.match(line)) and match["file"] not in order:
                order.append(match["file"])
    rank = {name: i for i, name in enumerate(order)}
    return sorted(files, key=lambda p: (rank.get(p.name, len(rank)), p.name))


def _paragraphs(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, the paragraph's lines joined by spaces) for each paragraph."""
    lines: list[str] = []
    start = 0
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if line.strip():
            if not lines:
                start = number
            lines.append(line.strip())
        elif lines:
            yield start, " ".join(lines)
            lines = []


def _sort_key(requirement_id: str, prefixes: Sequence[str]) -> tuple[int, int]:
    prefix, _, number = requirement_id.rpartition("-")
    return prefixes.index(prefix), int(number)


def parse_spec(spec_dir: Path = SPEC_DIR) -> dict[str, Requirement]:
    """Every requirement of the chapters in spec_dir, by ID, chapter by chapter and by number
    within a chapter's prefix (withdrawn requirements included, with level WITHDRAWN).

    Raises:
        SpecFormatError: a paragraph starts with a bold ID but not as ``**ID** (LEVEL) *Title.*``,
            or an ID appears twice.
        OSError: spec_dir cannot be read.
    """
    if not spec_dir.is_dir():
        raise OSError(f"{spec_dir} is not a folder (the spec is in a checkout, under docs/spec)")
    found: dict[str, Requirement] = {}
    for chapter in _chapters(spec_dir):
        in_chapter: dict[str, Requirement] = {}
        for line, paragraph in _paragraphs(chapter.read_text(encoding="utf-8")):
            if not _START.match(paragraph):
                continue
            match = _REQUIREMENT.match(paragraph)
            if match is None:
                raise SpecFormatError(
                    f"{chapter.name}:{line}: expected **ID** (MUST|SHOULD|MAY|WITHDRAWN) *Title.*"
                )
            requirement_id = match["id"]
            if requirement_id in found or requirement_id in in_chapter:
                raise SpecFormatError(f"{chapter.name}:{line}: {requirement_id} appears twice")
            in_chapter[requirement_id] = Requirement(
                level=match["level"],
                title=match["title"].strip().removesuffix("."),
                chapter=chapter.name,
                wire_testable=match["tag"] is None,
            )
        prefixes = list(dict.fromkeys(i.rpartition("-")[0] for i in in_chapter))
        for requirement_id in sorted(in_chapter, key=lambda i: _sort_key(i, prefixes)):
            found[requirement_id] = in_chapter[requirement_id]
    return found


def render_json(requirements: Mapping[str, Requirement]) -> str:
    """The text of requirements.json for these requirements (stable: same input, same bytes)."""
    document = {
        "description": "The requirements of the SSEAUN specification (docs/spec): level, title, "
        "chapter and whether a black-box check can test them over the wire. Generated; do not "
        "edit.",
        "generator": GENERATOR,
        "requirements": {
            requirement_id: {
                "level": r.level,
                "title": r.title,
                "chapter": r.chapter,
                "wire_testable": r.wire_testable,
            }
            for requirement_id, r in requirements.items()
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def load_requirements(path: Path = REQUIREMENTS_JSON) -> dict[str, Requirement]:
    """The requirements as requirements.json lists them.

    Raises:
        OSError: the file cannot be read; ValueError: it is not such a list.
    """
    document = json.loads(path.read_text(encoding="utf-8"))
    try:
        return {
            requirement_id: Requirement(
                str(entry["level"]),
                str(entry["title"]),
                str(entry["chapter"]),
                bool(entry["wire_testable"]),
            )
            for requirement_id, entry in document["requirements"].items()
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a requirements list: {exc}") from exc


def _registered() -> list[CheckSpec]:
    from ._framework import checks  # noqa: PLC0415 - importing the checks is slow-ish

    return checks()


def covering_checks(
    requirements: Mapping[str, Requirement] | None = None,
    specs: Iterable[CheckSpec] | None = None,
) -> dict[str, list[str]]:
    """For every requirement, the IDs of the checks that cite it (possibly none)."""
    requirements = load_requirements() if requirements is None else requirements
    specs = _registered() if specs is None else specs
    covered: dict[str, list[str]] = {requirement_id: [] for requirement_id in requirements}
    for spec in specs:
        for requirement_id in spec.requirements:
            if requirement_id in covered and spec.id not in covered[requirement_id]:
                covered[requirement_id].append(spec.id)
    return covered


def uncovered_must(
    requirements: Mapping[str, Requirement] | None = None,
    specs: Iterable[CheckSpec] | None = None,
) -> list[str]:
    """The wire-testable MUST requirements no check cites, in spec order.

    requirements defaults to requirements.json, specs to every registered check.
    """
    requirements = load_requirements() if requirements is None else requirements
    covered = covering_checks(requirements, specs)
    return [
        requirement_id
        for requirement_id, r in requirements.items()
        if r.level == "MUST" and r.wire_testable and not covered[requirement_id]
    ]


def unknown_citations(
    requirements: Mapping[str, Requirement] | None = None,
    specs: Iterable[CheckSpec] | None = None,
) -> dict[str, list[str]]:
    """Checks that cite requirement IDs the spec does not have: check ID -> those IDs."""
    requirements = load_requirements() if requirements is None else requirements
    specs = _registered() if specs is None else specs
    out: dict[str, list[str]] = {}
    for spec in specs:
        unknown = [r for r in spec.requirements if r not in requirements]
        if unknown:
            out[spec.id] = unknown
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Write requirements.json from docs/spec, or with --check exit 1 when it is stale."""
    parser = argparse.ArgumentParser(prog=GENERATOR, description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--spec", type=Path, default=SPEC_DIR, metavar="DIR")
    parser.add_argument("--out", type=Path, default=REQUIREMENTS_JSON, metavar="FILE")
    args = parser.parse_args(argv)
    try:
        requirements = parse_spec(args.spec)
    except (OSError, SpecFormatError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    text = render_json(requirements)
    current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
    if args.check:
        if current != text:
            sys.stderr.write(f"{args.out} is stale: run `{GENERATOR}` and commit the result\n")
            return 1
        sys.stdout.write(f"{args.out} is up to date\n")
        return 0
    if current != text:
        args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {args.out} ({len(requirements)} requirements)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
