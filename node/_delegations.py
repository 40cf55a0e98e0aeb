"""Delegations of the node's own operational keys, refreshed before they expire, and partners'
delegations and revocations fetched from their HTTP side (spec KEY-6, KEY-7, MAN-14)."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta

import aiohttp

from sseaun.sdk.core import (
    MAX_DELEGATION_LIFETIME,
    Envelope,
    ProtocolError,
    Reason,
    envelope_from_json,
    listed_key,
    payload_types,
    sign_delegation,
)
from sseaun.v1.manifest_pb2 import EndpointKind

from ._http import STATEMENTS_PATH
from ._keys import ROLES, InstitutionKeys
from ._runtime import Node

__all__ = [
    "REFRESH_BEFORE",
    "apply_statement",
    "fetch_partner_statements",
    "refresh_own_delegations",
]

log = logging.getLogger("sseaun.node")
_CONCURRENT_FETCHES = 8
#: A delegation is renewed when less than this is left of it.
REFRESH_BEFORE = timedelta(days=2)


def _delegation(keys: InstitutionKeys, network_id: str, serial: int, now: datetime) -> Envelope:
    expires = now + MAX_DELEGATION_LIFETIME
    entries = [
        listed_key(
            getattr(keys, role).public_key,
            keys.institution,
            purpose,
            not_before=now,
            not_after=expires,
        )
        for role, purpose in ROLES.items()
        if role != "root"
    ]
    return sign_delegation(
        keys.root,
        network_id=network_id,
        institution=keys.institution,
        serial=serial,
        issued_at=now,
        expires_at=expires,
        keys=entries,
    )


async def refresh_own_delegations(node: Node) -> int:
    """Sign a fresh delegation for every served institution whose current one is near its end.

    Returns how many were issued. An institution not (yet) in the manifest is skipped: its
    delegation could not be verified by anyone.
    """
    now = node.clock()
    issued = 0
    for institution, keys in node.keys.items():
        if node.keyring.member(institution) is None:
            continue
        current = node.keyring.delegation(institution)
        if current is not None:
            expires = current.expires_at.ToDatetime().replace(tzinfo=now.tzinfo)
            if expires - now > REFRESH_BEFORE:
                continue
        serial = (current.serial if current else 0) + 1
        envelope = _delegation(keys, node.config.network_id, serial, now)
        try:
            node.keyring.accept_delegation(envelope, now)
        except ProtocolError as exc:
            log.error("own delegation refused: %s: %s", exc.reason.value, exc.message)
            continue
        await node.store.put_statement(
            "delegation", institution, str(serial), envelope.SerializeToString()
        )
        issued += 1
        log.info("issued delegation %d for %s", serial, institution)
    return issued


async def fetch_partner_statements(node: Node, session: aiohttp.ClientSession) -> int:
    """Fetch every partner's delegations and revocations (a few at a time), then apply them in
    manifest order; returns how many were applied."""
    limit = asyncio.Semaphore(_CONCURRENT_FETCHES)

    async def fetch(institution: str, url: str) -> list[object]:
        async with limit:
            try:
                async with session.get(url) as reply:
                    if reply.status != 200:
                        return []
                    data = await reply.content.read(node.config.max_message_bytes + 1)
                body = json.loads(data) if len(data) <= node.config.max_message_bytes else None
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.info("statements of %s not fetched: %s", institution, exc)
                return []
        items = body.get("statements") if isinstance(body, dict) else None
        return items if isinstance(items, list) else []

    sources = [
        (member.institution_id, endpoint.address.rstrip("/") + STATEMENTS_PATH)
        for member in node.keyring.manifest.manifest.members
        if member.institution_id not in node.keys
        for endpoint in member.endpoints
        if endpoint.kind == EndpointKind.ENDPOINT_KIND_HTTP
    ]
    fetched = await asyncio.gather(*(fetch(i, url) for i, url in sources))
    applied = 0
    for (institution, _), items in zip(sources, fetched, strict=True):
        for item in items:
            applied += await _apply(node, institution, item)
    return applied


async def _apply(node: Node, source: str, item: object) -> int:
    """Apply one statement a partner served as JSON (see apply_statement)."""
    try:
        envelope = envelope_from_json(json.dumps(item))
    except ProtocolError as exc:
        log.info("statement served by %s refused: %s", source, exc.reason.value)
        return 0
    return await apply_statement(node, source, envelope)


async def apply_statement(node: Node, source: str, envelope: Envelope) -> int:
    """Apply one statement a partner served; stored under the institution it is about (a partner
    may relay others' statements, which verify on their own). 1 if applied, else 0."""
    try:
        if envelope.payload_type == payload_types.KEY_REVOCATION:
            revocation = node.keyring.accept_revocation(envelope)
            kind, about, key = "revocation", revocation.institution_id, revocation.key_id
        else:
            delegation = node.keyring.accept_delegation(envelope, node.clock())
            kind, about, key = "delegation", delegation.institution_id, str(delegation.serial)
    except ProtocolError as exc:
        if exc.reason is not Reason.STALE_VERSION:
            log.info("statement served by %s refused: %s", source, exc.reason.value)
        return 0
    await node.store.put_statement(kind, about, key, envelope.SerializeToString())
    return 1
