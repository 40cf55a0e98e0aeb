"""The public credential status endpoint (spec CRED-5): the signed status lists of the
institutions this node serves, for anyone, members or not, without authentication.

``GET /.well-known/sseaun/status/{institution}/{list_id}[?version=N]`` answers the newest (or
the N-th) stored version of ``institutions/{institution}/credentialStatusLists/{list_id}`` as its
DSSE envelope JSON, exactly as signed. Nothing else is ever served through this path: only
status-list records, of institutions served here. Callers are rate-limited per client address.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime

from aiohttp import web
from google.protobuf.message import DecodeError

from sseaun.sdk.core import (
    ProtocolError,
    envelope_from_bytes,
    envelope_to_json,
    from_timestamp,
    records,
)
from sseaun.v1.records_pb2 import CredentialStatusList

from ._ratelimit import RateLimiter
from ._runtime import Node

__all__ = [
    "STATUS_BURST",
    "STATUS_CACHE_SECONDS",
    "STATUS_PATH",
    "STATUS_RATE",
    "STATUS_VERSION_CACHE_SECONDS",
    "add_status_routes",
    "status_url",
]

STATUS_PATH = "/.well-known/sseaun/status"
#: Requests per second, and burst, allowed to one client address.
STATUS_RATE = 20.0
STATUS_BURST = 40
#: How long a cache may keep the newest version (a revocation shows within this), and a named
#: version (immutable; still never beyond the list's valid_until).
STATUS_CACHE_SECONDS = 300
STATUS_VERSION_CACHE_SECONDS = 86_400

_KIND = records.RecordKind.CREDENTIAL_STATUS_LIST
_NOT_FOUND = "no such status list"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    response = web.json_response({"error": message}, status=status, headers=headers)
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "no-store"
    return response


def _max_age(payload: bytes, now: datetime, cap: int) -> int:
    """Seconds a cache may keep the list: at most cap, never beyond its valid_until."""
    status_list = CredentialStatusList()
    try:
        status_list.ParseFromString(payload)
    except DecodeError:
        return 0
    if not status_list.HasField("valid_until"):
        return 0
    left = (from_timestamp(status_list.valid_until) - now).total_seconds()
    return max(0, min(cap, math.floor(left)))


def add_status_routes(
    app: web.Application,
    node: Node,
    *,
    limiter: RateLimiter | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Add the public status endpoint to the node's HTTP application."""
    limits = limiter or RateLimiter(STATUS_RATE, STATUS_BURST)

    async def status(request: web.Request) -> web.Response:
        wait = limits.take(request.remote or "unknown", monotonic())
        if wait is not None:
            retry = str(max(1, math.ceil(wait)))
            return _error(429, "too many requests; retry later", {"Retry-After": retry})
        institution = request.match_info["institution"]
        list_id = request.match_info["list_id"]
        version = 0
        if "version" in request.query:
            try:
                version = int(request.query["version"])
            except ValueError:
                version = -1
            if version < 1:
                return _error(400, "version must be a whole number, 1 or more")
        if institution not in node.config.institutions:
            return _error(404, _NOT_FOUND)
        try:
            name = records.record_name(_KIND, institution, list_id)
        except ProtocolError:
            return _error(404, _NOT_FOUND)
        stored = await node.store.get_record(name, version)
        # Belt and braces: only a status list record of this institution is ever answered.
        if (
            stored is None
            or stored.deleted
            or stored.name != name
            or stored.payload_type != _KIND.payload_type
            or stored.issuer != institution
        ):
            return _error(404, _NOT_FOUND)
        envelope = envelope_from_bytes(stored.envelope)
        cap = STATUS_VERSION_CACHE_SECONDS if version else STATUS_CACHE_SECONDS
        age = _max_age(envelope.payload, node.clock(), cap)
        headers = {
            "Cache-Control": f"public, max-age={age}" if age else "no-cache",
            "Access-Control-Allow-Origin": "*",
            "X-Content-Type-Options": "nosniff",
            "SSEAUN-Record-Version": str(stored.version),
        }
        return web.Response(
            text=envelope_to_json(envelope), content_type="application/json", headers=headers
        )

    app.router.add_get(STATUS_PATH + "/{institution}/{list_id}", status)


def status_url(base: str, institution: str, list_id: str) -> str:
    """The public URL of a status list on a node whose HTTP side is at base."""
    return f"{base.rstrip('/')}{STATUS_PATH}/{institution}/{list_id}"
