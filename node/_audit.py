"""Audit of the node's access logs: `sseaun node audit verify` and `... reveal` (spec LOG-12).

verify rebuilds every log's tree from its stored entries and checks it against everything the
store holds about it: each perfect-subtree hash, the head, every checkpoint (root, signed note,
signature) and every cosignature. It only reads.

reveal writes a disclosure of one record: the entries whose commitments match it, with their
keys and inclusion proofs in a checkpoint covering them, signed by the institution's LOG key
(sseaun.sdk.core.log_evidence), and logs the disclosure itself (LOG-3).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf.message import DecodeError

from sseaun.sdk.cli._io import CliError
from sseaun.sdk.core import (
    Checkpoint,
    Envelope,
    KeyRing,
    ManifestTrust,
    ProtocolError,
    Reason,
    access_log,
    envelope_from_bytes,
    envelope_to_json,
    load_public_pem,
    log_evidence,
    merkle,
    parse_signed_note,
    payload_types,
    verify_cosignature,
)
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.manifest_pb2 import KeyPurpose

from ._access_log import AccessLog
from ._config import ConfigError, NodeConfig
from ._keys import InstitutionKeys
from .store import SqliteStore, Store, StoredCheckpoint, StoreError

__all__ = [
    "LogKeys",
    "LogReport",
    "RevealResult",
    "load_log_keys",
    "register",
    "register_reveal",
    "reveal",
    "verify_log",
    "verify_store",
]

#: Entries read (and node hashes compared) per store call.
CHUNK = 10_000
#: Problems listed per log; more are counted, not listed.
MAX_PROBLEMS = 200

Progress = Callable[[str, int, int], None]


# -- keys ---------------------------------------------------------------------------------------


@dataclass
class LogKeys:
    """The LOG public keys known for each institution: key files and the stored key ring."""

    by_holder: dict[str, list[bytes]] = field(default_factory=dict)
    #: Why the key ring could not be rebuilt from the store, if it could not.
    problem: str | None = None

    def of(self, holder: str) -> list[bytes]:
        return self.by_holder.get(holder, [])

    def add(self, holder: str, key: bytes) -> None:
        keys = self.by_holder.setdefault(holder, [])
        if key not in keys:
            keys.append(key)


def _ring_keys(ring: KeyRing, keys: LogKeys) -> None:
    for key_id in ring.public_keys():
        trusted = ring.key(key_id)
        if trusted is not None and trusted.purpose == KeyPurpose.KEY_PURPOSE_LOG:
            keys.add(trusted.holder, trusted.public_key)


async def load_log_keys(config: NodeConfig, store: Store, logs: Sequence[str]) -> LogKeys:
    """Every LOG key the node knows, read-only: keys/<institution>/log.public.pem of the logs'
    institutions, plus the LOG keys of every stored manifest version and stored delegation.

    Revocations and key windows are not applied: a checkpoint or cosignature stays valid for
    the key that made it, and an audit looks at the whole history.
    """
    keys = LogKeys()
    for institution in logs:
        path = InstitutionKeys.folder(config.keys_dir, institution) / "log.public.pem"
        try:
            keys.add(institution, load_public_pem(path.read_bytes()))
        except FileNotFoundError:
            continue
        except (OSError, ProtocolError) as exc:
            keys.problem = f"cannot read {path}: {exc}"
    versions = await store.manifest_versions()
    if not versions:
        return keys
    try:
        genesis = envelope_from_bytes(await store.get_manifest(versions[0]) or b"")
        trust = ManifestTrust.bootstrap(genesis, config.genesis_digest())
        for version in versions[1:]:
            trust.update(envelope_from_bytes(await store.get_manifest(version) or b""))
    except ProtocolError as exc:
        keys.problem = f"cannot rebuild trust from the stored manifests: {exc.message}"
        return keys
    for manifest in trust.versions():
        _ring_keys(KeyRing(manifest), keys)
    ring = KeyRing(trust.current)
    now = datetime.now(UTC)
    for _kind, statement in await store.statements():
        envelope = envelope_from_bytes(statement)
        if envelope.payload_type != payload_types.DELEGATION:
            continue
        try:
            ring.accept_delegation(envelope, now, replay=True)
        except ProtocolError:
            continue  # not applied by the node either
    _ring_keys(ring, keys)
    return keys


# -- verify -------------------------------------------------------------------------------------


@dataclass
class LogReport:
    """What verify found in one log."""

    log: str
    entries: int = 0
    head: int = 0
    checkpoints: int = 0
    cosignatures: int = 0
    problems: list[str] = field(default_factory=list)
    #: Problems found beyond MAX_PROBLEMS (counted, not listed).
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)
        else:
            self.more_problems += 1

    def summary(self) -> str:
        counts = (
            f"{self.entries} entries, {self.checkpoints} checkpoints, "
            f"{self.cosignatures} cosignatures"
        )
        if self.ok:
            return f"ok: {self.log}: {counts}"
        found = len(self.problems) + self.more_problems
        return f"invalid: {self.log}: {found} problem(s) in {counts}"

    def to_json(self) -> dict[str, object]:
        return {
            "log": self.log,
            "ok": self.ok,
            "entries": self.entries,
            "head": self.head,
            "checkpoints": self.checkpoints,
            "cosignatures": self.cosignatures,
            "problems": self.problems,
            "more_problems": self.more_problems,
        }


def _span(level: int, index: int) -> str:
    lo, hi = index << level, ((index + 1) << level) - 1
    return f"entry {lo}" if lo == hi else f"entries {lo}-{hi}"


async def _stored_nodes(
    store: Store, log: str, wanted: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """The stored hashes of the nodes that exist: one read, halved around missing nodes."""
    if not wanted:
        return {}
    try:
        return await store.log_nodes(log, wanted)
    except StoreError:
        if len(wanted) == 1:
            return {}
    half = len(wanted) // 2
    found = await _stored_nodes(store, log, wanted[:half])
    found.update(await _stored_nodes(store, log, wanted[half:]))
    return found


class _Rebuild:
    """The tree rebuilt from the entries, compared chunk by chunk with the stored nodes."""

    def __init__(self, store: Store, report: LogReport, sizes: set[int]) -> None:
        self.store = store
        self.report = report
        self.frontier = merkle.TreeFrontier()
        self.sizes = sizes
        #: The root at each checkpoint size reached.
        self.roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
        #: Index of the first entry that could not be rebuilt (missing, no stored leaf).
        self.broken: int | None = None
        self._made: list[tuple[int, int, bytes]] = []
        self._bad_leaves: list[int] = []

    def add(self, leaf: bytes) -> None:
        self._made += self.frontier.append(leaf)
        if self.frontier.size in self.sizes:
            self.roots[self.frontier.size] = self.frontier.root()

    async def fill(self, start: int, end: int) -> None:
        """Entries [start, end) are missing: go on with their stored leaf hashes, if any."""
        log = self.report.log
        await self.compare()  # problems in index order, whatever the chunk size
        for index in range(start, end):
            self.report.problem(f"entry {index} missing")
        if self.broken is not None:
            return
        stored = await _stored_nodes(self.store, log, [(0, i) for i in range(start, end)])
        for index in range(start, end):
            leaf = stored.get((0, index))
            if leaf is None:
                self.broken = index
                self.report.problem(
                    f"entry {index}: no leaf hash is stored either: the tree cannot be "
                    "rebuilt beyond it"
                )
                return
            self.add(leaf)

    async def compare(self) -> None:
        """Compare the nodes made since the last call with the stored ones (one read)."""
        made, self._made = sorted(self._made), []
        stored = await _stored_nodes(self.store, self.report.log, [(lv, i) for lv, i, _ in made])
        for level, index, digest in made:
            found = stored.get((level, index))
            if level == 0:
                if found is None:
                    self.report.problem(f"entry {index}: its leaf hash is not stored")
                elif found != digest:
                    self._bad_leaves.append(index)
                    self.report.problem(f"entry {index}: leaf hash does not match the stored tree")
                continue
            if found is None:
                self.report.problem(f"{_span(level, index)}: the stored tree lacks their subtree")
            elif found != digest and not self._spoilt(level, index):
                self.report.problem(
                    f"{_span(level, index)}: the stored subtree hash does not match the entries"
                )

    def _spoilt(self, level: int, index: int) -> bool:
        """Whether a leaf under the node was already reported (so the node must differ)."""
        lo = index << level
        at = bisect.bisect_left(self._bad_leaves, lo)
        return at < len(self._bad_leaves) and self._bad_leaves[at] < lo + (1 << level)


async def verify_log(
    store: Store,
    log: str,
    *,
    origin: str,
    keys: LogKeys,
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> LogReport:
    """Check one log against its entries; read-only.

    A node may append while this runs: the checkpoints are those stored at the start, and the
    head is read again once the entries are read (entries that arrived meanwhile are read too).
    """
    report = LogReport(log)
    total = await store.log_size(log)
    checkpoints = await store.checkpoints(log)
    rebuild = _Rebuild(store, report, {c.size for c in checkpoints})
    expected = 0
    while rows := await store.log_entries(log, expected, chunk):
        for row in rows:
            if row.index > expected:
                await rebuild.fill(expected, row.index)
            if rebuild.broken is None:
                rebuild.add(merkle.leaf_hash(row.entry))
            expected = row.index + 1
            report.entries += 1
        await rebuild.compare()
        if progress is not None:
            progress(log, report.entries, total)
        if len(rows) < chunk:
            # The end of the log, unless it grew meanwhile: then read on.
            report.head = await store.log_size(log)
            if report.head <= expected:
                break
    else:
        report.head = await store.log_size(log)
    if report.head != report.entries:
        report.problem(f"log_heads says {report.head} but {report.entries} entries are stored")
    _check_checkpoints(report, checkpoints, rebuild, origin=origin, keys=keys, rebuilt=expected)
    return report


def _check_checkpoints(
    report: LogReport,
    checkpoints: Sequence[StoredCheckpoint],
    rebuild: _Rebuild,
    *,
    origin: str,
    keys: LogKeys,
    rebuilt: int,
) -> None:
    log_keys = keys.of(report.log)
    previous = -1
    for stored in checkpoints:
        size = stored.size
        report.checkpoints += 1
        report.cosignatures += len(stored.cosignatures)
        where = f"checkpoint {size}"
        if size <= previous:
            report.problem(f"{where}: sizes do not increase (after checkpoint {previous})")
        previous = size
        root = rebuild.roots.get(size)
        if root is not None:
            if root != stored.root:
                report.problem(f"{where}: root does not match the entries")
        elif rebuild.broken is not None and size > rebuild.broken:
            report.problem(f"{where}: cannot be checked: the tree cannot be rebuilt")
        else:
            report.problem(f"{where}: covers {size} entries but the stored ones end at {rebuilt}")
        try:
            note = parse_signed_note(stored.note)
            body = Checkpoint.from_body(note.body)
        except ProtocolError:
            report.problem(f"{where}: the signed note does not parse")
            continue
        if (body.origin, body.size, body.root) != (origin, size, stored.root):
            report.problem(f"{where}: the signed note is not of this checkpoint")
        if not log_keys:
            report.problem(f"{where}: no LOG key of {report.log} is known to check it")
        else:
            try:
                access_log.verify_log_checkpoint(note, origin, log_keys)
            except ProtocolError:
                report.problem(f"{where}: signature does not verify")
        for line in stored.cosignatures:
            _check_cosignature(report, where, note.body, line, keys)


def _check_cosignature(
    report: LogReport, where: str, body: bytes, line: str, keys: LogKeys
) -> None:
    try:
        single = parse_signed_note(body.decode() + "\n" + line)
    except (ProtocolError, UnicodeDecodeError):
        report.problem(f"{where}: a cosignature line does not parse")
        return
    witness = single.signatures[0].name
    witness_keys = keys.of(witness)
    if not witness_keys:
        report.problem(f"{where}: cosignature by {witness}: no LOG key of {witness} is known")
        return
    for key in witness_keys:
        try:
            verify_cosignature(single, witness, key)
        except ProtocolError:
            continue
        return
    report.problem(f"{where}: cosignature by {witness} does not verify")


async def verify_store(
    config: NodeConfig, store: Store, progress: Progress | None = None
) -> tuple[list[LogReport], LogKeys]:
    """Check every log of the store (read-only); the reports and the keys used."""
    logs = await store.logs()
    keys = await load_log_keys(config, store, logs)
    reports = [
        await verify_log(
            store,
            log,
            origin=access_log.log_origin(config.network_id, log),
            keys=keys,
            progress=progress,
        )
        for log in logs
    ]
    return reports, keys


# -- reveal -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RevealResult:
    """A signed disclosure and the index of the log entry that records it."""

    envelope: Envelope
    disclosure: log_evidence.Disclosure
    logged_index: int


async def _matching(
    store: Store, log: str, record: str, chunk: int
) -> list[tuple[int, bytes, bytes]]:
    """(index, entry, key) of the entries whose commitments match the record (keys held only)."""
    found: list[tuple[int, bytes, bytes]] = []
    start = 0
    while rows := await store.log_entries(log, start, chunk):
        for row in rows:
            if row.key is None:
                continue  # erased: the entry can no longer be linked to any record
            try:
                if access_log.record_in_entry(row.entry, row.key, record):
                    found.append((row.index, row.entry, row.key))
            except DecodeError:
                continue  # a damaged entry; `audit verify` reports it
        start = rows[-1].index + 1
    return found


async def reveal(
    access: AccessLog,
    *,
    record: str,
    recipient: str,
    log_keys: Sequence[bytes] = (),
    chunk: int = CHUNK,
) -> RevealResult:
    """Disclose the entries of access's log that concern record to recipient, and log that.

    The disclosure is checked before it is logged and returned, with the signer's key and
    log_keys (the institution's earlier LOG keys, which may have signed the checkpoint).

    Raises:
        ProtocolError: LOG_INCONSISTENT (no checkpoint can be signed), PROOF_INVALID (the
            stored tree does not prove the entries: nothing is disclosed).
    """
    store, log = access.store, access.institution
    found = await _matching(store, log, record, chunk)
    try:
        stored = await access.checkpoint(found[-1][0] + 1 if found else 0)
        size = stored.size
        plans = {index: merkle.inclusion_plan(index, size) for index, _, _ in found}
        wanted = sorted({node for plan in plans.values() for node in plan.nodes()})
        nodes = await store.log_nodes(log, wanted) if wanted else {}
    except StoreError as exc:
        raise ProtocolError(
            Reason.PROOF_INVALID,
            f"the stored tree is incomplete ({exc}); run `sseaun node audit verify`",
        ) from exc
    entries = tuple(
        log_evidence.DisclosedEntry(index, entry, key, tuple(plans[index].build(nodes)))
        for index, entry, key in found
    )
    disclosure = log_evidence.Disclosure(
        record=record,
        recipient=recipient,
        log_origin=access.origin,
        disclosed_at=access.clock(),
        checkpoint=stored.text,
        entries=entries,
    )
    envelope = log_evidence.sign_disclosure(disclosure, access.signer)
    # Never hand out a disclosure that does not verify (a damaged store, say).
    log_evidence.check(envelope, log_keys=[access.signer.public_key, *log_keys])
    logged = await access.append(
        caller="local:cli",
        method="local:audit-reveal",
        purpose=Purpose.PURPOSE_AUDIT,
        outcome="OK",
        record_names=[record],
    )
    return RevealResult(envelope, disclosure, logged)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner reads, in one rename."""
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        partial.replace(path)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc


# -- command line -------------------------------------------------------------------------------


def _say(text: str) -> None:
    """One line of a command's output on stdout."""
    sys.stdout.write(text + "\n")


def _config(path: str) -> NodeConfig:
    try:
        return NodeConfig.load(Path(path))
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def _verify(args: argparse.Namespace) -> int:
    config = _config(args.config)
    interactive = sys.stderr.isatty()

    def progress(log: str, done: int, total: int) -> None:
        if args.quiet or total <= CHUNK:
            return
        start, end = ("\r", "") if interactive else ("", "\n")
        sys.stderr.write(f"{start}verify {log}: {done}/{total} entries{end}")
        sys.stderr.flush()

    async def run() -> tuple[list[LogReport], LogKeys]:
        store = await SqliteStore.open(config.database)
        try:
            return await verify_store(config, store, progress)
        finally:
            await store.close()

    reports, keys = asyncio.run(run())
    if interactive and not args.quiet and any(r.head > CHUNK for r in reports):
        sys.stderr.write("\n")
    if keys.problem:
        sys.stderr.write(f"warning: {keys.problem}\n")
    ok = all(r.ok for r in reports)
    if args.json:
        warnings = [keys.problem] if keys.problem else []
        result = {"ok": ok, "logs": [r.to_json() for r in reports], "warnings": warnings}
        _say(json.dumps(result, sort_keys=True))
        return 0 if ok else 1
    if not reports:
        _say("ok: the store holds no access log")
    for report in reports:
        for problem in report.problems:
            _say(f"{report.log}: {problem}")
        if report.more_problems:
            _say(f"{report.log}: ... and {report.more_problems} more problem(s)")
        _say(report.summary())
    return 0 if ok else 1


def _reveal(args: argparse.Namespace) -> int:
    config = _config(args.config)
    institution = args.institution or config.institutions[0]
    if institution not in config.institutions:
        raise CliError(f"this node does not serve {institution}")
    if not args.record:
        raise CliError("--record must name a record")
    if not args.to.strip():
        raise CliError("--to must name the recipient")
    try:
        passphrase = config.passphrase()
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    try:
        keys = InstitutionKeys.load(config.keys_dir, institution, passphrase)
    except OSError as exc:
        raise CliError(f"cannot read the keys of {institution}: {exc.strerror or exc}") from exc
    out = Path(args.out)

    async def run() -> RevealResult:
        store = await SqliteStore.open(config.database)
        try:
            access = AccessLog(
                store,
                network_id=config.network_id,
                institution=institution,
                signer=keys.log,
                clock=lambda: datetime.now(UTC),
            )
            known = await load_log_keys(config, store, [institution])
            return await reveal(
                access, record=args.record, recipient=args.to, log_keys=known.of(institution)
            )
        finally:
            await store.close()

    result = asyncio.run(run())
    _write_private(out, envelope_to_json(result.envelope) + "\n")
    count = len(result.disclosure.entries)
    size = Checkpoint.from_body(parse_signed_note(result.disclosure.checkpoint).body).size
    _say(
        f"disclosed {count} {'entry' if count == 1 else 'entries'} of {institution}'s access log "
        f"about {args.record} to {args.to} in {out} (checkpoint size {size}); "
        f"logged as entry {result.logged_index}"
    )
    return 0


def _add_reveal(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reveal_cmd = sub.add_parser(
        "reveal",
        help="write a signed disclosure of the access-log entries about one record",
        description="Disclose to a named recipient the entries of the institution's access log "
        "that concern a record, with their commitment keys and inclusion proofs, signed by the "
        "institution's LOG key. The disclosure is itself logged.",
    )
    reveal_cmd.add_argument("--config", required=True, metavar="DIR/node.toml")
    reveal_cmd.add_argument("--record", required=True, metavar="NAME", help="the record's name")
    reveal_cmd.add_argument("--to", required=True, metavar="RECIPIENT", help="who receives it")
    reveal_cmd.add_argument("--out", required=True, metavar="FILE", help="written mode 0600")
    reveal_cmd.add_argument("--institution", help="for a node serving several institutions")
    reveal_cmd.set_defaults(handler=_reveal)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `audit verify` and `audit reveal` to the `sseaun node` group's commands."""
    audit = sub.add_parser("audit", help="verify the access logs; disclose a record's entries")
    commands = audit.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    verify = commands.add_parser(
        "verify",
        help="rebuild every access log from its entries and check it (read-only)",
        description="Rebuild each access log's tree from the stored entries and check every "
        "stored node hash, the head, every checkpoint's root and signature and every "
        "cosignature. Exit status: 0 all good, 1 a problem was found.",
    )
    verify.add_argument("--config", required=True, metavar="DIR/node.toml")
    verify.add_argument("--json", action="store_true", help="print a JSON report")
    verify.add_argument("--quiet", action="store_true", help="no progress lines")
    verify.set_defaults(handler=_verify)
    _add_reveal(commands)


def register_reveal(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `reveal` to the sdk's `sseaun audit` group (entry point sseaun.cli.audit)."""
    _add_reveal(sub)
