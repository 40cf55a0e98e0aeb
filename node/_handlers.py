"""gRPC handler registration with request parsing that never fails.

The generated add_*Servicer_to_server functions parse requests with FromString, and a message
that does not parse makes gRPC answer INTERNAL on its own, unsigned. Here a request that does not
parse becomes an empty one, which then fails verification as MALFORMED with a signed error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message

__all__ = ["add_service"]


def _tolerant(message_type: type[Message]) -> Callable[[bytes], Message]:
    def parse(data: bytes) -> Message:
        message = message_type()
        try:
            message.ParseFromString(data)
        except DecodeError:
            message.Clear()
        return message

    return parse


def add_service(server: grpc.aio.Server, servicer: Any, service: ServiceDescriptor) -> None:
    """Register every method of service on server, answered by servicer's same-named methods."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        behaviour = getattr(servicer, method.name)
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(
            behaviour,
            request_deserializer=_tolerant(request),
            response_serializer=response.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
