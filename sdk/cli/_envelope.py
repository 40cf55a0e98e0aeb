"""``sseaun envelope``: sign and verify DSSE envelopes with a single key."""

from __future__ import annotations

import argparse
import sys

from sseaun.sdk.core import (
    ProtocolError,
    Reason,
    check_structure,
    envelope_to_json,
    key_id_for,
    pae,
    sign_envelope,
    verify_signature,
)

from ._io import read_bytes, read_envelope, read_private_key, read_public_key


def _sign(args: argparse.Namespace) -> int:
    signer = read_private_key(args.key, args.passphrase_env)
    payload = sys.stdin.buffer.read() if args.input == "-" else read_bytes(args.input)
    print(envelope_to_json(sign_envelope(payload, args.type, [signer])))
    return 0


def _verify(args: argparse.Namespace) -> int:
    public = read_public_key(args.pub)
    envelope = read_envelope(args.input)
    check_structure(envelope)
    if args.type and envelope.payload_type != args.type:
        raise ProtocolError(Reason.PAYLOAD_TYPE_UNSUPPORTED, "payload type differs from --type")
    # The key is given explicitly, so every signature is tried with it: key IDs are only hints.
    message = pae(envelope.payload_type, envelope.payload)
    if not any(verify_signature(public, s.sig, message) for s in envelope.signatures):
        raise ProtocolError(
            Reason.SIGNATURE_INVALID,
            "no signature verifies with this key",
            metadata={"key-id": key_id_for(public)},
        )
    print(envelope.payload_type)
    if args.payload_out:
        with open(args.payload_out, "wb") as out:
            out.write(envelope.payload)
    return 0


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    env = groups.add_parser("envelope", help="DSSE envelopes")
    sub = env.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sign = sub.add_parser("sign", help="print the DSSE JSON envelope of a file's exact bytes")
    sign.add_argument("--key", required=True, metavar="PRIVATE.pem")
    sign.add_argument("--type", required=True, metavar="PAYLOAD_TYPE")
    sign.add_argument("--in", dest="input", required=True, metavar="FILE", help="'-' for stdin")
    sign.add_argument("--passphrase-env", metavar="VAR")
    sign.set_defaults(handler=_sign)
    verify = sub.add_parser("verify", help="verify a DSSE JSON envelope; prints its payload type")
    verify.add_argument("--pub", required=True, metavar="PUBLIC.pem")
    verify.add_argument("--in", dest="input", required=True, metavar="ENVELOPE.json")
    verify.add_argument("--type", metavar="PAYLOAD_TYPE", help="also require this payload type")
    verify.add_argument("--payload-out", metavar="FILE", help="write the verified payload here")
    verify.set_defaults(handler=_verify)
