"""``sseaun manifest``: build a manifest, sign it (each governance member on their own machine),
verify it and show it."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from sseaun.sdk.core import (
    Envelope,
    ManifestTrust,
    ProtocolError,
    Reason,
    add_signatures,
    envelope_digest,
    envelope_to_json,
    from_timestamp,
    governance_holders,
    listed_key,
    parse_manifest,
    payload_types,
    sign_manifest,
    to_timestamp,
    verify_envelope,
)
from sseaun.v1.manifest_pb2 import (
    Endpoint,
    EndpointKind,
    JoinRequest,
    KeyPurpose,
    Member,
    MemberStatus,
    NetworkManifest,
    PublicKey,
)
from sseaun.v1.types_pb2 import LocalizedText

from ._io import (
    CliError,
    parse_time,
    read_bytes,
    read_envelope,
    read_private_key,
    read_public_key,
    write_text,
)


def _public_key(
    raw: bytes, holder: str, purpose: int, not_before: datetime, days: int
) -> PublicKey:
    return listed_key(
        raw, holder, purpose, not_before=not_before, not_after=not_before + timedelta(days=days)
    )


def _read_draft(path: str) -> NetworkManifest:
    data = read_bytes(path)
    try:
        return json_format.Parse(data, NetworkManifest())
    except json_format.ParseError as exc:
        raise CliError(f"{path} is not a manifest draft: {exc}") from exc


def _write_draft(path: str, manifest: NetworkManifest) -> None:
    write_text(path, json_format.MessageToJson(manifest, indent=2) + "\n")


def _init(args: argparse.Namespace) -> int:
    issued = parse_time(args.issued_at)
    if args.previous:
        trusted = ManifestTrust.bootstrap(read_envelope(args.previous), None).current
        manifest = NetworkManifest()
        manifest.CopyFrom(trusted.manifest)
        manifest.version = trusted.version + 1
    else:
        if not args.network_id or not args.governance:
            raise CliError("--network-id and at least one --governance are needed (or --previous)")
        manifest = NetworkManifest(network_id=args.network_id, version=1)
    manifest.issued_at.CopyFrom(to_timestamp(issued))
    manifest.expires_at.CopyFrom(to_timestamp(issued + timedelta(days=args.expires_days)))
    for spec in args.governance or []:
        pem, sep, holder = spec.partition("=")
        if not sep or not holder:
            raise CliError(f"--governance {spec}: expected PUBLIC.pem=INSTITUTION")
        raw = read_public_key(pem)
        manifest.governance_keys.append(
            _public_key(raw, holder, KeyPurpose.KEY_PURPOSE_GOVERNANCE, issued, args.key_days)
        )
    if args.threshold is not None:
        manifest.governance_threshold = args.threshold
    _write_draft(args.out, manifest)
    print(f"wrote draft of {manifest.network_id} version {manifest.version} to {args.out}")
    return 0


def _member_from_join_request(path: str) -> tuple[Member, str]:
    """The member entry of a join request, after checking its root key signed it."""
    envelope = read_envelope(path)
    request = JoinRequest()
    try:
        request.ParseFromString(envelope.payload)
    except DecodeError as exc:
        raise CliError(f"{path} is not a join request") from exc
    roots = {
        k.key_id: k.public_key
        for k in request.member.keys
        if k.purpose == KeyPurpose.KEY_PURPOSE_ROOT
    }
    # Proof of possession: the root key the member asks governance to list signed the request.
    verify_envelope(envelope, roots, {payload_types.JOIN_REQUEST})
    return request.member, request.network_id


def _add_member(args: argparse.Namespace) -> int:
    manifest = _read_draft(args.input)
    if args.join_request:
        member, network_id = _member_from_join_request(args.join_request)
        if network_id != manifest.network_id:
            raise CliError(f"the join request is for network {network_id!r}")
        if any(m.institution_id == member.institution_id for m in manifest.members):
            raise CliError(f"{member.institution_id} is already a member of the draft")
        member.test_institution = args.test_institution
        manifest.members.append(member)
        _write_draft(args.out or args.input, manifest)
        print(f"added {member.institution_id} to the draft ({len(manifest.members)} members)")
        return 0
    if not (args.institution and args.name and args.country and args.root_key):
        raise CliError("give --join-request, or --institution, --name, --country and --root-key")
    if any(m.institution_id == args.institution for m in manifest.members):
        raise CliError(f"{args.institution} is already a member of the draft")
    member = Member(
        institution_id=args.institution,
        country=args.country,
        status=MemberStatus.MEMBER_STATUS_ACTIVE,
        api_versions=["sseaun.v1"],
        test_institution=args.test_institution,
        credit_scheme_ids=args.credit_scheme or [],
        grade_scale_ids=args.grade_scale or [],
    )
    for spec in args.name:
        lang, sep, text = spec.partition("=")
        if not sep or not lang or not text:
            raise CliError(f"--name {spec}: expected LANG=TEXT, e.g. en='Yunnan University'")
        member.names.texts.append(LocalizedText(lang=lang, text=text))
    # Keys are valid from the manifest's issue time unless told otherwise.
    start = parse_time(args.issued_at) if args.issued_at else from_timestamp(manifest.issued_at)
    for pem in args.root_key:
        member.keys.append(
            _public_key(
                read_public_key(pem),
                args.institution,
                KeyPurpose.KEY_PURPOSE_ROOT,
                start,
                args.key_days,
            )
        )
    for address in args.grpc or []:
        member.endpoints.append(
            Endpoint(kind=EndpointKind.ENDPOINT_KIND_GRPC, address=address, tls=not args.plaintext)
        )
    for address in args.http or []:
        member.endpoints.append(
            Endpoint(
                kind=EndpointKind.ENDPOINT_KIND_HTTP,
                address=address,
                tls=address.startswith("https://"),
            )
        )
    manifest.members.append(member)
    _write_draft(args.out or args.input, manifest)
    print(f"added {args.institution} to the draft ({len(manifest.members)} members)")
    return 0


def _is_envelope(data: bytes) -> bool:
    try:
        return "payloadType" in json.loads(data)
    except ValueError:
        return False


def _sign(args: argparse.Namespace) -> int:
    signer = read_private_key(args.key, args.passphrase_env)
    data = read_bytes(args.input)
    if _is_envelope(data):
        # Co-signing: sign the bytes already frozen by the first signer, never re-serialise.
        envelope = read_envelope(args.input)
        if envelope.payload_type != payload_types.MANIFEST:
            raise ProtocolError(Reason.PAYLOAD_TYPE_UNSUPPORTED, "not a manifest envelope")
        manifest = parse_manifest(envelope.payload)
        envelope = add_signatures(envelope, [signer])
    else:
        manifest = _read_draft(args.input)
        envelope = sign_manifest(manifest, [signer])
    if not any(k.key_id == signer.key_id for k in manifest.governance_keys):
        print(
            "warning: this key is not a governance key of this manifest version; its "
            "signature counts only towards a rotation from the previous version",
            file=sys.stderr,
        )
    write_text(args.out, envelope_to_json(envelope) + "\n")
    holders = governance_holders(envelope, manifest, from_timestamp(manifest.issued_at))
    print(
        f"signed {manifest.network_id} version {manifest.version}: "
        f"{len(holders)} of {manifest.governance_threshold} governance institutions have signed"
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    envelope = read_envelope(args.input)
    now = parse_time(args.now)
    try:
        pin = bytes.fromhex(args.pin) if args.pin else None
    except ValueError as exc:
        raise CliError("--pin must be a hex SHA-256 digest") from exc
    if args.trusted:
        # The pin, when given, applies to the oldest trusted version: the chain's genesis.
        trust = ManifestTrust.bootstrap(read_envelope(args.trusted[0]), pin)
        for path in [*args.trusted[1:], args.input]:
            trust.update(read_envelope(path))
    else:
        trust = ManifestTrust.bootstrap(envelope, pin)
    if not args.ignore_expiry:
        trust.check_fresh(now)
    current = trust.current
    holders = governance_holders(
        current.envelope, current.manifest, from_timestamp(current.manifest.issued_at)
    )
    print(
        f"OK {current.network_id} version {current.version}: signed by {len(holders)} of "
        f"{current.manifest.governance_threshold} governance institutions needed; "
        f"expires {current.expires_at.isoformat()}; digest {current.digest.hex()}"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    data = read_bytes(args.input)
    info: dict[str, object] = {"draft": True}
    if _is_envelope(data):
        envelope: Envelope = read_envelope(args.input)
        manifest = parse_manifest(envelope.payload)
        info = {
            "digest": envelope_digest(envelope).hex(),
            "signatures": [s.keyid for s in envelope.signatures],
        }
    else:
        manifest = _read_draft(args.input)
    body = json.loads(json_format.MessageToJson(manifest))
    print(json.dumps({**info, "manifest": body}, indent=2, ensure_ascii=False))
    return 0


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    man = groups.add_parser("manifest", help="build, sign, verify and show network manifests")
    sub = man.add_subparsers(dest="command", metavar="COMMAND", required=True)

    init = sub.add_parser("init", help="start a manifest draft (JSON), or the next version's")
    init.add_argument("--out", required=True, metavar="DRAFT.json")
    init.add_argument("--network-id")
    init.add_argument(
        "--previous", metavar="ENVELOPE.json", help="start version N+1 from this signed version N"
    )
    init.add_argument(
        "--governance",
        action="append",
        metavar="PUBLIC.pem=INSTITUTION",
        help="a governance key and the institution holding it (repeat)",
    )
    init.add_argument("--threshold", type=int, help="governance institutions needed to sign")
    init.add_argument("--expires-days", type=int, default=365)
    init.add_argument("--key-days", type=int, default=3 * 365, help="validity of listed keys")
    init.add_argument("--issued-at", metavar="ISO8601", help="default: now")
    init.set_defaults(handler=_init)

    add = sub.add_parser("add-member", help="add a member institution to a draft")
    add.add_argument("--in", dest="input", required=True, metavar="DRAFT.json")
    add.add_argument("--out", metavar="DRAFT.json", help="default: rewrite --in")
    add.add_argument(
        "--join-request",
        metavar="FILE",
        help="the signed join request of `sseaun node init` (checks its root key)",
    )
    add.add_argument("--institution", help="SCHAC domain, e.g. ynu.edu.cn")
    add.add_argument("--name", action="append", metavar="LANG=TEXT")
    add.add_argument("--country", help="ISO 3166-1 alpha-2, e.g. CN")
    add.add_argument("--root-key", action="append", metavar="PUBLIC.pem")
    add.add_argument("--grpc", action="append", metavar="HOST:PORT")
    add.add_argument("--http", action="append", metavar="URL")
    add.add_argument("--plaintext", action="store_true", help="gRPC without TLS (loopback tests)")
    add.add_argument("--credit-scheme", action="append", metavar="ID")
    add.add_argument("--grade-scale", action="append", metavar="ID")
    add.add_argument(
        "--test-institution",
        action="store_true",
        help="a virtual institution of a test network (never in production)",
    )
    add.add_argument("--key-days", type=int, default=3 * 365)
    add.add_argument("--issued-at", metavar="ISO8601", help="start of the key windows")
    add.set_defaults(handler=_add_member)

    sign = sub.add_parser("sign", help="sign a draft, or add a signature to a signed manifest")
    sign.add_argument("--in", dest="input", required=True, metavar="DRAFT_OR_ENVELOPE.json")
    sign.add_argument("--key", required=True, metavar="GOVERNANCE.private.pem")
    sign.add_argument("--out", required=True, metavar="ENVELOPE.json")
    sign.add_argument("--passphrase-env", metavar="VAR")
    sign.set_defaults(handler=_sign)

    verify = sub.add_parser("verify", help="verify a signed manifest")
    verify.add_argument("--in", dest="input", required=True, metavar="ENVELOPE.json")
    verify.add_argument(
        "--trusted",
        nargs="+",
        metavar="ENVELOPE.json",
        help="versions trusted before, oldest first: --in must follow them by +1",
    )
    verify.add_argument("--pin", metavar="HEX", help="expected digest of --in (genesis pinning)")
    verify.add_argument("--now", metavar="ISO8601", help="check expiry at this time")
    verify.add_argument("--ignore-expiry", action="store_true")
    verify.set_defaults(handler=_verify)

    show = sub.add_parser("show", help="print a manifest (draft or signed) as JSON")
    show.add_argument("--in", dest="input", required=True, metavar="FILE")
    show.set_defaults(handler=_show)


__all__ = ["ProtocolError", "register"]
