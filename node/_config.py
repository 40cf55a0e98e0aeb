"""node.toml: every option a node reads, with its default and what it means."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sseaun.sdk.core import ProtocolError, Reason

__all__ = ["ConfigError", "NodeConfig", "render_config"]


class ConfigError(Exception):
    """node.toml is missing, unreadable or wrong: one line naming the option."""


@dataclass(frozen=True)
class NodeConfig:
    """A node's configuration; paths are absolute (relative ones are taken from node.toml's folder).

    Attributes:
        path: the node.toml file itself.
        network_id: the network this node belongs to.
        institutions: the institutions this node serves (one, or several for a hosting provider).
        grpc_listen: host:port of the gRPC server; port 0 picks a free port.
        http_listen: host:port of the HTTP side (manifest, health, metrics).
        plaintext: serve gRPC without TLS; only for loopback tests and demos.
        tls_cert, tls_key: PEM certificate chain and key for gRPC TLS.
        database: the SQLite file.
        keys_dir: where the institution's keys live.
        passphrase_env: environment variable holding the keys' passphrase, if they are encrypted.
        genesis_sha256: hex digest pinning the genesis manifest (sseaun node pin-manifest).
        manifest_file: a manifest envelope to read at start and on each refresh.
        manifest_peers: HTTP base URLs to catch up newer manifest versions from.
        manifest_refresh_seconds: how often to look for a newer manifest.
        max_page_size, default_page_size: list and feed page limits.
        max_message_bytes: largest gRPC message accepted or sent.
        rate_per_second, rate_burst: per-caller token bucket.
        nonce_linger_ms: under load, how long nonce claims wait to share one commit.
        drain_seconds: how long in-flight calls may finish on shutdown.
        clock_window_seconds: accepted skew of request times.
        sync_peers: institutions whose public catalogues (profile and courses) this node
            follows through their change feeds; empty: none.
        sync_interval_seconds: how often to look for new changes when not following (and how
            long to wait before trying a peer again after a failure).
        sync_page_size: changes asked for per feed page (the peer may send fewer).
        sync_follow: keep each feed open and receive changes as they happen, instead of polling
            every sync_interval_seconds.
        sync_tls_roots: PEM file of the root certificates trusted for the peers' TLS; unset uses
            gRPC's default roots.
        checkpoint_interval_seconds: how often the access log is checkpointed when it grew.
        witness_logs: institutions whose access logs this node witnesses; empty: every other
            member with a gRPC endpoint.
        witness_interval_seconds: how often each witnessed log is checked and cosigned; 0: never.
        exchange_interval_seconds: how often each partner's exchange feed is pulled when no hint
            arrives; 0: only on hints (and at start).
        exchange_hints: send partners "look again" hints after changes; false: partners learn
            of changes only by their own periodic pulls.
    """

    path: Path
    network_id: str
    institutions: tuple[str, ...]
    grpc_listen: str = "127.0.0.1:7443"
    http_listen: str = "127.0.0.1:7080"
    plaintext: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    database: Path = Path("node.db")
    keys_dir: Path = Path("keys")
    passphrase_env: str | None = None
    genesis_sha256: str = ""
    manifest_file: Path | None = None
    manifest_peers: tuple[str, ...] = ()
    manifest_refresh_seconds: float = 300.0
    max_page_size: int = 500
    default_page_size: int = 100
    max_message_bytes: int = 4 * 1024 * 1024
    rate_per_second: float = 200.0
    rate_burst: int = 400
    nonce_linger_ms: float = 5.0
    drain_seconds: float = 10.0
    clock_window_seconds: int = 300
    sync_peers: tuple[str, ...] = ()
    sync_interval_seconds: float = 60.0
    sync_page_size: int = 200
    sync_follow: bool = False
    sync_tls_roots: Path | None = None
    checkpoint_interval_seconds: float = 60.0
    witness_logs: tuple[str, ...] = ()
    witness_interval_seconds: float = 300.0
    exchange_interval_seconds: float = 60.0
    exchange_hints: bool = True

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        """Read and check node.toml.

        Raises:
            ConfigError: naming the file and the option.
        """
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        return cls.from_dict(data, path.resolve())

    @classmethod
    def from_dict(cls, data: dict[str, object], path: Path) -> NodeConfig:
        """Check every option of a parsed node.toml.

        Raises:
            ConfigError: naming the file and the option.
        """
        options = _Options(data, path)
        base = path.parent
        institutions = options.strings("node", "institutions")
        network_id = options.text("node", "network_id", "")
        if not network_id:
            raise ConfigError(f"{path}: node.network_id is required")
        if not institutions:
            raise ConfigError(f"{path}: node.institutions must list at least one institution ID")

        def resolve(value: str) -> Path | None:
            return (base / value).resolve() if value else None

        config = cls(
            path=path,
            network_id=network_id,
            institutions=tuple(institutions),
            grpc_listen=options.text("grpc", "listen", cls.grpc_listen),
            http_listen=options.text("http", "listen", cls.http_listen),
            plaintext=options.flag("grpc", "plaintext", False),
            tls_cert=resolve(options.text("grpc", "tls_cert", "")),
            tls_key=resolve(options.text("grpc", "tls_key", "")),
            database=resolve(options.text("node", "database", "node.db")) or base / "node.db",
            keys_dir=resolve(options.text("keys", "dir", "keys")) or base / "keys",
            passphrase_env=options.text("keys", "passphrase_env", "") or None,
            genesis_sha256=options.text("manifest", "genesis_sha256", ""),
            manifest_file=resolve(options.text("manifest", "file", "")),
            manifest_peers=tuple(options.strings("manifest", "peers")),
            manifest_refresh_seconds=options.number("manifest", "refresh_seconds", 300.0),
            max_page_size=options.integer("limits", "max_page_size", 500),
            default_page_size=options.integer("limits", "default_page_size", 100),
            max_message_bytes=options.integer("limits", "max_message_bytes", 4 * 1024 * 1024),
            rate_per_second=options.number("limits", "rate_per_second", 200.0),
            rate_burst=options.integer("limits", "rate_burst", 400),
            nonce_linger_ms=options.number("limits", "nonce_linger_ms", 5.0),
            drain_seconds=options.number("node", "drain_seconds", 10.0),
            clock_window_seconds=options.integer("node", "clock_window_seconds", 300),
            sync_peers=tuple(options.strings("sync", "peers")),
            sync_interval_seconds=options.number("sync", "interval_seconds", 60.0),
            sync_page_size=options.integer("sync", "page_size", 200),
            sync_follow=options.flag("sync", "follow", False),
            sync_tls_roots=resolve(options.text("sync", "tls_roots", "")),
            checkpoint_interval_seconds=options.number("log", "checkpoint_interval_seconds", 60.0),
            witness_logs=tuple(options.strings("log", "witness")),
            witness_interval_seconds=options.number("log", "witness_interval_seconds", 300.0),
            exchange_interval_seconds=options.number("exchange", "interval_seconds", 60.0),
            exchange_hints=options.flag("exchange", "hints", True),
        )
        if not config.plaintext and not (config.tls_cert and config.tls_key):
            raise ConfigError(
                f"{path}: set grpc.tls_cert and grpc.tls_key, or grpc.plaintext = true "
                "(loopback tests and demos only)"
            )
        if not 1 <= config.default_page_size <= config.max_page_size:
            raise ConfigError(f"{path}: limits.default_page_size must be 1..max_page_size")
        if config.rate_per_second <= 0 or config.rate_burst < 1:
            raise ConfigError(f"{path}: limits.rate_per_second and rate_burst must be positive")
        _check_sync(config)
        if config.exchange_interval_seconds < 0:
            raise ConfigError(f"{path}: exchange.interval_seconds must be 0 or more")
        if config.checkpoint_interval_seconds <= 0 or config.witness_interval_seconds < 0:
            raise ConfigError(
                f"{path}: log.checkpoint_interval_seconds must be more than 0 and "
                "log.witness_interval_seconds 0 or more"
            )
        return config

    def passphrase(self) -> bytes | None:
        """The keys' passphrase from the variable keys.passphrase_env names, if one is named.

        Raises:
            ConfigError: the variable is named but empty or unset.
        """
        if not self.passphrase_env:
            return None
        value = os.environ.get(self.passphrase_env)
        if not value:
            raise ConfigError(f"environment variable {self.passphrase_env} is empty or unset")
        return value.encode()

    def genesis_digest(self) -> bytes:
        """The pinned genesis digest.

        Raises:
            ProtocolError: MANIFEST_PIN_MISMATCH when no valid pin is configured.
        """
        try:
            digest = bytes.fromhex(self.genesis_sha256)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise ProtocolError(
                Reason.MANIFEST_PIN_MISMATCH,
                "manifest.genesis_sha256 is not set: run `sseaun node pin-manifest`",
            )
        return digest


def _check_sync(config: NodeConfig) -> None:
    path = config.path
    if len(set(config.sync_peers)) != len(config.sync_peers):
        raise ConfigError(f"{path}: sync.peers lists an institution twice")
    if served := sorted(set(config.sync_peers) & set(config.institutions)):
        raise ConfigError(f"{path}: sync.peers lists {served[0]}, which this node serves itself")
    if config.sync_interval_seconds <= 0:
        raise ConfigError(f"{path}: sync.interval_seconds must be more than 0")
    if not 1 <= config.sync_page_size <= 10_000:
        raise ConfigError(f"{path}: sync.page_size must be 1..10000")


class _Options:
    """Typed access to the tables of node.toml, naming the option in every error."""

    def __init__(self, data: dict[str, object], path: Path) -> None:
        self._data = data
        self._path = path

    def _get(self, section: str, key: str) -> object:
        table = self._data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{self._path}: [{section}] must be a table")
        return table.get(key)

    def _wrong(self, section: str, key: str, kind: str) -> ConfigError:
        return ConfigError(f"{self._path}: {section}.{key} must be {kind}")

    def text(self, section: str, key: str, default: str) -> str:
        value = self._get(section, key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._wrong(section, key, "a string")
        return value

    def flag(self, section: str, key: str, default: bool) -> bool:
        value = self._get(section, key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._wrong(section, key, "true or false")
        return value

    def integer(self, section: str, key: str, default: int) -> int:
        value = self._get(section, key)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self._wrong(section, key, "a whole number, 0 or more")
        return value

    def number(self, section: str, key: str, default: float) -> float:
        value = self._get(section, key)
        if value is None:
            return default
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise self._wrong(section, key, "a number, 0 or more")
        return float(value)

    def strings(self, section: str, key: str) -> list[str]:
        value = self._get(section, key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._wrong(section, key, "a list of strings")
        return list(value)


def render_config(
    *,
    network_id: str,
    institution: str,
    grpc_listen: str,
    http_listen: str,
    plaintext: bool,
    genesis_sha256: str = "",
    manifest_file: str = "",
    tls_cert: str = "",
    tls_key: str = "",
) -> str:
    """A commented node.toml with every option and its default."""
    return f"""# SSEAUN node configuration. Relative paths are taken from this file's folder.

[node]
# The network this node belongs to (the manifest's network_id).
network_id = "{network_id}"
# Institutions this node serves; a hosting provider may list several.
institutions = ["{institution}"]
# The SQLite database (WAL mode). Back it up with `sqlite3 node.db ".backup copy.db"`.
database = "node.db"
# Seconds in-flight calls may take to finish when the node is asked to stop.
drain_seconds = 10
# Accepted difference between a request's time and this node's clock, in seconds.
clock_window_seconds = 300

[grpc]
# host:port the gRPC service listens on (port 0: any free port).
listen = "{grpc_listen}"
# Serve without TLS. Only for loopback tests and demos: production uses tls_cert and tls_key.
plaintext = {"true" if plaintext else "false"}
# PEM certificate chain and private key for TLS.
{f'tls_cert = "{tls_cert}"' if tls_cert else '# tls_cert = "tls/cert.pem"'}
{f'tls_key = "{tls_key}"' if tls_key else '# tls_key = "tls/key.pem"'}

[http]
# host:port of the HTTP side: /.well-known/sseaun/manifest, /healthz, /metrics.
listen = "{http_listen}"

[keys]
# Folder holding the institution's keys (root, transport, issuing, log).
dir = "keys"
# Environment variable holding the passphrase of encrypted keys (unset: keys are not encrypted).
# passphrase_env = "SSEAUN_KEY_PASSPHRASE"

[manifest]
# SHA-256 (hex) of the genesis manifest this node trusts; set by `sseaun node pin-manifest`.
genesis_sha256 = "{genesis_sha256}"
# A signed manifest file to read at start and on each refresh (optional).
file = "{manifest_file}"
# HTTP base URLs of peers to fetch newer manifest versions from (each step is verified).
peers = []
# Seconds between looks for a newer manifest.
refresh_seconds = 300

[limits]
# Largest and default page of a list or change feed.
max_page_size = 500
default_page_size = 100
# Largest gRPC message received or sent, in bytes.
max_message_bytes = 4194304
# Per-caller rate limit: sustained calls per second and burst.
rate_per_second = 200
rate_burst = 400
# Under load, the replay store waits up to this long to commit concurrent nonces together.
nonce_linger_ms = 5

[sync]
# Institutions whose public catalogue (profile and courses) this node keeps a verified copy of,
# read from their change feeds; every record is checked against its issuer's signature.
peers = []
# Seconds between looks for new changes (and before retrying a peer that failed).
interval_seconds = 60
# Changes per feed page asked for (the peer may send fewer).
page_size = 200
# Keep the feeds open and receive changes as they happen, instead of polling.
follow = false
# PEM root certificates trusted for the peers' TLS (unset: gRPC's default roots).
# tls_roots = "tls/peer-roots.pem"

[log]
# Seconds between checkpoints of the access log (signed only when the log grew).
checkpoint_interval_seconds = 60
# Institutions whose access logs this node witnesses (checks consistency and cosigns);
# empty: every other member with a gRPC endpoint.
witness = []
# Seconds between witnessing rounds; 0 turns witnessing off.
witness_interval_seconds = 300

[exchange]
# Seconds between pulls of each partner's exchange feed (mobility and credit records) when no
# hint arrives; partners' hints make the node pull at once. 0: pull only on hints.
interval_seconds = 60
# Send partners a signed "look again" hint after each change (false: they find changes only
# at their next periodic pull; nothing is lost either way).
hints = true
"""
