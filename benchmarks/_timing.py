"""Shared timing helpers: rates of a subject and of its building block, measured alike.

A benchmark never judges an absolute rate: it compares the code under test (the *subject*) with
the building block it is made of (the *baseline*), both measured in the same process, in
interleaved rounds, so machine noise (other tenants of a shared VM, frequency changes, a
neighbour's compile) hits both sides alike.

Method, for one comparison:

1. warm both callables up, then calibrate a batch size per side so one batch lasts about
   ``batch_seconds``;
2. run ``rounds`` rounds; each round times one batch of the baseline and one of the subject, in
   alternating order (AB, BA, AB, ...), so neither side always runs first;
3. a side's rate is its best batch (best-of-N: noise only ever slows a batch down), and the
   ratio is best subject rate / best baseline rate. The median of the per-round paired ratios is
   kept as well, as a check on the best-of-N figure.

The garbage collector is off while a batch runs (as in ``timeit``) for both sides alike.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Comparison", "Result", "compare", "format_rate"]

Op = Callable[[], object]


@dataclass(frozen=True)
class Result:
    """One benchmark line: ``bench: NAME ratio=R target=T`` plus indented detail lines."""

    name: str
    ratio: float
    target: float
    details: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return self.ratio >= self.target


@dataclass(frozen=True)
class Comparison:
    """Rates (operations per second) of a baseline and a subject measured in the same run."""

    baseline_rates: tuple[float, ...]
    subject_rates: tuple[float, ...]

    @property
    def baseline_rate(self) -> float:
        """Best baseline rate over the rounds."""
        return max(self.baseline_rates)

    @property
    def subject_rate(self) -> float:
        """Best subject rate over the rounds."""
        return max(self.subject_rates)

    @property
    def ratio(self) -> float:
        """Best subject rate / best baseline rate."""
        return self.subject_rate / self.baseline_rate

    @property
    def median_paired_ratio(self) -> float:
        """Median over the rounds of subject rate / baseline rate within the round."""
        pairs = zip(self.subject_rates, self.baseline_rates, strict=True)
        return statistics.median(s / b for s, b in pairs)

    @property
    def spread(self) -> float:
        """Relative spread of the baseline rates (max / median - 1): how noisy the run was."""
        return self.baseline_rate / statistics.median(self.baseline_rates) - 1.0

    def details(self, baseline: str, subject: str) -> tuple[str, ...]:
        """Detail lines with the absolute rates, for context only."""
        return (
            f"{subject}: {format_rate(self.subject_rate)} ({1e6 / self.subject_rate:.1f} us/op)",
            f"{baseline}: {format_rate(self.baseline_rate)} ({1e6 / self.baseline_rate:.1f} us/op)",
            f"median paired ratio {self.median_paired_ratio:.3f} over {len(self.subject_rates)} "
            f"rounds; baseline best is {self.spread * 100:.1f}% above its median",
        )


def format_rate(rate: float) -> str:
    return f"{rate:,.0f} ops/s"


def _time_batch(op: Op, number: int) -> float:
    """Seconds taken by number calls of op, with the garbage collector off."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in itertools.repeat(None, number):
            op()
        return time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()


def _calibrate(op: Op, batch_seconds: float) -> int:
    """A call count whose batch lasts about batch_seconds."""
    number = 1
    while True:
        elapsed = _time_batch(op, number)
        if elapsed >= batch_seconds / 4:
            return max(1, round(number * batch_seconds / elapsed))
        number *= 4 if elapsed < batch_seconds / 40 else 2


def compare(
    baseline: Op,
    subject: Op,
    *,
    rounds: int = 40,
    batch_seconds: float = 0.1,
    warmup_seconds: float = 0.2,
) -> Comparison:
    """Measure baseline and subject in interleaved rounds (see the module docstring)."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    for op in (baseline, subject):
        deadline = time.perf_counter() + warmup_seconds
        while time.perf_counter() < deadline:
            _time_batch(op, 50)
    n_baseline = _calibrate(baseline, batch_seconds)
    n_subject = _calibrate(subject, batch_seconds)
    baseline_rates: list[float] = []
    subject_rates: list[float] = []
    for round_number in range(rounds):
        sides = [(baseline, n_baseline, baseline_rates), (subject, n_subject, subject_rates)]
        if round_number % 2:
            sides.reverse()
        for op, number, rates in sides:
            rates.append(number / _time_batch(op, number))
    return Comparison(tuple(baseline_rates), tuple(subject_rates))
