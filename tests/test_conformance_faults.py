"""The conformance suite tested against the reference node with one deliberate fault at a time.

One node runs in this process; each fault is switched on by patching the running node, the
checks of the areas it touches run, and the set of checks that fail must be exactly the set the
fault declares: a fault no check catches, or a check that fails for a reason other than the
fault, both fail this test. The reference node itself must pass every MUST check first.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from sseaun.conformance._framework import Outcome
from sseaun.conformance._runner import run_checks, select
from sseaun.node import _runtime, _services
from sseaun.node._config import NodeConfig
from sseaun.node._runtime import Node
from sseaun.node._serve import RunningNode, start_node
from sseaun.sdk.core import Envelope, ProtocolError, Reason
from tests.conformance_network import AUDITED, context, prepared_network
from tests.live_network import LiveNetwork

pytestmark = pytest.mark.timeout(240)
NODE_AREAS = ("envelope", "manifest", "auth", "errors", "feed", "log", "records", "grpc")


@dataclass(frozen=True)
class Fault:
    """One deliberate fault: how to switch it on, which areas to run, which checks catch it."""

    name: str
    areas: tuple[str, ...]
    catches: frozenset[str]
    apply: Callable[[Node], contextlib.AbstractContextManager[None]]


@contextlib.contextmanager
def _patched(target: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, original)


def _verify_request_with(**overrides: Any) -> Callable[..., Any]:
    real = _runtime.verify_request  # type: ignore[attr-defined]

    def lax(*args: Any, **kwargs: Any) -> Any:
        kwargs.update(overrides)
        return real(*args, **kwargs)

    return lax


def _replays_accepted(node: Node) -> contextlib.AbstractContextManager[None]:
    async def always(*_: Any) -> bool:
        return True

    return _patched(node.store, "claim_nonce", always)


def _audience_ignored(node: Node) -> contextlib.AbstractContextManager[None]:
    everyone = [m.institution_id for m in node.keyring.manifest.manifest.members]
    return _patched(_runtime, "verify_request", _verify_request_with(audiences=everyone))


def _clock_ignored(_: Node) -> contextlib.AbstractContextManager[None]:
    return _patched(
        _runtime, "verify_request", _verify_request_with(clock_window=timedelta(days=365))
    )


def _purposes_unchecked(_: Node) -> contextlib.AbstractContextManager[None]:
    return _patched(
        _runtime, "verify_request", _verify_request_with(allowed_purposes=frozenset(range(1, 6)))
    )


def _responses_unsigned(_: Node) -> contextlib.AbstractContextManager[None]:
    real = _services.sign_response  # type: ignore[attr-defined]

    def unsigned(*args: Any, **kwargs: Any) -> Envelope:
        envelope = real(*args, **kwargs)
        del envelope.signatures[:]
        return envelope

    return _patched(_services, "sign_response", unsigned)


def _feed_skips_a_change(node: Node) -> contextlib.AbstractContextManager[None]:
    real = node.store.changes

    async def skipping(*args: Any, **kwargs: Any) -> Any:
        records = await real(*args, **kwargs)
        return [r for i, r in enumerate(records) if i != 1] if len(records) > 2 else records

    return _patched(node.store, "changes", skipping)


def _tokens_forgeable(node: Node) -> contextlib.AbstractContextManager[None]:
    import base64
    import json

    real = node.tokens.open

    def unchecked(kind: str, token: str, *, field: str) -> dict[str, object]:
        try:
            return real(kind, token, field=field)
        except Exception:  # noqa: BLE001 - the fault: a token that does not verify still counts
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            try:
                state: dict[str, object] = json.loads(raw[16:] or raw[32:])
            except ValueError:
                state = {}
            return state

    return _patched(node.tokens, "open", unchecked)


def _existence_leaked(_: Node) -> contextlib.AbstractContextManager[None]:
    real = _services.RecordService._may_read

    async def telling(self: Any, record: Any, verified: Any) -> bool:
        if not await real(self, record, verified):
            raise ProtocolError(Reason.NOT_FOUND, "this record exists but is not yours")
        return True

    return _patched(_services.RecordService, "_may_read", telling)


def _calls_unlogged(node: Node) -> contextlib.AbstractContextManager[None]:
    async def unlogged(*_: Any, **__: Any) -> None:
        return None

    return _patched(node, "log_call", unlogged)


FAULTS = [
    Fault(
        "tells-non-parties-a-record-exists",
        ("records", "errors"),
        frozenset({"rec-non-party-not-found", "rec-read-under-consent"}),
        _existence_leaked,
    ),
    Fault(
        "accepts-replayed-nonces",
        ("auth", "log"),
        frozenset(
            {"auth-cross-method-replay", "auth-replayed-nonce", "log-unauthenticated-not-logged"}
        ),
        _replays_accepted,
    ),
    Fault(
        "ignores-audience",
        ("auth",),
        frozenset({"auth-check-order", "auth-wrong-audience"}),
        _audience_ignored,
    ),
    Fault(
        "ignores-clock-skew",
        ("auth",),
        frozenset({"auth-check-order", "auth-clock-skew"}),
        _clock_ignored,
    ),
    Fault(
        "ignores-purpose",
        ("auth", "log"),
        frozenset({"auth-check-order", "auth-purpose-not-allowed", "log-service-purposes"}),
        _purposes_unchecked,
    ),
    Fault(
        "skips-response-signing",
        ("envelope", "auth"),
        frozenset(
            {
                "auth-allowed-purposes-accepted",
                "auth-answer-header",
                "auth-check-order",
                "auth-clock-skew",
                "auth-cross-method-replay",
                "auth-nonce-size",
                "auth-replayed-nonce",
                "env-answers-typed-and-well-formed",
                "env-one-valid-signature-suffices",
                "env-response-signed-and-bound",
            }
        ),
        _responses_unsigned,
    ),
    Fault(
        "feed-skips-a-change",
        ("feed",),
        frozenset(
            {
                "feed-from-start",
                "feed-page-size",
                "feed-pages-signed-and-chained",
                "feed-resume-from-cursor",
                "list-covers-collection",
                "list-explicit-page-sizes",
                "list-page-size-above-maximum",
                "list-page-token-page-size-free",
            }
        ),
        _feed_skips_a_change,
    ),
    Fault(
        "forgeable-page-tokens",
        ("feed",),
        frozenset(
            {"feed-cursor-tampered", "list-page-token-not-a-cursor", "list-page-token-tampered"}
        ),
        _tokens_forgeable,
    ),
    Fault(
        "does-not-log-calls",
        ("log",),
        frozenset(
            {
                "log-answers-signed-and-bound",
                "log-checkpoint-min-size",
                "log-consistency",
                "log-entry-no-record-names",
                "log-entry-not-disclosed",
                "log-inclusion-own-call",
                "log-index-in-answers",
                "log-index-on-feed-pages",
                "log-out-of-range",
                "log-refused-call-logged",
                "log-service-calls-logged",
                "log-unauthenticated-not-logged",
            }
        ),
        _calls_unlogged,
    ),
]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> LiveNetwork:
    return prepared_network(tmp_path_factory.mktemp("faults"))


async def _failing(network: LiveNetwork, areas: tuple[str, ...]) -> tuple[set[str], list[str]]:
    config = network.nodes[AUDITED].config
    adapter = f"{sys.executable} -m sseaun.sdk.cli node records --config {config}"
    results = await run_checks(context(network, adapter=adapter), select(areas=areas))
    failed = {r.spec.id for r in results if r.outcome in (Outcome.FAILED, Outcome.ERROR)}
    lines = [f"{r.spec.id}: {r.detail}" for r in results if r.spec.id in failed]
    return failed, lines


async def test_each_fault_is_caught_by_exactly_the_checks_that_name_it(
    network: LiveNetwork,
) -> None:
    started = time.monotonic()
    running: RunningNode = await start_node(NodeConfig.load(network.nodes[AUDITED].config))
    try:
        failed, lines = await _failing(network, NODE_AREAS)
        must = {c.id for c in select(areas=NODE_AREAS) if c.level == "MUST"}
        assert not failed & must, "the reference node fails:\n" + "\n".join(lines)
        mismatches = []
        for fault in FAULTS:
            with fault.apply(running.node):
                failed, lines = await _failing(network, fault.areas)
            if failed != fault.catches:
                mismatches.append(
                    f"{fault.name}: caught by {sorted(failed)}, declared {sorted(fault.catches)}"
                    + "".join(f"\n    {line}" for line in lines)
                )
        assert not mismatches, "\n".join(mismatches)
    finally:
        await running.stop()
    assert time.monotonic() - started < 180
