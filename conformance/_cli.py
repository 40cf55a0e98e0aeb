"""`sseaun conformance run|setup|requirements|vectors` (registered through `sseaun.cli`).

`run` checks a node over the wire only, as the auditor's test institutions; `setup` makes those
institutions; `requirements` lists the spec's requirements and the checks that cover them;
`vectors` compares an implementation's outputs for the test vectors with the expected ones.
Exit status: `run` 1 when a MUST check failed or errored, `vectors` 1 when a case differs, else 0;
2 for bad input (one line, no traceback). docs/conformance.md is the guide.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sseaun.sdk.cli._io import CliError, read_bytes, read_passphrase
from sseaun.sdk.core import ProtocolError

from ._framework import AREAS, Result

__all__ = ["register"]


def _write(text: str, stream: Any = None) -> None:
    out = stream or sys.stdout
    out.write(text)
    out.flush()


def _split_ids(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


# --- run ----------------------------------------------------------------------------------------


def _load_auditors(folder: Path, passphrase: bytes | None) -> list[Any]:
    from ._context import load_auditors  # noqa: PLC0415 - grpc is loaded only to run

    if not folder.is_dir():
        raise CliError(f"--auditor-keys {folder}: not a folder")
    try:
        auditors = load_auditors(folder, passphrase)
    except OSError as exc:
        raise CliError(f"cannot read the auditor keys in {folder}: {exc.strerror or exc}") from exc
    except ProtocolError as exc:
        raise CliError(f"an auditor key in {folder} is unusable: {exc.message}") from exc
    if not auditors:
        raise CliError(
            f"no auditor institution in {folder}: expected one folder per institution with "
            "{root,transport,issuing,log}.private.pem (see `sseaun conformance setup`)"
        )
    return auditors


def _check_membership(context: Any, manifest: str) -> None:
    """Each auditor must be a member of the manifest with its transport key listed."""
    for auditor in context.auditors:
        member = context.keyring.member(auditor.institution)
        if member is None:
            raise CliError(
                f"{auditor.institution} is not a member of {manifest}: add its join request "
                "(`sseaun manifest add-member --join-request FILE --test-institution`) to the "
                "test manifest the node trusts"
            )
        if context.keyring.key(auditor.transport.key_id) is None:
            raise CliError(
                f"{manifest} does not list the transport key {auditor.transport.key_id} of "
                f"{auditor.institution}: the keys and the manifest do not belong together"
            )
        if not member.test_institution:
            _write(
                f"warning: {auditor.institution} is not marked as a test institution in "
                f"{manifest}\n",
                sys.stderr,
            )


def _progress(total: int, quiet: bool) -> Any:
    done = 0

    def show(result: Result) -> None:
        nonlocal done
        done += 1
        if not quiet:
            width = len(str(total))
            _write(
                f"[{done:>{width}}/{total}] {result.outcome.value:<7} {result.spec.id} "
                f"({result.seconds:.2f} s)\n"
            )

    return show


async def _reachable(context: Any) -> None:
    """A usage error, not a run of failed checks, when the node cannot be reached at all."""
    async with context.channel() as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout=context.deadline)
        except TimeoutError as exc:
            how = "plaintext" if context.plaintext else "TLS"
            raise CliError(
                f"cannot reach {context.target} ({how} gRPC) within {context.deadline:g} s"
            ) from exc


def _run(args: argparse.Namespace) -> int:
    from ._context import Context  # noqa: PLC0415
    from ._reports import RunInfo, console_summary, exit_code, write_reports  # noqa: PLC0415
    from ._runner import run_checks, select  # noqa: PLC0415

    if args.deadline <= 0:
        raise CliError("--deadline must be positive")
    only = _split_ids(args.only)
    areas = _split_ids(args.area)
    if unknown := sorted(set(areas) - set(AREAS)):
        raise CliError(f"--area: unknown {', '.join(unknown)} (one of {', '.join(AREAS)})")
    try:
        specs = select(only, level=args.level, areas=areas)
    except ValueError as exc:
        raise CliError(f"--only: {exc}") from exc
    auditors = _load_auditors(Path(args.auditor_keys), read_passphrase(args.passphrase_env))
    roots = read_bytes(args.tls_roots) if args.tls_roots else None
    try:
        context = Context.from_manifest(
            args.target,
            Path(args.manifest),
            auditors,
            audience=args.audience,
            plaintext=args.plaintext,
            root_certificates=roots,
            adapter=args.adapter,
            deadline=args.deadline,
        )
    except OSError as exc:
        raise CliError(f"cannot read {args.manifest}: {exc.strerror or exc}") from exc
    except ProtocolError as exc:
        raise CliError(
            f"{args.manifest} is not a manifest that verifies: {exc.reason.value}: {exc.message}"
        ) from exc
    except ValueError as exc:
        raise CliError(f"{exc}; give --audience INSTITUTION") from exc
    if context.keyring.member(context.audience) is None:
        raise CliError(f"--audience {context.audience} is not a member of {args.manifest}")
    _check_membership(context, args.manifest)
    report_dir = Path(args.report_dir) if args.report_dir else None
    if report_dir is not None:
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot make {report_dir}: {exc.strerror or exc}") from exc

    trusted = context.keyring.manifest
    if not args.quiet:
        _write(
            f"checking {context.audience} at {context.target}: {len(specs)} check(s), "
            f"as {', '.join(a.institution for a in auditors)}\n"
        )

    async def reach_then_run() -> list[Result]:
        await _reachable(context)
        return await run_checks(context, specs, progress=_progress(len(specs), args.quiet))

    started, clock = datetime.now(UTC), time.perf_counter()
    results = asyncio.run(reach_then_run())
    info = RunInfo(
        target=context.target,
        audience=context.audience,
        network_id=context.network_id,
        manifest_version=trusted.version,
        manifest_digest=trusted.digest.hex(),
        started=started,
        seconds=time.perf_counter() - clock,
        level=args.level,
        only=tuple(only),
        areas=tuple(areas),
        adapter=args.adapter,
        auditors=tuple(a.institution for a in auditors),
    )
    _write(("\n" if not args.quiet else "") + console_summary(results, info))
    if report_dir is not None:
        try:
            written = write_reports(report_dir, results, info)
        except OSError as exc:
            raise CliError(f"cannot write the reports: {exc.strerror or exc}") from exc
        _write("reports: " + ", ".join(str(p) for p in written) + "\n")
    return exit_code(results)


# --- setup --------------------------------------------------------------------------------------


def _setup(args: argparse.Namespace) -> int:
    from ._setup import prepare  # noqa: PLC0415

    out = Path(args.out)
    made = prepare(
        out,
        args.network_id,
        args.institutions,
        now=datetime.now(UTC),
        domain=args.domain,
        country=args.country,
        key_days=args.key_days,
        passphrase=read_passphrase(args.passphrase_env),
    )
    _write(f"made {len(made)} auditor test institution(s) for network {args.network_id} in {out}\n")
    for prepared in made:
        _write(
            f"  {prepared.institution}: keys {prepared.keys}, "
            f"join request {prepared.join_request}\n"
        )
    _write(
        "next: the test network's governance adds each join request to the test manifest,\n"
        + "".join(
            f"  sseaun manifest add-member --in DRAFT.json --join-request {p.join_request} "
            "--test-institution\n"
            for p in made
        )
        + "signs it, and the node under test pins (or updates to) it; then\n"
        f"  sseaun conformance run --target HOST:PORT --manifest MANIFEST.json "
        f"--auditor-keys {out / 'keys'}\n"
    )
    return 0


# --- requirements -------------------------------------------------------------------------------


def _requirements(args: argparse.Namespace) -> int:
    from ._framework import checks  # noqa: PLC0415
    from ._requirements import (  # noqa: PLC0415
        covering_checks,
        load_requirements,
        uncovered_must,
        unknown_citations,
    )

    try:
        requirements = load_requirements()
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read the requirements list: {exc}") from exc
    specs = checks()
    covered = covering_checks(requirements, specs)
    missing = uncovered_must(requirements, specs)
    unknown = unknown_citations(requirements, specs)
    if args.json:
        document = {
            "requirements": [
                {
                    "id": requirement_id,
                    "level": r.level,
                    "title": r.title,
                    "chapter": r.chapter,
                    "wire_testable": r.wire_testable,
                    "checks": covered[requirement_id],
                    "uncovered_must": requirement_id in missing,
                }
                for requirement_id, r in requirements.items()
            ],
            "uncovered_must": missing,
            "unknown_citations": unknown,
        }
        _write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return 0
    width = max(len(i) for i in requirements) if requirements else 2
    lines = [f"{'ID':<{width}}  level   {'title':<44}  checks"]
    for requirement_id, r in requirements.items():
        if covered[requirement_id]:
            cell = ", ".join(covered[requirement_id])
        elif not r.wire_testable:
            cell = "(not wire-testable)"
        elif requirement_id in missing:
            cell = "UNCOVERED MUST"
        else:
            cell = "-"
        title = r.title if len(r.title) <= 44 else r.title[:43] + "…"
        lines.append(f"{requirement_id:<{width}}  {r.level:<6}  {title:<44}  {cell}")
    must = sum(1 for r in requirements.values() if r.level == "MUST")
    lines += [
        "",
        f"{len(requirements)} requirements ({must} MUST), {len(specs)} checks; "
        f"{len(missing)} wire-testable MUST requirement(s) without a check",
    ]
    lines += [
        f"warning: check {check} cites {', '.join(ids)}, not in the spec"
        for check, ids in unknown.items()
    ]
    _write("\n".join(lines) + "\n")
    return 0


# --- vectors ------------------------------------------------------------------------------------


def _vectors(args: argparse.Namespace) -> int:
    from . import _vector_files as vf  # noqa: PLC0415

    if args.write and not args.self:
        raise CliError("--write goes with --self (it writes the sdk's outputs as example files)")
    vectors = Path(args.vectors) if args.vectors else vf.VECTORS
    sections = args.section or list(vf.SECTIONS)
    try:
        cases = vf.load_cases(vectors, sections)
    except (OSError, ValueError, KeyError) as exc:
        raise CliError(f"cannot read the vectors in {vectors}: {exc}") from exc
    if args.self:
        outputs = vf.sdk_outputs(vectors, sections)
        source = "the sdk core (sseaun.sdk.core)"
        if args.write:
            try:
                vf.write_outputs(Path(args.write), outputs)
            except OSError as exc:
                raise CliError(f"cannot write {args.write}: {exc.strerror or exc}") from exc
    else:
        folder = Path(args.dir)
        if not folder.is_dir():
            raise CliError(f"--dir {folder}: not a folder")
        outputs = vf.read_outputs(folder, cases)
        source = str(folder)
    verdicts = vf.check_outputs(cases, outputs)
    lines = []
    for verdict in verdicts:
        if verdict.ok:
            if not args.quiet:
                lines.append(f"ok         {verdict.case}")
            continue
        lines.append(f"{verdict.status:<10} {verdict.case}")
        lines += [f"    {problem}" for problem in verdict.problems]
    bad = [v for v in verdicts if not v.ok]
    by_status = {
        s: sum(1 for v in bad if v.status == s) for s in ("differs", "missing", "unreadable")
    }
    detail = ", ".join(f"{n} {s}" for s, n in by_status.items() if n)
    lines.append(
        f"{source}: {len(verdicts) - len(bad)} of {len(verdicts)} case(s) agree with the "
        f"vectors" + (f"; {detail}" if detail else "")
    )
    if args.write:
        lines.append(f"wrote the outputs to {args.write}")
    _write("\n".join(lines) + "\n")
    return 1 if bad else 0


# --- registration -------------------------------------------------------------------------------


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = groups.add_parser(
        "conformance", help="check a node against the specification, over the wire"
    )
    sub = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run the conformance checks against a node (exit 1 if a MUST check fails)",
        description="Run the checks against the node at --target as the auditor's test "
        "institutions. Exit status 1 when a MUST check failed or errored, 0 otherwise, 2 for "
        "bad input.",
    )
    run.add_argument("--target", required=True, metavar="HOST:PORT", help="the node's gRPC address")
    run.add_argument(
        "--manifest",
        required=True,
        metavar="FILE",
        help="the signed test manifest the node trusts (lists the auditor institutions)",
    )
    run.add_argument(
        "--auditor-keys",
        required=True,
        metavar="DIR",
        help="one folder per auditor institution with its keys (`conformance setup` → DIR/keys)",
    )
    run.add_argument(
        "--audience",
        metavar="INSTITUTION",
        help="the institution to call (default: the member listing --target as gRPC endpoint)",
    )
    transport = run.add_mutually_exclusive_group()
    transport.add_argument("--plaintext", action="store_true", help="gRPC without TLS (tests)")
    transport.add_argument(
        "--tls-roots", metavar="PEM", help="trust these CA certificates (default: the system's)"
    )
    run.add_argument(
        "--adapter",
        metavar="CMD",
        help="command driving the node's own side of lifecycles: CMD issue|cosign|decide|state "
        "... (e.g. 'sseaun node records --config node.toml'); lifecycle checks skip without it",
    )
    run.add_argument("--report-dir", metavar="DIR", help="write summary.txt, report.json, "
                     "junit.xml and report.html here")  # fmt: skip
    run.add_argument(
        "--only",
        action="append",
        metavar="IDS",
        help="only these check IDs or requirement IDs (comma-separated, repeatable)",
    )
    run.add_argument(
        "--area",
        action="append",
        metavar="AREAS",
        help=f"only these areas (comma-separated, repeatable): {', '.join(AREAS)}",
    )
    run.add_argument(
        "--level", choices=("must", "should"), default="should", help="must: MUST checks only"
    )
    run.add_argument("--deadline", type=float, default=10.0, metavar="SECONDS",
                     help="deadline of each call (default 10)")  # fmt: skip
    run.add_argument("--passphrase-env", metavar="VAR", help="passphrase of the auditor keys")
    run.add_argument("--quiet", action="store_true", help="no line per check while running")
    run.set_defaults(handler=_run)

    setup = sub.add_parser(
        "setup",
        help="make the auditor's test institutions: keys and join requests",
        description="Make N auditor test institutions (auditor-1.<domain>, ...): their keys in "
        "DIR/keys/<institution>/ and join requests in DIR/join-requests/, for `sseaun manifest "
        "add-member --join-request FILE --test-institution`.",
    )
    setup.add_argument("--out", required=True, metavar="DIR")
    setup.add_argument("--network-id", required=True, metavar="ID")
    setup.add_argument("--institutions", type=int, default=2, metavar="N", help="default 2")
    setup.add_argument(
        "--domain", default="sseaun-test.example", help="default sseaun-test.example"
    )
    setup.add_argument("--country", default="ZZ", help="ISO 3166-1 alpha-2 (default ZZ)")
    setup.add_argument("--key-days", type=int, default=365, help="validity of the keys listed")
    setup.add_argument("--passphrase-env", metavar="VAR", help="encrypt the private keys")
    setup.set_defaults(handler=_setup)

    req = sub.add_parser(
        "requirements",
        help="the spec's requirements, their levels and the checks covering them",
    )
    req.add_argument("--json", action="store_true", help="print JSON")
    req.set_defaults(handler=_requirements)

    vec = sub.add_parser(
        "vectors",
        help="compare an implementation's outputs for the test vectors with the expected ones",
        description="Compare DIR/<section>/<case>.json with the vectors (docs/conformance.md "
        "describes the files), or run the sdk core over them with --self. Exit 1 when a case "
        "differs or is missing.",
    )
    source = vec.add_mutually_exclusive_group(required=True)
    source.add_argument("--dir", metavar="DIR", help="the implementation's output files")
    source.add_argument("--self", action="store_true", help="the sdk core's own outputs")
    vec.add_argument("--write", metavar="DIR", help="with --self: write its outputs as files")
    vec.add_argument(
        "--section",
        action="append",
        choices=("keys", "pae", "envelopes", "manifests", "requests"),
        help="only this section (repeatable; default all)",
    )
    vec.add_argument("--vectors", metavar="DIR", help="another vectors folder (with index.json)")
    vec.add_argument("--quiet", action="store_true", help="list only cases that do not agree")
    vec.set_defaults(handler=_vectors)
