"""Replication of mobility and credit records between nodes (spec XCH): each node pulls every
partner's exchange feed (the truth), and a durable outbox sends partners signed "look again"
hints (a shortcut, never needed for convergence).

Pull. For each partner the node follows ``institutions/{partner}/exchange`` on the partner's
node with the SDK client, as the first institution it serves, from the cursor it saved; each
record is taken in by Exchange.ingest, then the page's cursor is saved. A partner is pulled at
every interval and at once when it sends a hint. A pull that reaches the end of the feed
refreshes the consents that partner issued (CONSENT-5).

Push. Exchange queues one outbox item per (partner, topic) after each change; the deliverer
sends due items with Notify and, when a partner cannot be reached, tries again after an
exponential backoff with jitter (2 s, 4 s, … up to an hour). Items survive restarts (they are
rows of the store), and a hint queued again before delivery replaces the waiting one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf.message import Message

from sseaun.sdk.client import AsyncNodeClient, ClientError, NodeError
from sseaun.sdk.core import ProtocolError, Reason, VerifiedRequest
from sseaun.v1 import service_pb2 as svc
from sseaun.v1 import service_pb2_grpc as svc_grpc
from sseaun.v1.auth_pb2 import Purpose

from ._consents import consent_refresh_setting
from ._exchange import Exchange, exchange_parent
from ._peer_sync import SyncError, active_partners, partner_client
from ._runtime import Node
from ._services import NETWORK_OPERATIONS, _Base
from .store import StoreError

__all__ = ["PULL_METHOD", "NotificationService", "Replication", "cursor_setting"]

log = logging.getLogger("sseaun.node.replication")
_CALL_SECONDS = 15.0
_BACKOFF_FIRST = 2.0
_BACKOFF_MAX = 3600.0
_PAGE = 200
_PURPOSE = Purpose.PURPOSE_MOBILITY_ADMINISTRATION
#: The method name of the log entry of what a pull stored (LOG-2: a local action name).
PULL_METHOD = "local:exchange-pull"


def cursor_setting(caller: str, partner: str) -> str:
    return f"exchange-cursor/{caller}/{partner}"


def backoff(attempts: int, rand: float) -> float:
    """Seconds before the next try after attempts failures: doubling, capped, jittered ±20 %."""
    base: float = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2.0 ** max(0, attempts - 1))
    return base * (0.8 + 0.4 * rand)


class Replication:
    """Pulls partners' exchange feeds and delivers this node's hints."""

    def __init__(self, node: Node, exchange: Exchange) -> None:
        self.node = node
        self.exchange = exchange
        self.caller = node.config.institutions[0]
        self._wake: dict[str, asyncio.Event] = {}
        self._outbox_wake = asyncio.Event()
        self._random = random.SystemRandom().random
        #: Outcomes of ingested envelopes since start, e.g. {"stored": 3, "refused": 1}.
        self.counts: Counter[str] = Counter()
        #: Drop hints instead of sending them (exchange.hints = false): partners then rely on
        #: their periodic pulls alone, which must converge all the same (XCH-3).
        self.drop_hints = not node.config.exchange_hints

    def partners(self) -> list[str]:
        """Every other active member with a gRPC endpoint."""
        return active_partners(self.node)

    def wake(self, partner: str) -> None:
        """A hint arrived from partner: pull it now."""
        self._wake.setdefault(partner, asyncio.Event()).set()

    def wake_outbox(self) -> None:
        self._outbox_wake.set()

    def _client(self, partner: str) -> AsyncNodeClient:
        return partner_client(self.node, partner, deadline=_CALL_SECONDS)

    # -- pulling ----------------------------------------------------------------------------

    async def pull(self, partner: str) -> Counter[str]:
        """Read partner's exchange feed to its end, taking in every record; the outcomes.

        Raises:
            ClientError, SyncError, StoreError: the pull stopped (what was committed stays).
        """
        store = self.node.store
        key = cursor_setting(self.caller, partner)
        cursor = (await store.get_setting(key) or b"").decode()
        try:
            return await self._pull_from(partner, key, cursor)
        except NodeError as exc:
            if not cursor or exc.reason is not Reason.MALFORMED:
                raise
            # The partner no longer knows our cursor (its database restored, say): read its
            # feed again from the start; what we hold already counts as unchanged (FEED-11).
            log.info("%s refused our cursor; reading its exchange feed from the start", partner)
            await store.set_setting(key, b"")
            return await self._pull_from(partner, key, "")

    async def _pull_from(self, partner: str, key: str, cursor: str) -> Counter[str]:
        store = self.node.store
        outcomes: Counter[str] = Counter()
        async with self._client(partner) as client:
            async for batch in client.watch_changes(
                exchange_parent(partner), cursor, _PAGE, purpose=_PURPOSE
            ):
                kept: list[str] = []
                for change in batch.changes:
                    outcome = await self.exchange.ingest(change.record, partner)
                    outcomes[outcome.status] += 1
                    if outcome.status in ("stored", "merged"):
                        kept.append(outcome.name)
                if kept:
                    # What a pull stores is written to this node's log as an import from the
                    # partner (XCH-8), before the cursor moves past it.
                    await self.node.access_logs[self.caller].append(
                        caller=partner,
                        method=PULL_METHOD,
                        purpose=_PURPOSE,
                        outcome="OK",
                        record_names=kept,
                    )
                await store.set_setting(key, batch.cursor.encode())
                if batch.caught_up:
                    now = self.node.clock().isoformat()
                    await store.set_setting(consent_refresh_setting(partner), now.encode())
        self.counts.update(outcomes)
        return outcomes

    async def pull_quietly(self, partner: str) -> None:
        try:
            outcomes = await self.pull(partner)
        except (ClientError, SyncError, StoreError, OSError, ValueError) as exc:
            log.info("pulling %s failed: %s", partner, exc)
            return
        except ProtocolError as exc:
            log.info("pulling %s failed: %s", partner, exc.reason.value)
            return
        if outcomes:
            log.info("pulled %s: %s", partner, dict(outcomes))

    async def run_partner(self, partner: str, interval: float) -> None:
        event = self._wake.setdefault(partner, asyncio.Event())
        while True:
            event.clear()
            await self.pull_quietly(partner)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=interval)

    async def run_forever(self, interval: float) -> None:
        """Pull every partner at each interval and on hints; deliver the outbox."""
        tasks = [
            asyncio.create_task(self.run_partner(p, interval), name=f"pull-{p}")
            for p in self.partners()
        ]
        tasks.append(asyncio.create_task(self.deliver_forever(), name="outbox"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- pushing hints --------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Send every due hint once; the number delivered."""
        store = self.node.store
        delivered = 0
        for item in await store.due_outbox(self.node.clock(), 100):
            _, _, speaker = item.topic.partition(":")
            if self.drop_hints:
                await store.outbox_delivered(item.id)  # dropped, on purpose
                continue
            try:
                await self._notify(item.recipient, speaker or self.caller)
            except (ClientError, SyncError, OSError, ValueError, ProtocolError) as exc:
                wait = backoff(item.attempts + 1, self._random())
                await store.outbox_failed(
                    item.id,
                    next_attempt_at=self.node.clock() + timedelta(seconds=wait),
                    error=str(exc)[:200],
                )
                continue
            await store.outbox_delivered(item.id)
            delivered += 1
        return delivered

    async def _notify(self, partner: str, speaker: str) -> None:
        body = svc.NotifyBody(parent=exchange_parent(speaker))
        async with self._client(partner) as client:
            await client.notify(body)

    async def deliver_forever(self) -> None:
        while True:
            self._outbox_wake.clear()
            try:
                await self.deliver_due()
            except StoreError as exc:
                log.error("outbox delivery failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox_wake.wait(), timeout=1.0)


class NotificationService(_Base, svc_grpc.NotificationServiceServicer):
    """Receives hints (spec XCH-4): a hint only makes this node pull the sender sooner."""

    METHOD = "/sseaun.v1.NotificationService/Notify"

    def __init__(self, node: Node, replication: Replication) -> None:
        super().__init__(node)
        self.replication = replication

    async def Notify(  # noqa: N802 - generated name
        self, request: svc.NotifyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> svc.NotifyResponse:
        async def handle(verified: VerifiedRequest, _: svc.NotifyBody, __: list[str]) -> Message:
            self.replication.wake(verified.sender)
            return svc.NotifyResult()

        envelope = await self._unary(
            request, context, self.METHOD, NETWORK_OPERATIONS, svc.NotifyBody, handle
        )
        return svc.NotifyResponse(response=envelope)
