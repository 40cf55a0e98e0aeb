"""`sseaun node records issue|cosign|decide|state`: an operator acts on mobility and credit
records as an institution the node serves (spec LC). Each action is logged in that institution's
access log as a `local:cli` entry; partners hear of changes through the outbox, which the running
node delivers, and pull them through its exchange feed."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from google.protobuf import json_format

from sseaun.sdk.cli._io import CliError, read_bytes
from sseaun.sdk.core import (
    ProtocolError,
    Reason,
    RecordState,
    envelope_to_json,
    records,
)
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.records_pb2 import DecisionKind

from ._config import ConfigError, NodeConfig
from ._keys import InstitutionKeys
from ._runtime import Node
from .store import SqliteStore, StoreError

__all__ = ["config_path", "register_lifecycle", "state_json"]

_T = TypeVar("_T")
_KINDS = {kind.collection: kind for kind in records.RecordKind}
_DECISIONS = {
    name.removeprefix("DECISION_KIND_").lower(): number
    for name, number in DecisionKind.items()
    if number not in (DecisionKind.DECISION_KIND_UNSPECIFIED, DecisionKind.DECISION_KIND_APPROVE)
}


def state_json(state: RecordState) -> dict[str, object]:
    """The state of a record as JSON for people and scripts."""
    return {
        "name": state.name,
        "kind": state.kind.value,
        "state": state.state.value,
        "in_force_version": state.in_force_version,
        "pending_version": state.pending_version,
        "latest_version": state.latest_version,
        "awaiting": list(state.awaiting),
        "history": [
            {
                "event": h.event.value,
                "version": h.version,
                "by": h.by,
                "at": h.at.isoformat(),
                "to": h.target.value if h.target else None,
                **({"refused": h.refused.value} if h.refused else {}),
            }
            for h in state.history
        ],
    }


async def _with_node(
    config: NodeConfig,
    institution: str,
    action: str,
    names: Callable[[], list[str]],
    work: Callable[[Node], Awaitable[_T]],
) -> _T:
    """Open the node's store and trust, do work as institution, log it as a local action."""
    if institution not in config.institutions:
        raise CliError(f"this node does not serve {institution}")
    keys = {
        i: InstitutionKeys.load(config.keys_dir, i, config.passphrase())
        for i in config.institutions
    }
    store = await SqliteStore.open(config.database)
    try:
        node = await Node.open(config, store, keys)
        outcome = "OK"
        try:
            return await work(node)
        except ProtocolError as exc:
            outcome = exc.reason.value
            raise
        except Exception:
            outcome = "MALFORMED"  # bad input the CLI refused before the core saw it
            raise
        finally:
            await node.access_logs[institution].append(
                caller="local:cli",
                method=f"local:records-{action}",
                purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
                outcome=outcome,
                record_names=names(),
            )
    finally:
        await store.close()


def _run(args: argparse.Namespace) -> int:
    try:
        config = NodeConfig.load(Path(config_path(args)))
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    institution = args.act_as or getattr(args, "records_as", None) or config.institutions[0]
    touched: list[str] = []
    try:
        result = asyncio.run(_act(args, config, institution, touched))
    except ProtocolError as exc:
        problems = "".join(f"\n  {p.field}: {p.description}" for p in exc.field_problems)
        raise CliError(f"{exc.reason.value}: {exc.message}{problems}") from exc
    except (StoreError, OSError) as exc:
        raise CliError(f"cannot act on the node's records: {exc}") from exc
    sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    return 0


async def _act(
    args: argparse.Namespace, config: NodeConfig, institution: str, touched: list[str]
) -> dict[str, object]:
    action = args.action

    async def work(node: Node) -> dict[str, object]:
        exchange = node.exchange
        if action == "issue":
            kind = _KINDS[args.kind]
            message = kind.message_type()
            try:
                json_format.Parse(read_bytes(args.file), message)
            except json_format.ParseError as exc:
                raise CliError(f"{args.file}: not a {kind.value} in JSON: {exc}") from exc
            message.header.issuer = message.header.issuer or institution  # type: ignore[attr-defined]
            envelope = await exchange.issue(message)
            name = message.header.name  # type: ignore[attr-defined]
            touched.append(name)
            return {"name": name, "envelope": json.loads(envelope_to_json(envelope))}
        touched.append(args.name)
        if action == "cosign":
            await exchange.cosign(institution, args.name)
        elif action == "decide":
            await exchange.decide(
                institution, args.name, _DECISIONS[args.decision], reason=args.reason or ""
            )
        state = await exchange.state(args.name)
        if state is None:
            raise ProtocolError(Reason.NOT_FOUND, "no such record")
        return state_json(state)

    return await _with_node(config, institution, action, lambda: touched, work)


def config_path(args: argparse.Namespace) -> str:
    """The node.toml given after the action, else before it (`records --config F ACTION`).

    Raises:
        CliError: neither.
    """
    path = getattr(args, "config", None) or getattr(args, "records_config", None)
    if not path:
        raise CliError("give --config DIR/node.toml")
    return str(path)


def register_lifecycle(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add issue, cosign, decide and state to `node records`."""
    specs = {
        "issue": "sign and store a new version from a JSON record (header filled for you)",
        "cosign": "add your institution's signature to the latest version of a record",
        "decide": "accept, reject, start, complete, cancel, withdraw or terminate a record",
        "state": "show a record's state, what is awaited and its history",
    }
    for action, help_text in specs.items():
        parser = actions.add_parser(action, help=help_text)
        parser.add_argument("--config", metavar="DIR/node.toml")
        parser.add_argument(
            "--as", dest="act_as", metavar="INSTITUTION", help="default: the first served"
        )
        if action == "issue":
            parser.add_argument("--kind", required=True, choices=sorted(_KINDS))
            parser.add_argument("--file", required=True, help="the record message as JSON")
        else:
            parser.add_argument("name", help="e.g. institutions/ynu.edu.cn/nominations/n-1")
        if action == "decide":
            parser.add_argument("--decision", required=True, choices=sorted(_DECISIONS))
            parser.add_argument("--reason", help="required to reject, cancel or terminate")
        parser.set_defaults(handler=_run, action=action)
