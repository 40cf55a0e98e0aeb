"""Standard gRPC services (health, server reflection): not SSEAUN services, so they answer
without a signed request (AUTH-1). The spec does not require them; operators' probes and tools
such as grpcurl rely on them, hence SHOULD."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from .._context import Context
from .._framework import CheckFailed, check

AREA = "grpc"
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#: The SSEAUN services every node serves (the NotificationService is optional here).
SERVICES = (
    "sseaun.v1.ManifestService",
    "sseaun.v1.RecordService",
    "sseaun.v1.AccessLogService",
)


@check(
    "grpc-health-serving",
    area=AREA,
    requirements=["AUTH-1", "MAN-20"],
    level="SHOULD",
)
async def health_serving(ctx: Context) -> None:
    """grpc.health.v1 Health/Check answers SERVING for the server ("") and each SSEAUN service,
    without a signed request."""
    problems = []
    async with ctx.channel() as channel:
        check_health = channel.unary_unary(
            _HEALTH_CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        for service in ("", *SERVICES):
            shown = service or '"" (the server)'
            try:
                reply = await check_health(
                    health_pb2.HealthCheckRequest(service=service), timeout=ctx.deadline
                )
            except grpc.RpcError as exc:
                failed: grpc.aio.AioRpcError = exc  # type: ignore[assignment]
                problems.append(f"{shown}: {failed.code().name} {failed.details()!r}")
                continue
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                problems.append(f"{shown}: {status}")
    if problems:
        raise CheckFailed("health: " + "; ".join(problems))


@check("grpc-reflection-lists-services", area=AREA, requirements=["AUTH-1"], level="SHOULD")
async def reflection_lists_services(ctx: Context) -> None:
    """Server reflection (v1alpha) lists the SSEAUN services, without a signed request."""
    async with ctx.channel() as channel:
        reflect = channel.stream_stream(
            _REFLECTION,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        names: set[str] = set()
        try:
            stream = reflect(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                timeout=ctx.deadline,
            )
            async for reply in stream:
                if reply.HasField("error_response"):
                    raise CheckFailed(
                        f"reflection answered error {reply.error_response.error_code}: "
                        f"{reply.error_response.error_message!r}"
                    )
                names |= {s.name for s in reply.list_services_response.service}
        except grpc.RpcError as exc:
            failed: grpc.aio.AioRpcError = exc  # type: ignore[assignment]
            raise CheckFailed(
                f"reflection failed: {failed.code().name} {failed.details()!r}"
            ) from exc
    missing = sorted(set(SERVICES) - names)
    if missing:
        raise CheckFailed(f"reflection lists {sorted(names)}, not {missing}")
