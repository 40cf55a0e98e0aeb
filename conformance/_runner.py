"""Running checks: selection by ID, area or level, one at a time, each bounded in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence

from ._context import Context
from ._framework import CheckFailed, CheckSkipped, CheckSpec, Outcome, Result, checks

__all__ = ["run_checks", "select"]

#: The longest one check may take; a node that hangs fails the check, not the run.
CHECK_SECONDS = 30.0


def select(
    only: Iterable[str] = (),
    *,
    level: str = "should",
    areas: Iterable[str] = (),
) -> list[CheckSpec]:
    """The checks to run: only those whose ID or one of whose requirement IDs is in only (if
    given), in areas (if given), MUST only with level "must".

    Raises:
        ValueError: only names something no check has.
    """
    wanted, in_areas = set(only), set(areas)
    chosen = [
        c
        for c in checks()
        if (not wanted or c.id in wanted or wanted & set(c.requirements))
        and (not in_areas or c.area in in_areas)
        and (level != "must" or c.level == "MUST")
    ]
    known = {c.id for c in checks()} | {r for c in checks() for r in c.requirements}
    if unknown := sorted(wanted - known):
        raise ValueError(f"no check has the ID or requirement {', '.join(unknown)}")
    return chosen


async def _one(spec: CheckSpec, context: Context, seconds: float) -> Result:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(spec.run(context), timeout=seconds)
    except CheckFailed as exc:
        outcome, detail = Outcome.FAILED, str(exc)
    except CheckSkipped as exc:
        outcome, detail = Outcome.SKIPPED, str(exc)
    except TimeoutError:
        outcome, detail = Outcome.FAILED, f"no answer within {seconds:g} s"
    except Exception as exc:  # noqa: BLE001 - an error of the check, reported as such
        outcome, detail = Outcome.ERROR, f"{type(exc).__name__}: {exc}"
    else:
        outcome, detail = Outcome.PASSED, ""
    return Result(spec, outcome, detail, time.perf_counter() - started)


async def run_checks(
    context: Context,
    specs: Sequence[CheckSpec],
    *,
    progress: Callable[[Result], None] | None = None,
    seconds: float = CHECK_SECONDS,
) -> list[Result]:
    """Run the checks one after another (some depend on the node's rate limit and clock)."""
    results = []
    for spec in specs:
        result = await _one(spec, context, seconds)
        results.append(result)
        if progress is not None:
            progress(result)
    return results
