"""What both transports share: channel options, credentials, reading a failed call's status."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc

from ._config import ClientConfig, is_loopback_target
from ._exchange import RawStatus

__all__ = ["channel_credentials", "channel_options", "raw_status"]

_Option = tuple[str, int | str]


def channel_options(config: ClientConfig) -> list[_Option]:
    """The gRPC channel arguments of a client.

    ``grpc.enable_retries`` is off: gRPC's own retries would resend the same signed bytes, whose
    nonce the node has already seen; the client retries itself, re-signing every attempt.
    """
    keepalive = config.keepalive
    options: list[_Option] = [
        ("grpc.max_receive_message_length", config.max_message_size),
        ("grpc.max_send_message_length", config.max_message_size),
        ("grpc.keepalive_time_ms", int(keepalive.time * 1000)),
        ("grpc.keepalive_timeout_ms", int(keepalive.timeout * 1000)),
        ("grpc.keepalive_permit_without_calls", int(keepalive.permit_without_calls)),
        ("grpc.http2.max_pings_without_data", keepalive.max_pings_without_data),
        ("grpc.enable_retries", 0),
        ("grpc.primary_user_agent", config.user_agent),
    ]
    if config.receive_window is not None:
        # Without bandwidth-delay probing the window stays where it is set: flat memory.
        options.append(("grpc.http2.bdp_probe", 0))
        options.append(("grpc.http2.lookahead_bytes", config.receive_window))
    if config.server_name_override is not None:
        options.append(("grpc.ssl_target_name_override", config.server_name_override))
        options.append(("grpc.default_authority", config.server_name_override))
    return options


def channel_credentials(config: ClientConfig, target: str) -> grpc.ChannelCredentials | None:
    """TLS credentials, or None for a plaintext channel (loopback targets only).

    Raises:
        ValueError: plaintext was asked for a target that is not loopback.
    """
    if config.plaintext:
        if not is_loopback_target(target):
            raise ValueError(
                f"plaintext is only allowed to a loopback target, not {target!r}: "
                "use TLS (DESIGN §5)"
            )
        return None
    return grpc.ssl_channel_credentials(root_certificates=config.root_certificates)


def _metadata(items: Iterable[Any] | None) -> tuple[tuple[str, str | bytes], ...]:
    # sync calls give (key, value) namedtuples, aio calls a Metadata of (key, value) tuples
    return tuple((str(key), value) for key, value in items or () if isinstance(value, str | bytes))


def raw_status(error: grpc.RpcError) -> RawStatus:
    """The status of a failed call (sync or aio), as received."""
    try:
        code = error.code()
        details = error.details() or ""
        trailing = _metadata(error.trailing_metadata())
    except AttributeError:  # an RpcError that is not a Call: nothing more to read
        return RawStatus("UNKNOWN", str(error))
    return RawStatus(code.name, details, trailing)
