"""Opaque, tamper-proof page tokens and feed cursors (spec PAGE-2, FEED-2)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping

from ._errors import FieldProblem, ProtocolError, Reason

__all__ = ["TokenCodec"]

_MAC_SIZE = 16


class TokenCodec:
    """Seals small JSON states with an HMAC under a node-local secret.

    The state is readable by nobody but the node in practice (it is not encrypted, only
    authenticated, and carries no personal data); any change to a token makes it invalid.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("token secret must be at least 32 bytes")
        self._secret = secret

    def _mac(self, kind: str, body: bytes) -> bytes:
        return hmac.new(self._secret, kind.encode() + b"\x00" + body, hashlib.sha256).digest()[
            :_MAC_SIZE
        ]

    def seal(self, kind: str, state: Mapping[str, object]) -> str:
        """A URL-safe token for state, usable only as the same kind."""
        body = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(self._mac(kind, body) + body).decode().rstrip("=")

    def open(self, kind: str, token: str, *, field: str) -> dict[str, object]:
        """The state sealed in token.

        Raises:
            ProtocolError: MALFORMED with a field problem naming field, for any altered,
                truncated or foreign token.
        """
        bad = ProtocolError(
            Reason.MALFORMED, f"{field} is not valid",
            field_problems=[FieldProblem(field, "not a token this node issued for this call")],
        )  # fmt: skip
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise bad from exc
        mac, body = raw[:_MAC_SIZE], raw[_MAC_SIZE:]
        if len(mac) != _MAC_SIZE or not hmac.compare_digest(mac, self._mac(kind, body)):
            raise bad
        state = json.loads(body)
        if not isinstance(state, dict):
            raise bad
        return state
