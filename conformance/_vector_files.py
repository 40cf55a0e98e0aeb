"""`sseaun conformance vectors`: an implementation's outputs for the test vectors, as files,
compared with the expected values of conformance/vectors/index.json.

Layout (docs/conformance.md, "Test vectors"): for each case the implementation writes one JSON
object to ``DIR/<section>/<name>.json``, the case's ``name`` in the index's section:

- ``keys/<name>.json``: ``{"public_key_hex", "key_id"}`` derived from the key's ``seed_hex``;
- ``pae/<name>.json``: ``{"pae_hex"}``;
- ``envelopes/<name>.json`` and ``requests/<name>.json``: the outcome, shaped as the case's
  ``expected`` (``{"valid": true, ...values}`` or ``{"valid": false, "reason": "REASON"}``);
- ``manifests/<name>.json``: ``{"steps": [...]}``, per step its outcome shaped as the step's
  ``expected`` plus ``"current_version"`` (the version trusted afterwards, null for none).

Every member of an expected object must be there with the same value; an output may carry more
members (a message, say), which are ignored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sseaun.sdk.core import (
    Ed25519Signer,
    KeyRing,
    ManifestTrust,
    ProtocolError,
    envelope_from_json,
    key_id_for,
    pae,
    verify_envelope,
    verify_request,
)
from sseaun.v1.auth_pb2 import Purpose

__all__ = [
    "SECTIONS",
    "VECTORS",
    "Case",
    "Verdict",
    "check_outputs",
    "compare",
    "load_cases",
    "read_outputs",
    "sdk_outputs",
    "write_outputs",
]

#: The committed vectors (shipped with the package).
VECTORS = Path(__file__).resolve().parent / "vectors"
SECTIONS = ("keys", "pae", "envelopes", "manifests", "requests")


@dataclass(frozen=True)
class Case:
    """One vector case and the output a correct implementation gives."""

    section: str
    name: str
    description: str
    expected: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.section}/{self.name}"


@dataclass(frozen=True)
class Verdict:
    """How one case's output compared: "ok", "differs", "missing" or "unreadable"."""

    case: str
    status: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_cases(vectors: Path = VECTORS, sections: Iterable[str] = SECTIONS) -> list[Case]:
    """Every case of the chosen sections, in index order.

    Raises:
        OSError, ValueError, KeyError: the vectors folder is missing or not the expected shape.
    """
    index = _read_json(vectors / "index.json")
    chosen = set(sections)
    cases: list[Case] = []
    if "keys" in chosen:
        for key in _read_json(vectors / index["keys"])["keys"]:
            expected = {"public_key_hex": key["public_key_hex"], "key_id": key["key_id"]}
            cases.append(Case("keys", key["name"], key.get("role", ""), expected))
    if "pae" in chosen:
        for vector in _read_json(vectors / index["pae"])["vectors"]:
            expected = {"pae_hex": vector["pae_hex"]}
            cases.append(Case("pae", vector["name"], vector["description"], expected))
    for section in ("envelopes", "manifests", "requests"):
        if section not in chosen:
            continue
        for case in index[section]:
            if section == "manifests":
                steps = [
                    {**s["expected"], "current_version": s["current_version"]}
                    for s in case["steps"]
                ]
                expected = {"steps": steps}
            else:
                expected = dict(case["expected"])
            cases.append(Case(section, case["name"], case["description"], expected))
    return cases


# --- comparing ----------------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:79] + "…"


def compare(expected: Any, got: Any, path: str = "") -> list[str]:
    """What differs between an expected value and an output ([] when the output agrees); members
    of an output object that the expected one lacks are ignored."""
    where = path or "output"
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{where}: expected an object, got {_show(got)}"]
        problems = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else key
            if key not in got:
                problems.append(f"{sub}: missing (expected {_show(value)})")
            else:
                problems += compare(value, got[key], sub)
        return problems
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return [f"{where}: expected {_show(expected)}, got {_show(got)}"]
        return [
            p
            for i, (e, g) in enumerate(zip(expected, got, strict=True))
            for p in compare(e, g, f"{path}[{i}]")
        ]
    if isinstance(expected, bool) or isinstance(got, bool):
        same = type(expected) is type(got) and expected == got
    else:
        same = expected == got
    if not same:
        return [f"{where}: expected {_show(expected)}, got {_show(got)}"]
    return []


def check_outputs(cases: Iterable[Case], outputs: Mapping[str, Any]) -> list[Verdict]:
    """Compare each case with its output (outputs by case ID; a missing ID is a missing output,
    an Exception value an unreadable one)."""
    verdicts = []
    for case in cases:
        if case.id not in outputs:
            verdicts.append(Verdict(case.id, "missing", ("no output",)))
            continue
        got = outputs[case.id]
        if isinstance(got, Exception):
            verdicts.append(Verdict(case.id, "unreadable", (str(got),)))
            continue
        problems = compare(case.expected, got)
        verdicts.append(Verdict(case.id, "differs" if problems else "ok", tuple(problems)))
    return verdicts


def read_outputs(folder: Path, cases: Iterable[Case]) -> dict[str, Any]:
    """The outputs in folder for these cases, by case ID (absent files left out; a file that is
    not JSON as a ValueError)."""
    outputs: dict[str, Any] = {}
    for case in cases:
        path = folder / case.section / f"{case.name}.json"
        try:
            outputs[case.id] = _read_json(path)
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            outputs[case.id] = ValueError(f"{path}: {exc}")
    return outputs


def write_outputs(folder: Path, outputs: Mapping[str, Any]) -> None:
    """Write outputs (by case ID) in the layout above.

    Raises:
        OSError: cannot write.
    """
    for case_id, value in outputs.items():
        path = folder / f"{case_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- the sdk core's own outputs -----------------------------------------------------------------


def _when(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _refused(exc: ProtocolError) -> dict[str, Any]:
    return {"valid": False, "reason": exc.reason.value}


def _envelope(vectors: Path, case: Mapping[str, Any]) -> dict[str, Any]:
    keys = {k["key_id"]: bytes.fromhex(k["public_key_hex"]) for k in case["keys"]}
    try:
        envelope = envelope_from_json((vectors / case["file"]).read_bytes())
        verified = verify_envelope(envelope, keys, case["allowed_types"])
    except ProtocolError as exc:
        return _refused(exc)
    return {
        "valid": True,
        "payload_type": verified.payload_type,
        "verified_key_ids": list(verified.key_ids),
        "digest_hex": verified.digest.hex(),
    }


def _manifest(vectors: Path, case: Mapping[str, Any]) -> dict[str, Any]:
    trust: ManifestTrust | None = None
    steps: list[dict[str, Any]] = []
    for step in case["steps"]:
        result: dict[str, Any]
        try:
            if step["op"] == "bootstrap":
                envelope = envelope_from_json((vectors / step["envelope"]).read_bytes())
                trust = ManifestTrust.bootstrap(envelope, bytes.fromhex(step["pinned_digest_hex"]))
                result = {
                    "valid": True,
                    "version": trust.current.version,
                    "digest_hex": trust.current.digest.hex(),
                }
            elif trust is None:
                result = {"valid": False, "reason": "NO_TRUSTED_MANIFEST"}
            elif step["op"] == "update":
                trust.update(envelope_from_json((vectors / step["envelope"]).read_bytes()))
                result = {
                    "valid": True,
                    "version": trust.current.version,
                    "digest_hex": trust.current.digest.hex(),
                }
            elif step["op"] == "check_fresh":
                trust.check_fresh(_when(step["now"]))
                result = {"valid": True}
            else:
                result = {"valid": False, "reason": f"UNKNOWN_OP {step['op']}"}
        except ProtocolError as exc:
            result = _refused(exc)
        steps.append({**result, "current_version": trust.current.version if trust else None})
    return {"steps": steps}


def _request(vectors: Path, case: Mapping[str, Any]) -> dict[str, Any]:
    manifest = envelope_from_json((vectors / case["manifest"]).read_bytes())
    trust = ManifestTrust.bootstrap(manifest, bytes.fromhex(case["manifest_pinned_digest_hex"]))
    try:
        verified = verify_request(
            envelope_from_json((vectors / case["file"]).read_bytes()),
            KeyRing(trust.current),
            now=_when(case["now"]),
            method=case["method"],
            audiences=case["audiences"],
            allowed_purposes=[Purpose.Value(p) for p in case["allowed_purposes"]],
            clock_window=timedelta(seconds=case["clock_window_seconds"]),
        )
    except ProtocolError as exc:
        return _refused(exc)
    return {
        "valid": True,
        "sender": verified.sender,
        "key_id": verified.key.key_id,
        "request_id": verified.header.request_id,
        "body_b64": base64.b64encode(verified.body).decode(),
        "digest_hex": verified.digest.hex(),
        "nonce_key_hex": verified.nonce_key.hex(),
        "nonce_expires_at": verified.nonce_expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def sdk_outputs(vectors: Path = VECTORS, sections: Iterable[str] = SECTIONS) -> dict[str, Any]:
    """What the sdk core gives for every case of the chosen sections, by case ID."""
    index = _read_json(vectors / "index.json")
    chosen = set(sections)
    out: dict[str, Any] = {}
    if "keys" in chosen:
        for key in _read_json(vectors / index["keys"])["keys"]:
            signer = Ed25519Signer.from_seed(bytes.fromhex(key["seed_hex"]))
            public = signer.public_key
            out[f"keys/{key['name']}"] = {
                "public_key_hex": public.hex(),
                "key_id": key_id_for(public),
            }
    if "pae" in chosen:
        for vector in _read_json(vectors / index["pae"])["vectors"]:
            body = base64.b64decode(vector["payload_b64"])
            out[f"pae/{vector['name']}"] = {"pae_hex": pae(vector["payload_type"], body).hex()}
    runners = {"envelopes": _envelope, "manifests": _manifest, "requests": _request}
    for section, run in runners.items():
        if section in chosen:
            for case in index[section]:
                out[f"{section}/{case['name']}"] = run(vectors, case)
    return out
