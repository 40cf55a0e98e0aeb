"""`sseaun node serve`: one process, one event loop, a fixed start and shutdown order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime

import aiohttp
import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from sseaun.sdk.core import ProtocolError, envelope_from_json
from sseaun.v1 import access_log_pb2, service_pb2

from ._config import NodeConfig
from ._delegations import fetch_partner_statements, refresh_own_delegations
from ._handlers import add_service
from ._http import MANIFEST_PATH, http_app
from ._keys import InstitutionKeys
from ._log_service import AccessLogService
from ._peer_sync import PeerSync
from ._replication import NotificationService, Replication
from ._runtime import Node
from ._services import ManifestService, RecordService
from ._witness import Witness
from .store import SqliteStore, StoreError

__all__ = ["RunningNode", "serve_forever", "start_node"]

log = logging.getLogger("sseaun.node")
SERVICE_NAMES = (
    service_pb2.DESCRIPTOR.services_by_name["ManifestService"].full_name,
    service_pb2.DESCRIPTOR.services_by_name["RecordService"].full_name,
    service_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name,
    access_log_pb2.DESCRIPTOR.services_by_name["AccessLogService"].full_name,
)


class RunningNode:
    """A started node: its servers, background tasks and the addresses it is bound to."""

    def __init__(
        self,
        node: Node,
        server: grpc.aio.Server,
        runner: web.AppRunner,
        health: HealthServicer,
        grpc_port: int,
        http_port: int,
        serving: dict[str, bool],
        replication: Replication | None = None,
    ) -> None:
        self.node = node
        self.server = server
        self.runner = runner
        self.health = health
        self.grpc_port = grpc_port
        self.http_port = http_port
        self._serving = serving
        self._tasks: list[asyncio.Task[None]] = []
        #: The peer sync running in the background (None when sync.peers is empty).
        self.peer_sync: PeerSync | None = None
        #: The witness of partners' access logs.
        self.witness = Witness(node)
        #: Pulls partners' exchange feeds and delivers this node's hints.
        self.replication = replication or Replication(node, node.exchange)

    async def stop(self) -> None:
        """Health NOT_SERVING, drain calls within the bound, cancel the background tasks (the
        peer sync finishes the page it is committing, so its cursor is saved), stop HTTP, then
        close the store."""
        self._serving["ok"] = False
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.node.config.drain_seconds)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.runner.cleanup()
        await self.node.store.close()
        log.info("stopped")

    def start_background(self) -> None:
        self._tasks.append(asyncio.create_task(self._refresh_manifest(), name="manifest-refresh"))
        self._tasks.append(asyncio.create_task(self._purge_nonces(), name="nonce-purge"))
        self._tasks.append(asyncio.create_task(self.node.watch_store(), name="read-cache"))
        if self.node.config.sync_peers:
            self.peer_sync = PeerSync(self.node)
            self._tasks.append(asyncio.create_task(self.peer_sync.run_forever(), name="peer-sync"))
        self._tasks.append(asyncio.create_task(self._checkpoints(), name="log-checkpoints"))
        interval = self.node.config.exchange_interval_seconds or 365 * 86400.0
        self._tasks.append(
            asyncio.create_task(self.replication.run_forever(interval), name="replication")
        )
        if self.node.config.witness_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self.witness.run_forever(), name="witness"))

    async def _set_health(self) -> None:
        problem = self.node.manifest_problem()
        status = (
            health_pb2.HealthCheckResponse.NOT_SERVING
            if problem or not self._serving["ok"]
            else health_pb2.HealthCheckResponse.SERVING
        )
        if problem:
            log.error("not serving data: %s", problem.message)
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)

    async def refresh_manifest_once(self, *, partners: bool = True) -> None:
        """Catch up from the manifest file and the peers, one verified +1 step at a time; renew
        this node's delegations; with partners, also fetch the partners' statements."""
        node = self.node
        if node.config.manifest_file is not None:
            with contextlib.suppress(OSError, ProtocolError):
                envelope = envelope_from_json(node.config.manifest_file.read_bytes())
                await node.adopt_manifest(envelope)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for peer in node.config.manifest_peers:
                await self._catch_up_from(session, peer.rstrip("/"))
            # Keys: renew this node's delegations before they lapse, learn the partners'.
            await refresh_own_delegations(node)
            if partners:
                await fetch_partner_statements(node, session)
        await self._set_health()

    async def _catch_up_from(self, session: aiohttp.ClientSession, peer: str) -> None:
        node = self.node
        while True:
            url = f"{peer}{MANIFEST_PATH}/{node.trust.current.version + 1}"
            try:
                async with session.get(url) as reply:
                    if reply.status != 200:
                        return
                    limit = node.config.max_message_bytes
                    data = await reply.content.read(limit + 1)
                    if len(data) > limit:
                        log.info("manifest from %s is larger than %d bytes", peer, limit)
                        return
                    envelope = envelope_from_json(data)
                if not await node.adopt_manifest(envelope):
                    return
            except (aiohttp.ClientError, TimeoutError, ProtocolError) as exc:
                log.info("manifest catch-up from %s stopped: %s", peer, exc)
                return

    async def _refresh_manifest(self) -> None:
        # The first round runs at once: start-up skipped the partners' statements, which need
        # the network, so that a slow partner never delays serving.
        while True:
            try:
                await self.refresh_manifest_once()
            except Exception:
                log.exception("manifest refresh failed; trying again later")
            # Wake at the manifest's expiry too, so health turns NOT_SERVING on time.
            left = (self.node.trust.current.expires_at - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(1.0, min(self.node.config.manifest_refresh_seconds, left)))

    async def checkpoint_once(self) -> None:
        """Sign a checkpoint of every log that grew since its last one (spec LOG-7)."""
        for institution, access in self.node.access_logs.items():
            try:
                checkpoint = await access.sign()
            except ProtocolError as exc:
                self.node.problems[f"log-unsignable:{institution}"] = access.problem or exc.message
                continue
            except StoreError as exc:
                log.error("checkpoint of %s not signed: %s", institution, exc)
                continue
            self.node.metrics.set_gauge(
                f'sseaun_log_checkpoint_size{{log="{institution}"}}', checkpoint.size
            )

    async def _checkpoints(self) -> None:
        while True:
            await self.checkpoint_once()
            await asyncio.sleep(self.node.config.checkpoint_interval_seconds)

    async def _purge_nonces(self) -> None:
        while True:
            await asyncio.sleep(60)
            await self.node.store.purge_expired_nonces(datetime.now(UTC))


async def start_node(config: NodeConfig) -> RunningNode:
    """Open the store, rebuild trust, start gRPC and HTTP on the running loop."""
    store = await SqliteStore.open(config.database, nonce_linger=config.nonce_linger_ms / 1000)
    try:
        keys = {
            i: InstitutionKeys.load(config.keys_dir, i, config.passphrase())
            for i in config.institutions
        }
        node = await Node.open(config, store, keys)
    except BaseException:
        await store.close()
        raise
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        # Clients may ping every 20 s at most; the SDK's keepalive (30 s) stays above this.
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    server = grpc.aio.server(options=options)
    services = service_pb2.DESCRIPTOR.services_by_name
    add_service(server, ManifestService(node), services["ManifestService"])
    add_service(server, RecordService(node), services["RecordService"])
    replication = Replication(node, node.exchange)
    add_service(
        server,
        NotificationService(node, replication),
        services["NotificationService"],
    )
    add_service(
        server,
        AccessLogService(node),
        access_log_pb2.DESCRIPTOR.services_by_name["AccessLogService"],
    )
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (
            *SERVICE_NAMES,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    if config.plaintext:
        grpc_port = server.add_insecure_port(config.grpc_listen)
    else:
        assert config.tls_cert is not None and config.tls_key is not None
        credentials = grpc.ssl_server_credentials(
            [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())]
        )
        grpc_port = server.add_secure_port(config.grpc_listen, credentials)
    await server.start()
    serving = {"ok": True}
    runner = web.AppRunner(http_app(node, serving=serving), access_log=None)
    await runner.setup()
    host, _, port = config.http_listen.rpartition(":")
    site = web.TCPSite(runner, host or "127.0.0.1", int(port))
    await site.start()
    http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    running = RunningNode(node, server, runner, health, grpc_port, http_port, serving, replication)
    await running.refresh_manifest_once(partners=False)
    running.start_background()
    return running


async def serve_forever(config: NodeConfig, ready: asyncio.Event | None = None) -> None:
    """Run until SIGTERM or SIGINT, then stop in order; prints the bound addresses."""
    running = await start_node(config)
    host = config.grpc_listen.rpartition(":")[0] or "127.0.0.1"
    http_host = config.http_listen.rpartition(":")[0] or "127.0.0.1"
    print(
        f"serving {', '.join(config.institutions)} grpc={host}:{running.grpc_port} "
        f"http={http_host}:{running.http_port} manifest=v{running.node.trust.current.version}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("stopping: draining calls for up to %.0f s", config.drain_seconds)
    await running.stop()
