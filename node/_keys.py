"""The keys a node holds for each institution it serves, on disk in keys/<institution>/."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sseaun.sdk.cli._io import write_private
from sseaun.sdk.core import Ed25519Signer, Envelope, listed_key, sign_envelope, to_timestamp
from sseaun.sdk.core import payload_types as types
from sseaun.v1.manifest_pb2 import (
    Endpoint,
    JoinRequest,
    KeyPurpose,
    Limits,
    Member,
    MemberStatus,
)
from sseaun.v1.types_pb2 import LocalizedText

__all__ = ["ROLES", "InstitutionKeys", "join_request"]

#: Key files of an institution, by role.
ROLES = {
    "root": KeyPurpose.KEY_PURPOSE_ROOT,
    "transport": KeyPurpose.KEY_PURPOSE_TRANSPORT,
    "issuing": KeyPurpose.KEY_PURPOSE_ISSUING,
    "log": KeyPurpose.KEY_PURPOSE_LOG,
}


@dataclass(frozen=True)
class InstitutionKeys:
    """One institution's signers."""

    institution: str
    root: Ed25519Signer
    transport: Ed25519Signer
    issuing: Ed25519Signer
    log: Ed25519Signer

    @staticmethod
    def folder(keys_dir: Path, institution: str) -> Path:
        return keys_dir / institution

    @classmethod
    def generate(
        cls, keys_dir: Path, institution: str, passphrase: bytes | None
    ) -> InstitutionKeys:
        """Make and write a new key of every role.

        Raises:
            CliError: a key file exists already (keys are never overwritten) or cannot be written.
        """
        folder = cls.folder(keys_dir, institution)
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        signers = {role: Ed25519Signer.generate() for role in ROLES}
        for role, signer in signers.items():
            write_private(folder / f"{role}.private.pem", signer.to_pem(passphrase))
            (folder / f"{role}.public.pem").write_bytes(signer.public_pem())
        return cls(institution, **signers)

    @classmethod
    def load(cls, keys_dir: Path, institution: str, passphrase: bytes | None) -> InstitutionKeys:
        """Read the keys of an institution.

        Raises:
            OSError: a key file is missing or unreadable.
            ProtocolError: MALFORMED for a file that is not an Ed25519 key or a wrong passphrase.
        """
        folder = cls.folder(keys_dir, institution)
        signers = {
            role: Ed25519Signer.from_pem((folder / f"{role}.private.pem").read_bytes(), passphrase)
            for role in ROLES
        }
        return cls(institution, **signers)


def join_request(
    keys: InstitutionKeys,
    *,
    network_id: str,
    names: dict[str, str],
    country: str,
    endpoints: list[Endpoint],
    now: datetime,
    key_days: int = 365,
    limits: Limits | None = None,
) -> Envelope:
    """The member entry proposed for the manifest, signed by the root key (proof of possession).

    The operational keys are listed too, so governance may list them directly until the
    institution's delegations take over.
    """
    member = Member(
        institution_id=keys.institution,
        country=country,
        status=MemberStatus.MEMBER_STATUS_ACTIVE,
        endpoints=endpoints,
        api_versions=["sseaun.v1"],
        limits=limits,
    )
    for lang, text in names.items():
        member.names.texts.append(LocalizedText(lang=lang, text=text))
    for role, purpose in ROLES.items():
        signer: Ed25519Signer = getattr(keys, role)
        member.keys.append(
            listed_key(
                signer.public_key,
                keys.institution,
                purpose,
                not_before=now,
                not_after=now + timedelta(days=key_days * 3 if role == "root" else key_days),
            )
        )
    request = JoinRequest(network_id=network_id, member=member, issued_at=to_timestamp(now))
    return sign_envelope(
        request.SerializeToString(deterministic=True), types.JOIN_REQUEST, [keys.root]
    )
