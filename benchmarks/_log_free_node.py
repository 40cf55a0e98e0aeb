"""``sseaun node serve`` without the access log: the baseline of ``bench_access_log``.

Usage: ``python -m benchmarks._log_free_node --config node.toml [serve options]``.

Not a production switch, and not a supported way to run a node (it breaks spec LOG-3 and
LOG-6): before the node starts, ``Node.log_call`` is replaced by a coroutine that appends
nothing and returns None, so every answer goes out without ``log_index``. Everything else is
the node's normal serve entry point (``sseaun node serve``, node/cli.py ``_serve`` ->
node/_serve.py ``serve_forever``), unchanged; its store's counters are on ``/metrics`` as any
node's.
"""

from __future__ import annotations

import sys
from collections.abc import Collection

__all__ = ["main"]


def _without_access_log() -> None:
    from sseaun.node._runtime import Node  # noqa: PLC0415

    async def log_call(
        self: Node, request: object, outcome: str, record_names: Collection[str] = ()
    ) -> None:
        return None

    setattr(Node, "log_call", log_call)  # noqa: B010 - the one change this module makes


def main(argv: list[str]) -> int:
    from sseaun.sdk.cli import main as sseaun  # noqa: PLC0415

    _without_access_log()
    return sseaun(["node", "serve", *argv])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
