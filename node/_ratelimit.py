"""Per-caller token buckets, so one misbehaving partner cannot starve the others."""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["RateLimiter"]


class RateLimiter:
    """A token bucket per caller; bounded: the least recently seen callers are forgotten."""

    def __init__(self, rate: float, burst: int, max_callers: int = 10_000) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, caller: str, now: float) -> float | None:
        """Spend one token; None if allowed, else the seconds to wait before retrying."""
        tokens, last = self._buckets.pop(caller, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens >= 1.0:
            self._buckets[caller] = (tokens - 1.0, now)
            wait = None
        else:
            self._buckets[caller] = (tokens, now)
            wait = (1.0 - tokens) / self._rate
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return wait
