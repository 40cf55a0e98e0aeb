"""The `sseaun` command: keys, manifests built and signed by separate governance members."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sseaun.sdk.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    for name in ("gov-ynu", "gov-chula", "gov-du", "ynu-root", "chula-root"):
        assert run(capsys, "keys", "generate", "--out", str(tmp_path / "k"), "--name", name)[0] == 0
    return tmp_path / "k"


def test_keys_generate_writes_a_private_key_only_its_owner_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "keys", "generate", "--out", str(tmp_path), "--name", "root")
    assert status == 0
    private = tmp_path / "root.private.pem"
    assert private.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "root.public.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert out.split()[0] and len(out.split()[0]) == 64  # the key ID
    status, _, err = run(capsys, "keys", "generate", "--out", str(tmp_path), "--name", "root")
    assert status == 2 and "refusing to overwrite" in err


def test_passphrase_protected_keys_sign_only_with_the_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYPASS", "s3cret")
    args = ("keys", "generate", "--out", str(tmp_path), "--name", "k", "--passphrase-env")
    assert run(capsys, *args, "KEYPASS")[0] == 0
    (tmp_path / "p").write_bytes(b"hello")
    sign = ("envelope", "sign", "--key", str(tmp_path / "k.private.pem"), "--type", "text/plain")
    status, _, err = run(capsys, *sign, "--in", str(tmp_path / "p"))
    assert status == 1 and "MALFORMED" in err and "passphrase" in err
    status, out, _ = run(capsys, *sign, "--in", str(tmp_path / "p"), "--passphrase-env", "KEYPASS")
    assert status == 0 and json.loads(out)["payloadType"] == "text/plain"


def governance(keys: Path) -> list[str]:
    return [
        f"--governance={keys}/gov-ynu.public.pem=ynu.edu.cn",
        f"--governance={keys}/gov-chula.public.pem=chula.ac.th",
        f"--governance={keys}/gov-du.public.pem=du.ac.bd",
    ]


def test_governance_members_build_sign_and_rotate_a_manifest(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft, signed = str(tmp_path / "draft.json"), str(tmp_path / "m1.json")
    assert (
        run(
            capsys,
            "manifest",
            "init",
            "--network-id",
            "sseaun",
            "--threshold",
            "2",
            "--out",
            draft,
            *governance(keys),
        )[0]
        == 0
    )
    status, _, _ = run(
        capsys,
        "manifest",
        "add-member",
        "--in",
        draft,
        "--institution",
        "ynu.edu.cn",
        "--name",
        "en=Yunnan University",
        "--name",
        "zh-Hans=云南大学",
        "--country",
        "CN",
        "--root-key",
        str(keys / "ynu-root.public.pem"),
        "--grpc",
        "127.0.0.1:7001",
        "--plaintext",
    )
    assert status == 0
    # The first governance member freezes the bytes; the next one only adds a signature.
    assert (
        run(
            capsys,
            "manifest",
            "sign",
            "--in",
            draft,
            "--key",
            str(keys / "gov-ynu.private.pem"),
            "--out",
            signed,
        )[0]
        == 0
    )
    status, _, err = run(capsys, "manifest", "verify", "--in", signed)
    assert status == 1 and "THRESHOLD_NOT_MET" in err
    payload = json.loads(Path(signed).read_text())["payload"]
    status, out, _ = run(
        capsys,
        "manifest",
        "sign",
        "--in",
        signed,
        "--key",
        str(keys / "gov-du.private.pem"),
        "--out",
        signed,
    )
    assert status == 0 and "2 of 2" in out
    assert json.loads(Path(signed).read_text())["payload"] == payload
    status, out, _ = run(capsys, "manifest", "verify", "--in", signed)
    assert status == 0 and out.startswith("OK sseaun version 1")
    status, out, _ = run(capsys, "manifest", "show", "--in", signed)
    shown = json.loads(out)
    assert shown["manifest"]["members"][0]["names"]["texts"][1]["text"] == "云南大学"
    # Version 2 adds a member and must step from version 1.
    draft2, signed2 = str(tmp_path / "draft2.json"), str(tmp_path / "m2.json")
    assert run(capsys, "manifest", "init", "--previous", signed, "--out", draft2)[0] == 0
    assert (
        run(
            capsys,
            "manifest",
            "add-member",
            "--in",
            draft2,
            "--institution",
            "chula.ac.th",
            "--name",
            "th=จุฬาลงกรณ์มหาวิทยาลัย",
            "--country",
            "TH",
            "--root-key",
            str(keys / "chula-root.public.pem"),
        )[0]
        == 0
    )
    for holder in ("gov-chula", "gov-ynu"):
        source = draft2 if not Path(signed2).exists() else signed2
        assert (
            run(
                capsys,
                "manifest",
                "sign",
                "--in",
                source,
                "--key",
                str(keys / f"{holder}.private.pem"),
                "--out",
                signed2,
            )[0]
            == 0
        )
    status, out, _ = run(capsys, "manifest", "verify", "--in", signed2, "--trusted", signed)
    assert status == 0 and "version 2" in out
    status, _, err = run(capsys, "manifest", "verify", "--in", signed, "--trusted", signed2)
    assert status == 1 and "MANIFEST_ROLLBACK" in err
    status, _, err = run(capsys, "manifest", "verify", "--in", signed, "--now", "2099-01-01")
    assert status == 1 and "MANIFEST_EXPIRED" in err


def test_manifest_content_errors_name_the_field(
    tmp_path: Path, keys: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = str(tmp_path / "d.json")
    run(
        capsys,
        "manifest",
        "init",
        "--network-id",
        "sseaun",
        "--threshold",
        "1",
        "--out",
        draft,
        *governance(keys),
    )
    status, _, err = run(
        capsys,
        "manifest",
        "sign",
        "--in",
        draft,
        "--key",
        str(keys / "gov-ynu.private.pem"),
        "--out",
        str(tmp_path / "m.json"),
    )
    assert status == 1
    assert "MALFORMED" in err and "governance_threshold" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["envelope", "verify", "--pub", "/nonexistent.pem", "--in", "/nonexistent.json"],
        ["manifest", "verify", "--in", "/etc/hostname"],
        ["manifest", "show", "--in", "/etc/hostname"],
        [
            "manifest",
            "add-member",
            "--in",
            "/etc/hostname",
            "--institution",
            "x.ac.th",
            "--name",
            "en=X",
            "--country",
            "TH",
            "--root-key",
            "/etc/hostname",
        ],
        ["envelope", "sign", "--key", "/etc/hostname", "--type", "t", "--in", "/etc/hostname"],
    ],
)
def test_bad_input_gives_one_line_and_no_traceback(argv: list[str]) -> None:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-m", "sseaun.sdk.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def test_node_init_advertises_public_addresses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64

    from sseaun.v1.manifest_pb2 import EndpointKind, JoinRequest

    (tmp_path / "cert.pem").write_text("test")
    (tmp_path / "key.pem").write_text("test")
    status, _, err = run(
        capsys,
        "node",
        "init",
        "--institution",
        "x.ac.th",
        "--name",
        "X",
        "--country",
        "TH",
        "--dir",
        str(tmp_path / "node"),
        "--grpc",
        "0.0.0.0:7443",
        "--tls-cert",
        str(tmp_path / "cert.pem"),
        "--tls-key",
        str(tmp_path / "key.pem"),
        "--public-grpc",
        "node.x.ac.th:443",
        "--public-http",
        "https://node.x.ac.th",
    )
    assert status == 0, err
    envelope = json.loads((tmp_path / "node" / "join-request.json").read_text())
    member = JoinRequest.FromString(base64.b64decode(envelope["payload"])).member
    endpoints = {e.kind: (e.address, e.tls) for e in member.endpoints}
    assert endpoints[EndpointKind.ENDPOINT_KIND_GRPC] == ("node.x.ac.th:443", True)
    assert endpoints[EndpointKind.ENDPOINT_KIND_HTTP] == ("https://node.x.ac.th", True)
    assert member.limits.max_page_size == 500
    assert member.limits.max_message_bytes == 4 * 1024 * 1024


def test_node_init_needs_tls_or_plaintext_and_writes_nothing_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(
        capsys,
        "node",
        "init",
        "--institution",
        "x.ac.th",
        "--name",
        "X",
        "--country",
        "TH",
        "--dir",
        str(tmp_path / "node"),
    )
    assert status == 2 and "--plaintext" in err
    assert not (tmp_path / "node").exists()
