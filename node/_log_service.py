"""AccessLogService: checkpoints, proofs and cosignatures of the logs a node keeps (spec LOG-8)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from sseaun.sdk.core import (
    Checkpoint,
    FieldProblem,
    ProtocolError,
    Reason,
    SignedNote,
    VerifiedRequest,
    from_timestamp,
    parse_signed_note,
    verify_cosignature,
)
from sseaun.v1 import access_log_pb2 as pb
from sseaun.v1 import access_log_pb2_grpc as pb_grpc
from sseaun.v1.auth_pb2 import Purpose
from sseaun.v1.manifest_pb2 import KeyPurpose

from ._access_log import AccessLog
from ._services import _Base

__all__ = ["LOG_PURPOSES", "AccessLogService"]

#: Who may read a log's proofs: partners running the network and auditors.
LOG_PURPOSES = frozenset({Purpose.PURPOSE_NETWORK_OPERATIONS, Purpose.PURPOSE_AUDIT})
_PREFIX = "/sseaun.v1.AccessLogService/"


class AccessLogService(_Base, pb_grpc.AccessLogServiceServicer):
    """The log of the request's audience: every answer signed and bound, every call logged."""

    GET_CHECKPOINT = _PREFIX + "GetCheckpoint"
    GET_INCLUSION = _PREFIX + "GetInclusionProof"
    GET_CONSISTENCY = _PREFIX + "GetConsistencyProof"
    ADD_COSIGNATURE = _PREFIX + "AddCosignature"

    def _log(self, verified: VerifiedRequest) -> AccessLog:
        return self.node.access_logs[verified.header.audience]

    async def GetCheckpoint(  # noqa: N802 - generated name
        self, request: pb.GetCheckpointRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetCheckpointResponse:
        async def handle(
            verified: VerifiedRequest, body: pb.GetCheckpointBody, _: list[str]
        ) -> Message:
            checkpoint = await self._log(verified).checkpoint(body.min_size)
            return pb.GetCheckpointResult(checkpoint=checkpoint.text)

        envelope = await self._unary(
            request, context, self.GET_CHECKPOINT, LOG_PURPOSES, pb.GetCheckpointBody, handle
        )
        return pb.GetCheckpointResponse(response=envelope)

    async def GetInclusionProof(  # noqa: N802
        self, request: pb.GetInclusionProofRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetInclusionProofResponse:
        async def handle(
            verified: VerifiedRequest, body: pb.GetInclusionProofBody, _: list[str]
        ) -> Message:
            access = self._log(verified)
            leaf, hashes = await access.inclusion(body.index, body.tree_size)
            result = pb.GetInclusionProofResult(
                index=body.index, tree_size=body.tree_size, leaf_hash=leaf, hashes=hashes
            )
            entry = await access.entry(body.index)
            # Only the caller of an entry sees it whole: who else called when is not shared.
            if entry is not None and _caller_of(entry) == verified.sender:
                result.entry = entry
            return result

        envelope = await self._unary(
            request, context, self.GET_INCLUSION, LOG_PURPOSES, pb.GetInclusionProofBody, handle
        )
        return pb.GetInclusionProofResponse(response=envelope)

    async def GetConsistencyProof(  # noqa: N802
        self,
        request: pb.GetConsistencyProofRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> pb.GetConsistencyProofResponse:
        async def handle(
            verified: VerifiedRequest, body: pb.GetConsistencyProofBody, _: list[str]
        ) -> Message:
            hashes = await self._log(verified).consistency(body.old_size, body.new_size)
            return pb.GetConsistencyProofResult(
                old_size=body.old_size, new_size=body.new_size, hashes=hashes
            )

        envelope = await self._unary(
            request,
            context,
            self.GET_CONSISTENCY,
            LOG_PURPOSES,
            pb.GetConsistencyProofBody,
            handle,
        )
        return pb.GetConsistencyProofResponse(response=envelope)

    async def AddCosignature(  # noqa: N802
        self, request: pb.AddCosignatureRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.AddCosignatureResponse:
        async def handle(
            verified: VerifiedRequest, body: pb.AddCosignatureBody, _: list[str]
        ) -> Message:
            size = await self._add_cosignature(verified, body.checkpoint)
            return pb.AddCosignatureResult(tree_size=size)

        envelope = await self._unary(
            request,
            context,
            self.ADD_COSIGNATURE,
            frozenset({Purpose.PURPOSE_NETWORK_OPERATIONS}),
            pb.AddCosignatureBody,
            handle,
        )
        return pb.AddCosignatureResponse(response=envelope)

    async def _add_cosignature(self, verified: VerifiedRequest, text: str) -> int:
        """Keep the caller's cosignature of a checkpoint this log signed (spec LOG-10)."""
        try:
            note = parse_signed_note(text)
            checkpoint = Checkpoint.from_body(note.body)
        except ProtocolError as exc:
            raise ProtocolError(
                Reason.MALFORMED,
                "the checkpoint is not a signed note",
                field_problems=[FieldProblem("checkpoint", "a C2SP signed checkpoint")],
            ) from exc
        access = self._log(verified)
        if checkpoint.origin != access.origin:
            raise ProtocolError(Reason.MALFORMED, "the checkpoint is of another log")
        # Witnesses cosign the newest checkpoint; an older one needs the whole list.
        stored = await access.store.latest_checkpoint(access.institution)
        if stored is not None and stored.size != checkpoint.size:
            held = await access.store.checkpoints(access.institution)
            stored = next((c for c in held if c.size == checkpoint.size), None)
        if stored is None or parse_signed_note(stored.note).body != note.body:
            raise ProtocolError(Reason.NOT_FOUND, "this log signed no such checkpoint")
        witness = verified.sender
        node = self.node
        # The key must be good when the witness says it signed (its request's issue time).
        at = from_timestamp(verified.header.issued_at)
        keys = node.keyring.keys_for(witness, KeyPurpose.KEY_PURPOSE_LOG, at)
        for line in (sig for sig in note.signatures if sig.name == witness):
            alone = SignedNote(note.body, (line,))
            if any(_cosigned(alone, witness, key.public_key) for key in keys):
                stored_line = line.line()
                await access.store.add_cosignature(
                    access.institution, checkpoint.size, witness, stored_line
                )
                return checkpoint.size
        raise ProtocolError(Reason.PROOF_INVALID, "no valid cosignature by the caller's log key")


def _cosigned(note: SignedNote, name: str, public_key: bytes) -> bool:
    try:
        verify_cosignature(note, name, public_key)
    except ProtocolError:
        return False
    return True


def _caller_of(entry: bytes) -> str:
    try:
        return pb.AccessLogEntry.FromString(entry).caller
    except DecodeError:
        return ""
