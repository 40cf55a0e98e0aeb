"""Prometheus text-format metrics, kept in memory (no dependency, no IO)."""

from __future__ import annotations

import bisect
from collections import defaultdict

__all__ = ["Metrics"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Calls by method and status, latency histograms, gauges set by the node."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], int] = defaultdict(int)
        self._hist: dict[str, list[int]] = defaultdict(lambda: [0] * (len(_BUCKETS) + 1))
        self._sum: dict[str, float] = defaultdict(float)
        self._gauges: dict[str, float] = {}

    def observe(self, method: str, code: str, seconds: float) -> None:
        self._calls[(method, code)] += 1
        self._hist[method][bisect.bisect_left(_BUCKETS, seconds)] += 1
        self._sum[method] += seconds

    def set_gauge(self, name: str, value: float) -> None:
        """Set a gauge; name may carry Prometheus labels, e.g. 'x{peer="a"}'."""
        self._gauges[name] = value

    def calls(self, method: str, code: str) -> int:
        return self._calls.get((method, code), 0)

    def render(self) -> str:
        lines = [
            "# HELP sseaun_calls_total gRPC calls handled, by method and status code.",
            "# TYPE sseaun_calls_total counter",
        ]
        for (method, code), count in sorted(self._calls.items()):
            lines.append(f'sseaun_calls_total{{method="{method}",code="{code}"}} {count}')
        lines += [
            "# HELP sseaun_call_seconds Time to handle a gRPC call.",
            "# TYPE sseaun_call_seconds histogram",
        ]
        for method, counts in sorted(self._hist.items()):
            total = 0
            for bound, count in zip((*_BUCKETS, float("inf")), counts, strict=True):
                total += count
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'sseaun_call_seconds_bucket{{method="{method}",le="{le}"}} {total}')
            lines.append(f'sseaun_call_seconds_sum{{method="{method}"}} {self._sum[method]:.6f}')
            lines.append(f'sseaun_call_seconds_count{{method="{method}"}} {total}')
        typed: set[str] = set()
        for name, value in sorted(self._gauges.items()):
            base = name.partition("{")[0]  # a gauge may carry labels: name{label="value"}
            if base not in typed:
                lines.append(f"# TYPE {base} gauge")
                typed.add(base)
            lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"
