"""Listing and change feed: pages, page tokens, feed cursors, signed chained feed pages (spec
PAGE-*, FEED-*).

The checks read the audience's course collection (``institutions/<audience>/courses``) through
the SDK client, which verifies every answer and every feed chain, and through raw calls where
they need to see what the SDK hides (page numbers, ``last``, a refused token). The node under
test should hold a few courses and take no writes during the run: the checks compare a listing
with the feed read just before it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import math
import time
from collections.abc import AsyncGenerator, Awaitable
from contextlib import aclosing
from dataclasses import dataclass
from typing import cast

import grpc
from google.protobuf.message import DecodeError

from sseaun.sdk.client import AnswerVerificationError, AsyncNodeClient, NodeError, TransportError
from sseaun.sdk.core import Envelope, ProtocolError, Reason, payload_types, records, verify_answer
from sseaun.sdk.core import envelope_digest as digest_of
from sseaun.v1.auth_pb2 import Purpose, SignedFeedPage
from sseaun.v1.catalogue_pb2 import Course, InstitutionProfile, RecordHeader
from sseaun.v1.service_pb2 import (
    ChangeBatch,
    ChangeKind,
    WatchChangesBody,
    WatchChangesRequest,
    WatchChangesResponse,
)

from .._context import Context
from .._framework import CheckFailed, CheckFunction, CheckSkipped, check, expect

WATCH_CHANGES = "/sseaun.v1.RecordService/WatchChanges"
#: The purpose the suite reads with: an auditor's (every record method allows it, AUTH-12).
AUDIT = Purpose.PURPOSE_AUDIT
#: More pages than this in one listing or feed means the node never ends it.
_MAX_PAGES = 5000
#: A page_size above any node's maximum (int32's largest).
_HUGE = 2**31 - 1


# -- helpers shared with the log checks --------------------------------------------------------


def node_check(function: CheckFunction) -> CheckFunction:
    """Report what the node under test did wrong as a failure, not as an error of the check:
    an answer that did not verify, no signed answer at all, or a signed refusal of a call the
    check expected to succeed."""

    @functools.wraps(function)
    async def run(ctx: Context) -> None:
        try:
            await function(ctx)
        except AnswerVerificationError as exc:
            raise CheckFailed(
                f"an answer of the node did not verify: {exc.reason.value}: {exc}"
            ) from exc
        except NodeError as exc:
            raise CheckFailed(
                f"the node refused a correct call: {exc.reason.value} ({exc.code}): {exc}"
            ) from exc
        except TransportError as exc:
            raise CheckFailed(f"no signed answer: {exc}") from exc

    return run


def courses(ctx: Context) -> str:
    """The audience's course collection."""
    return f"institutions/{ctx.audience}/courses"


def profile(ctx: Context) -> str:
    """The audience's profile collection."""
    return f"institutions/{ctx.audience}"


def other_member(ctx: Context) -> str:
    """A member of the network other than the audience (for a collection the node must not
    serve)."""
    for member in ctx.keyring.manifest.manifest.members:
        if member.institution_id != ctx.audience:
            return str(member.institution_id)
    raise CheckSkipped("the manifest lists no member other than the audience")


def record_header(record: Envelope) -> RecordHeader:
    """The header of a record envelope (its payload parsed, not verified)."""
    try:
        if record.payload_type == payload_types.COURSE:
            return Course.FromString(record.payload).header
        if record.payload_type == payload_types.INSTITUTION_PROFILE:
            return InstitutionProfile.FromString(record.payload).header
        kind = records.RecordKind.of_payload_type(record.payload_type)
        return records.open_payload(kind, record.payload).header  # type: ignore[attr-defined, no-any-return]
    except (ProtocolError, DecodeError) as exc:
        raise CheckFailed(f"a record envelope holds no record: {exc}") from exc


def name_of(record: Envelope) -> str:
    """The record name in a record envelope."""
    return record_header(record).name


async def refused(call: Awaitable[object], what: str) -> NodeError:
    """The node's signed refusal of call; a failure when it accepts it or gives no signed
    answer."""
    try:
        await call
    except NodeError as exc:
        return exc
    except (AnswerVerificationError, TransportError) as exc:
        raise CheckFailed(f"{what}: no verified signed error, {exc}") from exc
    raise CheckFailed(f"{what} was accepted")


def expect_reason(error: NodeError, reason: Reason, what: str, *, field: str | None = None) -> None:
    """The refusal has reason (with its status code) and, if given, a violation on field."""
    expect(
        error.reason is reason and error.code == reason.status_code,
        f"{what}: refused with {error.reason.value} ({error.code}), expected {reason.value} "
        f"({reason.status_code})",
    )
    if field is not None:
        fields = [p.field for p in error.field_problems]
        expect(field in fields, f"{what}: the field violations name {fields}, not {field!r}")


async def expect_malformed(call: Awaitable[object], field: str, what: str) -> None:
    expect_reason(await refused(call, what), Reason.MALFORMED, what, field=field)


@dataclass(frozen=True)
class Listing:
    """One pass of a listing: the records in order and the size of each page."""

    records: list[Envelope]
    sizes: list[int]

    @property
    def names(self) -> list[str]:
        return [name_of(r) for r in self.records]


async def list_all(
    client: AsyncNodeClient,
    parent: str,
    page_size: int = 0,
    changed_since: int = 0,
    *,
    first_token: str = "",
) -> Listing:
    """Every page of a listing from first_token (the SDK refuses a token that does not advance,
    PAGE-4)."""
    token, found, sizes = first_token, [], []
    for _ in range(_MAX_PAGES):
        page = await client.list_records_page(
            parent, page_size, token, changed_since, purpose=AUDIT
        )
        found += list(page.records)
        sizes.append(len(page.records))
        token = page.next_page_token
        if not token:
            return Listing(found, sizes)
    raise CheckFailed(f"the listing of {parent} did not end within {_MAX_PAGES} pages")


async def read_feed(
    client: AsyncNodeClient, parent: str, cursor: str = "", page_size: int = 0
) -> list[ChangeBatch]:
    """Every page of a feed from cursor, without follow (the SDK verifies the chain)."""
    batches = []
    stream = cast(
        "AsyncGenerator[ChangeBatch, None]",
        client.watch_changes(parent, cursor, page_size, purpose=AUDIT),
    )
    async with aclosing(stream):
        async for batch in stream:
            batches.append(batch)
            if len(batches) > _MAX_PAGES:
                raise CheckFailed(f"the feed of {parent} did not end within {_MAX_PAGES} pages")
    return batches


def live_records(batches: list[ChangeBatch]) -> dict[str, Envelope]:
    """The latest version of each live record in a feed (what a listing shows), by name."""
    latest: dict[str, Envelope | None] = {}
    for batch in batches:
        for change in batch.changes:
            deleted = change.kind == ChangeKind.CHANGE_KIND_DELETE
            latest[name_of(change.record)] = None if deleted else change.record
    return {name: r for name, r in latest.items() if r is not None}


def sequences(batches: list[ChangeBatch]) -> list[int]:
    return [c.sequence for b in batches for c in b.changes]


async def collection(ctx: Context, client: AsyncNodeClient) -> list[ChangeBatch]:
    """The whole feed of the audience's courses; skips the check when it is empty."""
    batches = await read_feed(client, courses(ctx))
    if not sequences(batches):
        raise CheckSkipped(f"{courses(ctx)} is empty: import a few courses to run this check")
    return batches


def manifest_max_page_size(ctx: Context) -> int | None:
    member = ctx.keyring.member(ctx.audience)
    size = member.limits.max_page_size if member is not None else 0
    return size or None


def page_sizes(count: int) -> tuple[int, ...]:
    """Explicit page sizes that give a listing of count records some 2 to 30 pages."""
    small = max(1, math.ceil(count / 25))
    return tuple(sorted({small, max(small + 1, math.ceil(count / 3))}))


# -- listing (PAGE) ----------------------------------------------------------------------------


def _expect_same_listing(
    ctx: Context, listing: Listing, live: dict[str, Envelope], how: str
) -> None:
    names = listing.names
    expect(len(set(names)) == len(names), f"{how}: a record came twice")
    expect(
        names == sorted(names, key=str.encode),
        f"{how}: the records are not in ascending byte order of name",
    )
    missing, extra = sorted(set(live) - set(names)), sorted(set(names) - set(live))
    expect(
        not missing and not extra,
        f"{how}: the listing of {courses(ctx)} lacks {missing[:5]} and has {extra[:5]} "
        "compared with the live records of its feed",
    )
    changed = [n for n, r in zip(names, listing.records, strict=True) if r != live[n]]
    expect(
        not changed,
        f"{how}: records differ from the latest versions in the feed: {changed[:5]}",
    )


@check("list-covers-collection", area="feed", requirements=["PAGE-1", "PAGE-4", "PAGE-5"])
@node_check
async def list_covers_collection(ctx: Context) -> None:
    """A listing with the default page size returns every live record once, in name order."""
    async with ctx.client() as client:
        live = live_records(await collection(ctx, client))
        listing = await list_all(client, courses(ctx))
    _expect_same_listing(ctx, listing, live, "default page size")


@check("list-explicit-page-sizes", area="feed", requirements=["PAGE-3", "PAGE-4", "PAGE-5"])
@node_check
async def list_explicit_page_sizes(ctx: Context) -> None:
    """Listings with explicit page sizes hold at most that many records a page and cover the
    collection exactly once."""
    async with ctx.client() as client:
        live = live_records(await collection(ctx, client))
        for size in page_sizes(len(live)):
            listing = await list_all(client, courses(ctx), size)
            expect(
                max(listing.sizes) <= size,
                f"page_size {size}: a page held {max(listing.sizes)} records",
            )
            _expect_same_listing(ctx, listing, live, f"page_size {size}")


@check("list-page-size-above-maximum", area="feed", requirements=["PAGE-3"])
@node_check
async def list_page_size_above_maximum(ctx: Context) -> None:
    """A page_size above the node's maximum is lowered to it, not refused."""
    limit = manifest_max_page_size(ctx)
    async with ctx.client() as client:
        live = live_records(await collection(ctx, client))
        listing = await list_all(client, courses(ctx), _HUGE)
    _expect_same_listing(ctx, listing, live, f"page_size {_HUGE}")
    if limit is not None:
        expect(
            max(listing.sizes) <= limit,
            f"a page held {max(listing.sizes)} records, above the manifest's max_page_size {limit}",
        )


@check("list-page-size-negative", area="feed", requirements=["PAGE-3", "PAGE-7"])
@node_check
async def list_page_size_negative(ctx: Context) -> None:
    """A negative page_size is MALFORMED (INVALID_ARGUMENT) with a violation on page_size."""
    async with ctx.client() as client:
        await expect_malformed(
            client.list_records_page(courses(ctx), -1, purpose=AUDIT),
            "page_size",
            "ListRecords with page_size -1",
        )


async def _first_token(ctx: Context, client: AsyncNodeClient, changed_since: int = 0) -> str:
    page = await client.list_records_page(courses(ctx), 1, "", changed_since, purpose=AUDIT)
    if not page.next_page_token:
        raise CheckSkipped(f"{courses(ctx)} holds a single record: no page token to test")
    return page.next_page_token


def _altered(token: str, at: int) -> str:
    """token with the character at index at replaced by another of its kind (a digit by a
    digit, a letter by a letter of the same case), so that a parser takes it as readily."""
    old = token[at]
    for alphabet in ("0123456789", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"):
        if old in alphabet:
            new = alphabet[(alphabet.index(old) + 1) % len(alphabet)]
            break
    else:
        new = "_" if old == "-" else "-"
    return token[:at] + new + token[at + 1 :]


@check("list-page-token-tampered", area="feed", requirements=["PAGE-2", "PAGE-7"])
@node_check
async def list_page_token_tampered(ctx: Context) -> None:
    """A page token altered in one character, or truncated, is refused with MALFORMED on
    page_token (tokens are authenticated)."""
    async with ctx.client() as client:
        token = await _first_token(ctx, client)
        variants = {
            "its first character changed": _altered(token, 0),
            "its middle character changed": _altered(token, len(token) // 2),
            "its last character dropped": token[:-1],
            "a character appended": token + "A",
        }
        for how, bad in variants.items():
            if bad == token:
                continue
            await expect_malformed(
                client.list_records_page(courses(ctx), 1, bad, purpose=AUDIT),
                "page_token",
                f"a page token with {how}",
            )


@check("list-page-token-bound-to-parent", area="feed", requirements=["PAGE-2"])
@node_check
async def list_page_token_bound_to_parent(ctx: Context) -> None:
    """A page token of one collection is refused for another (MALFORMED on page_token)."""
    async with ctx.client() as client:
        token = await _first_token(ctx, client)
        await expect_malformed(
            client.list_records_page(profile(ctx), 1, token, purpose=AUDIT),
            "page_token",
            f"a page token of {courses(ctx)} presented for {profile(ctx)}",
        )


@check("list-page-token-bound-to-filter", area="feed", requirements=["PAGE-2", "PAGE-6"])
@node_check
async def list_page_token_bound_to_filter(ctx: Context) -> None:
    """A page token is refused with another changed_since_sequence (MALFORMED on page_token)."""
    async with ctx.client() as client:
        token = await _first_token(ctx, client)
        await expect_malformed(
            client.list_records_page(courses(ctx), 1, token, 1, purpose=AUDIT),
            "page_token",
            "a page token of an unfiltered listing presented with changed_since_sequence 1",
        )


@check("list-page-token-bound-to-caller", area="feed", requirements=["PAGE-2"])
@node_check
async def list_page_token_bound_to_caller(ctx: Context) -> None:
    """A page token presented by another caller is refused (MALFORMED on page_token)."""
    if len(ctx.auditors) < 2:
        raise CheckSkipped("needs a second auditor institution")
    async with ctx.client() as client:
        token = await _first_token(ctx, client)
    async with ctx.client(1) as other:
        await expect_malformed(
            other.list_records_page(courses(ctx), 1, token, purpose=AUDIT),
            "page_token",
            f"{ctx.auditor(0).institution}'s page token presented by {ctx.auditor(1).institution}",
        )


@check("list-page-token-page-size-free", area="feed", requirements=["PAGE-2", "PAGE-5"])
@node_check
async def list_page_token_page_size_free(ctx: Context) -> None:
    """A page token stays valid with another page_size: the listing goes on after the first
    page."""
    async with ctx.client() as client:
        live = live_records(await collection(ctx, client))
        first = await client.list_records_page(courses(ctx), 1, purpose=AUDIT)
        if not first.next_page_token:
            raise CheckSkipped(f"{courses(ctx)} holds a single record: no page token to test")
        rest = await list_all(client, courses(ctx), 3, first_token=first.next_page_token)
    listing = Listing([*first.records, *rest.records], [len(first.records), *rest.sizes])
    _expect_same_listing(ctx, listing, live, "page_size 1 then 3")


@check("list-page-token-not-a-cursor", area="feed", requirements=["PAGE-2", "FEED-2"])
@node_check
async def list_page_token_not_a_cursor(ctx: Context) -> None:
    """A page token is refused as a feed cursor, and a feed cursor as a page token."""
    async with ctx.client() as client:
        token = await _first_token(ctx, client)
        batches = await collection(ctx, client)
        cursor = batches[0].changes[0].cursor
        await expect_malformed(
            client.list_records_page(courses(ctx), 1, cursor, purpose=AUDIT),
            "page_token",
            "a feed cursor presented as a page token",
        )
        await expect_malformed(
            read_feed(client, courses(ctx), token),
            "cursor",
            "a page token presented as a feed cursor",
        )


def _decodings(token: str) -> list[bytes]:
    """What a token could carry in clear: its text, and its bytes if it is base64 (either
    alphabet, with or without padding), at every byte offset."""
    found = [token.encode()]
    padded = token + "=" * (-len(token) % 4)
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            found.append(decode(padded))
        except (binascii.Error, ValueError):
            continue
    return found


@check(
    "list-page-token-reveals-nothing-hidden",
    area="feed",
    requirements=["PAGE-2"],
    level="SHOULD",
)
@node_check
async def list_page_token_reveals_nothing_hidden(ctx: Context) -> None:
    """A page token names no record the caller was not shown (tokens are authenticated, not
    necessarily encrypted, so they may carry what the caller already saw)."""
    async with ctx.client() as client:
        live = live_records(await collection(ctx, client))
        page = await client.list_records_page(courses(ctx), 1, purpose=AUDIT)
    shown = {name_of(r) for r in page.records}
    hidden = set(live) - shown
    for data in _decodings(page.next_page_token):
        leaked = sorted(n for n in hidden if n.encode() in data)
        expect(not leaked, f"the page token carries names not yet listed: {leaked[:3]}")


@check("list-changed-since", area="feed", requirements=["PAGE-6"])
@node_check
async def list_changed_since(ctx: Context) -> None:
    """changed_since_sequence N keeps exactly the records whose latest feed position is N or
    more."""
    async with ctx.client() as client:
        batches = await collection(ctx, client)
        live = live_records(batches)
        position = {
            name_of(c.record): c.sequence for b in batches for c in b.changes
        }  # the latest position of each name
        ordered = sorted(position[n] for n in live)
        pivot = ordered[len(ordered) // 2]
        listing = await list_all(client, courses(ctx), 0, pivot)
        beyond = await list_all(client, courses(ctx), 0, max(position.values()) + 1)
    wanted = sorted((n for n in live if position[n] >= pivot), key=str.encode)
    expect(
        listing.names == wanted,
        f"changed_since_sequence {pivot}: listed {len(listing.names)} records, expected "
        f"{len(wanted)} (those at position {pivot} or later); first differences: "
        f"{sorted(set(listing.names) ^ set(wanted))[:5]}",
    )
    expect(
        not beyond.records,
        f"changed_since_sequence above every position listed {len(beyond.records)} records",
    )


@check("list-parent-rules", area="feed", requirements=["PAGE-1", "PAGE-7"])
@node_check
async def list_parent_rules(ctx: Context) -> None:
    """A parent that is no collection is MALFORMED on parent; another institution's collection
    is NOT_FOUND; the audience's profile collection lists."""
    async with ctx.client() as client:
        await expect_malformed(
            client.list_records_page("courses", purpose=AUDIT), "parent", "parent 'courses'"
        )
        other = f"institutions/{other_member(ctx)}/courses"
        error = await refused(
            client.list_records_page(other, purpose=AUDIT), f"a listing of {other}"
        )
        expect_reason(error, Reason.NOT_FOUND, f"a listing of {other}")
        await list_all(client, profile(ctx))


@check("list-same-for-every-member", area="feed", requirements=["REC-5", "PAGE-1"])
@node_check
async def list_same_for_every_member(ctx: Context) -> None:
    """Another member lists the same public catalogue, byte for byte."""
    if len(ctx.auditors) < 2:
        raise CheckSkipped("needs a second auditor institution")
    async with ctx.client() as client:
        mine = await list_all(client, courses(ctx))
    async with ctx.client(1) as client:
        theirs = await list_all(client, courses(ctx))
    expect(
        mine.records == theirs.records,
        f"{ctx.auditor(0).institution} listed {len(mine.records)} records and "
        f"{ctx.auditor(1).institution} {len(theirs.records)}, or they differ",
    )


# -- the change feed (FEED) --------------------------------------------------------------------


def _expect_whole_feed(batches: list[ChangeBatch], how: str) -> None:
    seq = sequences(batches)
    expect(all(s > 0 for s in seq), f"{how}: a change has feed position 0")
    expect(
        all(a < b for a, b in itertools.pairwise(seq)),
        f"{how}: positions do not grow strictly: {seq[:20]}",
    )
    expect(batches[-1].caught_up, f"{how}: the final page is not caught up")
    for batch in batches:
        expect(bool(batch.cursor), f"{how}: a page carries no cursor")
        for change in batch.changes:
            expect(bool(change.cursor), f"{how}: change {change.sequence} carries no cursor")
            deleted = record_header(change.record).deleted
            kind = ChangeKind.CHANGE_KIND_DELETE if deleted else ChangeKind.CHANGE_KIND_UPSERT
            expect(
                change.kind == kind,
                f"{how}: change {change.sequence} has kind {change.kind}, its record says {kind}",
            )


@check("feed-from-start", area="feed", requirements=["FEED-1", "FEED-3", "FEED-5", "FEED-7"])
@node_check
async def feed_from_start(ctx: Context) -> None:
    """A feed from an empty cursor gives every change once, in ascending position, its final
    page caught up, and agrees with the listing."""
    async with ctx.client() as client:
        batches = await collection(ctx, client)
        listing = await list_all(client, courses(ctx))
    _expect_whole_feed(batches, "the feed from the start")
    live = live_records(batches)
    expect(
        set(live) == set(listing.names),
        f"the feed's live records and the listing differ: "
        f"{sorted(set(live) ^ set(listing.names))[:5]}",
    )


@check("feed-page-size", area="feed", requirements=["FEED-6"])
@node_check
async def feed_page_size(ctx: Context) -> None:
    """Feed pages hold at most page_size changes; a huge page_size is lowered, a negative one is
    MALFORMED on page_size."""
    async with ctx.client() as client:
        whole = sequences(await collection(ctx, client))
        for size in page_sizes(len(whole)):
            batches = await read_feed(client, courses(ctx), page_size=size)
            largest = max(len(b.changes) for b in batches)
            expect(largest <= size, f"page_size {size}: a feed page held {largest} changes")
            expect(sequences(batches) == whole, f"page_size {size}: the feed differs")
        huge = await read_feed(client, courses(ctx), page_size=_HUGE)
        expect(sequences(huge) == whole, f"page_size {_HUGE}: the feed differs")
        limit = manifest_max_page_size(ctx)
        if limit is not None:
            largest = max(len(b.changes) for b in huge)
            expect(largest <= limit, f"a feed page held {largest} changes, above {limit}")
        await expect_malformed(
            read_feed(client, courses(ctx), page_size=-1),
            "page_size",
            "WatchChanges with page_size -1",
        )


async def _raw_feed(
    ctx: Context, body: WatchChangesBody, auditor: int = 0
) -> tuple[Envelope, list[Envelope], str]:
    request = ctx.request(WATCH_CHANGES, body, auditor=auditor, purpose=AUDIT)
    pages, end = await ctx.raw_stream(WATCH_CHANGES, request)
    return request, pages, end.code


@check("feed-pages-signed-and-chained", area="feed", requirements=["AUTH-16", "FEED-5", "FEED-7"])
@node_check
async def feed_pages_signed_and_chained(ctx: Context) -> None:
    """Each feed page is signed, bound to the request and chained to the page before; pages
    are numbered from 0; only the final, caught-up page is marked last; the stream ends OK."""
    async with ctx.client() as client:
        count = len(sequences(await collection(ctx, client)))
    size = max(1, math.ceil(count / 3))
    body = WatchChangesBody(parent=courses(ctx), page_size=size)
    request, pages, code = await _raw_feed(ctx, body)
    expect(code == "OK", f"the stream ended with {code}, not OK")
    expect(len(pages) >= 2, f"{count} changes in pages of {size} came in {len(pages)} page(s)")
    previous = b""
    for number, envelope in enumerate(pages):
        try:
            answer = verify_answer(
                envelope,
                ctx.keyring,
                request=request,
                responder=ctx.audience,
                previous_page_digest=previous,
            )
        except ProtocolError as exc:
            raise CheckFailed(f"page {number} does not verify: {exc.reason.value}: {exc}") from exc
        expect(answer.error is None, f"page {number} is a signed error: {answer.error}")
        page = answer.page
        expect(isinstance(page, SignedFeedPage), f"page {number} is not a feed page")
        assert page is not None
        expect(page.page_number == number, f"page {number} is numbered {page.page_number}")
        batch = ChangeBatch.FromString(answer.body)
        final = number == len(pages) - 1
        expect(page.last == final, f"page {number} of {len(pages)} has last={page.last}")
        expect(
            batch.caught_up == final,
            f"page {number} of {len(pages)} has caught_up={batch.caught_up} (FEED-7: the first "
            "caught-up page is the last)",
        )
        previous = digest_of(envelope)


@check("feed-resume-from-cursor", area="feed", requirements=["FEED-3"])
@node_check
async def feed_resume_from_cursor(ctx: Context) -> None:
    """Resuming from the cursor of a change, or of a page, gives exactly the changes after it:
    nothing lost, nothing repeated."""
    async with ctx.client() as client:
        batches = await collection(ctx, client)
        whole = sequences(batches)
        changes = [c for b in batches for c in b.changes]
        middle = changes[len(changes) // 2]
        rest = sequences(await read_feed(client, courses(ctx), middle.cursor))
        expected = [s for s in whole if s > middle.sequence]
        expect(
            rest == expected,
            f"from the cursor of change {middle.sequence}: got positions {rest[:10]}, expected "
            f"{expected[:10]}",
        )
        paged = await read_feed(client, courses(ctx), page_size=max(1, len(whole) // 3))
        after = paged[0].changes[-1].sequence if paged[0].changes else 0
        rest = sequences(await read_feed(client, courses(ctx), paged[0].cursor))
        expected = [s for s in whole if s > after]
        expect(
            rest == expected,
            f"from the first page's cursor: got positions {rest[:10]}, expected {expected[:10]}",
        )


@check("feed-resume-at-end", area="feed", requirements=["FEED-3", "FEED-5", "FEED-7"])
@node_check
async def feed_resume_at_end(ctx: Context) -> None:
    """Resuming from the final cursor gives one empty page, caught up and last, whose cursor
    resumes at the same place."""
    async with ctx.client() as client:
        batches = await collection(ctx, client)
        end = batches[-1].cursor
        again = await read_feed(client, courses(ctx), end)
        expect(
            len(again) == 1 and not again[0].changes and again[0].caught_up,
            f"from the final cursor: {len(again)} page(s) with {len(sequences(again))} changes",
        )
        expect(bool(again[0].cursor), "the empty page carries no cursor")
        once_more = await read_feed(client, courses(ctx), again[0].cursor)
        expect(not sequences(once_more), "the empty page's cursor does not stay at the end")


@check("feed-cursor-tampered", area="feed", requirements=["FEED-2", "FEED-9"])
@node_check
async def feed_cursor_tampered(ctx: Context) -> None:
    """A cursor altered in one character, or truncated, is refused with MALFORMED on cursor."""
    async with ctx.client() as client:
        batches = await collection(ctx, client)
        cursor = batches[0].changes[0].cursor
        variants = {
            "its first character changed": _altered(cursor, 0),
            "its middle character changed": _altered(cursor, len(cursor) // 2),
            "its last character dropped": cursor[:-1],
        }
        for how, bad in variants.items():
            if bad and bad != cursor:
                await expect_malformed(
                    read_feed(client, courses(ctx), bad), "cursor", f"a cursor with {how}"
                )


@check("feed-cursor-other-collection", area="feed", requirements=["FEED-2"])
@node_check
async def feed_cursor_other_collection(ctx: Context) -> None:
    """A cursor of one collection is refused for another (MALFORMED on cursor)."""
    async with ctx.client() as client:
        batches = await collection(ctx, client)
        await expect_malformed(
            read_feed(client, profile(ctx), batches[0].changes[0].cursor),
            "cursor",
            f"a cursor of {courses(ctx)} presented for {profile(ctx)}",
        )


@check("feed-cursor-other-caller", area="feed", requirements=["FEED-2"])
@node_check
async def feed_cursor_other_caller(ctx: Context) -> None:
    """A cursor presented by another caller is refused (MALFORMED on cursor)."""
    if len(ctx.auditors) < 2:
        raise CheckSkipped("needs a second auditor institution")
    async with ctx.client() as client:
        cursor = (await collection(ctx, client))[0].changes[0].cursor
    async with ctx.client(1) as other:
        await expect_malformed(
            read_feed(other, courses(ctx), cursor),
            "cursor",
            f"{ctx.auditor(0).institution}'s cursor presented by {ctx.auditor(1).institution}",
        )


@check("feed-parent-rules", area="feed", requirements=["FEED-1", "FEED-9"])
@node_check
async def feed_parent_rules(ctx: Context) -> None:
    """The feed of a parent that is no collection is MALFORMED on parent; of another
    institution's collection, NOT_FOUND."""
    async with ctx.client() as client:
        await expect_malformed(read_feed(client, "courses"), "parent", "the feed of 'courses'")
        other = f"institutions/{other_member(ctx)}/courses"
        error = await refused(read_feed(client, other), f"the feed of {other}")
        expect_reason(error, Reason.NOT_FOUND, f"the feed of {other}")


async def _follow_first_page(ctx: Context, seconds: float) -> tuple[Envelope, Envelope, float]:
    """A follow stream's first page as received, with its request and the seconds it took."""
    body = WatchChangesBody(parent=courses(ctx), follow=True)
    request = ctx.request(WATCH_CHANGES, body, purpose=AUDIT)
    started = time.monotonic()
    async with ctx.channel() as channel:
        call = channel.unary_stream(
            WATCH_CHANGES,
            request_serializer=WatchChangesRequest.SerializeToString,
            response_deserializer=WatchChangesResponse.FromString,
        )
        stream: grpc.aio.UnaryStreamCall[WatchChangesRequest, WatchChangesResponse] = call(
            WatchChangesRequest(request=request), timeout=seconds
        )
        try:
            async for message in stream:
                return request, message.page, time.monotonic() - started
        except grpc.RpcError as exc:
            raise CheckFailed(
                f"the follow stream ended with {exc.code().name} before its first page"
            ) from exc
        finally:
            stream.cancel()
    raise CheckFailed("the follow stream ended with OK and no page")


@check("feed-follow-first-page", area="feed", requirements=["FEED-8", "AUTH-16"])
@node_check
async def feed_follow_first_page(ctx: Context) -> None:
    """In follow mode the first page comes at once, verified and chained from nothing, and is
    not marked last; the stream stays open."""
    seconds = min(ctx.deadline, 5.0)
    request, envelope, took = await _follow_first_page(ctx, seconds)
    try:
        answer = verify_answer(
            envelope, ctx.keyring, request=request, responder=ctx.audience, previous_page_digest=b""
        )
    except ProtocolError as exc:
        raise CheckFailed(f"the first follow page does not verify: {exc}") from exc
    expect(answer.error is None, f"the follow stream answered with an error: {answer.error}")
    assert answer.page is not None
    expect(answer.page.page_number == 0, f"the first page is numbered {answer.page.page_number}")
    expect(not answer.page.last, "a page of a follow stream is marked last")
    expect(took < seconds, f"the first page took {took:.1f} s")


@check("feed-same-for-every-member", area="feed", requirements=["REC-5", "FEED-1"])
@node_check
async def feed_same_for_every_member(ctx: Context) -> None:
    """Another member reads the same feed of the public catalogue: the same positions and
    records."""
    if len(ctx.auditors) < 2:
        raise CheckSkipped("needs a second auditor institution")
    async with ctx.client() as client:
        mine = await collection(ctx, client)
    async with ctx.client(1) as client:
        theirs = await read_feed(client, courses(ctx))

    def content(batches: list[ChangeBatch]) -> list[tuple[int, bytes]]:
        return [(c.sequence, c.record.SerializeToString()) for b in batches for c in b.changes]

    expect(
        content(mine) == content(theirs),
        f"{ctx.auditor(0).institution} read {len(sequences(mine))} changes and "
        f"{ctx.auditor(1).institution} {len(sequences(theirs))}, or they differ",
    )
