"""Local reads on the node (`sseaun node records get|list`), each logged in the access log as a
`local:cli` access (spec LOG-3): the operator's own reads are accountable like a partner's."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from sseaun.sdk.cli._io import CliError
from sseaun.sdk.core import envelope_from_bytes, envelope_to_json
from sseaun.v1.auth_pb2 import Purpose

from ._access_log import AccessLog
from ._config import ConfigError, NodeConfig
from ._keys import InstitutionKeys
from ._lifecycle_cli import config_path, register_lifecycle
from .store import SqliteStore, StoredRecord, StoreError

__all__ = ["register_records"]

_PURPOSES = {
    "mobility-administration": Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
    "recognition": Purpose.PURPOSE_RECOGNITION,
    "credential-verification": Purpose.PURPOSE_CREDENTIAL_VERIFICATION,
    "audit": Purpose.PURPOSE_AUDIT,
    "network-operations": Purpose.PURPOSE_NETWORK_OPERATIONS,
}
_CALLER = "local:cli"


def _config(path: str) -> NodeConfig:
    try:
        return NodeConfig.load(Path(path))
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def _institution_of(config: NodeConfig, name: str) -> str:
    parts = name.split("/")
    if len(parts) < 2 or parts[0] != "institutions" or parts[1] not in config.institutions:
        raise CliError(f"{name!r} is not a record or collection of an institution this node serves")
    return parts[1]


def _print(record: StoredRecord) -> None:
    envelope = json.loads(envelope_to_json(envelope_from_bytes(record.envelope)))
    line = {"name": record.name, "version": record.version, "envelope": envelope}
    sys.stdout.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")


async def _read(config: NodeConfig, args: argparse.Namespace, target: str) -> int:
    institution = _institution_of(config, target)
    keys = InstitutionKeys.load(config.keys_dir, institution, config.passphrase())
    store = await SqliteStore.open(config.database)
    try:
        access = AccessLog(
            store,
            network_id=config.network_id,
            institution=institution,
            signer=keys.log,
            clock=lambda: datetime.now(UTC),
        )
        if args.action == "get":
            record = await store.get_record(target, args.version)
            records = [] if record is None else [record]
            method = "local:records-get"
            names = [target]
        else:
            records = await store.list_records(target, reader=institution, limit=args.limit)
            method = "local:records-list"
            names = [r.name for r in records]
        # Logged before anything is shown, as a call is logged before it is answered.
        index = await access.append(
            caller=_CALLER,
            method=method,
            purpose=_PURPOSES[args.purpose],
            outcome="OK" if records else "NOT_FOUND",
            record_names=names,
        )
    finally:
        await store.close()
    for record in records:
        _print(record)
    sys.stderr.write(f"logged as entry {index} of {institution}'s access log\n")
    if not records:
        sys.stderr.write(f"{target}: no such record\n")
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    config = _config(config_path(args))
    target = args.name if args.action == "get" else args.parent
    try:
        return asyncio.run(_read(config, args, target))
    except (StoreError, OSError) as exc:
        raise CliError(f"cannot read the node's records: {exc}") from exc
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def register_records(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `records get` and `records list` to the `node` group."""
    records = sub.add_parser("records", help="read records on this node (each read is logged)")
    # --config and --as may come before the action too, so `sseaun node records --config F` is
    # a command prefix (the conformance suite's adapter contract, docs/conformance.md).
    records.add_argument("--config", dest="records_config", metavar="DIR/node.toml")
    records.add_argument("--as", dest="records_as", metavar="INSTITUTION")
    actions = records.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, help_text in (
        ("get", "print one record as its signed envelope (JSON)"),
        ("list", "print the records of a collection, one JSON line each"),
    ):
        parser = actions.add_parser(action, help=help_text)
        parser.add_argument("--config", metavar="DIR/node.toml")
        parser.add_argument(
            "--purpose",
            choices=sorted(_PURPOSES),
            required=True,
            help="why you read: recorded in the access log",
        )
        if action == "get":
            parser.add_argument("name", help="e.g. institutions/ynu.edu.cn/courses/SISE1001")
            parser.add_argument("--version", type=int, default=0, help="0: the newest")
        else:
            parser.add_argument("parent", help="e.g. institutions/ynu.edu.cn/courses")
            parser.add_argument("--limit", type=int, default=100)
        parser.set_defaults(handler=_run)
    register_lifecycle(actions)
