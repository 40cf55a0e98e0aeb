"""The conformance checks of the feed, log and client areas: every MUST check passes against the
reference node, and checks fail against a wrong setup (a node whose tokens, cursors and log are
not what the spec asks, a log key that is not the node's, or an SDK that would accept what it must
refuse)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from sseaun.conformance._context import Context
from sseaun.conformance._fake_server import FakeNode, seeded
from sseaun.conformance._framework import Outcome, Result
from sseaun.conformance._runner import run_checks, select
from sseaun.conformance.checks import _client
from tests.conformance_network import audited_network, context
from tests.live_network import LiveNetwork

pytestmark = pytest.mark.timeout(120)

AREAS = ("feed", "log", "client")
#: Checks the reference node fails because the node is wrong, with the node issue. Each is an
#: xfail(strict) below, so a fix of the node shows as an unexpected pass.
KNOWN_NODE_ISSUES: dict[str, str] = {}
SPECS = select(areas=AREAS)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNetwork]:
    with audited_network(tmp_path_factory.mktemp("conformance-more")) as net:
        yield net


@pytest.fixture(scope="module")
def results(network: LiveNetwork) -> dict[str, Result]:
    """Every check of the three areas, run once against the reference node."""
    return {r.spec.id: r for r in asyncio.run(run_checks(context(network), SPECS))}


def report(results: list[Result]) -> str:
    return "\n".join(
        f"{r.spec.id} [{r.spec.level}] {r.outcome.value}: {r.detail}"
        for r in results
        if r.outcome is not Outcome.PASSED
    )


def test_the_areas_have_their_checks() -> None:
    counts = {area: sum(s.area == area for s in SPECS) for area in AREAS}
    assert counts["feed"] >= 15, counts
    assert counts["log"] >= 10, counts
    assert counts["client"] >= 8, counts


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


# -- a wrong setup fails ---------------------------------------------------------------------


async def _against_fake(*ids: str) -> dict[str, Result]:
    async with FakeNode.create(courses=7) as node:
        await node.start()
        found = await run_checks(node.context(), select(ids))
    return {r.spec.id: r for r in found}


def test_a_node_with_forgeable_tokens_and_no_log_fails() -> None:
    """The fake server taken as the node under test: its tokens and cursors are plain offsets
    and it keeps no access log."""
    failing = (
        "list-page-token-tampered",
        "list-page-token-bound-to-caller",
        "feed-cursor-tampered",
        "feed-cursor-other-caller",
        "log-index-in-answers",
        "log-checkpoint-signed",
    )
    results = asyncio.run(_against_fake("list-covers-collection", "feed-from-start", *failing))
    passing = [results["list-covers-collection"], results["feed-from-start"]]
    assert all(r.outcome is Outcome.PASSED for r in passing), report(passing)
    for check_id in failing:
        assert results[check_id].outcome is Outcome.FAILED, report([results[check_id]])
        assert results[check_id].detail
    assert "was accepted" in results["list-page-token-tampered"].detail
    assert "no log_index" in results["log-index-in-answers"].detail


def test_a_log_key_that_is_not_the_nodes_fails(network: LiveNetwork) -> None:
    ctx = context(network)
    ctx.shared["log.keys"] = [seeded("not the log key").public_key]
    found = asyncio.run(
        run_checks(ctx, select(["log-checkpoint-signed", "log-inclusion-own-call"]))
    )
    assert all(r.outcome is Outcome.FAILED for r in found), report(found)
    assert all("KEY_UNKNOWN" in r.detail for r in found), report(found)


class _AlwaysCorrect(FakeNode):
    """A server that never misbehaves, whatever it is asked to play."""

    @classmethod
    def create(cls, **options: object) -> FakeNode:
        options.pop("misbehaviour", None)
        return super().create(**options)


def _nowhere() -> Context:
    """Client checks never call the node under test: a context pointing nowhere will do."""
    node = FakeNode.create()
    node.target = "127.0.0.1:1"
    return node.context()


def test_client_checks_fail_when_the_server_does_not_misbehave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_client, "FakeNode", _AlwaysCorrect)
    specs = [s for s in select(areas=["client"]) if s.id != "client-accepts-a-correct-server"]
    found = asyncio.run(run_checks(_nowhere(), specs))
    assert all(r.outcome is Outcome.FAILED for r in found), report(found)
    assert all("the SDK accepted" in r.detail for r in found), report(found)
