"""Manifest trust: content rules, threshold by institution, rotation by +1 (spec MAN-*)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sseaun.sdk.core import (
    ManifestTrust,
    ProtocolError,
    Reason,
    envelope_digest,
    from_timestamp,
    governance_holders,
    sign_envelope,
    sign_manifest,
    validate_manifest,
)
from sseaun.v1.manifest_pb2 import KeyPurpose, KeyStatus, MemberStatus, NetworkManifest
from tests.factories import T0, TestNetwork, public_key, seeded


def reason(call) -> Reason:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError) as info:
        call()
    return info.value.reason


def test_genesis_signed_by_a_threshold_is_trusted(network: TestNetwork) -> None:
    envelope = network.sign(network.manifest())
    trust = ManifestTrust.bootstrap(envelope, envelope_digest(envelope))
    assert trust.current.version == 1
    assert trust.current.envelope.payload == envelope.payload


def test_genesis_below_threshold_is_refused(network: TestNetwork) -> None:
    envelope = network.sign(network.manifest(), "ynu.edu.cn")
    assert reason(lambda: ManifestTrust.bootstrap(envelope, None)) is Reason.THRESHOLD_NOT_MET


def test_pin_mismatch_is_refused(network: TestNetwork) -> None:
    envelope = network.sign(network.manifest())
    other = network.sign(network.manifest(days=91))
    pin = envelope_digest(other)
    assert reason(lambda: ManifestTrust.bootstrap(envelope, pin)) is Reason.MANIFEST_PIN_MISMATCH


def test_an_institution_counts_once_however_many_of_its_keys_sign(network: TestNetwork) -> None:
    manifest = network.manifest()
    second = seeded("gov/ynu-2")
    manifest.governance_keys.append(
        public_key(second, "ynu.edu.cn", KeyPurpose.KEY_PURPOSE_GOVERNANCE)
    )
    envelope = sign_manifest(manifest, [network.governance["ynu.edu.cn"], second])
    assert governance_holders(envelope, manifest, from_timestamp(manifest.issued_at)) == {
        "ynu.edu.cn"
    }
    assert reason(lambda: ManifestTrust.bootstrap(envelope, None)) is Reason.THRESHOLD_NOT_MET


def test_revoked_governance_keys_do_not_count(network: TestNetwork) -> None:
    manifest = network.manifest()
    manifest.governance_keys[1].status = KeyStatus.KEY_STATUS_REVOKED
    manifest.governance_keys[1].status_changed_at.CopyFrom(manifest.issued_at)
    envelope = network.sign(manifest, "ynu.edu.cn", "chula.ac.th")
    assert governance_holders(envelope, manifest, from_timestamp(manifest.issued_at)) == {
        "ynu.edu.cn"
    }


@settings(max_examples=60)
@given(holders=st.integers(1, 7), data=st.data())
def test_threshold_must_be_a_majority_of_institutions(holders: int, data: st.DataObject) -> None:
    network = TestNetwork()
    network.governance = {f"gov{i}.edu.example": seeded(f"g{i}") for i in range(holders)}
    manifest = network.manifest()
    threshold = data.draw(st.integers(0, holders + 1))
    manifest.governance_threshold = threshold
    valid = 2 * threshold > holders and threshold <= holders
    if valid:
        validate_manifest(manifest)
        signers = data.draw(st.integers(0, holders))
        envelope = sign_manifest(manifest, list(network.governance.values())[: max(signers, 1)])
        ok = max(signers, 1) >= threshold
        if ok:
            assert ManifestTrust.bootstrap(envelope, None).current.version == 1
        else:
            assert (
                reason(lambda: ManifestTrust.bootstrap(envelope, None)) is Reason.THRESHOLD_NOT_MET
            )
    else:
        with pytest.raises(ProtocolError) as info:
            validate_manifest(manifest)
        assert any(p.field == "governance_threshold" for p in info.value.field_problems)


def test_content_rules_name_every_bad_field(network: TestNetwork) -> None:
    manifest = network.manifest()
    manifest.members[0].country = "China"
    manifest.members[1].institution_id = "Not A Domain"
    manifest.members[2].keys[0].key_id = "0" * 64
    manifest.members[3].CopyFrom(manifest.members[0])
    with pytest.raises(ProtocolError) as info:
        validate_manifest(manifest)
    fields = {p.field for p in info.value.field_problems}
    assert {
        "members[0].country",
        "members[1].institution_id",
        "members[2].keys[0].key_id",
        "members[3].institution_id",
    } <= fields
    assert info.value.reason is Reason.MALFORMED


def test_former_members_need_a_leaving_time(network: TestNetwork) -> None:
    manifest = network.manifest()
    manifest.members[0].status = MemberStatus.MEMBER_STATUS_FORMER
    with pytest.raises(ProtocolError) as info:
        validate_manifest(manifest)
    assert [p.field for p in info.value.field_problems] == ["members[0].left_at"]


def rotated(network: TestNetwork, version: int = 2) -> tuple[TestNetwork, NetworkManifest]:
    """The network with du.ac.bd's governance key replaced by um.edu.my's."""
    new = TestNetwork()
    new.governance = {
        "ynu.edu.cn": network.governance["ynu.edu.cn"],
        "chula.ac.th": network.governance["chula.ac.th"],
        "um.edu.my": seeded("gov/um"),
    }
    return new, new.manifest(version, issued=T0 + timedelta(days=1))


def test_rotation_needs_a_threshold_of_old_and_of_new_keys(network: TestNetwork) -> None:
    trust = network.trust()
    new, manifest = rotated(network)
    old_only = sign_manifest(
        manifest, [network.governance["du.ac.bd"], network.governance["ynu.edu.cn"]]
    )
    # du is gone from v2, so old keys (du + ynu) meet v1's threshold but not v2's own.
    assert reason(lambda: trust.update(old_only)) is Reason.THRESHOLD_NOT_MET
    new_only = sign_manifest(manifest, [new.governance["um.edu.my"], new.governance["ynu.edu.cn"]])
    # um is new in v2; v1 counts only ynu: one of two.
    assert reason(lambda: trust.update(new_only)) is Reason.THRESHOLD_NOT_MET
    both = sign_manifest(
        manifest,
        [network.governance["du.ac.bd"], new.governance["um.edu.my"], new.governance["ynu.edu.cn"]],
    )
    assert trust.update(both).version == 2
    assert trust.current.manifest.governance_keys[2].holder == "um.edu.my"


def test_updating_with_the_current_version_again_is_a_no_op(network: TestNetwork) -> None:
    trust = network.trust()
    assert trust.update(trust.current.envelope) is trust.current


def test_rollback_gap_and_equivocation(network: TestNetwork) -> None:
    trust = network.trust()
    v1 = trust.current.envelope
    v2 = network.sign(network.manifest(2, issued=T0 + timedelta(days=1)))
    trust.update(v2)
    assert reason(lambda: trust.update(v1)) is Reason.MANIFEST_ROLLBACK
    v4 = network.sign(network.manifest(4, issued=T0 + timedelta(days=3)))
    assert reason(lambda: trust.update(v4)) is Reason.MANIFEST_VERSION_GAP
    other_v2 = network.sign(network.manifest(2, issued=T0 + timedelta(days=2)))
    assert reason(lambda: trust.update(other_v2)) is Reason.MANIFEST_EQUIVOCATION
    other_v1 = network.sign(network.manifest(1, days=30))
    assert reason(lambda: trust.update(other_v1)) is Reason.MANIFEST_EQUIVOCATION
    assert trust.current.envelope == v2  # nothing was adopted


def test_a_forged_same_version_is_not_equivocation(network: TestNetwork) -> None:
    trust = network.trust()
    forged = network.sign(network.manifest(1, days=30), "ynu.edu.cn")
    assert reason(lambda: trust.update(forged)) is Reason.THRESHOLD_NOT_MET


def test_other_network_is_refused(network: TestNetwork) -> None:
    trust = network.trust()
    manifest = network.manifest(2)
    manifest.network_id = "other-network"
    assert reason(lambda: trust.update(network.sign(manifest))) is Reason.WRONG_NETWORK


def test_expiry_is_checked_on_the_last_version_only(network: TestNetwork) -> None:
    trust = ManifestTrust.bootstrap(network.sign(network.manifest(days=10)), None)
    trust.update(network.sign(network.manifest(2, issued=T0 + timedelta(days=5), days=30)))
    trust.check_fresh(T0 + timedelta(days=20))  # v1 has expired; v2 has not
    later = T0 + timedelta(days=35)
    assert reason(lambda: trust.check_fresh(later)) is Reason.MANIFEST_EXPIRED


def test_manifest_envelopes_need_the_manifest_payload_type(network: TestNetwork) -> None:
    envelope = network.sign(network.manifest())
    wrong = sign_envelope(
        envelope.payload,
        "application/vnd.sseaun.delegation.v1+protobuf",
        list(network.governance.values()),
    )
    assert reason(lambda: ManifestTrust.bootstrap(wrong, None)) is Reason.PAYLOAD_TYPE_UNSUPPORTED
