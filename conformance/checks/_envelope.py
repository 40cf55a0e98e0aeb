"""Envelopes and signatures (ENV): what the node accepts as a signed request, and the form of
what it signs back."""

from __future__ import annotations

import base64
import binascii
import json

from sseaun.sdk.core import Envelope, Reason, envelope_digest, payload_types, sign_envelope

from .._context import Context
from .._framework import CheckFailed, check, expect
from ._support import (
    EMPTY_ENVELOPE_DIGEST,
    GET_MANIFEST,
    GET_RECORD,
    accepted,
    call,
    describe,
    get_manifest,
    get_record,
    http_fetch,
    missing_name,
    refusal,
    stranger,
    tampered,
    verify_bound,
)

AREA = "envelope"


@check(
    "env-response-signed-and-bound",
    area=AREA,
    requirements=["ENV-1", "ENV-10", "AUTH-13", "AUTH-14"],
)
async def response_signed_and_bound(ctx: Context) -> None:
    """A correctly signed request gets a signed response bound to its digest and method."""
    request = get_manifest(ctx)
    # accepted() verifies the answer with the SDK's verify_answer (AUTH-17): a TRANSPORT
    # signature of the audience, request_digest = ENV-10 digest of the request, its method.
    answer = await accepted(ctx, GET_MANIFEST, request, what="a correct GetManifest")
    expect(
        answer.header.requester == ctx.auditor().institution,
        f"the response names the requester {answer.header.requester!r}",
    )


@check(
    "env-tampered-payload-refused",
    area=AREA,
    requirements=["ENV-3", "ENV-6", "AUTH-5", "AUTH-14", "AUTH-15"],
)
async def tampered_payload_refused(ctx: Context) -> None:
    """A payload changed after signing is refused SIGNATURE_INVALID, bound to what was sent."""
    changed = tampered(get_record(ctx, missing_name(ctx)))
    # refusal() verifies the signed error bound to the digest of the changed envelope, as sent.
    await refusal(ctx, GET_RECORD, changed, Reason.SIGNATURE_INVALID, what="a changed payload")


@check(
    "env-payload-type-changed-refused",
    area=AREA,
    requirements=["ENV-5", "ENV-6", "AUTH-5"],
)
async def payload_type_changed_refused(ctx: Context) -> None:
    """A request whose payload type was changed is refused PAYLOAD_TYPE_UNSUPPORTED.

    ENV-6 checks the type (step 2) before any key or signature (steps 3 and 4), so the reason is
    the type even though the signature no longer verifies over the new PAE.
    """
    for other in (
        payload_types.RESPONSE,
        payload_types.payload_type("request", 2),
        payload_types.MANIFEST,
    ):
        request = get_record(ctx, missing_name(ctx))
        request.payload_type = other
        await refusal(
            ctx,
            GET_RECORD,
            request,
            Reason.PAYLOAD_TYPE_UNSUPPORTED,
            what=f"a request retyped as {other}",
        )


@check("env-unknown-key-refused", area=AREA, requirements=["ENV-6", "AUTH-5"])
async def unknown_key_refused(ctx: Context) -> None:
    """A request signed by a key the manifest does not list is refused KEY_UNKNOWN."""
    request = get_record(ctx, missing_name(ctx), signer=stranger())
    await refusal(ctx, GET_RECORD, request, Reason.KEY_UNKNOWN, what="a stranger's signature")


@check(
    "env-one-valid-signature-suffices",
    area=AREA,
    requirements=["ENV-6", "ENV-7", "AUTH-2"],
)
async def one_valid_signature_suffices(ctx: Context) -> None:
    """Among several signatures, one valid TRANSPORT signature makes the request accepted.

    Before it: a signature by an unknown key, a 64-byte signature that does not verify under a
    listed key (the caller's LOG key), and a signature that verifies but by the caller's ISSUING
    key (KEY_WRONG_PURPOSE). ENV-6 ignores them while another signature succeeds.
    """
    me = ctx.auditor()
    good = get_manifest(ctx)
    signed = sign_envelope(good.payload, good.payload_type, [stranger(), me.issuing])
    request = Envelope(payload=good.payload, payload_type=good.payload_type)
    request.signatures.add(sig=signed.signatures[0].sig, keyid=signed.signatures[0].keyid)
    request.signatures.add(sig=bytes(64), keyid=me.log.key_id)
    request.signatures.add(sig=signed.signatures[1].sig, keyid=signed.signatures[1].keyid)
    request.signatures.add(sig=good.signatures[0].sig, keyid=good.signatures[0].keyid)
    await accepted(
        ctx,
        GET_MANIFEST,
        request,
        what="a request with three bad signatures before its valid one",
    )


@check(
    "env-malformed-envelope-refused",
    area=AREA,
    requirements=["ENV-4", "ENV-6", "AUTH-4", "AUTH-5"],
)
async def malformed_envelope_refused(ctx: Context) -> None:
    """Envelopes that break ENV-4, and a signed payload that does not parse, are MALFORMED."""
    me = ctx.auditor()
    cases: list[tuple[str, Envelope]] = []
    short = get_record(ctx, missing_name(ctx))
    short.signatures[0].sig = short.signatures[0].sig[:63]
    cases.append(("a 63-byte signature", short))
    unnamed = get_record(ctx, missing_name(ctx))
    unnamed.signatures[0].keyid = ""
    cases.append(("a signature without keyid", unnamed))
    bare = get_record(ctx, missing_name(ctx))
    del bare.signatures[:]
    cases.append(("no signature", bare))
    spaced = get_record(ctx, missing_name(ctx))
    spaced.payload_type = "application/vnd.sseaun.request.v1+protobuf extra"
    cases.append(("a payload type with a space", spaced))
    for what, payload_type in (
        ("an empty payload type", ""),
        ("a payload type of 129 characters", "a" * 129),
    ):
        retyped = get_record(ctx, missing_name(ctx))
        retyped.payload_type = payload_type
        cases.append((what, retyped))
    crowded = get_record(ctx, missing_name(ctx))
    for _ in range(16):
        crowded.signatures.add(sig=bytes(64), keyid=stranger().key_id)
    cases.append(("17 signatures", crowded))
    cases.append(
        (
            "a signed payload that is not a SignedRequest",
            sign_envelope(b"\xff\x00 not protobuf", payload_types.REQUEST, [me.transport]),
        )
    )
    for what, envelope in cases:
        await refusal(ctx, GET_RECORD, envelope, Reason.MALFORMED, what=what)


@check(
    "env-undecodable-message-refused",
    area=AREA,
    requirements=["ENV-9", "AUTH-14", "AUTH-15"],
)
async def undecodable_message_refused(ctx: Context) -> None:
    """Request bytes that do not decode get a signed MALFORMED bound to the empty envelope."""
    expect(
        envelope_digest(Envelope()) == EMPTY_ENVELOPE_DIGEST,
        "internal: the empty envelope's digest differs from AUTH-14's",
    )
    cases = {
        "request bytes that are not a GetRecordRequest": b"\xff\xff\xff\xff not protobuf",
        "a request message without an envelope": b"",
        "a request whose envelope does not decode": b"\x0a\x03\xff\xff\xff",
    }
    for what, data in cases.items():
        refused = await refusal(ctx, GET_RECORD, data, Reason.MALFORMED, what=what)
        # refusal() verified it bound to EMPTY_ENVELOPE_DIGEST and the method called.
        expect(refused.answer.header.method == GET_RECORD, f"{what}: bound to another method")


@check(
    "env-answers-typed-and-well-formed",
    area=AREA,
    requirements=["ENV-4", "ENV-5", "AUTH-13"],
)
async def answers_typed(ctx: Context) -> None:
    """Answers are well-formed envelopes of the response type (success) and error type
    (refusal), signed by a TRANSPORT key of the audience."""
    answers: list[tuple[str, Envelope, str]] = []
    request = get_manifest(ctx)
    reply = await call(ctx, GET_MANIFEST, request)
    expect(reply.ok and reply.answer is not None, f"GetManifest: {describe(reply)}")
    assert reply.answer is not None
    verify_bound(ctx, reply.answer, request, method=GET_MANIFEST)
    answers.append(("the response", reply.answer, payload_types.RESPONSE))
    refused = await refusal(ctx, GET_RECORD, get_record(ctx, missing_name(ctx)), Reason.NOT_FOUND)
    answers.append(("the signed error", refused.envelope, payload_types.ERROR))
    for what, envelope, wanted in answers:
        expect(
            envelope.payload_type == wanted,
            f"{what} has payload type {envelope.payload_type!r}, not {wanted!r}",
        )
        expect(
            1 <= len(envelope.signatures) <= 16,
            f"{what} has {len(envelope.signatures)} signatures",
        )
        for sig in envelope.signatures:
            expect(len(sig.sig) == 64, f"{what} has a {len(sig.sig)}-byte signature")
            expect(bool(sig.keyid), f"{what} has a signature without keyid")


@check("env-dsse-json-form", area=AREA, requirements=["ENV-8", "MAN-14"])
async def dsse_json_form(ctx: Context) -> None:
    """The manifest served over HTTP is DSSE JSON with every member, in padded standard base64."""
    status, _, data = await http_fetch(ctx, "/.well-known/sseaun/manifest")
    expect(status == 200, f"GET /.well-known/sseaun/manifest answered HTTP {status}")
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise CheckFailed(f"the manifest served over HTTP is not JSON: {exc}") from exc
    expect(isinstance(document, dict), "the manifest is not a JSON object")
    for member in ("payload", "payloadType", "signatures"):
        expect(member in document, f"the DSSE JSON lacks {member!r}")
    expect(isinstance(document["payloadType"], str), "payloadType is not a string")
    expect(
        isinstance(document["signatures"], list) and len(document["signatures"]) > 0,
        "signatures is not a non-empty list",
    )
    _padded_base64(document["payload"], "payload")
    for i, entry in enumerate(document["signatures"]):
        expect(isinstance(entry, dict), f"signatures[{i}] is not an object")
        expect(
            isinstance(entry.get("keyid"), str) and entry["keyid"] != "",
            f"signatures[{i}] lacks a keyid",
        )
        _padded_base64(entry.get("sig"), f"signatures[{i}].sig")


def _padded_base64(value: object, what: str) -> None:
    expect(isinstance(value, str), f"{what} is not a string")
    assert isinstance(value, str)
    expect(len(value) % 4 == 0, f"{what} is not padded base64 (length {len(value)})")
    expect("-" not in value and "_" not in value, f"{what} is URL-safe, not standard base64")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckFailed(f"{what} is not valid standard base64") from exc
