"""Key levels: delegations, revocations, windows, former members (spec KEY-4..KEY-7)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sseaun.sdk.core import KeyRing, ManifestTrust, ProtocolError, Reason, TrustedKey
from sseaun.v1.manifest_pb2 import KeyPurpose, KeyStatus, MemberStatus
from tests.factories import T0, TestNetwork, delegation, public_key, revocation, seeded

TRANSPORT = KeyPurpose.KEY_PURPOSE_TRANSPORT


def reason(call) -> Reason:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError) as info:
        call()
    return info.value.reason


def test_root_key_delegates_a_short_lived_operational_key(network: TestNetwork) -> None:
    ring = network.keyring()
    ynu = network.by_id("ynu.edu.cn")
    fresh = seeded("ynu/transport-2")
    ring.accept_delegation(
        delegation(ynu, [public_key(fresh, ynu.id, TRANSPORT)]), T0 + timedelta(hours=1)
    )
    key = ring.key(fresh.key_id)
    assert key is not None
    assert key.not_after == T0 + timedelta(days=7)  # capped by the delegation
    assert fresh.key_id in {k.key_id for k in ring.keys_for(ynu.id, TRANSPORT, T0)}
    assert fresh.key_id not in {
        k.key_id for k in ring.keys_for(ynu.id, TRANSPORT, T0 + timedelta(days=8))
    }


def test_delegation_rules(network: TestNetwork) -> None:
    ring = network.keyring()
    ynu = network.by_id("ynu.edu.cn")
    chula = network.by_id("chula.ac.th")
    now = T0 + timedelta(hours=1)
    k = seeded("ynu/k")
    ok = [public_key(k, ynu.id, TRANSPORT)]
    too_long = delegation(ynu, ok, lifetime=timedelta(days=8))
    assert reason(lambda: ring.accept_delegation(too_long, now)) is Reason.DELEGATION_INVALID
    root_purpose = [public_key(k, ynu.id, KeyPurpose.KEY_PURPOSE_ROOT)]
    assert (
        reason(lambda: ring.accept_delegation(delegation(ynu, root_purpose), now))
        is Reason.DELEGATION_INVALID
    )
    foreign = [public_key(k, chula.id, TRANSPORT)]
    assert (
        reason(lambda: ring.accept_delegation(delegation(ynu, foreign), now))
        is Reason.DELEGATION_INVALID
    )
    by_transport = delegation(ynu, ok, signer=ynu.transport)
    assert reason(lambda: ring.accept_delegation(by_transport, now)) is Reason.KEY_WRONG_PURPOSE
    by_other_root = delegation(ynu, ok, signer=chula.root)
    assert reason(lambda: ring.accept_delegation(by_other_root, now)) is Reason.SIGNER_MISMATCH
    expired = T0 + timedelta(days=8)
    assert (
        reason(lambda: ring.accept_delegation(delegation(ynu, ok), expired))
        is Reason.DELEGATION_INVALID
    )
    ring.accept_delegation(delegation(ynu, ok, serial=5), now)
    older = delegation(ynu, ok, serial=4, issued=now)
    assert reason(lambda: ring.accept_delegation(older, now)) is Reason.STALE_VERSION


def test_revocation_refuses_new_calls_at_once_and_records_from_compromise(
    network: TestNetwork,
) -> None:
    ring = network.keyring()
    ynu = network.by_id("ynu.edu.cn")
    compromise = T0 + timedelta(days=2)
    ring.accept_revocation(revocation(ynu, ynu.issuing.key_id, compromise))
    key = ring.key(ynu.issuing.key_id)
    assert key is not None
    issuing = KeyPurpose.KEY_PURPOSE_ISSUING
    before = T0 + timedelta(days=1)
    ring.check_key(key, signer=ynu.id, purpose=issuing, at=before, new_call=False)
    for at, new_call in ((compromise, False), (before, True)):
        assert (
            reason(
                lambda at=at, new_call=new_call: ring.check_key(
                    key, signer=ynu.id, purpose=issuing, at=at, new_call=new_call
                )
            )
            is Reason.KEY_REVOKED
        )


def test_members_revoke_only_their_own_operational_keys(network: TestNetwork) -> None:
    ring = network.keyring()
    ynu, chula = network.by_id("ynu.edu.cn"), network.by_id("chula.ac.th")
    theirs = revocation(ynu, chula.transport.key_id, T0)
    assert reason(lambda: ring.accept_revocation(theirs)) is Reason.SIGNER_MISMATCH
    root = revocation(ynu, ynu.root.key_id, T0)
    assert reason(lambda: ring.accept_revocation(root)) is Reason.DELEGATION_INVALID


def test_revocation_survives_a_later_delegation_of_the_same_key(network: TestNetwork) -> None:
    ring = network.keyring()
    ynu = network.by_id("ynu.edu.cn")
    ring.accept_revocation(revocation(ynu, ynu.transport.key_id, T0))
    ring.accept_delegation(
        delegation(ynu, [public_key(ynu.transport, ynu.id, TRANSPORT)]), T0 + timedelta(hours=1)
    )
    assert ynu.transport.key_id not in {
        x.key_id for x in ring.keys_for(ynu.id, TRANSPORT, T0 + timedelta(hours=2))
    }


def test_former_members_keys_verify_only_before_they_left(network: TestNetwork) -> None:
    manifest = network.manifest()
    left = T0 + timedelta(days=3)
    manifest.members[3].status = MemberStatus.MEMBER_STATUS_FORMER
    manifest.members[3].left_at.FromDatetime(left)
    ring = KeyRing(ManifestTrust.bootstrap(network.sign(manifest), None).current)
    um = network.by_id("um.edu.my")
    key = ring.key(um.issuing.key_id)
    assert key is not None
    issuing = KeyPurpose.KEY_PURPOSE_ISSUING
    ring.check_key(key, signer=um.id, purpose=issuing, at=left - timedelta(days=1), new_call=False)
    late = left + timedelta(seconds=1)
    assert (
        reason(lambda: ring.check_key(key, signer=um.id, purpose=issuing, at=late, new_call=False))
        is Reason.KEY_EXPIRED
    )


def test_a_former_members_old_delegation_replays_but_a_new_one_is_refused(
    network: TestNetwork,
) -> None:
    manifest = network.manifest()
    left = T0 + timedelta(days=3)
    manifest.members[3].status = MemberStatus.MEMBER_STATUS_FORMER
    manifest.members[3].left_at.FromDatetime(left)
    ring = KeyRing(ManifestTrust.bootstrap(network.sign(manifest), None).current)
    um = network.by_id("um.edu.my")
    delegated = seeded("um/delegated-issuing")
    issuing = KeyPurpose.KEY_PURPOSE_ISSUING
    old = delegation(um, [public_key(delegated, um.id, issuing)], issued=T0)
    later = T0 + timedelta(days=30)
    # Replayed (e.g. by a verifier loading a node's stored statements): its key verifies what it
    # signed before the member left, and nothing after.
    ring.accept_delegation(old, later, replay=True)
    key = ring.key(delegated.key_id)
    assert key is not None
    ring.check_key(key, signer=um.id, purpose=issuing, at=T0 + timedelta(days=1), new_call=False)
    after = left + timedelta(seconds=1)
    assert (
        reason(lambda: ring.check_key(key, signer=um.id, purpose=issuing, at=after, new_call=False))
        is Reason.KEY_EXPIRED
    )
    # A delegation made now, or one not replayed, is refused: a former member delegates nothing.
    fresh = KeyRing(ManifestTrust.bootstrap(network.sign(manifest), None).current)
    assert reason(lambda: fresh.accept_delegation(old, T0)) is Reason.DELEGATION_INVALID
    new = delegation(um, [public_key(delegated, um.id, issuing)], issued=left + timedelta(days=1))
    assert reason(lambda: fresh.accept_delegation(new, later, replay=True)) is not None


def test_retired_keys_still_verify_old_signatures(network: TestNetwork) -> None:
    manifest = network.manifest()
    retired = T0 + timedelta(days=10)
    old = manifest.members[0].keys[2]
    old.status = KeyStatus.KEY_STATUS_RETIRED
    old.status_changed_at.FromDatetime(retired)
    ring = KeyRing(ManifestTrust.bootstrap(network.sign(manifest), None).current)
    key = ring.key(old.key_id)
    assert key is not None
    issuing = KeyPurpose.KEY_PURPOSE_ISSUING
    ring.check_key(key, signer=old.holder, purpose=issuing, at=T0, new_call=False)
    after = retired + timedelta(seconds=1)
    assert (
        reason(
            lambda: ring.check_key(key, signer=old.holder, purpose=issuing, at=after, new_call=True)
        )
        is Reason.KEY_EXPIRED
    )


@settings(max_examples=200)
@given(
    start=st.integers(-1000, 1000),
    length=st.integers(0, 2000),
    at=st.integers(-3000, 3000),
    revoked=st.one_of(st.none(), st.integers(-3000, 3000)),
    new_call=st.booleans(),
)
def test_key_window_and_revocation_semantics(
    start: int, length: int, at: int, revoked: int | None, new_call: bool
) -> None:
    hour = timedelta(hours=1)
    key = TrustedKey(
        key_id="k",
        public_key=b"\x00" * 32,
        holder="ynu.edu.cn",
        purpose=TRANSPORT,
        not_before=T0 + start * hour,
        not_after=T0 + (start + length) * hour,
        revoked_at=None if revoked is None else T0 + revoked * hour,
    )
    ring = TestNetwork().keyring()
    expected: Reason | None = None
    if revoked is not None and (new_call or at >= revoked):
        expected = Reason.KEY_REVOKED
    elif not start <= at <= start + length:
        expected = Reason.KEY_EXPIRED

    def call() -> None:
        ring.check_key(
            key, signer="ynu.edu.cn", purpose=TRANSPORT, at=T0 + at * hour, new_call=new_call
        )

    if expected is None:
        call()
    else:
        assert reason(call) is expected
    assert (
        reason(
            lambda: ring.check_key(key, signer="du.ac.bd", purpose=TRANSPORT, at=T0, new_call=False)
        )
        is Reason.SIGNER_MISMATCH
    )


def test_a_refreshed_delegation_keeps_old_signatures_valid(network: TestNetwork) -> None:
    ring = network.keyring()
    ynu = network.by_id("ynu.edu.cn")
    fresh = seeded("ynu/transport-3")
    entry = [public_key(fresh, ynu.id, TRANSPORT)]
    ring.accept_delegation(delegation(ynu, entry, serial=1), T0)
    later = T0 + timedelta(days=5)
    ring.accept_delegation(delegation(ynu, entry, serial=2, issued=later), later)
    key = ring.key(fresh.key_id)
    assert key is not None
    assert key.valid_at(T0 + timedelta(hours=1))  # signed under the first delegation
    assert key.valid_at(later + timedelta(days=6))  # and under the refresh


def test_a_key_keeps_its_one_purpose_across_delegations(network: TestNetwork) -> None:
    ring = network.keyring()
    ynu = network.by_id("ynu.edu.cn")
    as_transport = [public_key(ynu.issuing, ynu.id, TRANSPORT)]
    assert (
        reason(lambda: ring.accept_delegation(delegation(ynu, as_transport), T0))
        is Reason.DELEGATION_INVALID
    )


def test_the_same_delegation_delivered_twice_changes_nothing(network: TestNetwork) -> None:
    ring = network.keyring()
    ynu = network.by_id("ynu.edu.cn")
    envelope = delegation(ynu, [public_key(seeded("ynu/t4"), ynu.id, TRANSPORT)])
    first = ring.accept_delegation(envelope, T0)
    assert ring.accept_delegation(envelope, T0) == first


def test_an_expired_delegation_is_refused_unless_replayed(network: TestNetwork) -> None:
    ring = network.keyring()
    ynu = network.by_id("ynu.edu.cn")
    k = seeded("ynu/t5")
    envelope = delegation(ynu, [public_key(k, ynu.id, TRANSPORT)])
    late = T0 + timedelta(days=30)
    assert reason(lambda: ring.accept_delegation(envelope, late)) is Reason.DELEGATION_INVALID
    ring.accept_delegation(envelope, late, replay=True)
    key = ring.key(k.key_id)
    assert key is not None and key.valid_at(T0 + timedelta(days=1))
