"""A real test network on loopback: governance keys, node folders, a signed manifest, and
`sseaun node serve` processes (TEST KEYS ONLY, made fresh in a temporary folder)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sseaun.sdk.cli import main as sseaun

MEMBERS = (
    ("ynu.edu.cn", "CN", "en=Yunnan University", "zh-Hans=云南大学"),
    ("chula.ac.th", "TH", "en=Chulalongkorn University", "th=จุฬาลงกรณ์มหาวิทยาลัย"),
    ("du.ac.bd", "BD", "en=University of Dhaka", "bn=ঢাকা বিশ্ববিদ্যালয়"),
)
#: A virtual institution that only calls (as a conformance auditor would); it runs no node.
TESTER = ("tester.sseaun-test.example", "SG", "en=Test Caller", "en=Test Caller")
NETWORK = "sseaun-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run(*argv: str) -> None:
    status = sseaun(list(argv))
    if status != 0:
        raise RuntimeError(f"sseaun {' '.join(argv)} exited {status}")


@dataclass
class NodeDir:
    institution: str
    folder: Path
    grpc_port: int
    http_port: int
    process: subprocess.Popen[str] | None = None
    log: list[str] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.folder / "node.toml"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sseaun.sdk.cli", "node", "serve", "--config", str(self.config)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.log.append(line)
            if line.startswith("serving "):
                return
        self.stop()
        raise RuntimeError(f"{self.institution} did not start:\n{''.join(self.log)}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout)
        if self.process.stdout is not None:
            self.log.extend(self.process.stdout.readlines())
            self.process.stdout.close()
        self.process = None
        return code


@dataclass
class LiveNetwork:
    root: Path
    nodes: dict[str, NodeDir]
    tester: NodeDir
    manifest: Path

    def keys(self, institution: str) -> Path:
        node = self.nodes.get(institution) or self.tester
        return node.folder / "keys" / institution


def build(root: Path, members: tuple[tuple[str, str, str, str], ...] = MEMBERS) -> LiveNetwork:
    """Node folders, governance keys held by the first three members, a v1 manifest signed by
    two of them, pinned in every node."""
    gov = root / "governance"
    nodes: dict[str, NodeDir] = {}
    for inst, country, *names in (*members, TESTER):
        node = NodeDir(inst, root / inst, free_port(), free_port())
        name_args = [a for n in dict.fromkeys(names) for a in ("--name", n)]
        run("node", "init", "--institution", inst, "--country", country, "--dir", str(node.folder),
            "--network-id", NETWORK, "--grpc", node.target, "--http", f"127.0.0.1:{node.http_port}",
            "--plaintext", *name_args)  # fmt: skip
        nodes[inst] = node
    tester = nodes.pop(TESTER[0])
    holders = [m[0] for m in members[:3]]
    for holder in holders:
        run("keys", "generate", "--out", str(gov), "--name", holder)
    draft, manifest = str(root / "draft.json"), root / "manifest.json"
    run("manifest", "init", "--network-id", NETWORK, "--threshold", "2", "--out", draft,
        *[f"--governance={gov}/{h}.public.pem={h}" for h in holders])  # fmt: skip
    for node in (*nodes.values(), tester):
        extra = ["--test-institution"] if node is tester else []
        run("manifest", "add-member", "--in", draft, "--join-request",
            str(node.folder / "join-request.json"), *extra)  # fmt: skip
    run("manifest", "sign", "--in", draft, "--key", f"{gov}/{holders[0]}.private.pem",
        "--out", str(manifest))  # fmt: skip
    run("manifest", "sign", "--in", str(manifest), "--key", f"{gov}/{holders[1]}.private.pem",
        "--out", str(manifest))  # fmt: skip
    for node in nodes.values():
        run("node", "pin-manifest", "--config", str(node.config), "--manifest", str(manifest))
    return LiveNetwork(root, nodes, tester, manifest)


@contextlib.contextmanager
def running(network: LiveNetwork, *institutions: str) -> Iterator[LiveNetwork]:
    started = [network.nodes[i] for i in institutions or network.nodes]
    try:
        for node in started:
            node.start()
        yield network
    finally:
        for node in started:
            node.stop()
