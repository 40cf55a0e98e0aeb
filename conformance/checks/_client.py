"""Client behaviour: the SDK shipped with the suite against a misbehaving server (spec AUTH-14,
AUTH-16, AUTH-17, FEED-10, PAGE-4).

Playing a misbehaving server (conformance/_fake_server.py, on 127.0.0.1 in this process, one
misbehaviour at a time), these checks show that the SDK's client (AsyncNodeClient) refuses
forged, altered, unbound, replayed and misattributed answers, truncated and broken feed chains,
and error statuses it cannot verify, each with the reason AUTH-17 gives. They test the SDK, not
the node under test, which they never call: an integrator relying on the SDK gets these
refusals, and one writing another client can compare its own behaviour with them.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from contextlib import aclosing, asynccontextmanager
from typing import cast

from sseaun.sdk.client import (
    AnswerVerificationError,
    AsyncNodeClient,
    ClientConfig,
    ClientError,
    NodeError,
    RetryPolicy,
    TransportError,
)
from sseaun.sdk.core import Reason
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.service_pb2 import ChangeBatch

from .._context import Context
from .._fake_server import CALLER_INSTITUTION, NETWORK, FakeNode, Misbehaviour
from .._framework import CheckFailed, check, expect

_PURPOSE = Purpose.PURPOSE_AUDIT
#: Retries quick enough for a check, so that a refusal retried by mistake still shows.
_RETRIES = RetryPolicy(max_attempts=2, base_backoff=0.01, max_backoff=0.05)


@asynccontextmanager
async def serving(
    misbehaviour: Misbehaviour, *, follow_seconds: float = 5.0
) -> AsyncIterator[tuple[FakeNode, AsyncNodeClient]]:
    """A fake server with one misbehaviour, and an SDK client calling it as its caller."""
    node = FakeNode.create(misbehaviour=misbehaviour)
    await node.start()
    config = ClientConfig(
        network_id=NETWORK,
        sender=CALLER_INSTITUTION,
        signer=node.network.by_id(CALLER_INSTITUTION).transport,
        plaintext=True,
        deadline=follow_seconds,
        retry=_RETRIES,
    )
    try:
        async with AsyncNodeClient(config, node.keyring, node.target, node.institution) as client:
            yield node, client
    finally:
        await node.stop()


def course(node: FakeNode, number: int = 1) -> str:
    return f"{node.collection}/c{number}"


async def feed(
    client: AsyncNodeClient, parent: str, *, page_size: int = 2, follow: bool = False
) -> list[ChangeBatch]:
    stream = cast(
        "AsyncGenerator[ChangeBatch, None]",
        client.watch_changes(parent, page_size=page_size, follow=follow, purpose=_PURPOSE),
    )
    async with aclosing(stream):
        return [batch async for batch in stream]


async def listing(client: AsyncNodeClient, parent: str, page_size: int = 2) -> int:
    return len([r async for r in client.list_records(parent, page_size, purpose=_PURPOSE)])


async def expect_refused(call: Awaitable[object], reason: Reason, what: str) -> None:
    """The SDK refuses what call gets with AnswerVerificationError of reason (unsigned, with
    the reason's status code)."""
    try:
        await call
    except AnswerVerificationError as exc:
        expect(
            exc.reason is reason,
            f"{what}: the SDK refused with {exc.reason.value}, expected {reason.value}",
        )
        expect(
            not exc.signed and exc.code == reason.status_code,
            f"{what}: the refusal says signed={exc.signed}, code {exc.code}",
        )
        return
    except ClientError as exc:
        raise CheckFailed(
            f"{what}: the SDK raised {type(exc).__name__} ({exc}), expected a refusal with "
            f"{reason.value}"
        ) from exc
    raise CheckFailed(f"the SDK accepted {what}")


async def expect_transport_error(
    call: Awaitable[object], what: str, rejection: Reason | None
) -> TransportError:
    """The SDK reports what call gets as an unsigned transport failure, never as the node's
    word; rejection is the reason it gives for the signed error detail it could not verify."""
    try:
        await call
    except TransportError as exc:
        expect(not exc.signed, f"{what}: the transport error claims to be signed")
        found = exc.rejection.reason if exc.rejection is not None else None
        expect(
            found is rejection,
            f"{what}: the signed detail was rejected with {found}, expected {rejection}",
        )
        return exc
    except NodeError as exc:
        raise CheckFailed(
            f"{what}: the SDK took it for the node's signed {exc.reason.value}"
        ) from exc
    except ClientError as exc:
        raise CheckFailed(f"{what}: the SDK raised {type(exc).__name__}: {exc}") from exc
    raise CheckFailed(f"the SDK accepted {what}")


# -- the control -------------------------------------------------------------------------------


@check("client-accepts-a-correct-server", area="client", requirements=["AUTH-17", "FEED-10"])
async def client_accepts_a_correct_server(ctx: Context) -> None:
    """The SDK accepts a correct server's answers, feed and signed errors (the control of the
    refusals below)."""
    async with serving(Misbehaviour.CORRECT) as (node, client):
        manifest = await client.get_manifest()
        expect(manifest.manifest == node.manifest, "the manifest came back changed")
        record = await client.get_record(course(node), purpose=_PURPOSE)
        expect(record.record == node.records[0], "the record came back changed")
        count = await listing(client, node.collection)
        expect(count == len(node.records), f"the listing gave {count} records")
        batches = await feed(client, node.collection)
        changes = sum(len(b.changes) for b in batches)
        expect(changes == len(node.records), f"the feed gave {changes} changes")
        try:
            await client.get_record(course(node, 99), purpose=_PURPOSE)
        except NodeError as exc:
            expect(exc.reason is Reason.NOT_FOUND, f"a signed NOT_FOUND came as {exc.reason}")
        else:
            raise CheckFailed("a missing record was returned")


# -- answers that do not verify ----------------------------------------------------------------


async def _refused_everywhere(misbehaviour: Misbehaviour, reason: Reason, what: str) -> None:
    """A unary answer and a feed from a server with misbehaviour are refused with reason."""
    async with serving(misbehaviour) as (node, client):
        await expect_refused(
            client.get_record(course(node), purpose=_PURPOSE), reason, f"a GetRecord answer {what}"
        )
        await expect_refused(feed(client, node.collection), reason, f"a feed {what}")


@check("client-refuses-forged-answers", area="client", requirements=["AUTH-17", "KEY-5"])
async def client_refuses_forged_answers(ctx: Context) -> None:
    """Answers signed by a key outside the manifest are refused (KEY_UNKNOWN)."""
    await _refused_everywhere(
        Misbehaviour.FORGED_SIGNATURE, Reason.KEY_UNKNOWN, "signed by an unknown key"
    )


@check("client-refuses-altered-answers", area="client", requirements=["AUTH-17", "ENV-6"])
async def client_refuses_altered_answers(ctx: Context) -> None:
    """Answers altered after signing are refused (SIGNATURE_INVALID)."""
    await _refused_everywhere(
        Misbehaviour.TAMPERED, Reason.SIGNATURE_INVALID, "altered after it was signed"
    )


@check("client-refuses-another-members-key", area="client", requirements=["AUTH-17", "KEY-5"])
async def client_refuses_another_members_key(ctx: Context) -> None:
    """Answers naming the node but signed by another member's transport key are refused
    (SIGNER_MISMATCH)."""
    await _refused_everywhere(
        Misbehaviour.OTHER_MEMBER_KEY, Reason.SIGNER_MISMATCH, "signed by another member's key"
    )


@check("client-refuses-another-responder", area="client", requirements=["AUTH-17"])
async def client_refuses_another_responder(ctx: Context) -> None:
    """Answers genuinely signed by another member, as responder, are refused (SIGNER_MISMATCH:
    the responder is not the institution called)."""
    await _refused_everywhere(
        Misbehaviour.OTHER_RESPONDER, Reason.SIGNER_MISMATCH, "answered by another member"
    )


@check("client-refuses-unbound-answers", area="client", requirements=["AUTH-14", "AUTH-17"])
async def client_refuses_unbound_answers(ctx: Context) -> None:
    """Answers bound to another request's digest are refused (RESPONSE_UNBOUND)."""
    await _refused_everywhere(
        Misbehaviour.UNBOUND, Reason.RESPONSE_UNBOUND, "bound to another request"
    )


@check("client-refuses-answers-for-another-method", area="client", requirements=["AUTH-17"])
async def client_refuses_answers_for_another_method(ctx: Context) -> None:
    """Answers bound to the request but naming another method are refused (RESPONSE_UNBOUND)."""
    await _refused_everywhere(
        Misbehaviour.WRONG_METHOD, Reason.RESPONSE_UNBOUND, "naming another method"
    )


@check("client-refuses-replayed-answers", area="client", requirements=["AUTH-14", "AUTH-17"])
async def client_refuses_replayed_answers(ctx: Context) -> None:
    """A genuine answer to an earlier request, replayed, is refused (RESPONSE_UNBOUND)."""
    async with serving(Misbehaviour.REPLAYED) as (node, client):
        await client.get_record(course(node, 1), purpose=_PURPOSE)  # answered, then replayed
        await expect_refused(
            client.get_record(course(node, 2), purpose=_PURPOSE),
            Reason.RESPONSE_UNBOUND,
            "the answer to an earlier GetRecord, replayed",
        )


@check("client-refuses-the-wrong-kind-of-answer", area="client", requirements=["AUTH-17"])
async def client_refuses_the_wrong_kind_of_answer(ctx: Context) -> None:
    """A feed page answering a unary call, and responses in a feed, are refused
    (PAYLOAD_TYPE_UNSUPPORTED)."""
    async with serving(Misbehaviour.FEED_PAGE_AS_RESPONSE) as (node, client):
        await expect_refused(
            client.get_record(course(node), purpose=_PURPOSE),
            Reason.PAYLOAD_TYPE_UNSUPPORTED,
            "a feed page answering GetRecord",
        )
    async with serving(Misbehaviour.RESPONSE_AS_FEED_PAGE) as (node, client):
        await expect_refused(
            feed(client, node.collection),
            Reason.PAYLOAD_TYPE_UNSUPPORTED,
            "a response in place of a feed page",
        )


# -- feed chains -------------------------------------------------------------------------------


@check(
    "client-refuses-truncated-feeds", area="client", requirements=["AUTH-16", "AUTH-17", "FEED-10"]
)
async def client_refuses_truncated_feeds(ctx: Context) -> None:
    """A feed that ends without its last page is refused (FEED_CHAIN_BROKEN), after the pages
    that verified were delivered."""
    async with serving(Misbehaviour.TRUNCATED_FEED) as (node, client):
        delivered: list[ChangeBatch] = []

        async def read() -> None:
            stream = cast(
                "AsyncGenerator[ChangeBatch, None]",
                client.watch_changes(node.collection, page_size=2, purpose=_PURPOSE),
            )
            async with aclosing(stream):
                async for batch in stream:
                    delivered.append(batch)

        await expect_refused(read(), Reason.FEED_CHAIN_BROKEN, "a feed cut before its last page")
        expect(
            len(delivered) == 2,
            f"{len(delivered)} pages were delivered before the cut, not the 2 that verified",
        )


@check("client-refuses-broken-chains", area="client", requirements=["AUTH-16", "FEED-10"])
async def client_refuses_broken_chains(ctx: Context) -> None:
    """A feed missing a page in the middle is refused (FEED_CHAIN_BROKEN)."""
    async with serving(Misbehaviour.BROKEN_CHAIN) as (node, client):
        await expect_refused(
            feed(client, node.collection), Reason.FEED_CHAIN_BROKEN, "a feed missing a page"
        )


@check("client-refuses-reordered-chains", area="client", requirements=["AUTH-16", "FEED-10"])
async def client_refuses_reordered_chains(ctx: Context) -> None:
    """A feed whose pages come out of order is refused (FEED_CHAIN_BROKEN)."""
    async with serving(Misbehaviour.REORDERED_CHAIN) as (node, client):
        await expect_refused(
            feed(client, node.collection),
            Reason.FEED_CHAIN_BROKEN,
            "a feed with two pages swapped",
        )


@check("client-refuses-misnumbered-pages", area="client", requirements=["AUTH-17", "FEED-10"])
async def client_refuses_misnumbered_pages(ctx: Context) -> None:
    """A feed whose pages chain but are not numbered from 0 is refused (FEED_CHAIN_BROKEN)."""
    async with serving(Misbehaviour.WRONG_PAGE_NUMBER) as (node, client):
        await expect_refused(
            feed(client, node.collection),
            Reason.FEED_CHAIN_BROKEN,
            "a feed numbered from 1",
        )


@check("client-refuses-empty-feeds", area="client", requirements=["FEED-10"])
async def client_refuses_empty_feeds(ctx: Context) -> None:
    """A feed stream that ends OK with no page is refused (FEED_CHAIN_BROKEN), with or without
    follow."""
    async with serving(Misbehaviour.EMPTY_FEED) as (node, client):
        await expect_refused(
            feed(client, node.collection), Reason.FEED_CHAIN_BROKEN, "a feed with no page"
        )
        await expect_refused(
            feed(client, node.collection, follow=True),
            Reason.FEED_CHAIN_BROKEN,
            "a follow stream that ends OK with no page",
        )


# -- errors that are not the node's ------------------------------------------------------------


@check("client-unsigned-errors-are-transport-failures", area="client", requirements=["AUTH-17"])
async def client_unsigned_errors_are_transport_failures(ctx: Context) -> None:
    """An error status without a signed error is a transport failure, never the node's
    NOT_FOUND."""
    async with serving(Misbehaviour.UNSIGNED_ERROR) as (node, client):
        error = await expect_transport_error(
            client.get_record(course(node), purpose=_PURPOSE), "an unsigned NOT_FOUND", None
        )
        expect(not isinstance(error, NodeError), "the unsigned status became a NodeError")


@check("client-forged-errors-are-transport-failures", area="client", requirements=["AUTH-17"])
async def client_forged_errors_are_transport_failures(ctx: Context) -> None:
    """An error status whose signed error is signed by an unknown key is a transport failure
    (its detail rejected with KEY_UNKNOWN)."""
    async with serving(Misbehaviour.FORGED_ERROR) as (node, client):
        await expect_transport_error(
            client.get_record(course(node), purpose=_PURPOSE),
            "a NOT_FOUND signed by an unknown key",
            Reason.KEY_UNKNOWN,
        )


@check(
    "client-replayed-errors-are-transport-failures",
    area="client",
    requirements=["AUTH-14", "AUTH-17"],
)
async def client_replayed_errors_are_transport_failures(ctx: Context) -> None:
    """A genuine signed error for another request, replayed, is a transport failure (its detail
    rejected with RESPONSE_UNBOUND)."""
    async with serving(Misbehaviour.REPLAYED_ERROR) as (node, client):
        with contextlib.suppress(NodeError):  # a genuine refusal, which the server keeps
            await client.get_record(course(node, 99), purpose=_PURPOSE)
        await expect_transport_error(
            client.get_record(course(node, 1), purpose=_PURPOSE),
            "another request's signed NOT_FOUND, replayed",
            Reason.RESPONSE_UNBOUND,
        )


# -- listings ----------------------------------------------------------------------------------


@check("client-refuses-stalled-listings", area="client", requirements=["PAGE-4"], level="SHOULD")
async def client_refuses_stalled_listings(ctx: Context) -> None:
    """A listing whose next page token equals the one sent (it would never end) is refused
    (MALFORMED)."""
    async with serving(Misbehaviour.STALLED_TOKEN) as (node, client):
        await expect_refused(
            listing(client, node.collection),
            Reason.MALFORMED,
            "a listing handing back the page token it was sent",
        )
