"""The node's state shared by its gRPC and HTTP sides: trust, keys, store, limits, metrics."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta

from sseaun.sdk.core import (
    AnswerContext,
    Envelope,
    KeyRing,
    ManifestTrust,
    ProtocolError,
    Reason,
    TokenCodec,
    TrustedManifest,
    VerifiedRequest,
    envelope_from_bytes,
    payload_types,
    verify_request,
)

from ._config import NodeConfig
from ._keys import InstitutionKeys
from ._metrics import Metrics
from ._ratelimit import RateLimiter
from .store import Store

__all__ = ["Node", "RateLimitedError"]

log = logging.getLogger("sseaun.node")
_TOKEN_SECRET = "page-token-secret"  # noqa: S105 - the name of a setting


class RateLimitedError(ProtocolError):
    """RATE_LIMITED with the delay after which the caller may retry."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            Reason.RATE_LIMITED,
            "too many calls from this institution; retry later",
            metadata={"retry-after-ms": str(int(retry_after * 1000))},
        )
        self.retry_after = retry_after


class Node:
    """One running node. Pure decisions come from the sdk core; this class holds the state."""

    def __init__(
        self,
        config: NodeConfig,
        store: Store,
        trust: ManifestTrust,
        keys: dict[str, InstitutionKeys],
        tokens: TokenCodec,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.store = store
        self.trust = trust
        self.keys = keys
        self.tokens = tokens
        self.clock = clock
        self.keyring = KeyRing(trust.current)
        self.metrics = Metrics()
        self.rate = RateLimiter(config.rate_per_second, config.rate_burst)
        self.window = timedelta(seconds=config.clock_window_seconds)
        self.problems: dict[str, str] = {}

    @classmethod
    async def open(cls, config: NodeConfig, store: Store, keys: dict[str, InstitutionKeys]) -> Node:
        """Rebuild trust from the stored manifest chain and the pinned genesis."""
        versions = await store.manifest_versions()
        if not versions:
            raise ProtocolError(
                Reason.MANIFEST_PIN_MISMATCH,
                "no manifest stored: run `sseaun node pin-manifest` first",
            )
        genesis = envelope_from_bytes(await store.get_manifest(versions[0]) or b"")
        trust = ManifestTrust.bootstrap(genesis, config.genesis_digest())
        for version in versions[1:]:
            trust.update(envelope_from_bytes(await store.get_manifest(version) or b""))
        secret = await store.get_setting(_TOKEN_SECRET)
        if secret is None:
            secret = secrets.token_bytes(32)
            await store.set_setting(_TOKEN_SECRET, secret)
        node = cls(config, store, trust, keys, TokenCodec(secret))
        for _kind, statement in await store.statements():
            node._apply_statement(envelope_from_bytes(statement))
        return node

    def _apply_statement(self, envelope: Envelope, *, replay: bool = True) -> None:
        try:
            if envelope.payload_type == payload_types.KEY_REVOCATION:
                self.keyring.accept_revocation(envelope)
            else:
                self.keyring.accept_delegation(envelope, self.clock(), replay=replay)
        except ProtocolError as exc:
            log.info("statement not applied: %s", exc.reason.value)

    @property
    def manifest(self) -> TrustedManifest:
        return self.trust.current

    def manifest_problem(self) -> ProtocolError | None:
        """Why the node may not serve data now, if it may not."""
        try:
            self.trust.check_fresh(self.clock())
        except ProtocolError as exc:
            return exc
        return None

    async def authenticate(
        self, envelope: Envelope, method: str, purposes: Collection[int], *, data: bool = True
    ) -> VerifiedRequest:
        """Every check of spec AUTH-5, then the rate limit, then the nonce (claimed atomically).

        Raises:
            ProtocolError: the first failing check's reason; RateLimitedError; REPLAYED_NONCE.
        """
        if data:
            problem = self.manifest_problem()
            if problem is not None:
                raise problem
        request = verify_request(
            envelope,
            self.keyring,
            now=self.clock(),
            method=method,
            audiences=self.config.institutions,
            allowed_purposes=purposes,
            clock_window=self.window,
        )
        wait = self.rate.take(request.sender, time.monotonic())
        if wait is not None:
            raise RateLimitedError(wait)
        if not await self.store.claim_nonce(request.nonce_key, request.nonce_expires_at):
            raise ProtocolError(Reason.REPLAYED_NONCE, "this request was seen before")
        return request

    def context_for_unverified(self, envelope: Envelope, method: str) -> AnswerContext:
        """Who answers a request that did not verify: the first institution served."""
        return AnswerContext.for_unverified(
            envelope,
            network_id=self.config.network_id,
            method=method,
            responder=self.config.institutions[0],
        )

    def transport_signer(self, institution: str) -> InstitutionKeys:
        return self.keys.get(institution) or self.keys[self.config.institutions[0]]

    async def adopt_manifest(self, envelope: Envelope) -> bool:
        """Adopt a newer manifest version (one step); True if adopted.

        Equivocation is kept as evidence and reported; other refusals are logged.
        """
        before = self.trust.current.version
        try:
            trusted = self.trust.update(envelope)
        except ProtocolError as exc:
            if exc.reason is Reason.MANIFEST_EQUIVOCATION:
                known = self.trust.version(int(exc.metadata.get("version", "0")))
                await self.store.put_evidence(
                    "manifest-equivocation",
                    exc.message,
                    [envelope.SerializeToString()]
                    + ([known.envelope.SerializeToString()] if known else []),
                )
                self.problems["manifest-equivocation"] = exc.message
                log.error("manifest equivocation: %s", exc.message)
            else:
                log.info("manifest not adopted: %s: %s", exc.reason.value, exc.message)
            raise
        if trusted.version == before:
            return False
        await self.store.put_manifest(trusted.version, envelope.SerializeToString(), trusted.digest)
        statements = self.keyring.accepted_statements()
        self.keyring = KeyRing(trusted)
        for statement in statements:
            self._apply_statement(statement)
        log.info("adopted manifest version %d", trusted.version)
        return True
