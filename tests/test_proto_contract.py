"""The wire contract: lint clean, generated code current, breaking changes caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUF = Path(sys.executable).parent / "buf"


def buf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_generated_code_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_contract_is_lint_clean_and_unbroken_against_the_release() -> None:
    proto = ROOT / "proto"
    assert buf("lint", cwd=proto).returncode == 0
    result = buf("breaking", "--against", "released/sseaun-v1.binpb", cwd=proto)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def proto_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", copy, ignore=shutil.ignore_patterns("*_pb2*", "__pycache__"))
    return copy


def test_a_field_type_change_is_reported_as_breaking(proto_copy: Path) -> None:
    envelope = proto_copy / "sseaun" / "v1" / "envelope.proto"
    envelope.write_text(envelope.read_text().replace("bytes payload = 1;", "string payload = 1;"))
    result = buf("breaking", "--against", "released/sseaun-v1.binpb", cwd=proto_copy)
    assert result.returncode != 0
    assert "payload" in result.stdout + result.stderr


def test_an_additive_field_is_not_breaking(proto_copy: Path) -> None:
    types = proto_copy / "sseaun" / "v1" / "types.proto"
    types.write_text(
        types.read_text().replace(
            "  string text = 2;\n}", "  string text = 2;\n  string note = 3;\n}", 1
        )
    )
    assert buf("breaking", "--against", "released/sseaun-v1.binpb", cwd=proto_copy).returncode == 0


def test_envelope_keeps_dsse_field_numbers() -> None:
    from sseaun.v1.envelope_pb2 import Envelope, Signature

    fields = {f.name: f.number for f in Envelope.DESCRIPTOR.fields}
    assert fields == {"payload": 1, "payload_type": 2, "signatures": 3}
    assert {f.name: f.number for f in Signature.DESCRIPTOR.fields} == {"sig": 1, "keyid": 2}
