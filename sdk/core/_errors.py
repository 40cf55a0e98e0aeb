"""The one error taxonomy: stable reason codes, each with the gRPC status it travels with."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sseaun.v1 import errors_pb2

__all__ = ["DOMAIN", "FieldProblem", "ProtocolError", "Reason"]

#: The google.rpc.ErrorInfo domain of every SSEAUN reason (spec ERR-2).
DOMAIN = "sseaun.network"


class Reason(enum.Enum):
    """A stable reason code; the value is the wire name (ErrorInfo.reason)."""

    MALFORMED = "MALFORMED"
    PAYLOAD_TYPE_UNSUPPORTED = "PAYLOAD_TYPE_UNSUPPORTED"
    KEY_UNKNOWN = "KEY_UNKNOWN"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    WRONG_NETWORK = "WRONG_NETWORK"
    SIGNER_MISMATCH = "SIGNER_MISMATCH"
    KEY_REVOKED = "KEY_REVOKED"
    KEY_WRONG_PURPOSE = "KEY_WRONG_PURPOSE"
    KEY_EXPIRED = "KEY_EXPIRED"
    CLOCK_SKEW = "CLOCK_SKEW"
    WRONG_AUDIENCE = "WRONG_AUDIENCE"
    METHOD_MISMATCH = "METHOD_MISMATCH"
    PURPOSE_NOT_ALLOWED = "PURPOSE_NOT_ALLOWED"
    REPLAYED_NONCE = "REPLAYED_NONCE"
    MANIFEST_EXPIRED = "MANIFEST_EXPIRED"
    MANIFEST_ROLLBACK = "MANIFEST_ROLLBACK"
    MANIFEST_VERSION_GAP = "MANIFEST_VERSION_GAP"
    MANIFEST_EQUIVOCATION = "MANIFEST_EQUIVOCATION"
    MANIFEST_PIN_MISMATCH = "MANIFEST_PIN_MISMATCH"
    THRESHOLD_NOT_MET = "THRESHOLD_NOT_MET"
    DELEGATION_INVALID = "DELEGATION_INVALID"
    STALE_VERSION = "STALE_VERSION"
    ILLEGAL_TRANSITION = "ILLEGAL_TRANSITION"
    RESPONSE_UNBOUND = "RESPONSE_UNBOUND"
    FEED_CHAIN_BROKEN = "FEED_CHAIN_BROKEN"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL = "INTERNAL"
    PROOF_INVALID = "PROOF_INVALID"
    LOG_INCONSISTENT = "LOG_INCONSISTENT"
    OUT_OF_RANGE = "OUT_OF_RANGE"

    @property
    def wire(self) -> int:
        """The sseaun.v1.ErrorReason number."""
        return errors_pb2.ErrorReason.Value("ERROR_REASON_" + self.value)

    @classmethod
    def from_wire(cls, number: int) -> Reason:
        """The reason for a sseaun.v1.ErrorReason number (unknown numbers read as INTERNAL)."""
        try:
            name = errors_pb2.ErrorReason.Name(number)  # type: ignore[arg-type]
        except ValueError:
            return cls.INTERNAL
        return cls.__members__.get(name.removeprefix("ERROR_REASON_"), cls.INTERNAL)

    @property
    def status_code(self) -> str:
        """The gRPC status code name this reason travels with (spec ERR-3)."""
        return _STATUS[self]


_UNAUTHENTICATED = {
    Reason.KEY_UNKNOWN,
    Reason.SIGNATURE_INVALID,
    Reason.WRONG_NETWORK,
    Reason.SIGNER_MISMATCH,
    Reason.KEY_REVOKED,
    Reason.KEY_WRONG_PURPOSE,
    Reason.KEY_EXPIRED,
    Reason.CLOCK_SKEW,
    Reason.WRONG_AUDIENCE,
    Reason.METHOD_MISMATCH,
    Reason.REPLAYED_NONCE,
}
_FAILED_PRECONDITION = {
    Reason.MANIFEST_EXPIRED,
    Reason.MANIFEST_ROLLBACK,
    Reason.MANIFEST_VERSION_GAP,
    Reason.MANIFEST_EQUIVOCATION,
    Reason.MANIFEST_PIN_MISMATCH,
    Reason.THRESHOLD_NOT_MET,
    Reason.DELEGATION_INVALID,
    Reason.ILLEGAL_TRANSITION,
    Reason.LOG_INCONSISTENT,
}
_STATUS: dict[Reason, str] = {
    **{r: "UNAUTHENTICATED" for r in _UNAUTHENTICATED},
    **{r: "FAILED_PRECONDITION" for r in _FAILED_PRECONDITION},
    Reason.MALFORMED: "INVALID_ARGUMENT",
    Reason.PAYLOAD_TYPE_UNSUPPORTED: "INVALID_ARGUMENT",
    Reason.PURPOSE_NOT_ALLOWED: "PERMISSION_DENIED",
    Reason.STALE_VERSION: "ABORTED",
    Reason.RESPONSE_UNBOUND: "DATA_LOSS",
    Reason.FEED_CHAIN_BROKEN: "DATA_LOSS",
    Reason.NOT_FOUND: "NOT_FOUND",
    Reason.RATE_LIMITED: "RESOURCE_EXHAUSTED",
    Reason.INTERNAL: "INTERNAL",
    Reason.PROOF_INVALID: "INVALID_ARGUMENT",
    Reason.OUT_OF_RANGE: "OUT_OF_RANGE",
}


@dataclass(frozen=True)
class FieldProblem:
    """One wrong field of an input (google.rpc.BadRequest.FieldViolation)."""

    field: str
    description: str


class ProtocolError(Exception):
    """Any failure of the protocol, with exactly one stable reason.

    Args:
        reason: the stable reason code.
        message: English text for developers; keep it stable (no personal data).
        field_problems: the wrong fields, for MALFORMED input.
        metadata: the dynamic values the message mentions (ErrorInfo.metadata).
    """

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        field_problems: Iterable[FieldProblem] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message
        self.field_problems = tuple(field_problems)
        self.metadata = dict(metadata or {})
