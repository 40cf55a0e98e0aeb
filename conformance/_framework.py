"""Checks, their registry and their results: what every conformance check declares and returns.

A check is an async function of a Context (see _context.py) registered with ``@check``. It names
the requirement IDs of docs/spec it tests and its level (MUST or SHOULD), passes by returning,
fails by raising CheckFailed with what it observed, and is skipped by raising CheckSkipped (a
prerequisite the node under test lacks, e.g. no adapter for lifecycle checks). Any other
exception is an error of the check itself, reported as such, never as a pass.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ._context import Context

__all__ = [
    "AREAS",
    "CheckFailed",
    "CheckFunction",
    "CheckSkipped",
    "CheckSpec",
    "Level",
    "Outcome",
    "Result",
    "check",
    "checks",
    "expect",
]

Level = Literal["MUST", "SHOULD"]
CheckFunction = Callable[["Context"], Awaitable[None]]

#: The areas in report order, with their titles.
AREAS: dict[str, str] = {
    "envelope": "Envelopes and signatures",
    "manifest": "Network manifest",
    "auth": "Request authentication",
    "errors": "Errors",
    "feed": "Listing and change feed",
    "log": "Access log",
    "records": "Records and lifecycles",
    "client": "Client behaviour (the SDK against a misbehaving server)",
    "grpc": "Standard gRPC services",
    "vectors": "Test vectors",
}
_ID = re.compile(r"[a-z]+(-[a-z0-9]+)+")
_REQUIREMENT = re.compile(r"[A-Z]+-[0-9]+")


class CheckFailed(Exception):  # noqa: N818 - reads as the outcome it reports
    """The node did not do what the requirement says; the message is what was observed."""


class CheckSkipped(Exception):  # noqa: N818
    """The check cannot run against this node (a missing prerequisite); the message says why."""


class Outcome(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass(frozen=True)
class CheckSpec:
    """One registered check."""

    id: str
    area: str
    title: str
    requirements: tuple[str, ...]
    level: Level
    run: CheckFunction = field(repr=False, compare=False)


@dataclass(frozen=True)
class Result:
    """What running one check gave."""

    spec: CheckSpec
    outcome: Outcome
    #: What was observed (failure), why it was skipped, or the error; "" when passed.
    detail: str
    seconds: float


_REGISTRY: dict[str, CheckSpec] = {}


def check(
    id: str,
    *,
    area: str,
    requirements: Iterable[str],
    level: Level = "MUST",
    title: str = "",
) -> Callable[[CheckFunction], CheckFunction]:
    """Register an async check function.

    Args:
        id: stable, lower-case, dash-separated, unique (e.g. "auth-replayed-nonce").
        area: one of AREAS.
        requirements: the docs/spec requirement IDs it tests (at least one).
        level: MUST when every requirement it tests is a MUST, else SHOULD.
        title: one line for reports; defaults to the function's docstring's first line.
    """
    needed = tuple(requirements)
    if not _ID.fullmatch(id) or id in _REGISTRY:
        raise ValueError(f"check ID {id!r} is malformed or taken")
    if area not in AREAS:
        raise ValueError(f"unknown area {area!r}")
    if not needed or not all(_REQUIREMENT.fullmatch(r) for r in needed):
        raise ValueError(f"check {id}: requirements must be spec IDs like AUTH-5")

    def register(function: CheckFunction) -> CheckFunction:
        doc = (function.__doc__ or "").strip().splitlines()
        _REGISTRY[id] = CheckSpec(
            id, area, title or (doc[0] if doc else id), needed, level, function
        )
        return function

    return register


def checks() -> list[CheckSpec]:
    """Every registered check, by area (in AREAS order), then ID."""
    from . import checks as _  # noqa: F401, PLC0415 - importing registers them

    order = list(AREAS)
    return sorted(_REGISTRY.values(), key=lambda c: (order.index(c.area), c.id))


def expect(condition: bool, observed: str) -> None:
    """Fail the running check with what was observed unless condition holds."""
    if not condition:
        raise CheckFailed(observed)
