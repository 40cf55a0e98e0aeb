"""The network manifest: validation, governance threshold, rotation by +1, equivocation, pinning."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from google.protobuf.message import DecodeError

from sseaun.v1.envelope_pb2 import Envelope
from sseaun.v1.manifest_pb2 import (
    KeyAlgorithm,
    KeyPurpose,
    KeyStatus,
    MemberStatus,
    NetworkManifest,
    PublicKey,
)

from . import _payload_types as types
from ._envelope import check_structure, envelope_digest, pae, sign_envelope
from ._errors import FieldProblem, ProtocolError, Reason
from ._keys import PUBLIC_KEY_SIZE, Signer, key_id_for, verify_signature
from ._time import from_timestamp, to_timestamp, utc

__all__ = [
    "ManifestTrust",
    "TrustedManifest",
    "governance_holders",
    "listed_key",
    "parse_manifest",
    "sign_manifest",
    "validate_manifest",
]

_INSTITUTION_ID = re.compile(
    r"^(?=.{3,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_NETWORK_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
_MEMBER_KEY_PURPOSES = {
    KeyPurpose.KEY_PURPOSE_ROOT,
    KeyPurpose.KEY_PURPOSE_TRANSPORT,
    KeyPurpose.KEY_PURPOSE_ISSUING,
    KeyPurpose.KEY_PURPOSE_LOG,
}


def listed_key(
    public_key: bytes,
    holder: str,
    purpose: int,
    *,
    not_before: datetime,
    not_after: datetime,
    status: int = KeyStatus.KEY_STATUS_ACTIVE,
    status_changed_at: datetime | None = None,
) -> PublicKey:
    """The PublicKey entry of a raw Ed25519 key, as a manifest or a delegation lists it (KEY-3)."""
    key = PublicKey(
        key_id=key_id_for(public_key),
        algorithm=KeyAlgorithm.KEY_ALGORITHM_ED25519,
        public_key=public_key,
        holder=holder,
        purpose=purpose,  # type: ignore[arg-type]
        not_before=to_timestamp(not_before),
        not_after=to_timestamp(not_after),
        status=status,  # type: ignore[arg-type]
    )
    if status_changed_at is not None:
        key.status_changed_at.CopyFrom(to_timestamp(status_changed_at))
    return key


def key_problems(
    key: PublicKey, path: str, *, purposes: Iterable[int], holder: str | None = None
) -> list[FieldProblem]:
    """What is wrong with one listed public key (spec KEY-3)."""
    problems: list[FieldProblem] = []
    if key.algorithm != KeyAlgorithm.KEY_ALGORITHM_ED25519:
        problems.append(FieldProblem(f"{path}.algorithm", "must be KEY_ALGORITHM_ED25519"))
    if len(key.public_key) != PUBLIC_KEY_SIZE:
        problems.append(FieldProblem(f"{path}.public_key", "must be a raw 32-byte Ed25519 key"))
    elif key.key_id != key_id_for(key.public_key):
        problems.append(FieldProblem(f"{path}.key_id", "does not match the public key"))
    if key.purpose not in set(purposes):
        problems.append(FieldProblem(f"{path}.purpose", "purpose not allowed here"))
    if not key.holder:
        problems.append(FieldProblem(f"{path}.holder", "required"))
    elif holder is not None and key.holder != holder:
        problems.append(FieldProblem(f"{path}.holder", f"must be {holder}"))
    if not key.HasField("not_after"):
        problems.append(FieldProblem(f"{path}.not_after", "required"))
    if key.status == KeyStatus.KEY_STATUS_UNSPECIFIED:
        problems.append(FieldProblem(f"{path}.status", "required"))
    elif key.status != KeyStatus.KEY_STATUS_ACTIVE and not key.HasField("status_changed_at"):
        problems.append(
            FieldProblem(f"{path}.status_changed_at", "required for a retired or revoked key")
        )
    return problems


def validate_manifest(manifest: NetworkManifest) -> None:
    """Check every rule of a manifest's content (spec MAN-2..MAN-6).

    Raises:
        ProtocolError: MALFORMED, with one field problem per broken rule.
    """
    problems: list[FieldProblem] = []
    add = problems.append
    if not _NETWORK_ID.match(manifest.network_id):
        add(FieldProblem("network_id", "lower-case letters, digits, '.' and '-', at most 63"))
    if manifest.version < 1:
        add(FieldProblem("version", "must be 1 or more"))
    if not manifest.HasField("issued_at"):
        add(FieldProblem("issued_at", "required"))
    if not manifest.HasField("expires_at"):
        add(FieldProblem("expires_at", "required"))
    elif manifest.HasField("issued_at") and (
        manifest.expires_at.ToNanoseconds() <= manifest.issued_at.ToNanoseconds()
    ):
        add(FieldProblem("expires_at", "must be after issued_at"))
    seen_keys: set[str] = set()

    def check_key(key: PublicKey, path: str, purposes: Iterable[int], holder: str | None) -> None:
        problems.extend(key_problems(key, path, purposes=purposes, holder=holder))
        if key.key_id in seen_keys:
            add(FieldProblem(f"{path}.key_id", "listed twice"))
        seen_keys.add(key.key_id)

    for i, key in enumerate(manifest.governance_keys):
        check_key(key, f"governance_keys[{i}]", [KeyPurpose.KEY_PURPOSE_GOVERNANCE], None)
    holders = {k.holder for k in manifest.governance_keys}
    if not holders:
        add(FieldProblem("governance_keys", "at least one governance key is required"))
    threshold = manifest.governance_threshold
    if threshold < 1 or threshold > len(holders) or 2 * threshold <= len(holders):
        add(
            FieldProblem(
                "governance_threshold",
                f"more than half of the {len(holders)} governance institutions, at most all",
            )
        )
    for i, key in enumerate(manifest.certification_keys):
        check_key(key, f"certification_keys[{i}]", [KeyPurpose.KEY_PURPOSE_CERTIFICATION], None)
    members: set[str] = set()
    for i, member in enumerate(manifest.members):
        path = f"members[{i}]"
        if not _INSTITUTION_ID.match(member.institution_id):
            add(FieldProblem(f"{path}.institution_id", "must be a lower-case SCHAC domain"))
        elif member.institution_id in members:
            add(FieldProblem(f"{path}.institution_id", "listed twice"))
        members.add(member.institution_id)
        if not _COUNTRY.match(member.country):
            add(FieldProblem(f"{path}.country", "must be an ISO 3166-1 alpha-2 code"))
        if not any(t.text.strip() for t in member.names.texts):
            add(FieldProblem(f"{path}.names", "at least one name is required"))
        if member.status == MemberStatus.MEMBER_STATUS_UNSPECIFIED:
            add(FieldProblem(f"{path}.status", "required"))
        elif member.status == MemberStatus.MEMBER_STATUS_FORMER and not member.HasField("left_at"):
            add(FieldProblem(f"{path}.left_at", "required for a former member"))
        for j, key in enumerate(member.keys):
            check_key(key, f"{path}.keys[{j}]", _MEMBER_KEY_PURPOSES, member.institution_id)
        if member.status == MemberStatus.MEMBER_STATUS_ACTIVE and not any(
            k.purpose == KeyPurpose.KEY_PURPOSE_ROOT for k in member.keys
        ):
            add(FieldProblem(f"{path}.keys", "an active member needs a root key"))
    for i, scheme in enumerate(manifest.credit_schemes):
        if not scheme.id:
            add(FieldProblem(f"credit_schemes[{i}].id", "required"))
    for i, scale in enumerate(manifest.grade_scales):
        if not scale.id:
            add(FieldProblem(f"grade_scales[{i}].id", "required"))
    if problems:
        raise ProtocolError(
            Reason.MALFORMED, "manifest breaks the content rules", field_problems=problems
        )


def parse_manifest(payload: bytes) -> NetworkManifest:
    """Parse and validate manifest payload bytes.

    Raises:
        ProtocolError: MALFORMED.
    """
    manifest = NetworkManifest()
    try:
        manifest.ParseFromString(payload)
    except DecodeError as exc:
        raise ProtocolError(Reason.MALFORMED, "manifest payload is not a NetworkManifest") from exc
    validate_manifest(manifest)
    return manifest


def sign_manifest(manifest: NetworkManifest, signers: Sequence[Signer]) -> Envelope:
    """Validate manifest, serialise it once and sign those bytes with each governance signer."""
    validate_manifest(manifest)
    payload = manifest.SerializeToString(deterministic=True)
    return sign_envelope(payload, types.MANIFEST, signers)


def _usable_at(key: PublicKey, at: datetime) -> bool:
    if key.status == KeyStatus.KEY_STATUS_REVOKED:
        return False
    not_after = from_timestamp(key.not_after)
    if key.status == KeyStatus.KEY_STATUS_RETIRED and key.HasField("status_changed_at"):
        not_after = min(not_after, from_timestamp(key.status_changed_at))
    if key.HasField("not_before") and at < from_timestamp(key.not_before):
        return False
    return at <= not_after


def governance_holders(
    envelope: Envelope, signed_by: NetworkManifest, at: datetime
) -> frozenset[str]:
    """The distinct institutions whose governance keys in signed_by validly signed envelope.

    Each institution counts once however many of its keys signed (spec MAN-7). A key counts only
    if it is not revoked and at (the signed manifest's issue time) lies in its window, retirement
    included.
    """
    keys = {k.key_id: k for k in signed_by.governance_keys if _usable_at(k, at)}
    message = pae(envelope.payload_type, envelope.payload)
    holders: set[str] = set()
    for sig in envelope.signatures:
        key = keys.get(sig.keyid)
        if key is not None and verify_signature(key.public_key, sig.sig, message):
            holders.add(key.holder)
    return frozenset(holders)


def _require_threshold(
    envelope: Envelope, manifest: NetworkManifest, signed_by: NetworkManifest, which: str
) -> None:
    holders = governance_holders(envelope, signed_by, from_timestamp(manifest.issued_at))
    if len(holders) < signed_by.governance_threshold:
        raise ProtocolError(
            Reason.THRESHOLD_NOT_MET,
            f"signed by {len(holders)} of the {signed_by.governance_threshold} governance "
            f"institutions needed from {which}",
            metadata={"have": str(len(holders)), "need": str(signed_by.governance_threshold)},
        )


@dataclass(frozen=True)
class TrustedManifest:
    """A manifest whose signatures met the threshold, with the exact envelope it came in."""

    envelope: Envelope
    manifest: NetworkManifest
    digest: bytes = field(repr=False)

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def network_id(self) -> str:
        return self.manifest.network_id

    @property
    def expires_at(self) -> datetime:
        return from_timestamp(self.manifest.expires_at)


def _open(envelope: Envelope) -> NetworkManifest:
    check_structure(envelope)
    if envelope.payload_type != types.MANIFEST:
        raise ProtocolError(
            Reason.PAYLOAD_TYPE_UNSUPPORTED,
            "not a manifest envelope",
            metadata={"payload-type": envelope.payload_type},
        )
    return parse_manifest(envelope.payload)


class ManifestTrust:
    """The chain of manifest versions a party trusts, from a pinned genesis (spec MAN-8..MAN-13).

    Pure: the caller fetches envelopes and stores the history; this class only decides.
    """

    def __init__(self, genesis: TrustedManifest) -> None:
        self._history: dict[int, TrustedManifest] = {genesis.version: genesis}
        self._current = genesis

    @classmethod
    def bootstrap(cls, envelope: Envelope, pinned_digest: bytes | None) -> ManifestTrust:
        """Trust a genesis manifest pinned by its digest (SHA-256 of its PAE bytes).

        With pinned_digest None the manifest is trusted on its own signatures alone (tools that
        inspect a manifest; never a node's bootstrap).

        Raises:
            ProtocolError: MALFORMED, PAYLOAD_TYPE_UNSUPPORTED, MANIFEST_PIN_MISMATCH or
                THRESHOLD_NOT_MET.
        """
        check_structure(envelope)
        if pinned_digest is not None and envelope_digest(envelope) != pinned_digest:
            raise ProtocolError(
                Reason.MANIFEST_PIN_MISMATCH, "manifest digest differs from the pinned one"
            )
        manifest = _open(envelope)
        _require_threshold(envelope, manifest, manifest, f"version {manifest.version}")
        return cls(TrustedManifest(envelope, manifest, envelope_digest(envelope)))

    @property
    def current(self) -> TrustedManifest:
        """The newest trusted version."""
        return self._current

    def version(self, number: int) -> TrustedManifest | None:
        """A version trusted earlier, if this chain holds it."""
        return self._history.get(number)

    def versions(self) -> list[TrustedManifest]:
        """Every version held, oldest first."""
        return [self._history[v] for v in sorted(self._history)]

    def update(self, envelope: Envelope) -> TrustedManifest:
        """Adopt the next version, or confirm the current one.

        The version is read first to choose the keys; nothing is trusted until both thresholds
        verify over the exact bytes, which are the bytes kept.

        Raises:
            ProtocolError: MALFORMED, PAYLOAD_TYPE_UNSUPPORTED, WRONG_NETWORK,
                MANIFEST_EQUIVOCATION, MANIFEST_ROLLBACK, MANIFEST_VERSION_GAP or
                THRESHOLD_NOT_MET (spec MAN-9..MAN-12, in that order).
        """
        manifest = _open(envelope)
        current = self._current
        if manifest.network_id != current.network_id:
            raise ProtocolError(Reason.WRONG_NETWORK, "manifest is for another network")
        number = manifest.version
        if number <= current.version:
            known = self._history.get(number)
            if known is not None and known.envelope.payload == envelope.payload:
                if number == current.version:
                    return current
                raise ProtocolError(Reason.MANIFEST_ROLLBACK, "an older version was offered")
            if known is not None and self._validly_signed(envelope, manifest, known):
                raise ProtocolError(
                    Reason.MANIFEST_EQUIVOCATION,
                    f"two different validly signed manifests of version {number}",
                    metadata={"version": str(number)},
                )
            if number < current.version:
                raise ProtocolError(Reason.MANIFEST_ROLLBACK, "an older version was offered")
            # A different body for the current version that its signers did not sign: a forgery.
            raise ProtocolError(
                Reason.THRESHOLD_NOT_MET,
                f"not signed by the governance institutions of version {number - 1}",
            )
        if number > current.version + 1:
            raise ProtocolError(
                Reason.MANIFEST_VERSION_GAP,
                f"version {number} offered; only {current.version + 1} can follow",
                metadata={"offered": str(number), "next": str(current.version + 1)},
            )
        _require_threshold(envelope, manifest, current.manifest, f"version {current.version}")
        _require_threshold(envelope, manifest, manifest, f"version {number} itself")
        trusted = TrustedManifest(envelope, manifest, envelope_digest(envelope))
        self._history[number] = trusted
        self._current = trusted
        return trusted

    def _validly_signed(
        self, envelope: Envelope, manifest: NetworkManifest, known: TrustedManifest
    ) -> bool:
        # The keys that had to sign version N: those of N-1, or for the oldest version held, the
        # keys of the version we trust (so a self-signed forgery is no equivocation).
        previous = self._history.get(manifest.version - 1, known)
        try:
            _require_threshold(envelope, manifest, previous.manifest, "the previous version")
            _require_threshold(envelope, manifest, manifest, "itself")
        except ProtocolError:
            return False
        return True

    def check_fresh(self, now: datetime) -> None:
        """Refuse an expired current version (spec MAN-13).

        Raises:
            ProtocolError: MANIFEST_EXPIRED.
        """
        if utc(now) >= self._current.expires_at:
            raise ProtocolError(
                Reason.MANIFEST_EXPIRED,
                f"manifest version {self._current.version} has expired",
                metadata={"version": str(self._current.version)},
            )
