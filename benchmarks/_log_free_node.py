"""``sseaun node serve`` without the access log: the baseline of ``bench_access_log``.

Usage: ``python -m benchmarks._log_free_node --config node.toml [serve options]``.

Not a production switch, and not a supported way to run a node (it breaks spec LOG-3 and
LOG-6): before the node starts, ``Node.log_call`` is replaced by a coroutine that appends
nothing and returns None, so every answer goes out without ``log_index``. Everything else is
the node's normal serve entry point (``sseaun node serve``, node/cli.py ``_serve`` ->
node/_serve.py ``serve_forever``), unchanged.

When the node has stopped (SIGTERM), one line ``store-statistics {json}`` on stdout gives the
counters of its store (``SqliteStore.statistics()``), from which the benchmark takes the mean
size of a group commit.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

__all__ = ["STATISTICS_PREFIX", "main"]

#: The start of the statistics line printed after the node stopped.
STATISTICS_PREFIX = "store-statistics "


def _without_access_log() -> None:
    from sseaun.node._runtime import Node  # noqa: PLC0415

    async def log_call(
        self: Node, request: object, outcome: str, record_names: Collection[str] = ()
    ) -> None:
        return None

    setattr(Node, "log_call", log_call)  # noqa: B010 - the one change this module makes


def _keeping_stores(stores: list[Any]) -> None:
    """Remember every store the node opens, to print its counters after the node stopped."""
    from sseaun.node.store import SqliteStore  # noqa: PLC0415

    original = SqliteStore.open  # bound to the class

    async def open_and_keep(path: Path | str, **options: Any) -> SqliteStore:
        store = await original(path, **options)
        stores.append(store)
        return store

    setattr(SqliteStore, "open", open_and_keep)  # noqa: B010


def main(argv: list[str]) -> int:
    from sseaun.sdk.cli import main as sseaun  # noqa: PLC0415

    _without_access_log()
    stores: list[Any] = []
    _keeping_stores(stores)
    status = sseaun(["node", "serve", *argv])
    for store in stores:
        counters = dataclasses.asdict(store.statistics())
        print(f"{STATISTICS_PREFIX}{json.dumps(counters)}", flush=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
