"""What the client raises: the node's signed word, a rejected answer, or a transport failure.

Three kinds of failure must never be confused (DESIGN §5):

- :class:`NodeError` — the node said no, and proved it: a ``SignedError`` that verified against
  the manifest and is bound to the exact request this client sent. Only this one may be shown to
  users as "the node answered NOT_FOUND".
- :class:`AnswerVerificationError` — something answered, but the answer did not verify (forged,
  signed by the wrong institution, bound to another request, a broken or truncated feed chain,
  unparseable). Someone between the client and the node, or the node itself, misbehaved.
- :class:`TransportError` — a gRPC status with no verifiable signed error: the network, a proxy,
  the local deadline, or a forged or replayed error status. Its code is a hint, never the node's
  answer.

All three derive from :class:`ClientError` and say whether they are signed (``.signed``).
"""

from __future__ import annotations

from datetime import timedelta

from sseaun.sdk.core import ProtocolError

__all__ = ["AnswerVerificationError", "ClientError", "NodeError", "TransportError"]


class ClientError(Exception):
    """Base of every failure a node client raises.

    Attributes:
        signed: True only when the failure is the node's own verified, signed answer.
        code: the gRPC status code name (``"NOT_FOUND"``), or None when no status was involved.
        request_id: the request ID of the logical call that failed.
    """

    signed: bool = False
    code: str | None = None
    request_id: str = ""

    def diagnostics(self) -> str:
        """What to do about it, for humans (kept apart from ``str(exc)``)."""
        return "see the exception message"


class NodeError(ProtocolError, ClientError):
    """The node's signed error, verified and bound to the request this client sent.

    Attributes:
        reason: the stable reason the node signed.
        message, field_problems, metadata: as signed by the node.
        code: the gRPC status code name the node signed (spec ERR-3).
        transport_code: the code the gRPC status carried (normally the same; a proxy may differ).
        retry_after: the delay the node asked for (``google.rpc.RetryInfo``), if any. RetryInfo
            travels beside the signed error, not inside it, so it is advisory only.
        answer_digest: SHA-256 of PAE of the signed error: evidence of what the node said.
        log_index: the node's access-log entry of the call, if it logged it (spec LOG-6).
    """

    signed = True

    def __init__(
        self,
        error: ProtocolError,
        *,
        code: str,
        transport_code: str,
        retry_after: timedelta | None,
        request_id: str,
        answer_digest: bytes,
        log_index: int | None = None,
    ) -> None:
        super().__init__(
            error.reason,
            error.message,
            field_problems=error.field_problems,
            metadata=error.metadata,
        )
        self.code = code
        self.transport_code = transport_code
        self.retry_after = retry_after
        self.request_id = request_id
        self.answer_digest = answer_digest
        self.log_index = log_index

    def diagnostics(self) -> str:
        return (
            f"the node answered {self.code} with reason {self.reason.value} (signed and "
            "verified); fix the request or the state it refers to before calling again"
        )


class AnswerVerificationError(ProtocolError, ClientError):
    """An answer arrived but did not verify; its content was not used.

    The reason is the core's (KEY_UNKNOWN, SIGNATURE_INVALID, SIGNER_MISMATCH, RESPONSE_UNBOUND,
    FEED_CHAIN_BROKEN, MALFORMED, PAYLOAD_TYPE_UNSUPPORTED, ...). The code is the gRPC code of
    the reason (DATA_LOSS for an unbound answer or a broken chain).
    """

    signed = False

    def __init__(self, error: ProtocolError, *, request_id: str) -> None:
        super().__init__(
            error.reason,
            error.message,
            field_problems=error.field_problems,
            metadata=error.metadata,
        )
        self.code = error.reason.status_code
        self.request_id = request_id

    def diagnostics(self) -> str:
        return (
            f"the answer failed verification ({self.reason.value}): it was forged, altered, "
            "replayed or cut short on the way, or the node misbehaves; check the target, any "
            "proxy in between, and that the local manifest is current"
        )


class TransportError(ClientError):
    """A failed call with no verifiable signed error: UNSIGNED, not the node's answer.

    Attributes:
        code: the gRPC status code name, as the transport reported it.
        details: the status message, as received (untrusted).
        claimed_reason: the reason of an unsigned ``google.rpc.ErrorInfo`` in the sseaun domain,
            if any (untrusted: anyone on the path can write it).
        rejection: why a signed error detail that was present did not verify (a forged or
            replayed error), or None when there was none.
        retry_after: an unsigned ``google.rpc.RetryInfo`` delay, if any.
    """

    signed = False

    def __init__(
        self,
        code: str,
        details: str,
        *,
        request_id: str,
        claimed_reason: str | None = None,
        rejection: ProtocolError | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        text = f"{code} (unsigned transport status): {details}" if details else code
        if rejection is not None:
            text += f"; its signed error detail was rejected: {rejection}"
        super().__init__(text)
        self.code = code
        self.details = details
        self.request_id = request_id
        self.claimed_reason = claimed_reason
        self.rejection = rejection
        self.retry_after = retry_after

    def diagnostics(self) -> str:
        if self.rejection is not None:
            return (
                "the error status carried a signed error that did not verify: treat it as "
                "forged or replayed and do not act on its reason"
            )
        if self.code == "DEADLINE_EXCEEDED":
            return "no answer within the deadline; retry later or raise the deadline"
        if self.code == "UNAVAILABLE":
            return (
                "the node could not be reached; check the target address, TLS settings and network"
            )
        return "the status was not signed by the node; it may come from a proxy or the transport"
