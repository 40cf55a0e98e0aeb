"""Errors (ERR): how refusals travel: the status code of each reason, the google.rpc details
beside the signed error, field violations, and not-found that gives nothing away."""

from __future__ import annotations

from sseaun.sdk.core import Reason
from sseaun.v1 import service_pb2 as svc

from .._context import Context
from .._framework import CheckFailed, check, expect
from ._support import (
    GET_RECORD,
    LIST_RECORDS,
    MOBILITY,
    Refusal,
    code_problems,
    detail_problems,
    list_records,
    metadata_problems,
    missing_name,
    other_member,
    refusal,
    refuse_samples,
)

AREA = "errors"


@check("err-status-code-per-reason", area=AREA, requirements=["ERR-1", "ERR-3", "AUTH-15"])
async def status_code_per_reason(ctx: Context) -> None:
    """Each reason travels with ERR-3's status code, in the status and in SignedError.code."""
    problems = [
        f"{sample.label}: {p}"
        for sample, refused in await refuse_samples(ctx)
        for p in code_problems(refused)
    ]
    if problems:
        raise CheckFailed("; ".join(problems))


@check("err-status-details", area=AREA, requirements=["ERR-2", "AUTH-15", "AUTH-18"])
async def status_details(ctx: Context) -> None:
    """Every refusal carries one ErrorInfo (domain sseaun.network, the signed reason and
    metadata), a BadRequest matching the signed field violations, and a Status whose code and
    message agree with the signed error."""
    problems = [
        f"{sample.label}: {p}"
        for sample, refused in await refuse_samples(ctx)
        for p in detail_problems(refused)
    ]
    if problems:
        raise CheckFailed("; ".join(problems))


@check("err-metadata", area=AREA, requirements=["ERR-6", "REC-12"])
async def metadata(ctx: Context) -> None:
    """Refusals carry ERR-6's metadata keys (payload-type, network-id, window-seconds, signer,
    key-id) with the values they refer to, keys of the AIP-193 form, and NOT_FOUND none."""
    problems = [
        f"{sample.label}: {p}"
        for sample, refused in await refuse_samples(ctx)
        for p in metadata_problems(refused, sample.metadata)
    ]
    if problems:
        raise CheckFailed("; ".join(problems))


@check(
    "err-field-violations",
    area=AREA,
    requirements=["ERR-7", "AUTH-11", "PAGE-7"],
)
async def field_violations(ctx: Context) -> None:
    """Bad bodies are MALFORMED (INVALID_ARGUMENT) with BadRequest field violations naming the
    field: ListRecords page_size -1 names page_size, a body that does not parse names body."""
    parent = f"institutions/{ctx.audience}/courses"
    cases = [
        (
            "ListRecords with page_size -1",
            LIST_RECORDS,
            list_records(ctx, parent, page_size=-1),
            "page_size",
        ),
        (
            "GetRecord whose body does not parse",
            GET_RECORD,
            ctx.request(GET_RECORD, b"\xff\xff\xff\xff", purpose=MOBILITY),
            "body",
        ),
    ]
    for what, method, request, field in cases:
        refused = await refusal(ctx, method, request, Reason.MALFORMED, what=what)
        signed = [v.field for v in refused.error.field_violations]
        sent = (
            [v.field for v in refused.reply.bad_request.field_violations]
            if refused.reply.bad_request is not None
            else None
        )
        expect(signed == [field], f"{what}: signed field violations {signed}, expected [{field!r}]")
        expect(sent == [field], f"{what}: BadRequest field violations {sent}, expected [{field!r}]")
        expect(
            all(v.description for v in refused.error.field_violations),
            f"{what}: a field violation without description",
        )


@check(
    "err-not-found-looks-the-same",
    area=AREA,
    requirements=["ERR-4", "REC-11", "REC-12"],
)
async def not_found_looks_the_same(ctx: Context) -> None:
    """A missing record, another institution's record, a malformed name and another
    institution's collection all get the same NOT_FOUND: status, reason, message, no metadata
    and no field violations.

    (A record the caller is not a party to belongs here too; the catalogue holds only public
    records, so the check uses what every node has: names outside its audience.)
    """
    elsewhere = other_member(ctx)
    names = {
        "a missing course": missing_name(ctx),
        "another institution's profile": f"institutions/{elsewhere}/profile",
        "another institution's course": f"institutions/{elsewhere}/courses/CS101",
        "a name with lower-case escapes": f"institutions/{ctx.audience}/courses/A%2fB",
    }
    answers: list[tuple[str, Refusal]] = []
    for what, name in names.items():
        request = ctx.request(GET_RECORD, svc.GetRecordBody(name=name), purpose=MOBILITY)
        answers.append((what, await refusal(ctx, GET_RECORD, request, Reason.NOT_FOUND, what=what)))
    what = "another institution's collection"
    listing = list_records(ctx, f"institutions/{elsewhere}/courses")
    answers.append((what, await refusal(ctx, LIST_RECORDS, listing, Reason.NOT_FOUND, what=what)))
    first_what, first = answers[0]
    for what, refused in answers:
        expect(
            not refused.error.metadata and not refused.error.field_violations,
            f"{what}: NOT_FOUND carries metadata {dict(refused.error.metadata)} or field "
            f"violations {[v.field for v in refused.error.field_violations]}",
        )
        expect(
            refused.error.message == first.error.message
            and refused.reply.message == first.reply.message,
            f"{what} is answered {refused.error.message!r}, {first_what} "
            f"{first.error.message!r}: the difference tells what exists",
        )
