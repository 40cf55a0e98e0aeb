"""`sseaun conformance setup`: the auditor's virtual test institutions, keys and join requests.

An auditor calls the node under test as institutions of the test manifest that node trusts. This
makes them: for each, an Ed25519 key of every role (root, transport, issuing, log) in
``<DIR>/keys/<institution>/{role}.private.pem`` (owner-only) and ``{role}.public.pem``, and a join
request signed by its root key, ``<DIR>/join-requests/<institution>.json``, which the test
network's governance adds with ``sseaun manifest add-member --join-request FILE
--test-institution``. ``<DIR>/keys`` is the folder `sseaun conformance run --auditor-keys` reads.

The join request is the one `sseaun node init` writes, built here from the sdk core and the
contract's messages (the suite never imports the node). The auditor institutions run no node, so
their entries list no endpoints.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sseaun.sdk.cli._io import CliError, write_private
from sseaun.sdk.core import (
    Ed25519Signer,
    Envelope,
    envelope_to_json,
    listed_key,
    payload_types,
    sign_envelope,
    to_timestamp,
)
from sseaun.v1.manifest_pb2 import JoinRequest, KeyPurpose, Member, MemberStatus
from sseaun.v1.types_pb2 import LocalizedText

__all__ = ["DOMAIN", "ROLES", "Prepared", "auditor_ids", "join_request", "prepare"]

#: Key files of an institution, by role (the layout of `sseaun node init` and load_auditors).
ROLES = {
    "root": KeyPurpose.KEY_PURPOSE_ROOT,
    "transport": KeyPurpose.KEY_PURPOSE_TRANSPORT,
    "issuing": KeyPurpose.KEY_PURPOSE_ISSUING,
    "log": KeyPurpose.KEY_PURPOSE_LOG,
}
#: The domain under which the auditor institutions are named (reserved: RFC 2606 `.example`).
DOMAIN = "sseaun-test.example"
_INSTITUTION = re.compile(
    r"^(?=.{3,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)
_NETWORK_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
_MAX_INSTITUTIONS = 16


@dataclass(frozen=True)
class Prepared:
    """One auditor institution made by prepare."""

    institution: str
    keys: Path
    join_request: Path
    transport_key_id: str


def auditor_ids(count: int, domain: str = DOMAIN) -> list[str]:
    """``auditor-1.<domain>``, ``auditor-2.<domain>``, …"""
    return [f"auditor-{i}.{domain}" for i in range(1, count + 1)]


def join_request(
    institution: str,
    signers: dict[str, Ed25519Signer],
    *,
    network_id: str,
    names: dict[str, str],
    country: str,
    now: datetime,
    key_days: int = 365,
) -> Envelope:
    """The member entry proposed for the manifest (every role's key, no endpoints), signed by the
    root key as proof of possession (spec MAN-17): what `sseaun manifest add-member
    --join-request` accepts."""
    member = Member(
        institution_id=institution,
        country=country,
        status=MemberStatus.MEMBER_STATUS_ACTIVE,
        api_versions=["sseaun.v1"],
    )
    for lang, text in names.items():
        member.names.texts.append(LocalizedText(lang=lang, text=text))
    for role, purpose in ROLES.items():
        days = key_days * 3 if role == "root" else key_days
        member.keys.append(
            listed_key(
                signers[role].public_key,
                institution,
                purpose,
                not_before=now,
                not_after=now + timedelta(days=days),
            )
        )
    request = JoinRequest(network_id=network_id, member=member, issued_at=to_timestamp(now))
    return sign_envelope(
        request.SerializeToString(deterministic=True),
        payload_types.JOIN_REQUEST,
        [signers["root"]],
    )


def prepare(
    out: Path,
    network_id: str,
    count: int = 2,
    *,
    now: datetime,
    domain: str = DOMAIN,
    country: str = "ZZ",
    key_days: int = 365,
    passphrase: bytes | None = None,
) -> list[Prepared]:
    """Make count auditor institutions under out (see the module's docstring).

    Raises:
        CliError: a bad argument, keys of one of them exist already (never overwritten), or a file
            cannot be written.
    """
    if not _NETWORK_ID.match(network_id):
        raise CliError("--network-id must be 1-63 characters of a-z, 0-9, '.' and '-'")
    if not 1 <= count <= _MAX_INSTITUTIONS:
        raise CliError(f"--institutions must be 1..{_MAX_INSTITUTIONS}")
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise CliError("--country must be an ISO 3166-1 alpha-2 code (ZZ: unknown)")
    if not 1 <= key_days <= 3650:
        raise CliError("--key-days must be 1..3650")
    institutions = auditor_ids(count, domain)
    if not all(_INSTITUTION.match(i) for i in institutions):
        raise CliError(f"--domain {domain!r} does not make valid institution IDs")
    keys_dir, requests_dir = out / "keys", out / "join-requests"
    for institution in institutions:
        if (keys_dir / institution).exists() or (requests_dir / f"{institution}.json").exists():
            raise CliError(f"{keys_dir / institution} exists; refusing to overwrite test keys")
    made = []
    try:
        requests_dir.mkdir(parents=True, exist_ok=True)
        for number, institution in enumerate(institutions, start=1):
            folder = keys_dir / institution
            folder.mkdir(parents=True)
            os.chmod(folder, 0o700)
            signers = {role: Ed25519Signer.generate() for role in ROLES}
            for role, signer in signers.items():
                write_private(folder / f"{role}.private.pem", signer.to_pem(passphrase))
                (folder / f"{role}.public.pem").write_bytes(signer.public_pem())
            request = join_request(
                institution,
                signers,
                network_id=network_id,
                names={"en": f"Conformance auditor {number} (test institution)"},
                country=country,
                now=now,
                key_days=key_days,
            )
            path = requests_dir / f"{institution}.json"
            path.write_text(envelope_to_json(request) + "\n", encoding="utf-8")
            made.append(Prepared(institution, folder, path, signers["transport"].key_id))
    except OSError as exc:
        raise CliError(f"cannot write under {out}: {exc.strerror or exc}") from exc
    return made
