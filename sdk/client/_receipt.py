"""Receipts: what a caller keeps to check later that the node logged its call (spec LOG-9)."""

from __future__ import annotations

from dataclasses import dataclass

from sseaun.sdk.core import Answer, envelope_digest
from sseaun.v1.auth_pb2 import SignedRequest
from sseaun.v1.envelope_pb2 import Envelope

from ._errors import NodeError

__all__ = ["Receipt"]


@dataclass
class Receipt:
    """Pass one to a call; the client fills it from the verified answer.

    Example::

        receipt = Receipt()
        await node.get_record(name, purpose=..., receipt=receipt)
        # later: receipt.log_index is the node's access-log entry of this call
    """

    #: The signed request as sent (the attempt that was answered).
    request: Envelope | None = None
    #: The responder's access-log entry of the call; None if the answer carried none.
    log_index: int | None = None
    #: The institution that answered.
    responder: str = ""
    #: The method called.
    method: str = ""

    def fill(self, request: Envelope, answer: Answer) -> None:
        """Fill from a verified answer to request."""
        self.request = request
        self.log_index = answer.log_index
        self.responder = answer.header.responder
        self.method = answer.header.method

    def fill_error(self, request: Envelope, error: NodeError) -> None:
        """Fill from a verified signed error that came as a gRPC status."""
        self.request = request
        self.log_index = error.log_index
        header = SignedRequest.FromString(request.payload).header
        self.responder = header.audience
        self.method = header.method

    @property
    def request_digest(self) -> bytes:
        """SHA-256 of the PAE of the request: what the log entry's request_digest must be."""
        if self.request is None:
            raise ValueError("the receipt has not been filled by a call")
        return envelope_digest(self.request)
