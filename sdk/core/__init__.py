"""The protocol core: pure functions and classes over bytes and messages. It does no IO.

Nothing here imports grpc, aiohttp, asyncio or sqlite; a test walks the imports to keep it so.
"""

from . import _access_log as access_log
from . import _catalogue as catalogue
from . import _conversion as conversion
from . import _lifecycle as lifecycle
from . import _log_evidence as log_evidence
from . import _merkle as merkle
from . import _payload_types as payload_types
from . import _records as records
from ._auth import (
    CLOCK_WINDOW,
    Answer,
    AnswerContext,
    VerifiedRequest,
    build_request,
    sign_error,
    sign_feed_page,
    sign_response,
    verify_answer,
    verify_request,
)
from ._checkpoint import (
    Checkpoint,
    NoteSignature,
    SignedNote,
    cosign,
    note_key_id,
    parse_signed_note,
    sign_checkpoint,
    verify_checkpoint,
    verify_cosignature,
)
from ._envelope import (
    Envelope,
    VerifiedEnvelope,
    add_signatures,
    check_structure,
    envelope_digest,
    envelope_from_bytes,
    envelope_from_json,
    envelope_to_json,
    pae,
    sign_envelope,
    verify_envelope,
)
from ._errors import DOMAIN, FieldProblem, ProtocolError, Reason
from ._keyring import (
    MAX_DELEGATION_LIFETIME,
    KeyRing,
    TrustedKey,
    Verified,
    sign_delegation,
    sign_revocation,
)
from ._keys import (
    Ed25519Signer,
    Signer,
    key_id_for,
    load_public_pem,
    public_key_pem,
    verify_signature,
)
from ._lifecycle import (
    OpenedRecord,
    RecordState,
    apply_decision,
    apply_envelope,
    check_reference,
    consent_in_force,
    consent_permits,
    cosign_record,
    open_record,
    record_state,
    sign_decision,
    sign_record,
)
from ._manifest import (
    ManifestTrust,
    TrustedManifest,
    governance_holders,
    listed_key,
    parse_manifest,
    sign_manifest,
    validate_manifest,
)
from ._recognition import recognition_line
from ._time import from_timestamp, to_timestamp
from ._tokens import TokenCodec

__all__ = [
    "CLOCK_WINDOW",
    "DOMAIN",
    "MAX_DELEGATION_LIFETIME",
    "Answer",
    "AnswerContext",
    "Checkpoint",
    "Ed25519Signer",
    "Envelope",
    "FieldProblem",
    "KeyRing",
    "ManifestTrust",
    "NoteSignature",
    "OpenedRecord",
    "ProtocolError",
    "Reason",
    "RecordState",
    "SignedNote",
    "Signer",
    "TokenCodec",
    "TrustedKey",
    "TrustedManifest",
    "Verified",
    "VerifiedEnvelope",
    "VerifiedRequest",
    "access_log",
    "add_signatures",
    "apply_decision",
    "apply_envelope",
    "build_request",
    "catalogue",
    "check_reference",
    "check_structure",
    "consent_in_force",
    "consent_permits",
    "conversion",
    "cosign",
    "cosign_record",
    "envelope_digest",
    "envelope_from_bytes",
    "envelope_from_json",
    "envelope_to_json",
    "from_timestamp",
    "governance_holders",
    "key_id_for",
    "lifecycle",
    "listed_key",
    "load_public_pem",
    "log_evidence",
    "merkle",
    "note_key_id",
    "open_record",
    "pae",
    "parse_manifest",
    "parse_signed_note",
    "payload_types",
    "public_key_pem",
    "recognition_line",
    "record_state",
    "records",
    "sign_checkpoint",
    "sign_decision",
    "sign_delegation",
    "sign_envelope",
    "sign_error",
    "sign_feed_page",
    "sign_manifest",
    "sign_record",
    "sign_response",
    "sign_revocation",
    "to_timestamp",
    "validate_manifest",
    "verify_answer",
    "verify_checkpoint",
    "verify_cosignature",
    "verify_envelope",
    "verify_request",
    "verify_signature",
]
