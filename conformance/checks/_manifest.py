"""Network manifest (MAN): the manifest the node trusts, served over gRPC and HTTP, and the
signed statements beside it."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

from google.protobuf.message import DecodeError

from sseaun.sdk.core import (
    Envelope,
    KeyRing,
    ManifestTrust,
    ProtocolError,
    Reason,
    TrustedManifest,
    envelope_digest,
    envelope_from_json,
    parse_manifest,
    payload_types,
)
from sseaun.v1 import service_pb2 as svc
from sseaun.v1.manifest_pb2 import Delegation

from .._context import Context
from .._framework import CheckFailed, CheckSkipped, check, expect
from ._support import (
    GET_MANIFEST,
    GET_RECORD,
    accepted,
    get_manifest,
    get_record,
    header_problems,
    http_fetch,
    missing_name,
    parse_result,
    refusal,
    same_envelope,
)

AREA = "manifest"
MANIFEST_PATH = "/.well-known/sseaun/manifest"
STATEMENTS_PATH = "/.well-known/sseaun/statements"
#: Far beyond any version a network reaches; a node holds no such version.
_UNHELD_VERSION = 10**12
#: How long the adoption check waits for the node to serve the next version.
_ADOPTION_SECONDS = 20.0


async def _get_manifest(ctx: Context, version: int = 0) -> svc.GetManifestResult:
    """GetManifest's verified result."""
    answer = await accepted(
        ctx, GET_MANIFEST, get_manifest(ctx, version), what=f"GetManifest version {version}"
    )
    result: svc.GetManifestResult = parse_result(
        answer, svc.GetManifestResult, f"GetManifest version {version}"
    )
    return result


async def _trusted(ctx: Context, served: Envelope) -> TrustedManifest:
    """Step the auditor's trust from its manifest to the one served, fetching the versions
    between from the node (MAN-12), and return it as trusted.

    Raises:
        CheckFailed: the served manifest does not verify under the auditor's.
    """
    trust = ManifestTrust.bootstrap(ctx.manifest, None)
    mine = trust.current.version
    try:
        offered = parse_manifest(served.payload).version  # read only to choose the steps
    except ProtocolError as exc:
        raise CheckFailed(f"the served manifest does not parse: {exc.message}") from exc
    if offered < mine:
        raise CheckFailed(
            f"the node serves manifest version {offered} as its newest; the auditor trusts "
            f"version {mine} (MAN-18: a node catches up)"
        )
    try:
        for version in range(mine + 1, offered):
            between = (await _get_manifest(ctx, version)).manifest
            trust.update(between)
        return trust.update(served)
    except ProtocolError as exc:
        raise CheckFailed(
            f"the node's manifest version {offered} does not verify under the auditor's "
            f"version {mine}: {exc.reason.value}: {exc.message}"
        ) from exc


@check(
    "man-served-manifest-verifies",
    area=AREA,
    requirements=["MAN-14", "MAN-12", "ENV-3"],
)
async def served_manifest_verifies(ctx: Context) -> None:
    """GetManifest answers the newest manifest the node trusts, and it verifies under the
    auditor's manifest (the same bytes, or the next versions by MAN-12)."""
    served = (await _get_manifest(ctx)).manifest
    expect(
        served.payload_type == payload_types.MANIFEST,
        f"GetManifestResult.manifest has payload type {served.payload_type!r}",
    )
    trusted = await _trusted(ctx, served)
    if trusted.version == ManifestTrust.bootstrap(ctx.manifest, None).current.version:
        expect(
            served.payload == ctx.manifest.payload,
            "the node serves other payload bytes under the auditor's version",
        )


@check("man-manifest-by-version", area=AREA, requirements=["MAN-14"])
async def manifest_by_version(ctx: Context) -> None:
    """GetManifest by version number serves the same envelope as the newest and as the
    auditor's version."""
    newest = (await _get_manifest(ctx)).manifest
    trusted = await _trusted(ctx, newest)
    by_number = (await _get_manifest(ctx, trusted.version)).manifest
    expect(
        same_envelope(by_number, newest),
        f"version {trusted.version} by number differs from the newest served",
    )
    mine = ManifestTrust.bootstrap(ctx.manifest, None).current.version
    if mine != trusted.version:
        older = (await _get_manifest(ctx, mine)).manifest
        expect(
            older.payload == ctx.manifest.payload
            and older.payload_type == ctx.manifest.payload_type,
            f"version {mine} served by number differs from the auditor's version {mine}",
        )


@check("man-unknown-version-not-found", area=AREA, requirements=["MAN-14"])
async def unknown_version_not_found(ctx: Context) -> None:
    """A version the node does not hold is a signed NOT_FOUND 'no such manifest version' over
    gRPC, HTTP 404 over HTTP (version 0 included), and a non-number is HTTP 400."""
    refused = await refusal(
        ctx,
        GET_MANIFEST,
        get_manifest(ctx, _UNHELD_VERSION),
        Reason.NOT_FOUND,
        what=f"GetManifest version {_UNHELD_VERSION}",
    )
    expect(
        refused.error.message == "no such manifest version",
        f"the signed NOT_FOUND says {refused.error.message!r}, not 'no such manifest version'",
    )
    for tail, wanted in (("/0", 404), (f"/{_UNHELD_VERSION}", 404), ("/latest", 400)):
        status, _, _ = await http_fetch(ctx, MANIFEST_PATH + tail)
        expect(status == wanted, f"GET {MANIFEST_PATH}{tail} answered {status}, not {wanted}")


@check("man-http-version-is-decimal", area=AREA, requirements=["MAN-14"])
async def http_version_is_decimal(ctx: Context) -> None:
    """GET /.well-known/sseaun/manifest/{version} answers 400 when {version} is not a decimal
    number, even one a lenient parser reads as a held version (0_1, +1, " 1")."""
    problems = []
    for tail in ("0_1", "+1", "%201"):
        status, _, _ = await http_fetch(ctx, f"{MANIFEST_PATH}/{tail}")
        if status != 400:
            problems.append(f"GET {MANIFEST_PATH}/{tail} answered {status}, not 400")
    if problems:
        raise CheckFailed("; ".join(problems))


@check(
    "man-http-same-envelope",
    area=AREA,
    requirements=["MAN-14", "ENV-3", "ENV-8"],
)
async def http_same_envelope(ctx: Context) -> None:
    """The HTTP paths serve, as application/json DSSE JSON, the envelope GetManifest serves:
    the newest at /.well-known/sseaun/manifest and each version at .../{version}."""
    newest = (await _get_manifest(ctx)).manifest
    trusted = await _trusted(ctx, newest)
    mine = ManifestTrust.bootstrap(ctx.manifest, None).current.version
    paths = {MANIFEST_PATH: newest, f"{MANIFEST_PATH}/{trusted.version}": newest}
    if mine != trusted.version:
        paths[f"{MANIFEST_PATH}/{mine}"] = (await _get_manifest(ctx, mine)).manifest
    for path, grpc_envelope in paths.items():
        status, content_type, data = await http_fetch(ctx, path)
        expect(status == 200, f"GET {path} answered HTTP {status}")
        expect(
            content_type.split(";")[0].strip() == "application/json",
            f"GET {path} has Content-Type {content_type!r}",
        )
        try:
            served = envelope_from_json(data)
        except ProtocolError as exc:
            raise CheckFailed(f"GET {path} is not DSSE JSON: {exc.message}") from exc
        expect(
            same_envelope(served, grpc_envelope),
            f"GET {path} serves another envelope than GetManifest (digests "
            f"{envelope_digest(served).hex()} and {envelope_digest(grpc_envelope).hex()})",
        )


@check(
    "man-statements-verify",
    area=AREA,
    requirements=["MAN-21", "KEY-6", "KEY-7", "ENV-5"],
    level="SHOULD",
)
async def statements_verify(ctx: Context) -> None:
    """The signed statements in GetManifestResult.statements are delegations and revocations
    that verify under the manifest (KEY-6, KEY-7), and HTTP serves the same ones."""
    result = await _get_manifest(ctx)
    statements = list(result.statements)
    allowed = {payload_types.DELEGATION, payload_types.KEY_REVOCATION}
    for statement in statements:
        expect(
            statement.payload_type in allowed,
            f"a statement of payload type {statement.payload_type!r}",
        )

    # Delegations are read before they verify only to apply them in serial order (a later
    # serial after an earlier one); what verifies is decided by accept_delegation.
    def order(statement: Envelope) -> tuple[int, str, int]:
        if statement.payload_type != payload_types.DELEGATION:
            return (1, "", 0)
        try:
            delegation = Delegation.FromString(statement.payload)
        except DecodeError:
            return (0, "", 0)
        return (0, delegation.institution_id, delegation.serial)

    ring = KeyRing(ctx.keyring.manifest)
    now = datetime.now(UTC)
    problems = []
    for statement in sorted(statements, key=order):
        try:
            if statement.payload_type == payload_types.DELEGATION:
                ring.accept_delegation(statement, now)
            else:
                ring.accept_revocation(statement)
        except ProtocolError as exc:
            fields = ", ".join(p.field for p in exc.field_problems)
            problems.append(
                f"a {statement.payload_type.split('.')[2]} does not verify: "
                f"{exc.reason.value}: {exc.message}{f' ({fields})' if fields else ''}"
            )
    status, _, data = await http_fetch(ctx, STATEMENTS_PATH)
    if status != 200:
        problems.append(f"GET {STATEMENTS_PATH} answered HTTP {status}")
    else:
        try:
            served = [envelope_from_json(json.dumps(s)) for s in json.loads(data)["statements"]]
        except (ValueError, KeyError, TypeError, ProtocolError) as exc:
            raise CheckFailed(f"GET {STATEMENTS_PATH} is not a statements document: {exc}") from exc
        digests = sorted(envelope_digest(s) for s in statements)
        if sorted(envelope_digest(s) for s in served) != digests:
            problems.append(
                f"HTTP serves {len(served)} statements, GetManifest {len(statements)}, not the same"
            )
    if problems:
        raise CheckFailed("; ".join(problems))


@check(
    "man-adopts-next-version",
    area=AREA,
    requirements=["MAN-18", "MAN-12", "MAN-14"],
)
async def adopts_next_version(ctx: Context) -> None:
    """Once given the next manifest version, the node adopts it and serves it (needs a second
    manifest version).

    Needs ``ctx.shared["manifest.next"]``: the Envelope of the version after the node's current
    one, signed by governance, which whoever runs the suite has just given the node (its
    manifest file or a peer it asks) and made it look for (a restart or its refresh). Without it
    the check is skipped. With it, the check verifies that version under the auditor's trust,
    then waits up to 20 s for GetManifest to serve it, by number and as the newest, and for the
    HTTP path to serve the same envelope.
    """
    offered = ctx.shared.get("manifest.next")
    if not isinstance(offered, Envelope):
        raise CheckSkipped("needs a second manifest version (ctx.shared['manifest.next'])")
    try:
        version = parse_manifest(offered.payload).version
    except ProtocolError as exc:
        raise CheckSkipped(f"ctx.shared['manifest.next'] is no manifest: {exc.message}") from exc
    deadline = time.monotonic() + _ADOPTION_SECONDS
    while True:
        newest = (await _get_manifest(ctx)).manifest
        if newest.payload == offered.payload or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    expect(
        newest.payload == offered.payload,
        f"the node still serves version {parse_manifest(newest.payload).version} as its newest "
        f"{_ADOPTION_SECONDS:g} s after being given version {version}",
    )
    await _trusted(ctx, newest)
    by_number = (await _get_manifest(ctx, version)).manifest
    expect(same_envelope(by_number, newest), f"version {version} by number differs")
    status, _, data = await http_fetch(ctx, f"{MANIFEST_PATH}/{version}")
    expect(status == 200, f"GET {MANIFEST_PATH}/{version} answered HTTP {status}")
    try:
        over_http = envelope_from_json(data)
    except ProtocolError as exc:
        raise CheckFailed(f"GET {MANIFEST_PATH}/{version} is not DSSE JSON") from exc
    expect(same_envelope(over_http, newest), f"GET {MANIFEST_PATH}/{version}: another envelope")


@check(
    "man-expired-manifest-refuses-data",
    area=AREA,
    requirements=["MAN-13", "MAN-20"],
)
async def expired_manifest_refuses_data(ctx: Context) -> None:
    """Under an expired manifest the node refuses data calls MANIFEST_EXPIRED and keeps
    distributing manifests (needs a second manifest version).

    Runs only when the node's current manifest has expired, which takes a manifest version
    made to expire: the operator gives the node a version whose expires_at has passed, or
    whose expiry the run outlives. Otherwise it is skipped. When it runs: GetRecord is refused
    with a signed MANIFEST_EXPIRED (FAILED_PRECONDITION, metadata version) bound only to the
    request's digest (requester and request_id empty), and GetManifest and the HTTP manifest
    path still answer.
    """
    served = (await _get_manifest(ctx)).manifest
    trusted = await _trusted(ctx, served)
    if trusted.expires_at > datetime.now(UTC):
        raise CheckSkipped(
            f"needs a second manifest version: the node's current version {trusted.version} "
            f"expires only at {trusted.expires_at:%Y-%m-%d %H:%M} UTC"
        )
    request = get_record(ctx, missing_name(ctx))
    refused = await refusal(ctx, GET_RECORD, request, Reason.MANIFEST_EXPIRED, what="GetRecord")
    version = dict(refused.error.metadata).get("version")
    expect(
        version == str(trusted.version),
        f"MANIFEST_EXPIRED names version {version!r}, not {trusted.version}",
    )
    problems = header_problems(refused.answer.header, request, method=GET_RECORD, verified=False)
    expect(not problems, f"MANIFEST_EXPIRED header: {'; '.join(problems)}")
    status, _, _ = await http_fetch(ctx, MANIFEST_PATH)
    expect(status == 200, f"GET {MANIFEST_PATH} answered {status} under the expired manifest")
