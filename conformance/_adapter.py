"""Running the adapter: the command that drives the node's own side of record lifecycles
(docs/conformance.md, section 5).

The command template of ``--adapter`` is split like a POSIX command line (no shell runs it); an
action and its arguments are appended (``issue --kind K --file F.json``, ``cosign NAME``,
``decide NAME --decision D [--reason R]``, ``state NAME``, each optionally ``--as INST``). A call
prints JSON on stdout and exits 0, or refuses with a non-zero exit status and one line
``error: REASON: message`` on stderr (the reference's field violations follow on indented lines
``  field: description``). Anything else is a broken adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._framework import CheckSkipped

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["ADAPTER_SECONDS", "AdapterError", "AdapterRefused", "FieldViolation", "adapter"]

#: The longest one adapter call may take (a check has 30 s in all).
ADAPTER_SECONDS = 20.0
_ERROR_LINE = re.compile(r"error: ([A-Z][A-Z0-9_]*): (.*)")
_FIELD_LINE = re.compile(r"\s+([^:\s][^:]*): (.*)")
#: How much of a broken adapter's output a message quotes.
_QUOTE = 300


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class AdapterRefused(Exception):  # noqa: N818 - reads as the outcome it reports
    """The node refused the action: the spec's reason (e.g. ILLEGAL_TRANSITION) and message,
    with the field violations the adapter printed after the error line."""

    def __init__(self, reason: str, message: str, fields: Sequence[FieldViolation] = ()) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.fields = tuple(fields)

    @property
    def field_names(self) -> list[str]:
        return [f.field for f in self.fields]


class AdapterError(Exception):
    """The adapter is broken: it could not be run, took too long, or printed something that is
    neither the JSON of the contract nor an ``error: REASON: message`` line."""


async def adapter(
    ctx: Context, action: str, *args: str, input_json: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run ``CMD action args...`` and return the JSON it printed.

    Args:
        input_json: for ``issue``, the record message as protobuf JSON: written to a temporary
            file passed as ``--file``.

    Raises:
        CheckSkipped: the run has no adapter (``--adapter``).
        AdapterRefused: the node refused the action (non-zero exit, ``error: REASON: message``).
        AdapterError: the adapter is broken.
    """
    if ctx.adapter is None:
        raise CheckSkipped("needs an adapter (--adapter)")
    try:
        template = shlex.split(ctx.adapter)
    except ValueError as exc:
        raise AdapterError(f"the adapter command does not split: {exc}") from exc
    if not template:
        raise AdapterError("the adapter command is empty")
    with contextlib.ExitStack() as stack:
        argv = [*template, action, *args]
        if input_json is not None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="sseaun-adapter-"))
            path = os.path.join(folder, "record.json")
            with open(path, "w", encoding="utf-8") as out:
                json.dump(input_json, out, ensure_ascii=False)
            argv += ["--file", path]
        status, stdout, stderr = await _run(argv)
    return _outcome(action, status, stdout, stderr)


async def _run(argv: list[str]) -> tuple[int, bytes, bytes]:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise AdapterError(f"cannot run the adapter {argv[0]!r}: {exc}") from exc
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), ADAPTER_SECONDS)
    except TimeoutError as exc:
        _kill(process)
        await process.wait()
        raise AdapterError(f"the adapter did not finish within {ADAPTER_SECONDS:g} s") from exc
    except asyncio.CancelledError:
        _kill(process)  # the check ran out of time: leave no process behind
        raise
    assert process.returncode is not None
    return process.returncode, stdout, stderr


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()


def _quote(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return repr(text[:_QUOTE] + ("…" if len(text) > _QUOTE else ""))


def _outcome(action: str, status: int, stdout: bytes, stderr: bytes) -> dict[str, Any]:
    if status != 0:
        raise _refusal(action, status, stderr)
    try:
        parsed = json.loads(stdout)
    except ValueError as exc:
        raise AdapterError(
            f"the adapter's {action} exited 0 but printed no JSON: {_quote(stdout)}"
        ) from exc
    if not isinstance(parsed, dict):
        raise AdapterError(f"the adapter's {action} printed JSON that is not an object")
    return parsed


def _refusal(action: str, status: int, stderr: bytes) -> AdapterRefused | AdapterError:
    lines = stderr.decode("utf-8", "replace").splitlines()
    for i, line in enumerate(lines):
        found = _ERROR_LINE.fullmatch(line.strip())
        if found is None:
            continue
        fields = []
        for rest in lines[i + 1 :]:
            field = _FIELD_LINE.fullmatch(rest)
            if field is None:
                break
            fields.append(FieldViolation(field.group(1).strip(), field.group(2).strip()))
        return AdapterRefused(found.group(1), found.group(2).strip(), fields)
    return AdapterError(
        f"the adapter's {action} exited {status} without an 'error: REASON: message' line; "
        f"stderr: {_quote(stderr)}"
    )
