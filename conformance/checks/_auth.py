"""Request authentication (AUTH): each check of AUTH-5 refused with its reason, in its order,
and answers bound to the request."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from sseaun.sdk.core import Reason, envelope_digest, payload_types, sign_envelope
from sseaun.v1.auth_pb2 import Purpose

from .._context import Context
from .._framework import CheckFailed, CheckSkipped, check, expect
from ._support import (
    GET_MANIFEST,
    GET_RECORD,
    LIST_RECORDS,
    accepted,
    another_sender,
    answered,
    call,
    describe,
    get_manifest,
    get_record,
    header_problems,
    list_records,
    missing_name,
    only_error,
    other_member,
    refusal,
    stranger,
    tampered,
    verify_bound,
)

AREA = "auth"
_ALL_PURPOSES = (
    Purpose.PURPOSE_NETWORK_OPERATIONS,
    Purpose.PURPOSE_MOBILITY_ADMINISTRATION,
    Purpose.PURPOSE_RECOGNITION,
    Purpose.PURPOSE_CREDENTIAL_VERIFICATION,
    Purpose.PURPOSE_AUDIT,
)


def _now() -> datetime:
    return datetime.now(UTC)


@check("auth-replayed-nonce", area=AREA, requirements=["AUTH-5", "AUTH-6"])
async def replayed_nonce(ctx: Context) -> None:
    """The same signed request sent twice is refused REPLAYED_NONCE the second time, and of two
    concurrent copies exactly one passes."""
    request = get_manifest(ctx)
    await accepted(ctx, GET_MANIFEST, request, what="the first sending")
    await refusal(ctx, GET_MANIFEST, request, Reason.REPLAYED_NONCE, what="the same request again")
    twin = get_manifest(ctx)
    replies = await asyncio.gather(*(call(ctx, GET_MANIFEST, twin) for _ in range(2)))
    passed = [r for r in replies if r.ok]
    expect(
        len(passed) == 1,
        f"two concurrent copies of one request: {len(passed)} passed "
        f"({'; '.join(describe(r) for r in replies)})",
    )
    refused = next(r for r in replies if not r.ok)
    answer = verify_bound(ctx, only_error(refused), twin, method=GET_MANIFEST)
    expect(
        answer.error is not None and answer.error.reason is Reason.REPLAYED_NONCE,
        f"the concurrent copy that failed got {describe(refused)}",
    )


@check("auth-cross-method-replay", area=AREA, requirements=["AUTH-6"])
async def cross_method_replay(ctx: Context) -> None:
    """A nonce used on one method is refused REPLAYED_NONCE on another (the nonce key is the
    sender and nonce, whatever the method)."""
    nonce = secrets.token_bytes(32)
    await accepted(ctx, GET_MANIFEST, get_manifest(ctx, nonce=nonce), what="GetManifest")
    parent = f"institutions/{ctx.audience}/courses"
    await refusal(
        ctx,
        LIST_RECORDS,
        list_records(ctx, parent, nonce=nonce),
        Reason.REPLAYED_NONCE,
        what="ListRecords signed afresh with GetManifest's nonce",
    )


@check("auth-wrong-audience", area=AREA, requirements=["AUTH-5", "AUTH-7"])
async def wrong_audience(ctx: Context) -> None:
    """A request addressed to an institution the node does not serve is refused WRONG_AUDIENCE.

    The node cannot sign as that institution, so its signed error is expected from the
    audience it serves (the one called).
    """
    elsewhere = other_member(ctx)
    request = get_record(ctx, missing_name(ctx), audience=elsewhere)
    await refusal(
        ctx, GET_RECORD, request, Reason.WRONG_AUDIENCE, what=f"a request addressed to {elsewhere}"
    )


@check("auth-clock-skew", area=AREA, requirements=["AUTH-5", "AUTH-8"])
async def clock_skew(ctx: Context) -> None:
    """Requests issued 10 minutes in the past or future are refused CLOCK_SKEW with
    window-seconds; 4 minutes either way are inside the window.

    Four minutes in the past may still be refused for the key (KEY_EXPIRED when the caller's
    keys are younger than that), never for the clock; four minutes ahead must pass.
    """
    for minutes in (-10, 10):
        when = _now() + timedelta(minutes=minutes)
        refused = await refusal(
            ctx,
            GET_MANIFEST,
            get_manifest(ctx, now=when),
            Reason.CLOCK_SKEW,
            what=f"a request issued {minutes:+d} minutes from now",
        )
        window = dict(refused.error.metadata).get("window-seconds")
        expect(
            window == "300",
            f"CLOCK_SKEW carries window-seconds {window!r}, not the 5-minute window '300'",
        )
    earlier = get_manifest(ctx, now=_now() - timedelta(minutes=4))
    reply, answer = await answered(ctx, GET_MANIFEST, earlier, what="a request 4 minutes old")
    expect(
        answer.error is None or answer.error.reason is not Reason.CLOCK_SKEW,
        f"a request issued 4 minutes ago (inside the window): {describe(reply)}",
    )
    await accepted(
        ctx,
        GET_MANIFEST,
        get_manifest(ctx, now=_now() + timedelta(minutes=4)),
        what="a request issued 4 minutes ahead (inside the window)",
    )


@check("auth-key-wrong-purpose", area=AREA, requirements=["AUTH-5", "KEY-4", "KEY-5"])
async def key_wrong_purpose(ctx: Context) -> None:
    """A request signed with the caller's ISSUING key instead of TRANSPORT is refused
    KEY_WRONG_PURPOSE."""
    for role in ("issuing", "log"):
        signer = getattr(ctx.auditor(), role)
        request = get_record(ctx, missing_name(ctx), signer=signer)
        await refusal(
            ctx, GET_RECORD, request, Reason.KEY_WRONG_PURPOSE, what=f"signed by the {role} key"
        )


@check("auth-key-not-yet-valid", area=AREA, requirements=["AUTH-5", "KEY-5"])
async def key_not_yet_valid(ctx: Context) -> None:
    """A request signed before its key's window opens (yet inside the clock window) is refused
    KEY_EXPIRED.

    Runs only while the caller's TRANSPORT key is younger than 4 minutes (fresh test keys), so
    that one second before its not_before is still inside the clock window of AUTH-8.
    """
    key = ctx.keyring.key(ctx.auditor().transport.key_id)
    starts = key.not_before if key is not None else None
    if starts is None or _now() - starts > timedelta(minutes=4):
        raise CheckSkipped(
            "the caller's TRANSPORT key is older than 4 minutes (or has no not_before): "
            "a request before its window would be outside the clock window"
        )
    request = get_manifest(ctx, now=starts - timedelta(seconds=1))
    await refusal(
        ctx,
        GET_MANIFEST,
        request,
        Reason.KEY_EXPIRED,
        what="a request signed one second before the key's not_before",
    )


@check("auth-signer-mismatch", area=AREA, requirements=["AUTH-5", "KEY-5"])
async def signer_mismatch(ctx: Context) -> None:
    """A sender naming another institution than the signing key's holder is refused
    SIGNER_MISMATCH."""
    claimed = another_sender(ctx)
    request = get_record(ctx, missing_name(ctx), sender=claimed)
    await refusal(
        ctx,
        GET_RECORD,
        request,
        Reason.SIGNER_MISMATCH,
        what=f"{ctx.auditor().institution}'s key signing as {claimed}",
    )


@check("auth-wrong-network", area=AREA, requirements=["AUTH-3", "AUTH-5", "ENV-5"])
async def wrong_network(ctx: Context) -> None:
    """A request naming another network ID is refused WRONG_NETWORK."""
    other = ctx.network_id + "-elsewhere"
    request = get_record(ctx, missing_name(ctx), network_id=other)
    refused = await refusal(
        ctx, GET_RECORD, request, Reason.WRONG_NETWORK, what=f"a request for network {other}"
    )
    named = dict(refused.error.metadata).get("network-id")
    expect(named == other, f"WRONG_NETWORK names network-id {named!r}, not {other!r}")


@check("auth-method-mismatch", area=AREA, requirements=["AUTH-9", "AUTH-14"])
async def method_mismatch(ctx: Context) -> None:
    """A request signed for GetRecord and sent to ListRecords is refused METHOD_MISMATCH, with
    the error bound to the method called."""
    request = get_record(ctx, missing_name(ctx))
    refused = await refusal(
        ctx,
        LIST_RECORDS,
        request,
        Reason.METHOD_MISMATCH,
        what="GetRecord's request on ListRecords",
    )
    expect(
        refused.answer.header.method == LIST_RECORDS,
        f"the error names the method {refused.answer.header.method!r}, not the one called",
    )


@check("auth-purpose-not-allowed", area=AREA, requirements=["AUTH-5", "AUTH-12"])
async def purpose_not_allowed(ctx: Context) -> None:
    """Purposes a method does not allow are refused PURPOSE_NOT_ALLOWED (PERMISSION_DENIED):
    GetManifest for anything but NETWORK_OPERATIONS, any method for PURPOSE_UNSPECIFIED."""
    for purpose in _ALL_PURPOSES[1:]:
        await refusal(
            ctx,
            GET_MANIFEST,
            get_manifest(ctx, purpose=purpose),
            Reason.PURPOSE_NOT_ALLOWED,
            what=f"GetManifest for {Purpose.Name(purpose)}",
        )
    await refusal(
        ctx,
        GET_RECORD,
        get_record(ctx, missing_name(ctx), purpose=Purpose.PURPOSE_UNSPECIFIED),
        Reason.PURPOSE_NOT_ALLOWED,
        what="GetRecord for PURPOSE_UNSPECIFIED",
    )


@check("auth-allowed-purposes-accepted", area=AREA, requirements=["AUTH-12"])
async def allowed_purposes_accepted(ctx: Context) -> None:
    """The record methods accept every purpose of AUTH-12's table, GetManifest
    NETWORK_OPERATIONS."""
    parent = f"institutions/{ctx.audience}/courses"
    for purpose in _ALL_PURPOSES:
        await accepted(
            ctx,
            LIST_RECORDS,
            list_records(ctx, parent, purpose=purpose),
            what=f"ListRecords for {Purpose.Name(purpose)}",
        )
    await accepted(ctx, GET_MANIFEST, get_manifest(ctx), what="GetManifest for NETWORK_OPERATIONS")


@check("auth-nonce-size", area=AREA, requirements=["AUTH-3", "AUTH-5"])
async def nonce_size(ctx: Context) -> None:
    """A nonce outside 16 to 64 bytes is MALFORMED, naming header.nonce; 16 and 64 pass."""
    for size in (8, 65):
        refused = await refusal(
            ctx,
            GET_MANIFEST,
            get_manifest(ctx, nonce=secrets.token_bytes(size)),
            Reason.MALFORMED,
            what=f"a {size}-byte nonce",
        )
        fields = [v.field for v in refused.error.field_violations]
        expect(fields == ["header.nonce"], f"a {size}-byte nonce: field violations {fields}")
    for size in (16, 64):
        await accepted(
            ctx,
            GET_MANIFEST,
            get_manifest(ctx, nonce=secrets.token_bytes(size)),
            what=f"a {size}-byte nonce",
        )


@check("auth-check-order", area=AREA, requirements=["AUTH-5", "ENV-6"])
async def check_order(ctx: Context) -> None:
    """A request breaking two rules is refused with the reason of the earlier step of AUTH-5,
    and a request refused before step 13 does not use up its nonce."""
    me, name = ctx.auditor(), missing_name(ctx)
    past = _now() - timedelta(minutes=10)
    elsewhere = other_member(ctx)
    retyped = get_record(ctx, name, signer=stranger())
    retyped.payload_type = payload_types.RESPONSE
    garbage = sign_envelope(b"\xff\x00 not protobuf", payload_types.REQUEST, [me.transport])
    cases = [
        (
            "retyped and signed by an unknown key",
            GET_RECORD,
            retyped,
            Reason.PAYLOAD_TYPE_UNSUPPORTED,
        ),
        (
            "signed by an unknown key and changed",
            GET_RECORD,
            tampered(get_record(ctx, name, signer=stranger())),
            Reason.KEY_UNKNOWN,
        ),
        (
            "a payload that does not parse, changed after signing",
            GET_RECORD,
            tampered(garbage),
            Reason.SIGNATURE_INVALID,
        ),
        (
            "another network, 10 minutes old",
            GET_RECORD,
            get_record(ctx, name, network_id=ctx.network_id + "-elsewhere", now=past),
            Reason.WRONG_NETWORK,
        ),
        (
            "10 minutes old, signed by the ISSUING key",
            GET_RECORD,
            get_record(ctx, name, now=past, signer=me.issuing),
            Reason.CLOCK_SKEW,
        ),
        (
            "another institution as sender, signed by the ISSUING key",
            GET_RECORD,
            get_record(ctx, name, sender=another_sender(ctx), signer=me.issuing),
            Reason.SIGNER_MISMATCH,
        ),
        (
            "signed by the ISSUING key, with an 8-byte nonce",
            GET_RECORD,
            get_record(ctx, name, signer=me.issuing, nonce=secrets.token_bytes(8)),
            Reason.KEY_WRONG_PURPOSE,
        ),
        (
            "an 8-byte nonce, to another audience",
            GET_RECORD,
            get_record(ctx, name, nonce=secrets.token_bytes(8), audience=elsewhere),
            Reason.MALFORMED,
        ),
        (
            "signed by the ISSUING key, to another audience",
            GET_RECORD,
            get_record(ctx, name, signer=me.issuing, audience=elsewhere),
            Reason.KEY_WRONG_PURPOSE,
        ),
        (
            "to another audience, on another method",
            LIST_RECORDS,
            get_record(ctx, name, audience=elsewhere),
            Reason.WRONG_AUDIENCE,
        ),
        (
            "on another method, for PURPOSE_UNSPECIFIED",
            LIST_RECORDS,
            get_record(ctx, name, purpose=Purpose.PURPOSE_UNSPECIFIED),
            Reason.METHOD_MISMATCH,
        ),
    ]
    for what, method, request, reason in cases:
        await refusal(ctx, method, request, reason, what=what)
    nonce = secrets.token_bytes(32)
    await refusal(
        ctx,
        GET_MANIFEST,
        get_manifest(ctx, nonce=nonce, purpose=Purpose.PURPOSE_AUDIT),
        Reason.PURPOSE_NOT_ALLOWED,
        what="GetManifest for AUDIT",
    )
    await accepted(
        ctx,
        GET_MANIFEST,
        get_manifest(ctx, nonce=nonce),
        what="a correct request reusing the nonce of a request refused at step 12",
    )


@check("auth-answer-header", area=AREA, requirements=["AUTH-13", "AUTH-14"])
async def answer_header(ctx: Context) -> None:
    """Answers carry AUTH-13's header: the request's digest and method, the audience as
    responder, and requester and request_id (empty when the request did not verify)."""
    request = get_manifest(ctx)
    answer = await accepted(ctx, GET_MANIFEST, request, what="GetManifest")
    problems = [
        f"response: {p}"
        for p in header_problems(answer.header, request, method=GET_MANIFEST, verified=True)
    ]
    missing = get_record(ctx, missing_name(ctx))
    refused = await refusal(ctx, GET_RECORD, missing, Reason.NOT_FOUND, what="a missing record")
    problems += [
        f"NOT_FOUND: {p}"
        for p in header_problems(refused.answer.header, missing, method=GET_RECORD, verified=True)
    ]
    bad = get_record(ctx, missing_name(ctx), signer=stranger())
    refused = await refusal(ctx, GET_RECORD, bad, Reason.KEY_UNKNOWN, what="an unknown key")
    problems += [
        f"KEY_UNKNOWN: {p}"
        for p in header_problems(refused.answer.header, bad, method=GET_RECORD, verified=False)
    ]
    expect(
        refused.answer.header.request_digest == envelope_digest(bad),
        "the KEY_UNKNOWN error is not bound to the digest of the request as received",
    )
    if problems:
        raise CheckFailed("; ".join(problems))
