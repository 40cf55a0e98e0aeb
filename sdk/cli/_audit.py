"""``sseaun audit``: check access-log proofs and disclosures offline (spec LOG-12).

Other parts of the distribution add commands to the group through the ``sseaun.cli.audit``
entry-point group (the node adds ``reveal``), so the sdk never imports them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

from sseaun.sdk.core import ProtocolError, log_evidence

from ._io import CliError, read_bytes, read_public_key

__all__ = ["register"]

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _public_key(path: str, option: str) -> bytes:
    try:
        return read_public_key(path)
    except ProtocolError as exc:
        raise CliError(f"{option} {path}: {exc.message}") from exc


def _witnesses(values: list[str]) -> dict[str, bytes]:
    witnesses: dict[str, bytes] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise CliError(f"--witness {value!r}: expected NAME=PUBLIC.pem")
        if name in witnesses:
            raise CliError(f"--witness {name} is given twice")
        witnesses[name] = _public_key(path, "--witness")
    return witnesses


def _check_proof(args: argparse.Namespace) -> int:
    log_keys = [_public_key(path, "--log-key") for path in args.log_key]
    witnesses = _witnesses(args.witness or [])
    if args.min_witnesses < 0:
        raise CliError("--min-witnesses must be 0 or more")
    if args.min_witnesses > len(witnesses):
        raise CliError(
            f"--min-witnesses {args.min_witnesses} needs at least as many --witness keys"
        )
    document = read_bytes(args.file)
    try:
        report = log_evidence.check(
            document, log_keys=log_keys, witnesses=witnesses, min_witnesses=args.min_witnesses
        )
    except ProtocolError as exc:
        print(f"invalid: {exc.reason.value}: {exc.message}", file=sys.stderr)
        if args.json:
            failure = {"ok": False, "reason": exc.reason.value, "message": exc.message}
            print(json.dumps(failure, sort_keys=True))
        return 1
    if args.json:
        print(json.dumps({"ok": True, **report.to_json()}, sort_keys=True, ensure_ascii=False))
    else:
        print(f"ok: {report.summary()}")
    return 0


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `audit` group, with the commands other packages register into it."""
    audit = groups.add_parser("audit", help="check access-log proofs and disclosures")
    sub = audit.add_subparsers(dest="command", metavar="COMMAND", required=True)
    check = sub.add_parser(
        "check-proof",
        help="verify an inclusion proof, a consistency proof or a disclosure offline",
        description="Verify an access-log inclusion proof, consistency proof or disclosure "
        "against the log's public key. Exit status: 0 valid, 1 invalid, 2 bad input.",
    )
    check.add_argument("file", metavar="FILE", help="the proof file or the disclosure envelope")
    check.add_argument(
        "--log-key",
        action="append",
        required=True,
        metavar="PUBLIC.pem",
        help="a LOG public key of the log's institution (repeatable)",
    )
    check.add_argument(
        "--witness",
        action="append",
        metavar="NAME=PUBLIC.pem",
        help="a witness (institution ID) and its LOG public key (repeatable)",
    )
    check.add_argument(
        "--min-witnesses",
        type=int,
        default=0,
        metavar="K",
        help="require valid cosignatures of at least K of the --witness keys",
    )
    check.add_argument("--json", action="store_true", help="print a JSON report")
    check.set_defaults(handler=_check_proof)
    for entry in sorted(entry_points(group="sseaun.cli.audit"), key=lambda e: e.name):
        plugin: Register = entry.load()
        plugin(sub)
