"""``sseaun keys``: generate Ed25519 key pairs."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from sseaun.sdk.core import Ed25519Signer

from ._io import CliError, read_passphrase, write_private

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _generate(args: argparse.Namespace) -> int:
    if not _NAME.match(args.name):
        raise CliError("--name: letters, digits, '.', '_' and '-' only")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {out}: {exc.strerror or exc}") from exc
    signer = Ed25519Signer.generate()
    private = out / f"{args.name}.private.pem"
    public = out / f"{args.name}.public.pem"
    if public.exists():
        raise CliError(f"{public} exists; refusing to overwrite a key")
    write_private(private, signer.to_pem(read_passphrase(args.passphrase_env)))
    public.write_bytes(signer.public_pem())
    print(f"{signer.key_id}  {private}  {public}", file=sys.stdout)
    return 0


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = groups.add_parser("keys", help="Ed25519 key pairs")
    sub = keys.add_subparsers(dest="command", metavar="COMMAND", required=True)
    gen = sub.add_parser("generate", help="make DIR/NAME.private.pem and DIR/NAME.public.pem")
    gen.add_argument("--out", required=True, metavar="DIR")
    gen.add_argument("--name", required=True)
    gen.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="encrypt the private key with the passphrase in this variable",
    )
    gen.set_defaults(handler=_generate)
