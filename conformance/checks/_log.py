"""The access log: log indexes in answers, signed checkpoints, inclusion of the caller's own
calls, consistency, and what is not logged or not disclosed (spec LOG-*).

The checks verify checkpoints with a LOG key of the audience that the node's own delegation
vouches for (GetManifest's statements, accepted on a copy of the trusted key ring), and prove the
suite's own calls with the SDK core (``check_logged_call``, ``merkle.verify_*``), as a caller
does by LOG-9. Other callers may use the node meanwhile: the checks rely only on their own
sequential calls, their log indexes and checkpoints they asked for.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sseaun.sdk.client import AsyncNodeClient, Receipt
from sseaun.sdk.core import (
    Checkpoint,
    Envelope,
    ProtocolError,
    Reason,
    access_log,
    envelope_digest,
    merkle,
    parse_signed_note,
    verify_answer,
)
from sseaun.v1.access_log_pb2 import (
    AccessLogEntry,
    GetCheckpointBody,
    GetCheckpointResult,
    GetInclusionProofBody,
    GetInclusionProofResult,
)
from sseaun.v1.auth_pb2 import Purpose, SignedFeedPage, SignedResponse
from sseaun.v1.manifest_pb2 import KeyPurpose
from sseaun.v1.service_pb2 import GetManifestBody, WatchChangesBody

from .._context import Context, RawAnswer
from .._framework import CheckFailed, CheckSkipped, check, expect
from ._feed import (
    AUDIT,
    WATCH_CHANGES,
    courses,
    expect_reason,
    list_all,
    name_of,
    node_check,
    refused,
)

GET_MANIFEST = "/sseaun.v1.ManifestService/GetManifest"
GET_RECORD = "/sseaun.v1.RecordService/GetRecord"
LIST_RECORDS = "/sseaun.v1.RecordService/ListRecords"
GET_CHECKPOINT = "/sseaun.v1.AccessLogService/GetCheckpoint"
GET_INCLUSION_PROOF = "/sseaun.v1.AccessLogService/GetInclusionProof"
OPERATIONS = Purpose.PURPOSE_NETWORK_OPERATIONS
#: Far beyond any log a check meets.
_FAR = 10**12
_ROOT_LINE = re.compile(r"[A-Za-z0-9+/]{43}=")


# -- helpers -----------------------------------------------------------------------------------


async def log_keys(ctx: Context, client: AsyncNodeClient) -> list[bytes]:
    """The audience's LOG public keys: the trusted key ring plus the delegations the node serves
    (accepted on a copy; the context's ring is left as it is)."""
    cached = ctx.shared.get("log.keys")
    if isinstance(cached, list):
        return cached
    now = datetime.now(UTC)
    ring = copy.deepcopy(ctx.keyring)
    for statement in (await client.get_manifest()).statements:
        try:
            ring.accept_delegation(statement, now)
        except ProtocolError:
            continue  # not a delegation, or one the ring already has: the others still count
    keys = [k.public_key for k in ring.keys_for(ctx.audience, KeyPurpose.KEY_PURPOSE_LOG, now)]
    if not keys:
        raise CheckFailed(
            f"{ctx.audience} has no LOG key in force, in the manifest or in the delegations its "
            "node serves (GetManifest statements)"
        )
    ctx.shared["log.keys"] = keys
    return keys


def origin(ctx: Context) -> str:
    return access_log.log_origin(ctx.network_id, ctx.audience)


async def verified_checkpoint(
    ctx: Context, client: AsyncNodeClient, result: GetCheckpointResult
) -> Checkpoint:
    """The checkpoint of a GetCheckpoint result, verified with the audience's LOG key and
    origin (LOG-1, LOG-7)."""
    keys = await log_keys(ctx, client)
    try:
        note = parse_signed_note(result.checkpoint)
        return access_log.verify_log_checkpoint(note, origin(ctx), keys)
    except ProtocolError as exc:
        raise CheckFailed(
            f"the checkpoint does not verify for {origin(ctx)}: {exc.reason.value}: {exc}"
        ) from exc


def index_of(receipt: Receipt, what: str) -> int:
    expect(receipt.log_index is not None, f"the answer to {what} carries no log_index")
    assert receipt.log_index is not None
    return receipt.log_index


async def logged_manifest_call(client: AsyncNodeClient) -> Receipt:
    """One GetManifest call of the suite's, with its receipt."""
    receipt = Receipt()
    await client.get_manifest(receipt=receipt)
    index_of(receipt, "GetManifest")
    return receipt


async def covering(ctx: Context, client: AsyncNodeClient, index: int) -> Checkpoint:
    """A verified checkpoint whose tree holds entry index (min_size index + 1)."""
    checkpoint = await verified_checkpoint(
        ctx, client, await client.get_checkpoint(min_size=index + 1)
    )
    expect(
        checkpoint.size > index,
        f"GetCheckpoint(min_size={index + 1}) gave a checkpoint of size {checkpoint.size}",
    )
    return checkpoint


def proven_entry(
    checkpoint: Checkpoint,
    proof: GetInclusionProofResult,
    *,
    index: int,
    request: Envelope,
    caller: str,
    method: str,
) -> AccessLogEntry:
    """The caller's own entry at index, checked against the checkpoint by LOG-9."""
    expect(
        (proof.index, proof.tree_size) == (index, checkpoint.size),
        f"the proof is for index {proof.index} in a tree of {proof.tree_size}, asked for "
        f"{index} in {checkpoint.size}",
    )
    expect(bool(proof.entry), f"the caller's own entry {index} came without its bytes")
    try:
        return access_log.check_logged_call(
            checkpoint=checkpoint,
            index=index,
            entry=proof.entry,
            hashes=list(proof.hashes),
            request_digest=envelope_digest(request),
            caller=caller,
            method=method,
        )
    except ProtocolError as exc:
        raise CheckFailed(f"entry {index} does not prove the call: {exc}") from exc


def answer_header_of(raw: RawAnswer) -> tuple[Envelope, bool]:
    """The one signed envelope of a raw unary answer and whether it is an error."""
    if raw.answer is not None:
        return raw.answer, False
    expect(len(raw.errors) == 1, f"{raw.code} came with {len(raw.errors)} signed errors")
    return raw.errors[0], True


def verified(ctx: Context, raw: RawAnswer, request: Envelope, what: str) -> tuple[bool, int | None]:
    """Verify a raw unary answer by AUTH-17; (is an error, its log_index)."""
    envelope, _ = answer_header_of(raw)
    try:
        answer = verify_answer(envelope, ctx.keyring, request=request, responder=ctx.audience)
    except ProtocolError as exc:
        raise CheckFailed(f"{what}: the answer does not verify: {exc.reason.value}: {exc}") from exc
    return answer.error is not None, answer.log_index


# -- log indexes -------------------------------------------------------------------------------


@check("log-index-in-answers", area="log", requirements=["LOG-6", "AUTH-10", "LOG-5"])
@node_check
async def log_index_in_answers(ctx: Context) -> None:
    """Every answer to a logged call carries its log_index, responses and signed errors alike,
    and the suite's sequential calls get growing indexes."""
    indexes: list[tuple[str, int]] = []
    async with ctx.client() as client:
        receipt = Receipt()
        await client.get_manifest(receipt=receipt)
        indexes.append(("GetManifest", index_of(receipt, "GetManifest")))
        receipt = Receipt()
        page = await client.list_records_page(courses(ctx), 1, purpose=AUDIT, receipt=receipt)
        indexes.append(("ListRecords", index_of(receipt, "ListRecords")))
        if page.records:
            receipt = Receipt()
            await client.get_record(name_of(page.records[0]), purpose=AUDIT, receipt=receipt)
            indexes.append(("GetRecord", index_of(receipt, "GetRecord")))
        receipt = Receipt()
        await client.get_checkpoint(receipt=receipt)
        indexes.append(("GetCheckpoint", index_of(receipt, "GetCheckpoint")))
        missing = f"{courses(ctx)}/NO-SUCH-COURSE-{datetime.now(UTC):%H%M%S%f}"
        error = await refused(client.get_record(missing, purpose=AUDIT), f"GetRecord of {missing}")
        expect(
            error.log_index is not None,
            f"the signed {error.reason.value} of a GetRecord that passed authentication "
            "carries no log_index",
        )
        assert error.log_index is not None
        indexes.append(("a refused GetRecord", error.log_index))
    values = [i for _, i in indexes]
    expect(
        all(a < b for a, b in itertools.pairwise(values)),
        f"the log indexes of sequential calls do not grow: {indexes}",
    )


@check("log-index-on-feed-pages", area="log", requirements=["LOG-3", "LOG-6"])
@node_check
async def log_index_on_feed_pages(ctx: Context) -> None:
    """Each page of a feed carries the index of its own log entry."""
    body = WatchChangesBody(parent=courses(ctx), page_size=2)
    request = ctx.request(WATCH_CHANGES, body, purpose=AUDIT)
    pages, end = await ctx.raw_stream(WATCH_CHANGES, request)
    expect(end.ok and bool(pages), f"the feed ended with {end.code} after {len(pages)} pages")
    indexes = []
    for number, page in enumerate(pages):
        header = SignedFeedPage.FromString(page.payload).header
        expect(header.HasField("log_index"), f"feed page {number} carries no log_index")
        indexes.append(header.log_index)
    expect(
        all(a < b for a, b in itertools.pairwise(indexes)),
        f"the feed pages' log indexes are not distinct and growing: {indexes}",
    )


# -- checkpoints -------------------------------------------------------------------------------


@check("log-checkpoint-signed", area="log", requirements=["LOG-1", "LOG-7", "LOG-8"])
@node_check
async def log_checkpoint_signed(ctx: Context) -> None:
    """GetCheckpoint gives a C2SP checkpoint of the audience's log, signed by its LOG key, with
    no extension lines."""
    async with ctx.client() as client:
        result = await client.get_checkpoint()
        checkpoint = await verified_checkpoint(ctx, client, result)
    lines = parse_signed_note(result.checkpoint).body.decode().split("\n")
    expect(
        len(lines) == 4 and lines[3] == "",
        f"the checkpoint body has {len(lines) - 1} lines, not origin, size and root",
    )
    expect(lines[0] == origin(ctx), f"the origin line is {lines[0]!r}")
    expect(lines[1] == str(checkpoint.size), f"the size line {lines[1]!r} is not canonical")
    expect(bool(_ROOT_LINE.fullmatch(lines[2])), f"the root line {lines[2]!r} is not padded base64")


@check("log-checkpoint-min-size", area="log", requirements=["LOG-7", "LOG-8"])
@node_check
async def log_checkpoint_min_size(ctx: Context) -> None:
    """GetCheckpoint with min_size i + 1 gives a checkpoint covering the caller's entry i."""
    async with ctx.client() as client:
        receipt = await logged_manifest_call(client)
        index = index_of(receipt, "GetManifest")
        newest = await verified_checkpoint(ctx, client, await client.get_checkpoint())
        fresh = await covering(ctx, client, index)
    expect(
        fresh.size >= newest.size,
        f"a checkpoint of size {fresh.size} came after one of size {newest.size}",
    )


# -- inclusion ---------------------------------------------------------------------------------


@check("log-inclusion-own-call", area="log", requirements=["LOG-2", "LOG-8", "LOG-9"])
@node_check
async def log_inclusion_own_call(ctx: Context) -> None:
    """The inclusion proof of the suite's own call verifies, and its entry records that call:
    origin, caller, method, purpose, outcome and request digest."""
    async with ctx.client() as client:
        page = await client.list_records_page(courses(ctx), 1, purpose=AUDIT)
        if not page.records:
            raise CheckSkipped(f"{courses(ctx)} is empty: import a few courses")
        receipt = Receipt()
        await client.get_record(name_of(page.records[0]), purpose=AUDIT, receipt=receipt)
        index = index_of(receipt, "GetRecord")
        checkpoint = await covering(ctx, client, index)
        proof = await client.get_inclusion_proof(index, checkpoint.size)
    assert receipt.request is not None
    expect(
        proof.leaf_hash == merkle.leaf_hash(proof.entry),
        "leaf_hash is not SHA-256(0x00 ‖ entry)",
    )
    entry = proven_entry(
        checkpoint,
        proof,
        index=index,
        request=receipt.request,
        caller=ctx.auditor(0).institution,
        method=GET_RECORD,
    )
    expect(entry.purpose == AUDIT, f"the entry's purpose is {entry.purpose}, the call's {AUDIT}")
    expect(entry.outcome == "OK", f"the entry's outcome is {entry.outcome!r}, not 'OK'")
    expect(
        len(entry.record_commitments) == 1,
        f"the entry of one GetRecord holds {len(entry.record_commitments)} commitments",
    )


@check("log-entry-no-record-names", area="log", requirements=["LOG-2", "LOG-4"])
@node_check
async def log_entry_no_record_names(ctx: Context) -> None:
    """An entry names records only by 32-byte commitments, never by name."""
    async with ctx.client() as client:
        receipt = Receipt()
        listing = await list_all(client, courses(ctx))
        if not listing.records:
            raise CheckSkipped(f"{courses(ctx)} is empty: import a few courses")
        names = listing.names[:3]
        await client.list_records_page(courses(ctx), 3, purpose=AUDIT, receipt=receipt)
        index = index_of(receipt, "ListRecords")
        checkpoint = await covering(ctx, client, index)
        proof = await client.get_inclusion_proof(index, checkpoint.size)
    assert receipt.request is not None
    entry = proven_entry(
        checkpoint,
        proof,
        index=index,
        request=receipt.request,
        caller=ctx.auditor(0).institution,
        method=LIST_RECORDS,
    )
    expect(
        len(entry.record_commitments) == len(names),
        f"the entry of a page of {len(names)} records holds {len(entry.record_commitments)} "
        "commitments",
    )
    expect(
        all(len(c) == 32 for c in entry.record_commitments),
        "a record commitment is not 32 bytes (HMAC-SHA256)",
    )
    # The whole name, or its last segment when long enough not to match hash bytes by chance.
    pieces = {n: [n, *[p for p in [n.rsplit("/", 1)[-1]] if len(p) >= 6]] for n in names}
    shown = [n for n, texts in pieces.items() if any(t.encode() in proof.entry for t in texts)]
    expect(not shown, f"the entry's bytes contain record names: {shown}")


@check("log-refused-call-logged", area="log", requirements=["LOG-3", "LOG-9"])
@node_check
async def log_refused_call_logged(ctx: Context) -> None:
    """A call refused after authentication (NOT_FOUND) is logged with its outcome, and the
    caller can prove it."""
    missing = f"{courses(ctx)}/NO-SUCH-COURSE-{datetime.now(UTC):%H%M%S%f}"
    receipt = Receipt()
    async with ctx.client() as client:
        error = await refused(
            client.get_record(missing, purpose=AUDIT, receipt=receipt), f"GetRecord of {missing}"
        )
        expect_reason(error, Reason.NOT_FOUND, f"GetRecord of {missing}")
        index = index_of(receipt, f"the refused GetRecord of {missing}")
        checkpoint = await covering(ctx, client, index)
        proof = await client.get_inclusion_proof(index, checkpoint.size)
    assert receipt.request is not None
    entry = proven_entry(
        checkpoint,
        proof,
        index=index,
        request=receipt.request,
        caller=ctx.auditor(0).institution,
        method=GET_RECORD,
    )
    expect(entry.outcome == "NOT_FOUND", f"the entry's outcome is {entry.outcome!r}")
    expect(
        len(entry.record_commitments) == 1,
        "the entry of a refused GetRecord does not commit to the name asked for",
    )


@check("log-entry-not-disclosed", area="log", requirements=["LOG-8"])
@node_check
async def log_entry_not_disclosed(ctx: Context) -> None:
    """Another caller gets the audit path of an entry but not the entry's bytes; the path still
    verifies."""
    if len(ctx.auditors) < 2:
        raise CheckSkipped("needs a second auditor institution")
    async with ctx.client() as client:
        index = index_of(await logged_manifest_call(client), "GetManifest")
        checkpoint = await covering(ctx, client, index)
    async with ctx.client(1) as other:
        proof = await other.get_inclusion_proof(index, checkpoint.size)
    expect(
        not proof.entry,
        f"{ctx.auditor(1).institution} was shown {ctx.auditor(0).institution}'s entry {index}",
    )
    try:
        merkle.verify_inclusion(
            index, checkpoint.size, proof.leaf_hash, list(proof.hashes), checkpoint.root
        )
    except ProtocolError as exc:
        raise CheckFailed(f"the audit path given to another caller does not verify: {exc}") from exc


# -- consistency and ranges --------------------------------------------------------------------


@check("log-consistency", area="log", requirements=["LOG-5", "LOG-8"])
@node_check
async def log_consistency(ctx: Context) -> None:
    """The consistency proof between two checkpoints verifies, and is empty for equal sizes."""
    async with ctx.client() as client:
        first = await covering(ctx, client, index_of(await logged_manifest_call(client), "call"))
        later = index_of(await logged_manifest_call(client), "GetManifest")
        second = await covering(ctx, client, later)
        expect(
            second.size > first.size,
            f"a checkpoint covering entry {later} has size {second.size}, not above {first.size}",
        )
        proof = await client.get_consistency_proof(first.size, second.size)
        same = await client.get_consistency_proof(second.size, second.size)
    expect(
        (proof.old_size, proof.new_size) == (first.size, second.size),
        f"the proof is for sizes {proof.old_size}, {proof.new_size}",
    )
    try:
        merkle.verify_consistency(
            first.size, second.size, first.root, second.root, list(proof.hashes)
        )
    except ProtocolError as exc:
        raise CheckFailed(
            f"the consistency proof from {first.size} to {second.size} does not verify: {exc}"
        ) from exc
    expect(not same.hashes, f"the proof between equal sizes holds {len(same.hashes)} hashes")


@check("log-out-of-range", area="log", requirements=["LOG-8", "ERR-3"])
@node_check
async def log_out_of_range(ctx: Context) -> None:
    """Sizes and indexes outside the log are OUT_OF_RANGE (status OUT_OF_RANGE) with metadata
    naming the value."""
    async with ctx.client() as client:
        size = (
            await covering(ctx, client, index_of(await logged_manifest_call(client), "call"))
        ).size
        cases: dict[str, tuple[Callable[[], Awaitable[object]], str]] = {
            f"GetCheckpoint(min_size={_FAR})": (
                lambda: client.get_checkpoint(min_size=_FAR),
                "min-size",
            ),
            f"GetInclusionProof(0, {_FAR})": (
                lambda: client.get_inclusion_proof(0, _FAR),
                "tree-size",
            ),
            f"GetInclusionProof({size}, {size})": (
                lambda: client.get_inclusion_proof(size, size),
                "index",
            ),
            f"GetConsistencyProof(1, {_FAR})": (
                lambda: client.get_consistency_proof(1, _FAR),
                "new-size",
            ),
            f"GetConsistencyProof(0, {size})": (
                lambda: client.get_consistency_proof(0, size),
                "old-size",
            ),
        }
        for what, (call, key) in cases.items():
            error = await refused(call(), what)
            expect_reason(error, Reason.OUT_OF_RANGE, what)
            expect(
                key in error.metadata,
                f"{what}: the metadata {dict(error.metadata)} does not name {key!r}",
            )


# -- what is not logged ------------------------------------------------------------------------


def _badly_signed(ctx: Context) -> Envelope:
    request = ctx.request(GET_MANIFEST, GetManifestBody(), purpose=OPERATIONS)
    signature = bytearray(request.signatures[0].sig)
    signature[0] ^= 0x01
    request.signatures[0].sig = bytes(signature)
    return request


async def _unlogged(ctx: Context, request: Envelope, reason: Reason, what: str) -> bytes:
    """Send a request the node must refuse before logging; check the signed refusal has the
    reason and no log_index; return the digest a logged entry of it would carry."""
    raw = await ctx.raw(GET_MANIFEST, request)
    expect(not raw.ok, f"{what} was accepted")
    envelope, _ = answer_header_of(raw)
    try:
        answer = verify_answer(envelope, ctx.keyring, request=request, responder=ctx.audience)
    except ProtocolError as exc:
        raise CheckFailed(f"{what}: the refusal does not verify: {exc.reason.value}") from exc
    expect(answer.error is not None, f"{what}: the signed answer is not an error")
    assert answer.error is not None
    expect(
        answer.error.reason is reason,
        f"{what}: refused with {answer.error.reason.value}, expected {reason.value}",
    )
    expect(
        answer.log_index is None,
        f"{what}: the refusal carries log_index {answer.log_index}: the call was logged",
    )
    return envelope_digest(request)


@check("log-unauthenticated-not-logged", area="log", requirements=["LOG-3", "LOG-6"])
@node_check
async def log_unauthenticated_not_logged(ctx: Context) -> None:
    """Calls refused by authentication (a bad signature, a replayed nonce) are not logged: their
    refusals carry no log_index and no entry of the caller's appears for them."""
    async with ctx.client() as client:
        before = index_of(await logged_manifest_call(client), "GetManifest")
        bad = await _unlogged(
            ctx, _badly_signed(ctx), Reason.SIGNATURE_INVALID, "a badly signed GetManifest"
        )
        request = ctx.request(GET_MANIFEST, GetManifestBody(), purpose=OPERATIONS)
        first = await ctx.raw(GET_MANIFEST, request)
        _, replayed_index = verified(ctx, first, request, "GetManifest")
        expect(replayed_index is not None, "an accepted GetManifest carries no log_index")
        assert replayed_index is not None
        replay = await _unlogged(
            ctx, request, Reason.REPLAYED_NONCE, "a GetManifest sent again (same nonce)"
        )
        after = index_of(await logged_manifest_call(client), "GetManifest")
        expect(
            before < replayed_index < after,
            f"log indexes {before}, {replayed_index}, {after} of sequential calls do not grow",
        )
        between = [i for i in range(before + 1, after) if i != replayed_index]
        if not between:
            return
        checkpoint = await covering(ctx, client, after)
        for index in between[:50]:  # others' calls; ours would be disclosed to us
            proof = await client.get_inclusion_proof(index, checkpoint.size)
            if not proof.entry:
                continue
            entry = AccessLogEntry.FromString(proof.entry)
            expect(
                entry.request_digest not in (bad, replay),
                f"entry {index} logs a call refused by authentication ({entry.outcome})",
            )


# -- the log service's own answers -------------------------------------------------------------


@check(
    "log-answers-signed-and-bound",
    area="log",
    requirements=["LOG-8", "AUTH-13", "AUTH-14", "AUTH-15"],
)
@node_check
async def log_answers_signed_and_bound(ctx: Context) -> None:
    """Answers of the log service, results and errors, are signed by the audience, bound to the
    request, and carry the log index of the call itself."""
    request = ctx.request(GET_CHECKPOINT, GetCheckpointBody(), purpose=OPERATIONS)
    raw = await ctx.raw(GET_CHECKPOINT, request)
    expect(raw.ok, f"GetCheckpoint ended with {raw.code}: {raw.message}")
    is_error, index = verified(ctx, raw, request, "GetCheckpoint")
    expect(not is_error and index is not None, "the GetCheckpoint answer carries no log_index")
    assert raw.answer is not None
    GetCheckpointResult.FromString(SignedResponse.FromString(raw.answer.payload).body)
    body = GetInclusionProofBody(index=_FAR, tree_size=_FAR + 1)
    request = ctx.request(GET_INCLUSION_PROOF, body, purpose=OPERATIONS)
    raw = await ctx.raw(GET_INCLUSION_PROOF, request)
    expect(raw.code == "OUT_OF_RANGE", f"GetInclusionProof beyond the log gave {raw.code}")
    is_error, index = verified(ctx, raw, request, "GetInclusionProof beyond the log")
    expect(is_error, "GetInclusionProof beyond the log: the signed answer is not an error")
    expect(index is not None, "the signed OUT_OF_RANGE of an authenticated call has no log_index")


@check("log-service-purposes", area="log", requirements=["LOG-8", "AUTH-12"])
@node_check
async def log_service_purposes(ctx: Context) -> None:
    """The log service takes NETWORK_OPERATIONS and AUDIT and refuses other purposes with
    PURPOSE_NOT_ALLOWED."""
    async with ctx.client() as client:
        for purpose in (OPERATIONS, AUDIT):
            await client.get_checkpoint(purpose=purpose)
        what = "GetCheckpoint with purpose MOBILITY_ADMINISTRATION"
        error = await refused(
            client.get_checkpoint(purpose=Purpose.PURPOSE_MOBILITY_ADMINISTRATION), what
        )
        expect_reason(error, Reason.PURPOSE_NOT_ALLOWED, what)


@check("log-service-calls-logged", area="log", requirements=["LOG-3", "LOG-8"])
@node_check
async def log_service_calls_logged(ctx: Context) -> None:
    """Calls of the log service are logged too, with no record commitments."""
    async with ctx.client() as client:
        receipt = Receipt()
        await client.get_checkpoint(receipt=receipt)
        index = index_of(receipt, "GetCheckpoint")
        checkpoint = await covering(ctx, client, index)
        proof = await client.get_inclusion_proof(index, checkpoint.size)
    assert receipt.request is not None
    entry = proven_entry(
        checkpoint,
        proof,
        index=index,
        request=receipt.request,
        caller=ctx.auditor(0).institution,
        method=GET_CHECKPOINT,
    )
    expect(
        not entry.record_commitments,
        f"the entry of GetCheckpoint holds {len(entry.record_commitments)} commitments",
    )
