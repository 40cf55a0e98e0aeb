"""The ``sseaun`` command: one entry point with subcommand groups.

The sdk groups (keys, envelope, manifest) live here; groups of other parts of the distribution
(node, conformance, ...) register through the ``sseaun.cli`` entry-point group, so the sdk never
imports them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from sseaun.sdk.core import ProtocolError

from . import _audit, _credential, _envelope, _keys, _manifest
from ._io import CliError

__all__ = ["main"]

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sseaun",
        description="SSEAUN Exchange: signed student-mobility and credit records between "
        "the universities of the South and Southeast Asian University Network.",
    )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for register in (_keys.register, _envelope.register, _manifest.register, _audit.register):
        register(groups)
    _credential.register(groups)
    for entry in sorted(entry_points(group="sseaun.cli"), key=lambda e: e.name):
        plugin: Register = entry.load()
        plugin(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 check failed, 2 bad input)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except ProtocolError as exc:
        print(f"error: {exc.reason.value}: {exc.message}", file=sys.stderr)
        for problem in exc.field_problems:
            print(f"  {problem.field}: {problem.description}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    raise SystemExit(main())
