"""Client configuration: identity, deadlines, retries, message size, TLS and keepalive."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from sseaun.sdk.core import Signer

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "ClientConfig",
    "Keepalive",
    "RetryPolicy",
    "is_loopback_target",
]

#: gRPC's own default receive limit (4 MiB); a node advertises its limit in the manifest.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How reads are retried: exponential backoff with full jitter, inside the call's deadline.

    Attempt n (n = 1 for the first retry) waits a uniform random time in
    ``[0, min(max_backoff, base_backoff * 2**(n-1))]`` ("full jitter"), or the node's
    ``RetryInfo`` delay when it sent one. A retry whose wait would not end before the deadline is
    not made: the last failure is raised instead.

    Attributes:
        max_attempts: attempts in all, the first included (1 disables retries).
        base_backoff: seconds; the cap of the first retry's wait.
        max_backoff: seconds; the cap of any jittered wait.
    """

    max_attempts: int = 4
    base_backoff: float = 0.1
    max_backoff: float = 5.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_backoff <= 0 or self.max_backoff < self.base_backoff:
            raise ValueError("need 0 < base_backoff <= max_backoff")


@dataclass(frozen=True)
class Keepalive:
    """HTTP/2 keepalive pings (gRPC channel arguments ``grpc.keepalive_*``).

    Keepalive must be coordinated with the node (grpc.io keepalive guide): a server that gets
    pings more often than it allows answers GOAWAY "too_many_pings". The reference node accepts
    one ping per 20 s without data (``grpc.http2.min_recv_ping_interval_without_data_ms`` =
    20000), also on idle connections; the defaults stay above that. A node left at gRPC's
    server default (one ping per 5 minutes) needs ``time`` of 300 s or more.

    Attributes:
        time: seconds between pings while calls are open (30 s: notices a dead peer within
            about 50 s, and keeps a quiet ``follow`` feed alive through NATs and load balancers
            that drop idle flows after a minute or more).
        timeout: seconds to wait for a ping's ack before the connection is closed (20 s).
        permit_without_calls: ping while no call is open (False: an idle channel stays silent;
            it reconnects on the next call anyway).
        max_pings_without_data: pings allowed without a data frame in between (0 = no limit, so
            a long quiet ``follow`` stream keeps being checked).
    """

    time: float = 30.0
    timeout: float = 20.0
    permit_without_calls: bool = False
    max_pings_without_data: int = 0

    def __post_init__(self) -> None:
        if self.time <= 0 or self.timeout <= 0 or self.max_pings_without_data < 0:
            raise ValueError("keepalive time and timeout must be positive")


@dataclass(frozen=True)
class ClientConfig:
    """Everything a node client needs besides the trusted key ring and the node it calls.

    Attributes:
        network_id: the network the manifest names; every request is signed for it.
        sender: the calling institution (its SCHAC home-organisation domain).
        signer: the sender's TRANSPORT key (a key in memory, an HSM or a KMS).
        deadline: seconds; default deadline of every call (for a list, of every page; for a feed,
            of the whole stream). Retries happen within it.
        retry: the retry policy of reads.
        max_message_size: bytes; receive and send limit of the channel.
        plaintext: talk without TLS. Only allowed to a loopback target (tests and demos,
            DESIGN §5); TLS is the default.
        root_certificates: PEM roots to trust for TLS; None uses gRPC's default roots (its
            bundled Mozilla set, or the file named by GRPC_DEFAULT_SSL_ROOTS_FILE_PATH).
        server_name_override: the TLS name to check instead of the target's host (tests, or a
            node reached through an address not in its certificate).
        keepalive: HTTP/2 keepalive settings.
        user_agent: sent as the primary user agent.
        receive_window: bytes; a fixed HTTP/2 receive window instead of gRPC's self-tuning one
            (bounded memory for long feed reads); None keeps gRPC's default.
    """

    network_id: str
    sender: str
    signer: Signer
    deadline: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    plaintext: bool = False
    root_certificates: bytes | None = None
    server_name_override: str | None = None
    keepalive: Keepalive = field(default_factory=Keepalive)
    user_agent: str = "sseaun-sdk-python/0.1"
    receive_window: int | None = None

    def __post_init__(self) -> None:
        if not self.network_id or not self.sender:
            raise ValueError("network_id and sender are required")
        if self.deadline <= 0:
            raise ValueError("deadline must be positive")
        if self.max_message_size <= 0:
            raise ValueError("max_message_size must be positive")
        if self.plaintext and (
            self.root_certificates is not None or self.server_name_override is not None
        ):
            raise ValueError("plaintext excludes root_certificates and server_name_override")


def _host_of(target: str) -> str:
    """The host part of a gRPC target (``host:port``, ``[v6]:port``, ``dns:///host:port``...)."""
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if target.startswith(scheme):
            target = target[len(scheme) :]
            break
    if target.startswith("["):
        return target[1 : target.find("]")] if "]" in target else target
    if target.count(":") > 1:  # a bare IPv6 address
        return target
    return target.rsplit(":", 1)[0] if ":" in target else target


def is_loopback_target(target: str) -> bool:
    """Whether a gRPC target names this machine only: loopback address, localhost, unix socket."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    host = _host_of(target)
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
