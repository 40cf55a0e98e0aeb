"""Request authentication and answers bound to requests (spec AUTH-*)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sseaun.sdk.core import (
    AnswerContext,
    FieldProblem,
    KeyRing,
    ProtocolError,
    Reason,
    build_request,
    envelope_digest,
    sign_envelope,
    sign_error,
    sign_feed_page,
    sign_response,
    verify_answer,
    verify_request,
)
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.envelope_pb2 import Envelope
from tests.factories import NETWORK, T0, Institution, TestNetwork, seeded

METHOD = "/sseaun.v1.ManifestService/GetManifest"
OPS = Purpose.PURPOSE_NETWORK_OPERATIONS


def request(net: TestNetwork, **overrides: object) -> Envelope:
    ynu = net.by_id("ynu.edu.cn")
    args: dict[str, object] = dict(
        signer=ynu.transport,
        network_id=NETWORK,
        method=METHOD,
        sender=ynu.id,
        audience="chula.ac.th",
        purpose=OPS,
        body=b"body",
        request_id="req-1",
        now=T0,
    )
    args.update(overrides)
    return build_request(**args)  # type: ignore[arg-type]


def verify(ring: KeyRing, envelope: Envelope, **overrides: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = dict(
        now=T0, method=METHOD, audiences={"chula.ac.th"}, allowed_purposes={OPS}
    )
    args.update(overrides)
    return verify_request(envelope, ring, **args)  # type: ignore[arg-type]


def reason(call) -> Reason:  # type: ignore[no-untyped-def]
    with pytest.raises(ProtocolError) as info:
        call()
    return info.value.reason


def test_a_good_request_verifies_with_its_nonce_key(network: TestNetwork) -> None:
    ring = network.keyring()
    verified = verify(ring, request(network))
    assert verified.sender == "ynu.edu.cn"
    assert verified.body == b"body"
    assert verified.nonce_expires_at == T0 + timedelta(minutes=5)
    again = verify(ring, request(network))
    assert again.nonce_key != verified.nonce_key  # each attempt has a fresh nonce
    assert again.header.request_id == verified.header.request_id


def test_the_same_nonce_from_different_senders_has_different_keys(network: TestNetwork) -> None:
    ring = network.keyring()
    du = network.by_id("du.ac.bd")
    a = verify(ring, request(network, nonce=b"n" * 16))
    b = verify(ring, request(network, nonce=b"n" * 16, signer=du.transport, sender=du.id))
    assert a.nonce_key != b.nonce_key


def cases(net: TestNetwork) -> list[tuple[str, Envelope, dict[str, object], Reason]]:
    ynu, chula = net.by_id("ynu.edu.cn"), net.by_id("chula.ac.th")
    good = request(net)
    stranger = seeded("stranger")
    tampered = Envelope()
    tampered.CopyFrom(good)
    tampered.payload = good.payload[:-1] + bytes([good.payload[-1] ^ 1])
    wrong_type = sign_envelope(
        good.payload, "application/vnd.sseaun.response.v1+protobuf", [ynu.transport]
    )
    garbage = sign_envelope(
        b"\xff\xff", "application/vnd.sseaun.request.v1+protobuf", [ynu.transport]
    )
    window = timedelta(minutes=5, seconds=1)
    return [
        (
            "no signatures",
            Envelope(payload=good.payload, payload_type=good.payload_type),
            {},
            Reason.MALFORMED,
        ),
        ("response type", wrong_type, {}, Reason.PAYLOAD_TYPE_UNSUPPORTED),
        ("unknown key", request(net, signer=stranger), {}, Reason.KEY_UNKNOWN),
        ("tampered", tampered, {}, Reason.SIGNATURE_INVALID),
        ("garbage payload", garbage, {}, Reason.MALFORMED),
        ("other network", request(net, network_id="elsewhere"), {}, Reason.WRONG_NETWORK),
        ("other's key", request(net, signer=chula.transport), {}, Reason.SIGNER_MISMATCH),
        ("issuing key", request(net, signer=ynu.issuing), {}, Reason.KEY_WRONG_PURPOSE),
        ("clock ahead", request(net, now=T0 + window), {}, Reason.CLOCK_SKEW),
        ("clock behind", request(net, now=T0 - window), {}, Reason.CLOCK_SKEW),
        ("short nonce", request(net, nonce=b"x" * 15), {}, Reason.MALFORMED),
        ("wrong audience", request(net, audience="du.ac.bd"), {}, Reason.WRONG_AUDIENCE),
        ("other method", good, {"method": "/sseaun.v1.X/Y"}, Reason.METHOD_MISMATCH),
        (
            "purpose",
            good,
            {"allowed_purposes": {Purpose.PURPOSE_RECOGNITION}},
            Reason.PURPOSE_NOT_ALLOWED,
        ),
    ]


def test_every_bad_request_has_exactly_its_reason(network: TestNetwork) -> None:
    ring = network.keyring()
    for name, envelope, overrides, expected in cases(network):
        got = reason(lambda e=envelope, o=overrides: verify(ring, e, **o))
        assert got is expected, name


def test_a_revoked_transport_key_is_refused_at_once(network: TestNetwork) -> None:
    from tests.factories import revocation

    ring = network.keyring()
    ynu = network.by_id("ynu.edu.cn")
    ring.accept_revocation(revocation(ynu, ynu.transport.key_id, T0 + timedelta(days=30)))
    assert reason(lambda: verify(ring, request(network))) is Reason.KEY_REVOKED


@settings(max_examples=100)
@given(skew=st.integers(-600, 600))
def test_clock_window_is_five_minutes_both_ways(skew: int) -> None:
    net = TestNetwork()
    envelope = request(net, now=T0 + timedelta(seconds=skew))
    if abs(skew) <= 300:
        verify(net.keyring(), envelope)
    else:
        assert reason(lambda: verify(net.keyring(), envelope)) is Reason.CLOCK_SKEW


def answer_ring(net: TestNetwork) -> tuple[KeyRing, Institution, Envelope, AnswerContext]:
    ring = net.keyring()
    chula = net.by_id("chula.ac.th")
    sent = request(net)
    verified = verify(ring, sent)
    return ring, chula, sent, AnswerContext.for_request(verified)


def test_a_response_is_bound_to_its_request(network: TestNetwork) -> None:
    ring, chula, sent, ctx = answer_ring(network)
    response = sign_response(ctx, b"answer", signer=chula.transport, now=T0)
    answer = verify_answer(response, ring, request=sent, responder=chula.id)
    assert answer.body == b"answer"
    assert answer.header.request_digest == envelope_digest(sent)
    other = request(network)  # same request ID, fresh nonce: a different request
    assert (
        reason(lambda: verify_answer(response, ring, request=other, responder=chula.id))
        is Reason.RESPONSE_UNBOUND
    )


def test_a_response_signed_by_someone_else_is_refused(network: TestNetwork) -> None:
    ring, chula, sent, ctx = answer_ring(network)
    du = network.by_id("du.ac.bd")
    forged = sign_response(ctx, b"answer", signer=du.transport, now=T0)
    assert (
        reason(lambda: verify_answer(forged, ring, request=sent, responder=chula.id))
        is Reason.SIGNER_MISMATCH
    )
    stranger = sign_response(ctx, b"answer", signer=seeded("proxy"), now=T0)
    assert (
        reason(lambda: verify_answer(stranger, ring, request=sent, responder=chula.id))
        is Reason.KEY_UNKNOWN
    )


def test_a_signed_error_is_a_genuine_answer(network: TestNetwork) -> None:
    ring, chula, sent, ctx = answer_ring(network)
    error = ProtocolError(
        Reason.MALFORMED, "bad field", field_problems=[FieldProblem("body.x", "required")]
    )
    envelope = sign_error(ctx, error, signer=chula.transport, now=T0)
    answer = verify_answer(envelope, ring, request=sent, responder=chula.id)
    assert answer.error is not None
    assert answer.error.reason is Reason.MALFORMED
    assert answer.error.field_problems == (FieldProblem("body.x", "required"),)


def test_an_error_for_an_unverified_request_is_still_bound(network: TestNetwork) -> None:
    ring, chula, sent, _ = answer_ring(network)
    ctx = AnswerContext.for_unverified(sent, network_id=NETWORK, method=METHOD, responder=chula.id)
    envelope = sign_error(
        ctx, ProtocolError(Reason.CLOCK_SKEW, "late"), signer=chula.transport, now=T0
    )
    answer = verify_answer(envelope, ring, request=sent, responder=chula.id)
    assert answer.error is not None and answer.error.reason is Reason.CLOCK_SKEW


def test_feed_pages_form_a_chain(network: TestNetwork) -> None:
    ring, chula, sent, ctx = answer_ring(network)
    previous = b""
    pages = []
    for number in range(3):
        page = sign_feed_page(
            ctx,
            b"page%d" % number,
            previous_digest=previous,
            page_number=number,
            last=number == 2,
            signer=chula.transport,
            now=T0,
        )
        answer = verify_answer(
            page, ring, request=sent, responder=chula.id, previous_page_digest=previous
        )
        assert answer.body == b"page%d" % number
        previous = answer.digest
        pages.append(page)
    # Dropping the middle page (a proxy cutting the feed short) breaks the chain.
    first = verify_answer(
        pages[0], ring, request=sent, responder=chula.id, previous_page_digest=b""
    )
    assert (
        reason(
            lambda: verify_answer(
                pages[2],
                ring,
                request=sent,
                responder=chula.id,
                previous_page_digest=first.digest,
            )
        )
        is Reason.FEED_CHAIN_BROKEN
    )


def test_a_replayed_old_response_does_not_answer_a_new_request(network: TestNetwork) -> None:
    ring, chula, _, ctx = answer_ring(network)
    old = sign_response(ctx, b"old answer", signer=chula.transport, now=T0)
    retry = request(network)
    assert (
        reason(lambda: verify_answer(old, ring, request=retry, responder=chula.id))
        is Reason.RESPONSE_UNBOUND
    )
