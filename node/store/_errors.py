"""The store's errors: one base class, so callers never see an engine's own exceptions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "StoreClosedError",
    "StoreConflictError",
    "StoreError",
    "StoreVersionError",
    "VersionProblem",
]


class StoreError(Exception):
    """A store operation failed; an engine's own error, if any, is chained as __cause__."""


class StoreClosedError(StoreError):
    """The store was closed; open it again to use it."""


class StoreConflictError(StoreError):
    """Something already stored under the same identity has different bytes; nothing was written.

    For records the identity is (name, version): a second, different envelope for a version that
    is already stored means its issuer signed two versions with one number (or the caller mixed
    up records). For manifests it is the version number (equivocation).
    """

    def __init__(self, message: str, names: Iterable[str]) -> None:
        super().__init__(message)
        #: The names of the conflicting records (``name@version``) or manifests (``manifests/N``).
        self.names: tuple[str, ...] = tuple(names)


@dataclass(frozen=True, slots=True)
class VersionProblem:
    """A record version that does not follow the stored one: expected is latest + 1 (1 if new)."""

    name: str
    version: int
    expected: int


class StoreVersionError(StoreError):
    """A record version is not exactly the stored latest + 1; nothing of the batch was written."""

    def __init__(self, problems: Iterable[VersionProblem]) -> None:
        #: Every out-of-step version of the batch, in batch order.
        self.problems: tuple[VersionProblem, ...] = tuple(problems)
        listed = ", ".join(f"{p.name}@{p.version} (expected {p.expected})" for p in self.problems)
        super().__init__(f"versions must step by 1 from the stored latest: {listed}")
