"""The node's state shared by its gRPC and HTTP sides: trust, keys, store, limits, metrics."""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import secrets
import time
from collections import OrderedDict
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

from ._access_log import AccessLog
from ._config import NodeConfig
from ._consents import Consents
from ._exchange import Exchange
from ._keys import InstitutionKeys
from ._metrics import Metrics
from ._ratelimit import RateLimiter
from .store import Store, StoreConflictError, StoredRecord, StoreError

__all__ = ["Node", "RateLimitedError"]

log = logging.getLogger("sseaun.node")
_CACHE_SIZE = 10_000
_TOKEN_SECRET = "page-token-secret"  # noqa: S105 - the name of a setting


class RateLimitedError(ProtocolError):
    """RATE_LIMITED with the delay after which the caller may retry."""

    def __init__(self, retry_after: float) -> None:
        millis = max(1, math.ceil(retry_after * 1000))  # never "retry after 0 ms"
        super().__init__(
            Reason.RATE_LIMITED,
            "too many calls from this institution; retry later",
            metadata={"retry-after-ms": str(millis)},
        )
        self.retry_after = millis / 1000


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
        #: What stops the node from serving properly (health NOT_SERVING), by kind.
        self.problems: dict[str, str] = {}
        #: What the operator must look at, though the node serves on (e.g. a partner's log
        #: showed two histories), by kind.
        self.warnings: dict[str, str] = {}
        self._latest: OrderedDict[str, StoredRecord | None] = OrderedDict()
        self._adopting = asyncio.Lock()
        #: Mobility and credit records (spec LC, XCH) and the consents that open them.
        self.exchange = Exchange(self)
        self.consents = Consents(self)
        #: The access log of each institution served that has keys here (spec LOG-1).
        self.access_logs = {
            institution: AccessLog(
                store,
                network_id=config.network_id,
                institution=institution,
                signer=held.log,
                clock=clock,
            )
            for institution, held in keys.items()
        }

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
        if trust.current.network_id != config.network_id:
            raise ProtocolError(
                Reason.WRONG_NETWORK,
                f"node.toml names network {config.network_id!r} but the pinned manifest is for "
                f"{trust.current.network_id!r}",
            )
        secret = await store.get_setting(_TOKEN_SECRET)
        if secret is None:
            secret = secrets.token_bytes(32)
            await store.set_setting(_TOKEN_SECRET, secret)
        node = cls(config, store, trust, keys, TokenCodec(secret))
        for _kind, statement in await store.statements():
            node._apply_statement(envelope_from_bytes(statement))
        for evidence in await store.evidence():
            # Evidence outlives a restart, and so does the warning until an operator acts.
            if evidence.kind == "manifest-equivocation":
                node.problems["manifest-equivocation"] = evidence.detail
            elif evidence.kind == "log-inconsistency":
                partner = evidence.detail.partition(":")[0]
                node.warnings[f"log-inconsistent:{partner}"] = evidence.detail
        for institution, access in node.access_logs.items():
            try:
                await access.check_head()
            except ProtocolError:
                node.problems[f"log-unsignable:{institution}"] = access.problem or ""
        for institution in config.institutions:
            if node.keyring.member(institution) is None:
                # Serving is still useful (the manifest, the join in progress), so warn, not stop.
                node.problems[f"not-a-member:{institution}"] = (
                    f"{institution} is not a member in manifest version {trust.current.version}"
                )
                log.warning("%s is not a member of the trusted manifest yet", institution)
        return node

    def _apply_statement(self, envelope: Envelope, *, replay: bool = True) -> None:
        try:
            if envelope.payload_type == payload_types.KEY_REVOCATION:
                self.keyring.accept_revocation(envelope)
            else:
                self.keyring.accept_delegation(envelope, self.clock(), replay=replay)
        except ProtocolError as exc:
            log.info("statement not applied: %s", exc.reason.value)

    async def latest_record(self, name: str) -> StoredRecord | None:
        """The newest stored version of a record, through a small cache of recent reads.

        The cache is emptied whenever the database changes (see watch_store), so an answer is at
        most one poll interval older than the store.
        """
        cache = self._latest
        if name in cache:
            cache.move_to_end(name)
            return cache[name]
        record = await self.store.get_record(name, 0)
        cache[name] = record
        if len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
        return record

    async def watch_store(self, interval: float = 0.1) -> None:
        """Empty the read cache whenever anything (this process or another) wrote to the store."""
        marker = await self.store.change_marker()
        while True:
            await asyncio.sleep(interval)
            now = await self.store.change_marker()
            if now != marker:
                marker = now
                self._latest.clear()

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

    async def log_call(
        self, request: VerifiedRequest, outcome: str, record_names: Collection[str] = ()
    ) -> int:
        """Append the entry of an authenticated call to the audience's log; its index (LOG-3).

        record_names is read before the append's first await (no copy is needed).
        """
        header = request.header
        return await self.access_logs[header.audience].append(
            caller=header.sender,
            method=header.method,
            purpose=header.purpose,
            outcome=outcome,
            record_names=record_names,
            request_digest=request.digest,
        )

    def context_for_unverified(self, envelope: Envelope, method: str) -> AnswerContext:
        """Who answers a request that did not verify: the first institution served.

        Never raises: the digest of whatever arrived can always be computed (see pae).
        """
        return AnswerContext.for_unverified(
            envelope,
            network_id=self.config.network_id,
            method=method,
            responder=self.config.institutions[0],
        )

    def transport_signer(self, institution: str) -> InstitutionKeys:
        return self.keys.get(institution) or self.keys[self.config.institutions[0]]

    async def adopt_manifest(self, envelope: Envelope) -> bool:
        """Adopt the next manifest version (one +1 step); True if adopted, False if it is the
        current version already.

        The step is decided on a copy of the trust chain and becomes current only once the
        store holds it, so a failed write never leaves the node trusting a version it did not
        keep. Steps are serialised: concurrent callers (file, peers) see one chain.
        Equivocation (spec MAN-10) is kept as evidence with both envelopes and reported in
        ``problems``; the version held first stays.

        Raises:
            ProtocolError: the reason the version was refused (spec MAN-12);
                MANIFEST_EQUIVOCATION also when the store already holds this version with
                another digest; INTERNAL when the store could not keep it.
        """
        async with self._adopting:
            current = self.trust.current
            if (
                envelope.payload == current.envelope.payload
                and envelope.payload_type == current.envelope.payload_type
            ):
                return False  # the refresh loop offers the current version most of the time
            staged = copy.deepcopy(self.trust)
            try:
                trusted = staged.update(envelope)
            except ProtocolError as exc:
                if exc.reason is Reason.MANIFEST_EQUIVOCATION:
                    known = self.trust.version(int(exc.metadata.get("version", "0")))
                    await self._report_equivocation(
                        exc, envelope, known.envelope.SerializeToString() if known else None
                    )
                else:
                    log.info("manifest not adopted: %s: %s", exc.reason.value, exc.message)
                raise
            if trusted.version == current.version:
                return False
            raw = envelope.SerializeToString()
            try:
                await self.store.put_manifest(trusted.version, raw, trusted.digest)
            except StoreConflictError as exc:
                # The store, the durable authority, holds another validly signed envelope of
                # this version (written by another process sharing the database): equivocation.
                try:
                    held = await self.store.get_manifest(trusted.version)
                except StoreError:
                    held = None
                error = ProtocolError(
                    Reason.MANIFEST_EQUIVOCATION,
                    f"two different validly signed manifests of version {trusted.version}",
                    metadata={"version": str(trusted.version)},
                )
                await self._report_equivocation(error, envelope, held)
                raise error from exc
            except StoreError as exc:
                log.error("manifest version %d not kept: %s", trusted.version, exc)
                raise ProtocolError(
                    Reason.INTERNAL, "the manifest version could not be stored"
                ) from exc
            statements = self.keyring.accepted_statements()
            keyring = KeyRing(trusted)
            self.trust, self.keyring = staged, keyring
            for statement in statements:
                self._apply_statement(statement)
            log.info("adopted manifest version %d", trusted.version)
            return True

    async def _report_equivocation(
        self, error: ProtocolError, offered: Envelope, held: bytes | None
    ) -> None:
        """Keep both envelopes as evidence and flag the node's health (spec MAN-10)."""
        self.problems["manifest-equivocation"] = error.message
        log.error("manifest equivocation: %s", error.message)
        try:
            await self.store.put_evidence(
                "manifest-equivocation",
                error.message,
                [offered.SerializeToString()] + ([held] if held else []),
            )
        except StoreError as exc:
            log.error("equivocation evidence not kept: %s", exc)
