"""The node keeps its own operational-key delegations fresh and learns its partners'."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sseaun.node._config import NodeConfig
from sseaun.node._delegations import refresh_own_delegations
from sseaun.node._keys import InstitutionKeys
from sseaun.node._runtime import Node
from sseaun.node.store import SqliteStore
from sseaun.sdk.core import TokenCodec, envelope_from_bytes
from sseaun.v1.manifest_pb2 import KeyPurpose
from tests.factories import NETWORK, T0, TestNetwork, seeded


async def test_delegations_are_issued_then_renewed_only_near_their_end(tmp_path: Path) -> None:
    net = TestNetwork()
    ynu = net.by_id("ynu.edu.cn")
    keys = InstitutionKeys(ynu.id, ynu.root, ynu.transport, ynu.issuing, seeded("ynu/log"))
    config = NodeConfig(
        path=tmp_path / "node.toml", network_id=NETWORK, institutions=(ynu.id,), plaintext=True
    )
    now = [T0]
    store = await SqliteStore.open(tmp_path / "node.db")
    try:
        node = Node(
            config, store, net.trust(), {ynu.id: keys}, TokenCodec(b"s" * 32), clock=lambda: now[0]
        )
        assert await refresh_own_delegations(node) == 1
        first = node.keyring.delegation(ynu.id)
        assert first is not None and first.serial == 1
        now[0] = T0 + timedelta(days=4)
        assert await refresh_own_delegations(node) == 0  # 3 days left: not yet
        now[0] = T0 + timedelta(days=6)
        assert await refresh_own_delegations(node) == 1
        second = node.keyring.delegation(ynu.id)
        assert second is not None and second.serial == 2
        stored = [envelope_from_bytes(raw) for kind, raw in await store.statements()]
        assert len(stored) == 2
        transport = node.keyring.keys_for(ynu.id, KeyPurpose.KEY_PURPOSE_TRANSPORT, now[0])
        assert ynu.transport.key_id in {k.key_id for k in transport}
    finally:
        await store.close()
