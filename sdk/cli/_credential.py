"""``sseaun credential verify``: check a degree, diploma or certificate offline (spec CRED-6).

A verifier learns three separate things, and the command prints each on its own line: whether
the signatures are valid (every awarding institution signed, against the network manifest given),
the credential's state (issued, or revoked or suspended by a status list), and whether the status
is fresh (for every awarding institution a status list whose valid_until is after the check
time). Exit status: 0 only when all three are good; 1 otherwise; 2 for bad input.

The only network use is fetching status lists from the URLs given with --status-url.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from google.protobuf.message import DecodeError

from sseaun.sdk.core import (
    Envelope,
    KeyRing,
    ManifestTrust,
    ProtocolError,
    Reason,
    envelope_from_json,
    from_timestamp,
    lifecycle,
    payload_types,
    records,
)
from sseaun.v1.manifest_pb2 import Delegation, MemberStatus
from sseaun.v1.records_pb2 import (
    Credential,
    CredentialKind,
    CredentialStatusList,
)

from ._io import CliError, parse_time, read_bytes

__all__ = ["register"]

_CREDENTIAL = records.RecordKind.CREDENTIAL
_STATUS_LIST = records.RecordKind.CREDENTIAL_STATUS_LIST
#: The most a status list fetched from a URL may weigh.
MAX_FETCH_BYTES = 4 * 1024 * 1024
#: The events by which a status list revoked or suspended the credential.
_STATUS_EVENTS = frozenset({lifecycle.Event.STATUS_REVOKED, lifecycle.Event.STATUS_SUSPENDED})


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


# --- reading inputs ------------------------------------------------------------------------------


def _json_items(data: bytes, source: str) -> list[object]:
    """The JSON documents of a file: one document, or JSON Lines (`node records list`)."""
    try:
        return [json.loads(data)]
    except ValueError:
        pass
    items: list[object] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError as exc:
            raise CliError(f"{source}: not JSON (line {number}): {exc}") from exc
    if not items:
        raise CliError(f"{source}: empty")
    return items


def _flatten(item: object, source: str) -> list[dict[str, object]]:
    """Envelope objects in item: an envelope, {"envelope": ...} as `sseaun node records get`
    prints, {"statements": [...]} as a node serves, or a list of these."""
    if isinstance(item, list):
        return [e for part in item for e in _flatten(part, source)]
    if isinstance(item, dict):
        if "payloadType" in item:
            return [item]
        if "envelope" in item:
            return _flatten(item["envelope"], source)
        if "statements" in item:
            return _flatten(item["statements"], source)
    raise CliError(f"{source}: expected DSSE envelope JSON (or a list of envelopes)")


def _envelopes(data: bytes, source: str) -> list[Envelope]:
    out: list[Envelope] = []
    for item in _json_items(data, source):
        for obj in _flatten(item, source):
            try:
                out.append(envelope_from_json(json.dumps(obj)))
            except ProtocolError as exc:
                raise CliError(f"{source}: not a DSSE envelope: {exc.message}") from exc
    if not out:
        raise CliError(f"{source}: holds no envelope")
    return out


def _fetch(url: str, timeout: float) -> bytes:
    """GET a status list (the command's only network use)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise CliError(f"--status-url {url}: expected an https:// (or http://) URL")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, headers={"Accept": "application/json", "User-Agent": "sseaun-credential-verify"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            data: bytes = reply.read(MAX_FETCH_BYTES + 1)
    except urllib.error.HTTPError as exc:
        detail = ""
        try:
            body = json.loads(exc.read(4096))
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                detail = f": {body['error']}"
        except (ValueError, OSError):
            pass
        raise CliError(f"cannot fetch {url}: HTTP {exc.code}{detail}") from exc
    except urllib.error.URLError as exc:
        raise CliError(f"cannot fetch {url}: {exc.reason}") from exc
    except (OSError, ValueError) as exc:  # timeouts, resets, bad addresses
        raise CliError(f"cannot fetch {url}: {exc}") from exc
    if len(data) > MAX_FETCH_BYTES:
        raise CliError(f"cannot fetch {url}: more than {MAX_FETCH_BYTES} bytes")
    return data


def _keyring(args: argparse.Namespace, at: datetime) -> KeyRing:
    """The manifest, trusted on its own signatures (or its pinned digest), with the statements."""
    manifests = _envelopes(read_bytes(args.manifest), args.manifest)
    if len(manifests) != 1:
        raise CliError(f"--manifest {args.manifest}: expected one manifest envelope")
    try:
        pin = bytes.fromhex(args.pin) if args.pin else None
    except ValueError as exc:
        raise CliError("--pin must be a hex SHA-256 digest") from exc
    try:
        trust = ManifestTrust.bootstrap(manifests[0], pin)
    except ProtocolError as exc:
        raise CliError(f"--manifest {args.manifest}: {exc.reason.value}: {exc.message}") from exc
    current = trust.current
    if at >= current.expires_at:
        _warn(
            f"manifest version {current.version} expired at {_iso(current.expires_at)}: keys "
            "revoked since are not known to it; verify with the newest manifest"
        )
    ring = KeyRing(current)
    for path in args.statements or []:
        _accept_statements(ring, _envelopes(read_bytes(path), path), path, at)
    return ring


def _serial(envelope: Envelope) -> tuple[str, int]:
    delegation = Delegation()
    try:
        delegation.ParseFromString(envelope.payload)  # only to order; verified when accepted
    except DecodeError:
        return "", 0
    return delegation.institution_id, delegation.serial


def _accept_statements(
    ring: KeyRing, statements: list[Envelope], source: str, at: datetime
) -> None:
    """Apply delegations (oldest serial first, expired ones too: they vouch for what their keys
    signed while in force) and then revocations; a statement that does not verify is skipped."""
    delegations = sorted(
        (s for s in statements if s.payload_type == payload_types.DELEGATION), key=_serial
    )
    revocations = [s for s in statements if s.payload_type == payload_types.KEY_REVOCATION]
    others = len(statements) - len(delegations) - len(revocations)
    if others:
        _warn(f"{source}: {others} envelope(s) neither delegations nor revocations: ignored")
    for envelope in delegations:
        try:
            ring.accept_delegation(envelope, at, replay=True)
        except ProtocolError as exc:
            if exc.reason is not Reason.STALE_VERSION:
                _warn(f"{source}: a delegation was refused: {exc.reason.value}: {exc.message}")
    for envelope in revocations:
        try:
            ring.accept_revocation(envelope)
        except ProtocolError as exc:
            _warn(f"{source}: a revocation was refused: {exc.reason.value}: {exc.message}")


# --- the check -----------------------------------------------------------------------------------


@dataclass
class _StatusList:
    envelope: Envelope
    message: CredentialStatusList
    digest: bytes


@dataclass
class Report:
    """What `credential verify` found; ok only when all three parts are good."""

    at: datetime
    name: str = ""
    version: int = 0
    signatures_valid: bool = False
    signature_error: str = ""
    signed_by: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unknown_keys: int = 0
    state: str = ""
    state_detail: str = ""
    awaiting: list[str] = field(default_factory=list)
    status_given: bool = False
    status_fresh: bool = False
    fresh_until: datetime | None = None
    stale: dict[str, str] = field(default_factory=dict)
    status_urls: dict[str, str] = field(default_factory=dict)
    refused_lists: list[str] = field(default_factory=list)
    former_members: dict[str, str] = field(default_factory=dict)
    content: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.signatures_valid
            and self.state == lifecycle.State.ISSUED.value
            and self.status_fresh
        )

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.name:
            title = self.content.get("title", "")
            holder = self.content.get("holder_name", "")
            awarded = self.content.get("award_date", "")
            out.append(
                f"credential: {self.name} version {self.version}: {title}, {holder}, "
                f"awarded {awarded}"
            )
        if self.signatures_valid:
            out.append(f"signatures: valid (issued by {', '.join(self.signed_by)})")
        elif self.signature_error:
            out.append(f"signatures: INVALID: {self.signature_error}")
        else:
            signed = f" (signed by {', '.join(self.signed_by)})" if self.signed_by else ""
            hint = (
                f"; {self.unknown_keys} signature(s) by keys the manifest does not list "
                "(delegated keys? give --statements)"
                if self.unknown_keys
                else ""
            )
            out.append(
                f"signatures: INVALID: not signed by {', '.join(self.missing)}{signed}{hint}"
            )
        if not self.state:
            out.append("state: unknown (the credential does not verify)")
        else:
            detail = f" {self.state_detail}" if self.state_detail else ""
            awaiting = f" (awaiting {', '.join(self.awaiting)})" if self.awaiting else ""
            out.append(f"state: {self.state}{detail}{awaiting}")
        if not self.state:
            out.append("status: not checked")
        elif not self.status_given:
            out.append("status: unknown (no status list given)")
        elif self.status_fresh and self.fresh_until is not None:
            out.append(f"status: fresh until {_iso(self.fresh_until)}")
        else:
            stale = ", ".join(f"{inst} ({why})" for inst, why in sorted(self.stale.items()))
            out.append(f"status: STALE for {stale}")
        if self.state and not self.status_fresh:
            for inst in sorted(self.stale):
                if inst in self.status_urls:
                    out.append(f"  status list of {inst}: {self.status_urls[inst]}")
        if self.former_members:
            former = ", ".join(
                f"{inst} (left {left})" if left else inst
                for inst, left in sorted(self.former_members.items())
            )
            out.append(f"former members: {former}")
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "at": _iso(self.at),
            "credential": self.name or None,
            "version": self.version or None,
            "content": self.content,
            "signatures": {
                "valid": self.signatures_valid,
                "signed_by": self.signed_by,
                "missing": self.missing,
                "error": self.signature_error or None,
            },
            "state": self.state or None,
            "state_detail": self.state_detail or None,
            "awaiting": self.awaiting,
            "status": {
                "given": self.status_given,
                "fresh": self.status_fresh,
                "fresh_until": _iso(self.fresh_until) if self.fresh_until else None,
                "stale": dict(sorted(self.stale.items())),
                "urls": self.status_urls,
                "refused_lists": self.refused_lists,
            },
            "former_members": dict(sorted(self.former_members.items())),
        }


def _text(value: object) -> str:
    texts = getattr(value, "texts", None)
    if texts:
        chosen = next((t for t in texts if t.lang == "en"), texts[0])
        return str(chosen.text)
    return ""


def _content(credential: Credential) -> dict[str, object]:
    d = credential.award_date
    return {
        "kind": CredentialKind.Name(credential.kind).removeprefix("CREDENTIAL_KIND_").lower(),
        "title": _text(credential.title),
        "holder_name": credential.holder_name.full_name,
        "holder_student_id": credential.holder_student_id,
        "student_id_issuer": credential.student_id_issuer,
        "awarding_institutions": list(credential.awarding_institutions),
        "award_date": f"{d.year:04d}-{d.month:02d}-{d.day:02d}",
    }


def _open_lists(envelopes: list[Envelope], ring: KeyRing, report: Report) -> list[_StatusList]:
    """Each status list verified on its own; one that does not verify is left out (its
    institution's status is then missing, never good) and named."""
    out: list[_StatusList] = []
    for envelope in envelopes:
        try:
            if envelope.payload_type != _STATUS_LIST.payload_type:
                raise ProtocolError(Reason.PAYLOAD_TYPE_UNSUPPORTED, "not a credential status list")
            opened = lifecycle.open_record(envelope, ring)
        except ProtocolError as exc:
            report.refused_lists.append(f"{exc.reason.value}: {exc.message}")
            _warn(f"a status list was refused: {exc.reason.value}: {exc.message}")
            continue
        message = cast(CredentialStatusList, opened.message)
        out.append(_StatusList(envelope, message, records.payload_sha256(envelope.payload)))
    return out


def check(
    credentials: list[Envelope],
    status_lists: list[Envelope],
    ring: KeyRing,
    at: datetime,
) -> Report:
    """Verify a credential (its copies and versions) against the key ring and status lists."""
    report = Report(at=at, status_given=bool(status_lists))
    try:
        lifecycle.record_state(credentials, (), ring)  # the credential alone, before any list
    except ProtocolError as exc:
        report.signature_error = f"{exc.reason.value}: {exc.message}"
        return report
    lists = _open_lists(status_lists, ring, report)
    result = lifecycle.credential_status(credentials, [s.envelope for s in lists], ring, at)
    record = result.record
    issued = [v for v in record.versions if v.approved]
    version = issued[-1] if issued else record.latest
    credential = cast(Credential, version.message)
    awarding = list(credential.awarding_institutions)
    report.name, report.version = record.name, version.version
    report.content = _content(credential)
    report.signatures_valid = result.signatures_valid
    report.signed_by = [i for i in awarding if i in version.signed_by] + sorted(
        set(version.signed_by) - set(awarding)
    )
    report.missing = list(version.missing)
    report.unknown_keys = sum(1 for s in version.envelope.signatures if ring.key(s.keyid) is None)
    report.state = result.state.value
    report.awaiting = list(record.awaiting)
    refs = {ref.institution: ref for ref in credential.status}
    by_digest = {s.digest: s for s in lists}
    reasons = []
    for entry in record.history:
        if entry.event not in _STATUS_EVENTS or entry.by not in refs:
            continue
        decided = by_digest.get(entry.digest)
        why = ""
        if decided is not None:
            why = next(
                (e.reason for e in decided.message.entries if e.index == refs[entry.by].index),
                "",
            )
        label = f"by {entry.by}"
        if decided is not None:
            label += f" (status list version {decided.message.header.version})"
        reasons.append(f"{label}: {why}" if why else label)
    report.state_detail = "; ".join(reasons)
    # Freshness (CRED-6): the core decides; this explains it per awarding institution.
    why_stale: dict[str, str] = {}
    until: list[datetime] = []
    for inst, ref in refs.items():
        if ref.url:
            report.status_urls[inst] = ref.url
        mine = [s for s in lists if s.message.header.name == ref.list_name]
        newest = max(mine, key=lambda s: s.message.header.version, default=None)
        if newest is None:
            valid = "valid " if report.refused_lists else ""
            why_stale[inst] = f"no {valid}status list given"
            continue
        valid_until = from_timestamp(newest.message.valid_until)
        until.append(valid_until)
        if at >= valid_until:
            why_stale[inst] = f"list expired at {_iso(valid_until)}"
    report.stale = {inst: why_stale.get(inst, "stale") for inst in result.stale}
    report.status_fresh = result.status_fresh
    report.fresh_until = min(until) if until and result.status_fresh else None
    for inst in result.former_members:
        member = ring.member(inst)
        left = (
            _iso(from_timestamp(member.left_at))
            if member is not None
            and member.status == MemberStatus.MEMBER_STATUS_FORMER
            and member.HasField("left_at")
            else ""
        )
        report.former_members[inst] = left
    return report


# --- the command ---------------------------------------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    at = parse_time(args.at)
    if args.timeout <= 0:
        raise CliError("--timeout must be more than 0 seconds")
    credentials = _envelopes(read_bytes(args.file), args.file)
    for envelope in credentials:
        if envelope.payload_type != _CREDENTIAL.payload_type:
            raise CliError(
                f"{args.file}: not a credential (payload type {envelope.payload_type!r})"
            )
    ring = _keyring(args, at)
    status_lists: list[Envelope] = []
    for path in args.status or []:
        status_lists += _envelopes(read_bytes(path), path)
    for url in args.status_url or []:
        status_lists += _envelopes(_fetch(url, args.timeout), url)
    report = check(credentials, status_lists, ring, at)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cred = groups.add_parser("credential", help="verify degrees, diplomas and certificates")
    sub = cred.add_subparsers(dest="command", metavar="COMMAND", required=True)
    verify = sub.add_parser(
        "verify",
        help="verify a credential's signatures, state and status freshness (offline)",
        description="Verify a credential against a network manifest and status lists. Prints "
        "the signatures, the state and the status freshness on separate lines. Exit status: 0 "
        "valid, issued and fresh; 1 otherwise; 2 bad input.",
    )
    verify.add_argument(
        "file",
        metavar="FILE",
        help="the credential as DSSE envelope JSON, or a JSON list of its copies and versions",
    )
    verify.add_argument("--manifest", required=True, metavar="MANIFEST.json")
    verify.add_argument(
        "--pin", metavar="HEX", help="expected SHA-256 digest of the manifest (recommended)"
    )
    verify.add_argument(
        "--statements",
        action="append",
        metavar="FILE",
        help="delegations and revocations, as a node serves them at "
        "/.well-known/sseaun/statements (repeat)",
    )
    verify.add_argument(
        "--status", action="append", metavar="FILE", help="a status list envelope (repeat)"
    )
    verify.add_argument(
        "--status-url",
        action="append",
        metavar="URL",
        help="fetch a status list from this URL (repeat; the only network use)",
    )
    verify.add_argument("--timeout", type=float, default=10.0, help="seconds per fetch")
    verify.add_argument("--at", metavar="RFC3339", help="check at this time (default: now)")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(handler=_verify)
