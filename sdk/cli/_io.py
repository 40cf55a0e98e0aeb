"""File and environment access for the command line (the shell around the pure core)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from sseaun.sdk.core import Ed25519Signer, Envelope, envelope_from_json, load_public_pem

__all__ = [
    "CliError",
    "parse_time",
    "read_bytes",
    "read_envelope",
    "read_passphrase",
    "read_private_key",
    "read_public_key",
    "write_private",
    "write_text",
]


class CliError(Exception):
    """Bad input to a command: a one-line message, exit status 2."""


def read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc


def write_text(path: str, text: str) -> None:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(target)  # a crash never leaves half a file behind
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise CliError(f"{path} exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def read_passphrase(env_name: str | None) -> bytes | None:
    """The passphrase held in environment variable env_name, if one is named."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if not value:
        raise CliError(f"environment variable {env_name} is empty or unset")
    return value.encode()


def read_private_key(path: str, passphrase_env: str | None = None) -> Ed25519Signer:
    return Ed25519Signer.from_pem(read_bytes(path), read_passphrase(passphrase_env))


def read_public_key(path: str) -> bytes:
    return load_public_pem(read_bytes(path))


def read_envelope(path: str) -> Envelope:
    return envelope_from_json(read_bytes(path))


def parse_time(text: str | None) -> datetime:
    """An ISO 8601 time (UTC if no offset is given), or now."""
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"not an ISO 8601 time: {text}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)
