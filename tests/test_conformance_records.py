"""The conformance checks of records and lifecycles: run through the reference node's adapter
(`sseaun node records --config node.toml`), every MUST check passes; without an adapter every
check skips; an adapter that refuses everything makes every check fail or skip, never pass."""

from __future__ import annotations

import asyncio
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from sseaun.conformance._adapter import AdapterError, AdapterRefused, adapter
from sseaun.conformance._context import Context
from sseaun.conformance._framework import CheckSkipped, Outcome, Result
from sseaun.conformance._runner import run_checks, select
from tests.conformance_network import AUDITED, audited_network, context
from tests.live_network import LiveNetwork

pytestmark = pytest.mark.timeout(180)

AREA = "records"
SPECS = select(areas=[AREA])
#: Checks the reference node fails because the node is wrong, with the node issue. Each is an
#: xfail(strict) below, so a fix of the node shows as an unexpected pass.
KNOWN_NODE_ISSUES: dict[str, str] = {}


def reference_adapter(network: LiveNetwork) -> str:
    config = network.nodes[AUDITED].config
    return f"{sys.executable} -m sseaun.sdk.cli node records --config {config}"


def report(results: Iterable[Result]) -> str:
    return "\n".join(f"{r.spec.id} [{r.spec.level}] {r.outcome.value}: {r.detail}" for r in results)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    with audited_network(tmp_path_factory.mktemp("conformance-records")) as net:
        yield net


@pytest.fixture(scope="module")
def results(network: LiveNetwork) -> dict[str, Result]:
    """Every records check, run once against the reference node through its adapter."""
    ctx = context(network, adapter=reference_adapter(network))
    return {r.spec.id: r for r in asyncio.run(run_checks(ctx, SPECS))}


def test_the_area_has_its_checks() -> None:
    assert 12 <= len(SPECS) <= 20, [s.id for s in SPECS]
    assert all(s.area == AREA and s.requirements for s in SPECS)


@pytest.mark.parametrize(
    "check_id",
    [
        pytest.param(s.id, marks=pytest.mark.xfail(strict=True, reason=KNOWN_NODE_ISSUES[s.id]))
        if s.id in KNOWN_NODE_ISSUES
        else s.id
        for s in SPECS
    ],
)
def test_the_reference_node_passes(results: dict[str, Result], check_id: str) -> None:
    """A MUST check passes; a SHOULD check passes or fails, but runs (no error, no skip)."""
    result = results[check_id]
    allowed = {Outcome.PASSED} if result.spec.level == "MUST" else {Outcome.PASSED, Outcome.FAILED}
    assert result.outcome in allowed, report([result])


def test_without_an_adapter_every_check_skips(network: LiveNetwork) -> None:
    found = asyncio.run(run_checks(context(network), SPECS))
    assert all(r.outcome is Outcome.SKIPPED for r in found), report(found)
    assert all("adapter" in r.detail for r in found), report(found)


def _script(folder: Path, name: str, body: str) -> str:
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_an_adapter_that_refuses_everything_never_passes(
    network: LiveNetwork, tmp_path: Path
) -> None:
    refuses = _script(
        tmp_path, "refuses", 'print("error: MALFORMED: no", file=sys.stderr)\nsys.exit(1)'
    )
    found = asyncio.run(run_checks(context(network, adapter=refuses), SPECS))
    assert all(r.outcome in (Outcome.FAILED, Outcome.SKIPPED) for r in found), report(found)
    assert all(r.detail for r in found), report(found)
    failed = [r for r in found if r.outcome is Outcome.FAILED]
    assert failed and all("MALFORMED: no" in r.detail for r in failed), report(failed)


def test_a_broken_adapter_is_an_error_not_a_pass(network: LiveNetwork, tmp_path: Path) -> None:
    """An adapter that prints no JSON, or fails without the error line, is broken: the checks
    report errors naming it."""
    silent = _script(tmp_path, "silent", 'print("done")')
    found = asyncio.run(run_checks(context(network, adapter=silent), SPECS))
    assert all(r.outcome in (Outcome.ERROR, Outcome.SKIPPED) for r in found), report(found)
    errors = [r for r in found if r.outcome is Outcome.ERROR]
    assert errors and all("AdapterError" in r.detail for r in errors), report(errors)


# -- the adapter runner on its own -----------------------------------------------------------------


def _context(network: LiveNetwork, command: str | None) -> Context:
    return context(network, adapter=command)


def test_the_adapter_parses_refusals_and_their_field_violations(
    network: LiveNetwork, tmp_path: Path
) -> None:
    command = _script(
        tmp_path,
        "fields",
        "print('error: ILLEGAL_TRANSITION: no such row', file=sys.stderr)\n"
        "print('  header.parties: leaves out the host', file=sys.stderr)\nsys.exit(2)",
    )
    ctx = _context(network, command)
    with pytest.raises(AdapterRefused) as info:
        asyncio.run(adapter(ctx, "state", "institutions/x/agreements/y"))
    assert info.value.reason == "ILLEGAL_TRANSITION"
    assert info.value.message == "no such row"
    assert info.value.field_names == ["header.parties"]


def test_the_adapter_writes_the_record_to_a_file_and_reads_json(
    network: LiveNetwork, tmp_path: Path
) -> None:
    echo = _script(
        tmp_path,
        "echo",
        "import json\nargs = sys.argv[1:]\npath = args[args.index('--file') + 1]\n"
        "print(json.dumps({'args': args[:-2], 'record': json.load(open(path))}))",
    )
    out = asyncio.run(
        adapter(_context(network, echo), "issue", "--kind", "consents", input_json={"a": 1})
    )
    assert out == {"args": ["issue", "--kind", "consents"], "record": {"a": 1}}


def test_the_adapter_needs_a_command(network: LiveNetwork) -> None:
    with pytest.raises(CheckSkipped, match="adapter"):
        asyncio.run(adapter(_context(network, None), "state", "x"))
    with pytest.raises(AdapterError, match="cannot run"):
        asyncio.run(adapter(_context(network, "/nonexistent/adapter"), "state", "x"))
