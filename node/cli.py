"""`sseaun node ...`: init, pin-manifest, serve, import, sync, audit (registered through
`sseaun.cli`)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sseaun.sdk.cli._io import CliError, read_bytes, write_text
from sseaun.sdk.core import (
    ManifestTrust,
    envelope_from_json,
    envelope_to_json,
)
from sseaun.v1.manifest_pb2 import Endpoint, EndpointKind, Limits

from ._audit import register as register_audit
from ._config import ConfigError, NodeConfig, render_config
from ._keys import InstitutionKeys, join_request
from ._local import register_records
from ._logging import configure_logging
from .store import SqliteStore

__all__ = ["register"]

T = TypeVar("T")
_INSTITUTION = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


def _load(path: str) -> NodeConfig:
    try:
        return NodeConfig.load(Path(path))
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def _checked(read: Callable[[], T]) -> T:
    try:
        return read()
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def _names(values: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for value in values:
        lang, sep, text = value.partition("=")
        if sep and re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", lang):
            names[lang] = text
        else:
            names["en"] = value
    return names


async def _pin(config_path: Path, database: Path, manifest_file: Path) -> str:
    envelope = envelope_from_json(read_bytes(str(manifest_file)))
    trusted = ManifestTrust.bootstrap(envelope, None).current
    store = await SqliteStore.open(database)
    try:
        if await store.manifest_versions():
            raise CliError(f"{database} already trusts a manifest; pin only a fresh node")
        await store.put_manifest(trusted.version, envelope.SerializeToString(), trusted.digest)
    finally:
        await store.close()
    text = config_path.read_text()
    text = re.sub(
        r'^genesis_sha256 = ".*"$', f'genesis_sha256 = "{trusted.digest.hex()}"', text, flags=re.M
    )
    write_text(str(config_path), text)
    return (
        f"pinned {trusted.network_id} manifest version {trusted.version} ({trusted.digest.hex()})"
    )


def _init(args: argparse.Namespace) -> int:
    if not _INSTITUTION.match(args.institution):
        raise CliError("--institution must be the SCHAC domain, e.g. ynu.edu.cn")
    if not re.fullmatch(r"[A-Z]{2}", args.country):
        raise CliError("--country must be an ISO 3166-1 alpha-2 code, e.g. CN")
    tls = (args.tls_cert, args.tls_key)
    if args.plaintext and any(tls):
        raise CliError("give --tls-cert and --tls-key, or --plaintext, not both")
    if args.public_http and not re.match(r"^https?://[^/\s]+", args.public_http):
        raise CliError("--public-http must be an http:// or https:// URL")
    if not args.plaintext and not all(tls):
        raise CliError(
            "give --tls-cert and --tls-key, or --plaintext (loopback tests and demos only)"
        )
    folder = Path(args.dir)
    config_path = folder / "node.toml"
    if config_path.exists():
        raise CliError(f"{config_path} exists; refusing to overwrite a node")
    folder.mkdir(parents=True, exist_ok=True)
    keys = InstitutionKeys.generate(folder / "keys", args.institution, None)
    write_text(
        str(config_path),
        render_config(
            network_id=args.network_id,
            institution=args.institution,
            grpc_listen=args.grpc,
            http_listen=args.http,
            plaintext=args.plaintext,
            tls_cert=str(Path(args.tls_cert).resolve()) if args.tls_cert else "",
            tls_key=str(Path(args.tls_key).resolve()) if args.tls_key else "",
        ),
    )
    # Partners reach the node at its public addresses, which differ from the listen addresses
    # behind a reverse proxy or when listening on 0.0.0.0.
    public_http = args.public_http or f"http://{args.http}"
    endpoints = [
        Endpoint(
            kind=EndpointKind.ENDPOINT_KIND_GRPC,
            address=args.public_grpc or args.grpc,
            tls=not args.plaintext,
        ),
        Endpoint(
            kind=EndpointKind.ENDPOINT_KIND_HTTP,
            address=public_http,
            tls=public_http.startswith("https://"),
        ),
    ]
    request = join_request(
        keys,
        network_id=args.network_id,
        names=_names(args.name),
        country=args.country,
        endpoints=endpoints,
        now=datetime.now(UTC),
        # The node's defaults (node.toml [limits]), so partners can size their calls.
        limits=Limits(
            max_page_size=NodeConfig.max_page_size,
            max_message_bytes=NodeConfig.max_message_bytes,
        ),
    )
    write_text(str(folder / "join-request.json"), envelope_to_json(request) + "\n")
    config = _load(str(config_path))

    async def create_database() -> str | None:
        store = await SqliteStore.open(config.database)
        await store.close()
        if args.manifest:
            return await _pin(config_path, config.database, Path(args.manifest))
        return None

    pinned = asyncio.run(create_database())
    print(f"initialised {args.institution} in {folder}")
    print(f"  config:       {config_path}")
    print(f"  database:     {config.database}")
    print(f"  keys:         {folder / 'keys' / args.institution} (root key: keep a copy offline)")
    print(f"  join request: {folder / 'join-request.json'} (hand it to the governance members)")
    if pinned:
        print(f"  {pinned}")
    return 0


def _pin_manifest(args: argparse.Namespace) -> int:
    config = _load(args.config)
    print(asyncio.run(_pin(config.path, config.database, Path(args.manifest))))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ._serve import serve_forever  # noqa: PLC0415 - grpc is loaded only to serve

    config = _load(args.config)
    configure_logging(args.log_level)
    try:
        asyncio.run(serve_forever(config))
    except OSError as exc:
        raise CliError(f"cannot serve: {exc.strerror or exc}") from exc
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    return 0


def _import(args: argparse.Namespace) -> int:
    from sseaun.sdk.core import catalogue  # noqa: PLC0415

    from ._import import import_courses, import_profile, print_progress  # noqa: PLC0415

    config = _load(args.config)
    institution = args.institution or config.institutions[0]
    if institution not in config.institutions:
        raise CliError(f"this node does not serve {institution}")
    fmt = args.format or catalogue.guess_format(args.file)
    if fmt is None:
        raise CliError("cannot tell the format from the file name: give --format csv|json")
    data = read_bytes(args.file)
    passphrase = _checked(config.passphrase)

    async def run() -> int:
        keys = InstitutionKeys.load(config.keys_dir, institution, passphrase)
        store = await SqliteStore.open(config.database)
        try:
            if args.what == "profile":
                report = await import_profile(config, store, keys, data, fmt)
            else:
                report = await import_courses(
                    config,
                    store,
                    keys,
                    data,
                    fmt,
                    progress=None if args.quiet else print_progress,
                )
        finally:
            await store.close()
        if not report.ok:
            print(
                f"{args.file}: {len(report.problems)} problem(s); nothing was imported:",
                file=sys.stderr,
            )
            for problem in report.problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        print(
            f"imported {args.what} of {institution} from {args.file}: {report.rows} row(s), "
            f"{report.new_versions} new version(s), {report.unchanged} unchanged, "
            f"{report.batches_skipped} batch(es) already done"
        )
        return 0

    return asyncio.run(run())


def _sync(args: argparse.Namespace) -> int:
    from ._peer_sync import CollectionReport, PeerSync, SyncError  # noqa: PLC0415
    from ._runtime import Node  # noqa: PLC0415

    config = _load(args.config)
    peers: list[str] = list(dict.fromkeys(args.peer or config.sync_peers))
    if not peers:
        raise CliError("no peer to sync: list them in [sync] peers or give --peer ID")
    for peer in peers:
        if not _INSTITUTION.match(peer):
            raise CliError(f"--peer {peer!r} is not an institution ID (a SCHAC domain)")
    if args.page_size is not None and not 1 <= args.page_size <= 10_000:
        raise CliError("--page-size must be 1..10000")
    configure_logging(args.log_level)
    passphrase = _checked(config.passphrase)
    interactive = sys.stderr.isatty()

    def progress(report: CollectionReport) -> None:
        if args.quiet:
            return
        start, end = ("\r", "") if interactive else ("", "\n")
        sys.stderr.write(
            f"{start}sync {report.peer} {report.parent}: page "
            f"{report.pages} committed, {report.received} received, {report.stored} stored, "
            f"{report.unchanged} unchanged, {report.refused} refused{end}"
        )
        sys.stderr.flush()

    async def run() -> int:
        store = await SqliteStore.open(config.database)
        sync: PeerSync | None = None
        try:
            keys = {
                i: InstitutionKeys.load(config.keys_dir, i, passphrase) for i in config.institutions
            }
            node = await Node.open(config, store, keys)
            sync = PeerSync(node, progress=progress, page_size=args.page_size)
            failed = False
            for peer in peers:
                if args.from_start:
                    await sync.forget_cursors(peer)
                try:
                    reports = await sync.sync_peer(peer)
                except SyncError as exc:
                    print(f"{peer}: cannot sync: {exc}", file=sys.stderr)
                    failed = True
                    continue
                if interactive and not args.quiet:
                    sys.stderr.write("\n")
                for report in reports:
                    print(report.summary())
                    failed = failed or report.error is not None
        finally:
            if sync is not None:
                sync.close()
            await store.close()
        return 1 if failed else 0

    return asyncio.run(run())


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `node` group to the `sseaun` command."""
    node = groups.add_parser("node", help="run a university's node")
    sub = node.add_subparsers(dest="command", metavar="COMMAND", required=True)

    init = sub.add_parser("init", help="keys, node.toml, database and a join request in one step")
    init.add_argument("--institution", required=True, help="SCHAC domain, e.g. ynu.edu.cn")
    init.add_argument("--name", action="append", required=True, metavar="[LANG=]NAME")
    init.add_argument("--country", required=True, help="ISO 3166-1 alpha-2, e.g. CN")
    init.add_argument("--dir", required=True, metavar="DIR")
    init.add_argument("--network-id", default="sseaun")
    init.add_argument("--grpc", default="127.0.0.1:7443", metavar="HOST:PORT")
    init.add_argument("--http", default="127.0.0.1:7080", metavar="HOST:PORT")
    init.add_argument(
        "--public-grpc", metavar="HOST:PORT", help="gRPC address partners use (default: --grpc)"
    )
    init.add_argument(
        "--public-http", metavar="URL", help="HTTP base URL partners use (default: http://--http)"
    )
    init.add_argument("--plaintext", action="store_true", help="no TLS (loopback tests only)")
    init.add_argument("--tls-cert", metavar="CERT.pem", help="PEM certificate chain for gRPC TLS")
    init.add_argument("--tls-key", metavar="KEY.pem", help="PEM private key for gRPC TLS")
    init.add_argument("--manifest", metavar="FILE", help="pin this signed manifest as genesis")
    init.set_defaults(handler=_init)

    pin = sub.add_parser("pin-manifest", help="trust a signed manifest as this node's genesis")
    pin.add_argument("--config", required=True, metavar="DIR/node.toml")
    pin.add_argument("--manifest", required=True, metavar="FILE")
    pin.set_defaults(handler=_pin_manifest)

    serve = sub.add_parser("serve", help="run the node until SIGTERM or Ctrl-C")
    serve.add_argument("--config", required=True, metavar="DIR/node.toml")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    serve.set_defaults(handler=_serve)

    imp = sub.add_parser("import", help="import the institution profile or course catalogue")
    imp.add_argument("what", choices=["profile", "courses"])
    imp.add_argument("--config", required=True, metavar="DIR/node.toml")
    imp.add_argument("--file", required=True, metavar="FILE.csv|FILE.json")
    imp.add_argument("--format", choices=["csv", "json"])
    imp.add_argument("--institution", help="for a node serving several institutions")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(handler=_import)

    sync = sub.add_parser(
        "sync", help="bring the copies of peers' public catalogues up to date, then stop"
    )
    sync.add_argument("--config", required=True, metavar="DIR/node.toml")
    sync.add_argument(
        "--peer",
        action="append",
        metavar="ID",
        help="a peer institution to sync (repeatable; default: the config's sync.peers)",
    )
    sync.add_argument("--page-size", type=int, metavar="N", help="changes per feed page")
    sync.add_argument(
        "--from-start",
        action="store_true",
        help="read the feeds from the beginning (records held already count as unchanged)",
    )
    sync.add_argument("--quiet", action="store_true", help="no progress lines")
    sync.add_argument("--log-level", default="warning", choices=["debug", "info", "warning"])
    sync.set_defaults(handler=_sync)

    register_audit(sub)  # `node audit verify` and `node audit reveal` (in _audit.py)
    register_records(sub)  # `node records get|list` (in _local.py), each read logged
