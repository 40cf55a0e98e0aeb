"""The node's one edge from the error taxonomy to gRPC: status code + google.rpc.Status details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.protobuf.duration_pb2 import Duration

# googleapis-common-protos ships .pyi files but no py.typed marker
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped, unused-ignore]
from grpc_status import rpc_status

from sseaun.sdk.core import DOMAIN, Envelope, ProtocolError

__all__ = ["status_for"]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def status_for(
    error: ProtocolError, signed: Envelope, retry_after: float | None = None
) -> grpc.Status:
    """The gRPC status of an error (spec ERR-2, ERR-3): ErrorInfo always, BadRequest for field
    problems, RetryInfo when a retry delay applies, and the node's signed error envelope."""
    code = getattr(code_pb2, error.reason.status_code)
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason.value, domain=DOMAIN, metadata=error.metadata
            )
        )
    ]
    if error.field_problems:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=p.field, description=p.description
                        )
                        for p in error.field_problems
                    ]
                )
            )
        )
    if retry_after is not None:
        delay = Duration()
        delay.FromMilliseconds(round(retry_after * 1000))  # the signed retry-after-ms, exactly
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    details.append(_pack(signed))
    return rpc_status.to_status(
        status_pb2.Status(code=code, message=error.message, details=details)
    )
