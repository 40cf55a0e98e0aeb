"""Importing an institution's profile and course catalogue from an IRO or SIS export.

Every row is validated first and an invalid file imports nothing. A valid file is imported in
batches, each committed atomically with its batch ID, so a re-run after a crash completes it
without duplicates; a course whose content did not change gets no new version.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sseaun.sdk.core import (
    ManifestTrust,
    catalogue,
    envelope_from_bytes,
)
from sseaun.v1.catalogue_pb2 import Course, InstitutionProfile
from sseaun.v1.envelope_pb2 import Envelope

from ._config import NodeConfig
from ._keys import InstitutionKeys
from .store import NewRecord, PutStatus, Store, StoredRecord

__all__ = ["ImportReport", "import_courses", "import_profile", "print_progress"]


@dataclass(frozen=True)
class ImportReport:
    """What an import did, or why it did nothing."""

    problems: list[str]
    rows: int = 0
    new_versions: int = 0
    unchanged: int = 0
    batches_skipped: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


async def _known_schemes(store: Store) -> set[str]:
    versions = await store.manifest_versions()
    schemes = set(catalogue.DEFAULT_SCHEMES)
    if versions:
        raw = await store.get_manifest(versions[-1])
        if raw:
            manifest = ManifestTrust.bootstrap(envelope_from_bytes(raw), None).current.manifest
            schemes |= {s.id for s in manifest.credit_schemes}
    return schemes


def _as_profile(stored: StoredRecord | None) -> InstitutionProfile | None:
    if stored is None:
        return None
    return InstitutionProfile.FromString(envelope_from_bytes(stored.envelope).payload)


async def _profile(store: Store, institution: str) -> InstitutionProfile | None:
    return _as_profile(await store.get_record(catalogue.profile_record_name(institution)))


async def import_profile(
    config: NodeConfig,
    store: Store,
    keys: InstitutionKeys,
    data: bytes,
    fmt: Literal["csv", "json"],
) -> ImportReport:
    """Validate and store a new version of the institution profile (unless unchanged)."""
    institution = keys.institution
    parsed = catalogue.parse_profile(
        data, fmt=fmt, known_schemes=await _known_schemes(store), institution_id=institution
    )
    if not parsed.ok or parsed.profile is None:
        return ImportReport([str(p) for p in parsed.problems])
    name = catalogue.profile_record_name(institution)
    latest = await store.get_record(name)
    previous = _as_profile(latest)
    if previous is not None:
        previous.ClearField("header")
        if previous.SerializeToString(deterministic=True) == parsed.profile.SerializeToString(
            deterministic=True
        ):
            return ImportReport([], rows=1, unchanged=1)
    version = (latest.version if latest else 0) + 1
    now = datetime.now(UTC)
    envelope = catalogue.sign_profile(
        parsed.profile,
        network_id=config.network_id,
        institution_id=institution,
        version=version,
        issued_at=now,
        signer=keys.issuing,
    )
    await store.put_records([_new_record(name, version, institution, envelope, now)])
    return ImportReport([], rows=1, new_versions=1)


def _new_record(
    name: str, version: int, issuer: str, envelope: Envelope, now: datetime
) -> NewRecord:
    return NewRecord(
        name=name,
        parent=name.rpartition("/")[0],
        version=version,
        issuer=issuer,
        payload_type=envelope.payload_type,
        envelope=envelope.SerializeToString(),
        parties=(),
        deleted=False,
        issued_at=now,
    )


async def import_courses(
    config: NodeConfig,
    store: Store,
    keys: InstitutionKeys,
    data: bytes,
    fmt: Literal["csv", "json"],
    *,
    batch_size: int = catalogue.DEFAULT_BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Validate every row, then store the courses batch by batch (spec IMP-1..IMP-4)."""
    institution = keys.institution
    profile = await _profile(store, institution)
    parsed = catalogue.parse_courses(
        data,
        fmt=fmt,
        known_schemes=await _known_schemes(store),
        default_scheme=profile.credit_scheme_id or None if profile else None,
        known_units={u.code for u in profile.units} if profile and profile.units else None,
    )
    if not parsed.ok:
        return ImportReport([str(p) for p in parsed.problems], rows=parsed.row_count)
    digest = catalogue.file_digest(data)
    groups = catalogue.batches(parsed.rows, batch_size)
    new_versions = unchanged = skipped = 0
    for index, group in enumerate(groups):
        batch = catalogue.batch_id(institution, digest, index, size=batch_size)
        if await store.batch_done(batch):
            skipped += 1
        else:
            records: list[NewRecord] = []
            now = datetime.now(UTC)
            for row in group:
                name = catalogue.course_record_name(institution, row.course.code)
                latest = await store.get_record(name)
                if latest is not None and not latest.deleted:
                    current = Course.FromString(envelope_from_bytes(latest.envelope).payload)
                    if catalogue.course_content_digest(current) == catalogue.course_content_digest(
                        row.course
                    ):
                        unchanged += 1
                        continue
                version = (latest.version if latest else 0) + 1
                envelope = catalogue.sign_course(
                    row.course,
                    network_id=config.network_id,
                    institution_id=institution,
                    version=version,
                    issued_at=now,
                    signer=keys.issuing,
                )
                records.append(_new_record(name, version, institution, envelope, now))
            outcomes = await store.put_records(records, batch_id=batch)
            new_versions += sum(1 for o in outcomes if o.status is PutStatus.INSERTED)
        if progress is not None:
            progress(index + 1, len(groups))
    return ImportReport(
        [],
        rows=len(parsed.rows),
        new_versions=new_versions,
        unchanged=unchanged,
        batches_skipped=skipped,
    )


def print_progress(done: int, total: int) -> None:
    """A one-line progress bar on stderr."""
    width = 30
    filled = width * done // max(total, 1)
    end = "\n" if done == total else ""
    bar = "#" * filled + "-" * (width - filled)
    sys.stderr.write(f"\r[{bar}] batch {done}/{total}{end}")
    sys.stderr.flush()
