"""Witnessing partners' access logs: check each new checkpoint against the last one seen, cosign
the consistent ones, keep evidence of the inconsistent ones (spec LOG-10, LOG-11).

The witness calls as the first institution this node serves, with its transport key, and cosigns
with that institution's LOG key under its institution ID. A partner's checkpoint is verified
with the partner's LOG keys from the key ring, so a node cannot pass another's log as its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sseaun.sdk.client import AsyncNodeClient, ClientError
from sseaun.sdk.core import (
    Checkpoint,
    Envelope,
    ProtocolError,
    Reason,
    SignedNote,
    access_log,
    cosign,
    merkle,
    parse_signed_note,
)
from sseaun.v1.manifest_pb2 import KeyPurpose

from ._delegations import apply_statement
from ._peer_sync import SyncError, active_partners, partner_client
from ._runtime import Node
from .store import StoreError

__all__ = ["Witness", "WitnessOutcome"]

log = logging.getLogger("sseaun.node.witness")
_CALL_SECONDS = 10.0


@dataclass(frozen=True)
class WitnessOutcome:
    """What one witnessing of one partner did."""

    partner: str
    #: "cosigned", "unchanged" (nothing new to cosign), "inconsistent", "stopped" (an
    #: inconsistency was seen before), or "failed" (unreachable, bad answer).
    status: str
    size: int = 0
    detail: str = ""


class Witness:
    """Witnesses the logs of the partners config.witness_logs names (default: every member)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.institution = node.config.institutions[0]
        self.inconsistencies = 0

    def partners(self) -> list[str]:
        return list(self.node.config.witness_logs) or active_partners(self.node)

    async def run_forever(self) -> None:
        interval = self.node.config.witness_interval_seconds
        while True:
            await self.witness_all()
            await asyncio.sleep(interval)

    async def witness_all(self) -> list[WitnessOutcome]:
        """Witness every partner once, concurrently; never raises for one partner's failure."""
        outcomes = await asyncio.gather(*(self.witness(p) for p in self.partners()))
        for outcome in outcomes:
            self.node.metrics.set_gauge(
                f'sseaun_witnessed_size{{log="{outcome.partner}"}}', outcome.size
            )
        return list(outcomes)

    async def witness(self, partner: str) -> WitnessOutcome:
        """Fetch the partner's newest checkpoint, check it, cosign it if consistent."""
        origin = access_log.log_origin(self.node.config.network_id, partner)
        if f"log-inconsistent:{partner}" in self.node.warnings:
            return WitnessOutcome(partner, "stopped", detail="an inconsistency was seen before")
        try:
            async with partner_client(self.node, partner, deadline=_CALL_SECONDS) as client:
                return await self._witness(client, partner, origin)
        except (ClientError, SyncError, StoreError, OSError, ValueError) as exc:
            log.warning("witnessing %s failed: %s", partner, exc)
            return WitnessOutcome(partner, "failed", detail=str(exc))
        except ProtocolError as exc:
            log.warning("witnessing %s failed: %s: %s", partner, exc.reason.value, exc.message)
            return WitnessOutcome(partner, "failed", detail=exc.reason.value)

    async def _witness(self, client: AsyncNodeClient, partner: str, origin: str) -> WitnessOutcome:
        node = self.node
        result = await client.get_checkpoint()
        note = parse_signed_note(result.checkpoint)
        keys = node.keyring.keys_for(partner, KeyPurpose.KEY_PURPOSE_LOG, node.clock())
        if not keys:
            # The partner's delegations may not have been fetched yet: its node serves them.
            for statement in (await client.get_manifest()).statements:
                await apply_statement(node, partner, statement)
            keys = node.keyring.keys_for(partner, KeyPurpose.KEY_PURPOSE_LOG, node.clock())
        new = access_log.verify_log_checkpoint(note, origin, [k.public_key for k in keys])
        seen = await node.store.witnessed(origin)
        if seen is not None:
            old_note = parse_signed_note(seen[1])
            old = Checkpoint.from_body(old_note.body)
            problem, evidence = await self._check(client, old, new)
            if problem:
                await self._inconsistent(partner, problem, old_note, note, evidence)
                return WitnessOutcome(partner, "inconsistent", new.size, problem)
        if new.size == 0:
            return WitnessOutcome(partner, "unchanged", 0)
        await node.store.put_witnessed(origin, new.size, result.checkpoint)
        signer = node.keys[self.institution].log
        line = cosign(note, self.institution, signer, int(time.time()))
        if any(s.name == self.institution and s.key_id == line.key_id for s in note.signatures):
            return WitnessOutcome(partner, "unchanged", new.size)
        await client.add_cosignature(SignedNote(note.body, (*note.signatures, line)).text())
        return WitnessOutcome(partner, "cosigned", new.size)

    async def _check(
        self, client: AsyncNodeClient, old: Checkpoint, new: Checkpoint
    ) -> tuple[str, list[Envelope]]:
        """Why new cannot extend old ("" if it does), with the signed answers that show it."""
        if new.size < old.size:
            return f"checkpoint size went back from {old.size} to {new.size}", []
        if new.size == old.size:
            if new.root != old.root:
                return f"two different roots for size {new.size}", []
            return "", []
        answers: list[Envelope] = []
        proof = await client.get_consistency_proof(old.size, new.size, answer=answers)
        try:
            merkle.verify_consistency(old.size, new.size, old.root, new.root, list(proof.hashes))
        except ProtocolError:
            return f"no consistency between sizes {old.size} and {new.size}", answers
        return "", []

    async def _inconsistent(
        self,
        partner: str,
        problem: str,
        old: SignedNote,
        new: SignedNote,
        answers: list[Envelope],
    ) -> None:
        """Keep the two checkpoints (and the signed failing proof) as evidence; report."""
        node = self.node
        self.inconsistencies += 1
        node.metrics.set_gauge("sseaun_log_inconsistencies", self.inconsistencies)
        node.warnings[f"log-inconsistent:{partner}"] = f"{partner}'s access log: {problem}"
        log.error("access log of %s is inconsistent: %s", partner, problem)
        error = ProtocolError(Reason.LOG_INCONSISTENT, problem)
        pieces = [old.text().encode(), new.text().encode()]
        pieces += [a.SerializeToString() for a in answers]
        try:
            await node.store.put_evidence(
                "log-inconsistency", f"{partner}: {error.message}", pieces
            )
        except StoreError as exc:
            log.error("inconsistency evidence not kept: %s", exc)
