"""Which key may sign what, when: the manifest's keys plus members' delegations and revocations."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from sseaun.v1.envelope_pb2 import Envelope
from sseaun.v1.manifest_pb2 import (
    Delegation,
    Endpoint,
    KeyPurpose,
    KeyRevocation,
    KeyStatus,
    Member,
    MemberStatus,
    PublicKey,
)

from . import _payload_types as types
from ._envelope import VerifiedEnvelope, sign_envelope, verify_envelope
from ._errors import FieldProblem, ProtocolError, Reason
from ._keys import Signer
from ._manifest import TrustedManifest, key_problems
from ._time import from_timestamp, to_timestamp, utc

__all__ = [
    "MAX_DELEGATION_LIFETIME",
    "KeyRing",
    "TrustedKey",
    "Verified",
    "sign_delegation",
    "sign_revocation",
]

#: A delegation lives at most this long (DESIGN §4).
MAX_DELEGATION_LIFETIME = timedelta(days=7)
OPERATIONAL_PURPOSES = frozenset(
    {KeyPurpose.KEY_PURPOSE_TRANSPORT, KeyPurpose.KEY_PURPOSE_ISSUING, KeyPurpose.KEY_PURPOSE_LOG}
)
_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True)
class TrustedKey:
    """A public key with everything needed to decide whether a signature by it counts."""

    key_id: str
    public_key: bytes
    holder: str
    purpose: int
    not_before: datetime | None
    not_after: datetime
    revoked_at: datetime | None

    def valid_at(self, at: datetime) -> bool:
        """Whether at lies in the key's window (retirement included, revocation not)."""
        return (self.not_before is None or at >= self.not_before) and at <= self.not_after


def _trusted_key(
    key: PublicKey, *, cap: datetime | None = None, floor: datetime | None = None
) -> TrustedKey:
    not_before = from_timestamp(key.not_before) if key.HasField("not_before") else None
    if floor is not None and (not_before is None or not_before < floor):
        not_before = floor
    not_after = from_timestamp(key.not_after)
    changed = from_timestamp(key.status_changed_at) if key.HasField("status_changed_at") else None
    if key.status == KeyStatus.KEY_STATUS_RETIRED and changed is not None:
        not_after = min(not_after, changed)
    if cap is not None:
        not_after = min(not_after, cap)
    revoked_at = changed if key.status == KeyStatus.KEY_STATUS_REVOKED else None
    return TrustedKey(
        key.key_id, key.public_key, key.holder, key.purpose, not_before, not_after, revoked_at
    )


@dataclass(frozen=True)
class Verified:
    """A payload that verified, parsed from the exact verified bytes, and the key that signed."""

    message: Message
    key: TrustedKey
    envelope: VerifiedEnvelope
    #: The signing time the payload states (as signer_of read it).
    signed_at: datetime


class KeyRing:
    """The keys of one trusted manifest, with accepted delegations and revocations applied.

    Pure: the caller supplies the signed delegations and revocations it has fetched or stored.
    """

    def __init__(self, manifest: TrustedManifest) -> None:
        self._manifest = manifest
        self._members: dict[str, Member] = {m.institution_id: m for m in manifest.manifest.members}
        self._keys: dict[str, TrustedKey] = {}
        self._public: dict[str, bytes] = {}
        self._delegations: dict[str, Delegation] = {}
        self._accepted: list[Envelope] = []
        for member in manifest.manifest.members:
            left = (
                from_timestamp(member.left_at)
                if member.status == MemberStatus.MEMBER_STATUS_FORMER
                else None
            )
            for key in member.keys:
                self._add(_trusted_key(key, cap=left))

    def _add(self, key: TrustedKey) -> None:
        self._keys[key.key_id] = key
        self._public[key.key_id] = key.public_key

    @property
    def manifest(self) -> TrustedManifest:
        return self._manifest

    @property
    def network_id(self) -> str:
        return self._manifest.network_id

    def member(self, institution_id: str) -> Member | None:
        """The manifest entry of an institution, former members included."""
        return self._members.get(institution_id)

    def key(self, key_id: str) -> TrustedKey | None:
        """A key by ID, from the manifest or an accepted delegation."""
        return self._keys.get(key_id)

    def keys_for(self, institution_id: str, purpose: int, at: datetime) -> list[TrustedKey]:
        """The unrevoked keys of an institution for a purpose whose window contains at."""
        at = utc(at)
        return [
            k
            for k in self._keys.values()
            if k.holder == institution_id
            and k.purpose == purpose
            and k.valid_at(at)
            and (k.revoked_at is None or at < k.revoked_at)
        ]

    def delegation(self, institution_id: str) -> Delegation | None:
        """The newest accepted delegation of an institution (its current endpoints)."""
        return self._delegations.get(institution_id)

    def accepted_statements(self) -> list[Envelope]:
        """The delegations and revocations accepted so far, in order (to re-apply later)."""
        return list(self._accepted)

    def check_key(
        self, key: TrustedKey, *, signer: str, purpose: int, at: datetime, new_call: bool
    ) -> None:
        """Decide whether key may sign for signer and purpose at time at (spec KEY-5).

        For a new call (request or response) a revoked key is refused whatever the time; for a
        record, only signatures from the compromise time on.

        Raises:
            ProtocolError: SIGNER_MISMATCH, KEY_REVOKED, KEY_WRONG_PURPOSE or KEY_EXPIRED, first
                failing check in that order.
        """
        at = utc(at)
        if key.holder != signer:
            raise ProtocolError(
                Reason.SIGNER_MISMATCH,
                "the key does not belong to the institution named as signer",
                metadata={"signer": signer},
            )
        if key.revoked_at is not None and (new_call or at >= key.revoked_at):
            raise ProtocolError(
                Reason.KEY_REVOKED, "the signing key is revoked", metadata={"key-id": key.key_id}
            )
        if key.purpose != purpose:
            raise ProtocolError(
                Reason.KEY_WRONG_PURPOSE,
                "the signing key is not for this purpose",
                metadata={"key-id": key.key_id},
            )
        if not key.valid_at(at):
            raise ProtocolError(
                Reason.KEY_EXPIRED,
                "the key was not valid at the signing time",
                metadata={"key-id": key.key_id},
            )

    def verify(
        self,
        envelope: Envelope,
        *,
        allowed_types: Collection[str],
        message_type: type[_M],
        signer_of: Callable[[_M], tuple[str, str, datetime]],
        purpose: int,
        new_call: bool,
        precheck: Callable[[_M, datetime], None] | None = None,
    ) -> Verified:
        """Verify an envelope signed by the institution its payload names (spec ENV-6).

        Order: envelope checks (MALFORMED, PAYLOAD_TYPE_UNSUPPORTED, KEY_UNKNOWN,
        SIGNATURE_INVALID), then parse the verified bytes (MALFORMED), WRONG_NETWORK, then the key
        checks of check_key. When several signatures verify, the one that passes the most checks
        decides the reason.

        Args:
            signer_of: returns (network ID, signing institution, signing time) of a payload.
            precheck: a check of the payload run after WRONG_NETWORK and before the key checks
                (a request's clock window, so a wrong clock is named as such).
        """
        verified = verify_envelope(envelope, self._public, allowed_types)
        message = message_type()
        try:
            message.ParseFromString(verified.payload)
        except DecodeError as exc:
            raise ProtocolError(Reason.MALFORMED, "payload does not parse") from exc
        try:
            network_id, signer, at = signer_of(message)
        except (ValueError, AttributeError) as exc:
            raise ProtocolError(Reason.MALFORMED, f"payload lacks a required field: {exc}") from exc
        if network_id != self.network_id:
            raise ProtocolError(
                Reason.WRONG_NETWORK,
                "signed for another network",
                metadata={"network-id": network_id},
            )
        if precheck is not None:
            precheck(message, at)
        best: ProtocolError | None = None
        best_rank = -1
        for key_id in verified.key_ids:
            key = self._keys[key_id]
            try:
                self.check_key(key, signer=signer, purpose=purpose, at=at, new_call=new_call)
            except ProtocolError as exc:
                rank = _KEY_CHECK_ORDER.index(exc.reason)
                if rank > best_rank:
                    best, best_rank = exc, rank
                continue
            return Verified(message, key, verified, at)
        assert best is not None
        raise best

    def accept_delegation(
        self, envelope: Envelope, now: datetime, *, replay: bool = False
    ) -> Delegation:
        """Verify and apply a member's delegation of operational keys and endpoints (KEY-6).

        With replay=True (re-applying a statement accepted before, e.g. under a new manifest
        version) an expired delegation is still applied, so the keys it vouched for keep
        verifying what they signed while it was in force.

        Raises:
            ProtocolError: any reason of verify for a ROOT key, DELEGATION_INVALID for a broken
                rule (with field problems), STALE_VERSION for a serial not above the last one.
        """
        verified = self.verify(
            envelope,
            allowed_types={types.DELEGATION},
            message_type=Delegation,
            signer_of=lambda d: (d.network_id, d.institution_id, from_timestamp(d.issued_at)),
            purpose=KeyPurpose.KEY_PURPOSE_ROOT,
            new_call=True,
        )
        delegation = verified.message
        assert isinstance(delegation, Delegation)
        institution = delegation.institution_id
        issued, expires = (
            from_timestamp(delegation.issued_at),
            from_timestamp(delegation.expires_at),
        )
        problems: list[FieldProblem] = []
        member = self._members[institution]
        left = from_timestamp(member.left_at) if member.HasField("left_at") else None
        # A former member's old delegations are replayed, so its keys keep verifying what they
        # signed before it left (CRED-7); it can delegate nothing new.
        former_replay = (
            replay
            and member.status == MemberStatus.MEMBER_STATUS_FORMER
            and left is not None
            and issued < left
        )
        if member.status != MemberStatus.MEMBER_STATUS_ACTIVE and not former_replay:
            problems.append(FieldProblem("institution_id", "not an active member"))
        if not delegation.HasField("expires_at") or expires <= issued:
            problems.append(FieldProblem("expires_at", "must be after issued_at"))
        elif expires - issued > MAX_DELEGATION_LIFETIME:
            problems.append(FieldProblem("expires_at", "a delegation lives at most 7 days"))
        if not replay and utc(now) >= expires:
            problems.append(FieldProblem("expires_at", "the delegation has expired"))
        for i, key in enumerate(delegation.keys):
            problems.extend(
                key_problems(key, f"keys[{i}]", purposes=OPERATIONAL_PURPOSES, holder=institution)
            )
            other = self._keys.get(key.key_id)
            if other is not None and other.holder != institution:
                problems.append(FieldProblem(f"keys[{i}].key_id", "held by another institution"))
            elif other is not None and other.purpose != key.purpose:
                problems.append(FieldProblem(f"keys[{i}].purpose", "a key keeps its one purpose"))
        if problems:
            raise ProtocolError(
                Reason.DELEGATION_INVALID,
                "the delegation breaks its rules",
                field_problems=problems,
            )
        previous = self._delegations.get(institution)
        if previous is not None and previous.SerializeToString() == delegation.SerializeToString():
            return previous  # delivered again: nothing changes
        if previous is not None and delegation.serial <= previous.serial:
            raise ProtocolError(
                Reason.STALE_VERSION,
                "a newer delegation is already in force",
                metadata={"serial": str(previous.serial)},
            )
        for key in delegation.keys:
            existing = self._keys.get(key.key_id)
            fresh = _trusted_key(key, cap=min(expires, left) if left else expires, floor=issued)
            if existing is not None:
                # A refresh extends the window; it never cuts off what the key signed before,
                # and never lifts a revocation.
                starts = [t for t in (existing.not_before, fresh.not_before) if t is not None]
                fresh = TrustedKey(
                    fresh.key_id, fresh.public_key, fresh.holder, fresh.purpose,
                    min(starts) if len(starts) == 2 else None,
                    max(existing.not_after, fresh.not_after), existing.revoked_at,
                )  # fmt: skip
            self._add(fresh)
        self._delegations[institution] = delegation
        self._accepted.append(envelope)
        return delegation

    def accept_revocation(self, envelope: Envelope) -> KeyRevocation:
        """Verify and apply a member's revocation of one of its own operational keys (KEY-7).

        Raises:
            ProtocolError: any reason of verify for a ROOT key; KEY_UNKNOWN for an unknown key;
                SIGNER_MISMATCH for another institution's key; DELEGATION_INVALID for a root key.
        """
        verified = self.verify(
            envelope,
            allowed_types={types.KEY_REVOCATION},
            message_type=KeyRevocation,
            signer_of=lambda r: (r.network_id, r.institution_id, from_timestamp(r.issued_at)),
            purpose=KeyPurpose.KEY_PURPOSE_ROOT,
            new_call=True,
        )
        revocation = verified.message
        assert isinstance(revocation, KeyRevocation)
        key = self._keys.get(revocation.key_id)
        if key is None:
            raise ProtocolError(Reason.KEY_UNKNOWN, "the revoked key is not known")
        if key.holder != revocation.institution_id:
            raise ProtocolError(Reason.SIGNER_MISMATCH, "a member revokes only its own keys")
        if key.purpose not in OPERATIONAL_PURPOSES:
            raise ProtocolError(
                Reason.DELEGATION_INVALID, "root keys are revoked by governance in the manifest"
            )
        if not revocation.HasField("revoked_at"):
            raise ProtocolError(
                Reason.MALFORMED,
                "revoked_at is required",
                field_problems=[FieldProblem("revoked_at", "required")],
            )
        revoked_at = from_timestamp(revocation.revoked_at)
        if key.revoked_at is None or revoked_at < key.revoked_at:
            self._add(TrustedKey(**{**key.__dict__, "revoked_at": revoked_at}))
        self._accepted.append(envelope)
        return revocation

    def public_keys(self) -> Mapping[str, bytes]:
        """Every known key ID with its raw public key (read-only view)."""
        return dict(self._public)


_KEY_CHECK_ORDER = [
    Reason.SIGNER_MISMATCH,
    Reason.KEY_REVOKED,
    Reason.KEY_WRONG_PURPOSE,
    Reason.KEY_EXPIRED,
]


def sign_delegation(
    root: Signer,
    *,
    network_id: str,
    institution: str,
    serial: int,
    issued_at: datetime,
    expires_at: datetime,
    keys: Sequence[PublicKey],
    endpoints: Sequence[Endpoint] = (),
) -> Envelope:
    """A delegation of operational keys and endpoints, signed by the institution's root key.

    Nothing is checked here; KeyRing.accept_delegation decides whether it holds (KEY-6).
    """
    message = Delegation(
        network_id=network_id,
        institution_id=institution,
        serial=serial,
        issued_at=to_timestamp(issued_at),
        expires_at=to_timestamp(expires_at),
        keys=keys,
        endpoints=endpoints,
    )
    return sign_envelope(message.SerializeToString(deterministic=True), types.DELEGATION, [root])


def sign_revocation(
    root: Signer,
    *,
    network_id: str,
    institution: str,
    key_id: str,
    revoked_at: datetime,
    issued_at: datetime,
    reason: str = "",
) -> Envelope:
    """A revocation of one of the institution's operational keys, signed by its root key (KEY-7)."""
    message = KeyRevocation(
        network_id=network_id,
        institution_id=institution,
        key_id=key_id,
        revoked_at=to_timestamp(revoked_at),
        issued_at=to_timestamp(issued_at),
        reason=reason,
    )
    return sign_envelope(
        message.SerializeToString(deterministic=True), types.KEY_REVOCATION, [root]
    )
