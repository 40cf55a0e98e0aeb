"""Builders of test networks: governance keys, members, manifests, delegations (test keys only)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sseaun.sdk.core import (
    Ed25519Signer,
    Envelope,
    KeyRing,
    ManifestTrust,
    listed_key,
    sign_delegation,
    sign_manifest,
    sign_revocation,
    to_timestamp,
)
from sseaun.v1.manifest_pb2 import (
    KeyPurpose,
    KeyStatus,
    Member,
    MemberStatus,
    NetworkManifest,
    PublicKey,
)
from sseaun.v1.types_pb2 import LocalizedText, MultilingualText

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NETWORK = "sseaun-test"


def seeded(label: str) -> Ed25519Signer:
    """A deterministic test key."""
    return Ed25519Signer.from_seed(hashlib.sha256(label.encode()).digest())


def public_key(
    signer: Ed25519Signer,
    holder: str,
    purpose: int,
    *,
    not_before: datetime = T0 - timedelta(days=30),
    not_after: datetime = T0 + timedelta(days=365),
    status: int = KeyStatus.KEY_STATUS_ACTIVE,
    changed: datetime | None = None,
) -> PublicKey:
    return listed_key(
        signer.public_key,
        holder,
        purpose,
        not_before=not_before,
        not_after=not_after,
        status=status,
        status_changed_at=changed,
    )


@dataclass
class Institution:
    id: str
    country: str
    name: str
    root: Ed25519Signer
    transport: Ed25519Signer
    issuing: Ed25519Signer

    def member(self) -> Member:
        return Member(
            institution_id=self.id,
            country=self.country,
            status=MemberStatus.MEMBER_STATUS_ACTIVE,
            names=MultilingualText(texts=[LocalizedText(lang="en", text=self.name)]),
            keys=[
                public_key(self.root, self.id, KeyPurpose.KEY_PURPOSE_ROOT),
                public_key(self.transport, self.id, KeyPurpose.KEY_PURPOSE_TRANSPORT),
                public_key(self.issuing, self.id, KeyPurpose.KEY_PURPOSE_ISSUING),
            ],
            api_versions=["sseaun.v1"],
        )


def institution(id: str, country: str, name: str) -> Institution:
    return Institution(
        id, country, name, seeded(id + "/root"), seeded(id + "/transport"), seeded(id + "/issuing")
    )


@dataclass
class TestNetwork:
    """Three governance institutions (threshold 2) and a few members."""

    __test__ = False

    governance: dict[str, Ed25519Signer] = field(
        default_factory=lambda: {
            "ynu.edu.cn": seeded("gov/ynu"),
            "chula.ac.th": seeded("gov/chula"),
            "du.ac.bd": seeded("gov/du"),
        }
    )
    members: list[Institution] = field(
        default_factory=lambda: [
            institution("ynu.edu.cn", "CN", "Yunnan University"),
            institution("chula.ac.th", "TH", "Chulalongkorn University"),
            institution("du.ac.bd", "BD", "University of Dhaka"),
            institution("um.edu.my", "MY", "Universiti Malaya"),
        ]
    )

    def manifest(
        self, version: int = 1, *, issued: datetime = T0, days: int = 90
    ) -> NetworkManifest:
        return NetworkManifest(
            network_id=NETWORK,
            version=version,
            issued_at=to_timestamp(issued),
            expires_at=to_timestamp(issued + timedelta(days=days)),
            governance_keys=[
                public_key(s, holder, KeyPurpose.KEY_PURPOSE_GOVERNANCE)
                for holder, s in self.governance.items()
            ],
            governance_threshold=2,
            members=[m.member() for m in self.members],
        )

    def sign(self, manifest: NetworkManifest, *holders: str) -> Envelope:
        chosen = holders or ("ynu.edu.cn", "chula.ac.th")
        return sign_manifest(manifest, [self.governance[h] for h in chosen])

    def trust(self) -> ManifestTrust:
        return ManifestTrust.bootstrap(self.sign(self.manifest()), None)

    def keyring(self) -> KeyRing:
        return KeyRing(self.trust().current)

    def by_id(self, id: str) -> Institution:
        return next(m for m in self.members if m.id == id)


def delegation(
    inst: Institution,
    keys: list[PublicKey],
    *,
    serial: int = 1,
    issued: datetime = T0,
    lifetime: timedelta = timedelta(days=7),
    signer: Ed25519Signer | None = None,
) -> Envelope:
    return sign_delegation(
        signer or inst.root,
        network_id=NETWORK,
        institution=inst.id,
        serial=serial,
        issued_at=issued,
        expires_at=issued + lifetime,
        keys=keys,
    )


def revocation(
    inst: Institution, key_id: str, revoked_at: datetime, *, signer: Ed25519Signer | None = None
) -> Envelope:
    return sign_revocation(
        signer or inst.root,
        network_id=NETWORK,
        institution=inst.id,
        key_id=key_id,
        revoked_at=revoked_at,
        issued_at=revoked_at,
        reason="test",
    )
