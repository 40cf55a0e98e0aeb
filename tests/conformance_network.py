"""A live test network for the conformance suite: the reference node of ynu.edu.cn running on
loopback, and the auditor's two test institutions (TEST KEYS ONLY, made fresh per run)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sseaun.conformance._context import Auditor, Context, load_auditors
from tests.live_network import LiveNetwork, build, running

AUDITED = "ynu.edu.cn"
#: The second auditor: a member with no node of its own in these tests (its keys only).
SECOND = "du.ac.bd"


def auditors(network: LiveNetwork) -> list[Auditor]:
    """The tester institution first, then du.ac.bd, with their keys from their folders."""
    first = load_auditors(network.tester.folder / "keys")
    second = [
        a for a in load_auditors(network.nodes[SECOND].folder / "keys") if a.institution == SECOND
    ]
    return [*first, *second]


def context(network: LiveNetwork, **options: object) -> Context:
    node = network.nodes[AUDITED]
    return Context.from_manifest(
        node.target,
        network.manifest,
        auditors(network),
        audience=AUDITED,
        plaintext=True,
        **options,
    )


def prepared_network(root: Path) -> LiveNetwork:
    """The network, the audited node's catalogue imported (so lists and feeds have something to
    page through) and its background work that calls partners switched off; not started."""
    from tests.live_network import run

    net = build(root)
    examples = Path(__file__).resolve().parent.parent / "examples" / "catalogue"
    config = str(net.nodes[AUDITED].config)
    profile, courses = str(examples / "ynu-profile.json"), str(examples / "ynu-courses.csv")
    run("node", "import", "profile", "--config", config, "--file", profile)
    run("node", "import", "courses", "--config", config, "--file", courses, "--quiet")
    net.nodes[AUDITED].configure(
        **{"log.witness_interval_seconds": 0, "exchange.interval_seconds": 0}
    )
    return net


@contextmanager
def audited_network(root: Path) -> Iterator[LiveNetwork]:
    """The prepared network with the audited node running."""
    net = prepared_network(root)
    with running(net, AUDITED):
        yield net
