"""A real test network on loopback: governance keys, node folders, a signed manifest, and
`sseaun node serve` processes (TEST KEYS ONLY, made fresh in a temporary folder)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sseaun.node._keys import InstitutionKeys, join_request
from sseaun.sdk.cli import main as sseaun
from sseaun.sdk.client import ClientConfig, NodeClient
from sseaun.sdk.core import KeyRing, ManifestTrust, envelope_from_json, envelope_to_json
from sseaun.v1.manifest_pb2 import Endpoint, EndpointKind

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
    _drain: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def config(self) -> Path:
        return self.folder / "node.toml"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0, *, drain: bool = False) -> None:
        """Run `sseaun node serve` and wait for its "serving" line.

        With drain, a thread keeps reading the node's output into log afterwards, so a node that
        logs a lot never blocks on a full pipe, and tests can wait for a log line.
        """
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
                if drain:
                    self._drain = threading.Thread(
                        target=self._read_rest, args=(self.process.stdout,), daemon=True
                    )
                    self._drain.start()
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
        if self._drain is not None:
            self._drain.join(timeout)
            self._drain = None
        elif self.process.stdout is not None:
            self.log.extend(self.process.stdout.readlines())
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        return code

    def _read_rest(self, stream: IO[str]) -> None:
        for line in stream:
            self.log.append(line)

    @property
    def alive(self) -> bool:
        """The node process is running."""
        return self.process is not None and self.process.poll() is None

    def configure(self, **options: object) -> None:
        """Set options of node.toml, named "section.key" with the dot as "__" (grpc__plaintext=
        False) or given as a mapping: configure(**{"limits.rate_burst": 3}). Replaces the line
        of an option already present (commented-out lines included), else appends it to its
        section; the result must parse as TOML.
        """
        lines = self.config.read_text().splitlines()
        for name, value in options.items():
            section, _, key = name.replace("__", ".").partition(".")
            rendered = f"{key} = {_toml_value(value)}"
            start = next(
                (i for i, line in enumerate(lines) if line.strip() == f"[{section}]"), None
            )
            if start is None:
                lines += ["", f"[{section}]", rendered]
                continue
            end = next(
                (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
                len(lines),
            )
            for i in range(start + 1, end):
                bare = lines[i].lstrip("# ").split("=", 1)[0].strip()
                if bare == key and "=" in lines[i]:
                    lines[i] = rendered
                    break
            else:
                lines.insert(end, rendered)
        text = "\n".join(lines) + "\n"
        tomllib.loads(text)
        self.config.write_text(text)

    def healthz(self) -> tuple[int, dict[str, object]]:
        """GET /healthz: the HTTP status and the JSON body (503 included)."""
        return http_json(f"{self.http}/healthz")

    def log_text(self) -> str:
        return "".join(self.log)


@dataclass
class LiveNetwork:
    root: Path
    nodes: dict[str, NodeDir]
    tester: NodeDir
    manifest: Path

    def keys(self, institution: str) -> Path:
        node = self.nodes.get(institution) or self.tester
        return node.folder / "keys" / institution


def build(
    root: Path,
    members: tuple[tuple[str, str, str, str], ...] = MEMBERS,
    *,
    issued_at: datetime | None = None,
    expires_days: int | None = None,
    tls: Collection[str] = (),
) -> LiveNetwork:
    """Node folders, governance keys held by the first three members, a v1 manifest signed by
    two of them, pinned in every node.

    issued_at and expires_days set the manifest's issue time and lifetime (e.g. issued 400 days
    ago for 365 days: a network whose manifest has expired); the CLI's defaults otherwise.
    The institutions in tls get a manifest entry whose gRPC endpoint says TLS (their join
    request is re-signed so); their node.toml still says plaintext: configure grpc.tls_cert,
    tls_key and plaintext = false before starting them.
    """
    gov = root / "governance"
    nodes: dict[str, NodeDir] = {}
    for inst, country, *names in (*members, TESTER):
        node = NodeDir(inst, root / inst, free_port(), free_port())
        name_args = [a for n in dict.fromkeys(names) for a in ("--name", n)]
        run("node", "init", "--institution", inst, "--country", country, "--dir", str(node.folder),
            "--network-id", NETWORK, "--grpc", node.target, "--http", f"127.0.0.1:{node.http_port}",
            "--plaintext", *name_args)  # fmt: skip
        if inst in tls:
            _ask_for_tls(node, country, names)
        nodes[inst] = node
    tester = nodes.pop(TESTER[0])
    holders = [m[0] for m in members[:3]]
    for holder in holders:
        run("keys", "generate", "--out", str(gov), "--name", holder)
    draft, manifest = str(root / "draft.json"), root / "manifest.json"
    times = [] if issued_at is None else ["--issued-at", issued_at.isoformat()]
    times += [] if expires_days is None else ["--expires-days", str(expires_days)]
    run("manifest", "init", "--network-id", NETWORK, "--threshold", "2", "--out", draft,
        *[f"--governance={gov}/{h}.public.pem={h}" for h in holders], *times)  # fmt: skip
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


def _ask_for_tls(node: NodeDir, country: str, names: list[str]) -> None:
    """Re-sign the node's join request with a TLS gRPC endpoint (`node init` only writes one
    for a TLS node, which it cannot initialise without certificate files)."""
    keys = InstitutionKeys.load(node.folder / "keys", node.institution, None)
    request = join_request(
        keys,
        network_id=NETWORK,
        names=dict(n.split("=", 1) for n in names),
        country=country,
        endpoints=[
            Endpoint(kind=EndpointKind.ENDPOINT_KIND_GRPC, address=node.target, tls=True),
            Endpoint(kind=EndpointKind.ENDPOINT_KIND_HTTP, address=node.http),
        ],
        now=datetime.now(UTC),
    )
    (node.folder / "join-request.json").write_text(envelope_to_json(request) + "\n")


def keys_of(network: LiveNetwork, institution: str) -> InstitutionKeys:
    """An institution's keys, from its node folder (the tester's included)."""
    return InstitutionKeys.load(network.keys(institution).parent, institution, None)


def trusted_keyring(manifest: Path) -> KeyRing:
    """A client's key ring: the manifest in this file, trusted on its own signatures."""
    return KeyRing(ManifestTrust.bootstrap(envelope_from_json(manifest.read_bytes()), None).current)


def node_client(
    network: LiveNetwork,
    audience: str,
    *,
    sender: str | None = None,
    target: str | None = None,
    manifest: Path | None = None,
    **options: object,
) -> NodeClient:
    """An SDK client calling audience's node as sender (default: the tester), plaintext with a
    15 s deadline unless options (ClientConfig fields) say otherwise."""
    sender = sender or network.tester.institution
    settings: dict[str, object] = {"plaintext": True, "deadline": 15.0, **options}
    config = ClientConfig(
        network_id=NETWORK,
        sender=sender,
        signer=keys_of(network, sender).transport,
        **settings,  # type: ignore[arg-type]
    )
    ring = trusted_keyring(manifest or network.manifest)
    return NodeClient(config, ring, target or network.nodes[audience].target, audience)


def governance_key(network: LiveNetwork, holder: int) -> Path:
    """The private governance key of the holder-th governance institution (0, 1 or 2)."""
    institution = list(network.nodes)[holder]
    return network.root / "governance" / f"{institution}.private.pem"


def next_manifest(
    network: LiveNetwork,
    previous: Path,
    out: Path,
    *,
    signers: tuple[int, ...] = (0, 1),
    extra: tuple[str, ...] = (),
) -> Path:
    """Sign the version after previous (`manifest init --previous`, then one `sign` per
    governance holder index in signers); extra arguments go to `manifest init`."""
    draft = str(out.with_suffix(".draft.json"))
    run("manifest", "init", "--previous", str(previous), "--out", draft, *extra)
    source = draft
    for holder in signers:
        run("manifest", "sign", "--in", source, "--key", str(governance_key(network, holder)),
            "--out", str(out))  # fmt: skip
        source = str(out)
    return out


def write_atomically(path: Path, data: bytes) -> None:
    """Replace path's content in one rename, so a node polling it never reads half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def http_json(url: str, timeout: float = 10.0) -> tuple[int, dict[str, object]]:
    """GET a JSON document: the HTTP status and the parsed body, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            status, body = reply.status, reply.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    parsed = json.loads(body) if body.strip().startswith(b"{") else {"text": body.decode()}
    return status, parsed


def wait_for(
    condition: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> None:
    """Poll condition until it holds.

    Raises:
        AssertionError: it did not hold within timeout.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


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


# --- peer sync and crash tests ----------------------------------------------------------------


def set_section(config: Path, section: str, **values: str | int | float | bool | list[str]) -> None:
    """Set keys of one [section] of a node.toml (the section must exist; keys already present
    in it, commented out or not, are replaced, others are added at its end)."""
    lines = config.read_text().splitlines()
    start = lines.index(f"[{section}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    body = [
        line
        for line in lines[start + 1 : end]
        if line.lstrip("# ").split("=", 1)[0].strip() not in values or "=" not in line
    ]
    body += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    text = "\n".join([*lines[: start + 1], *body, *lines[end:]]) + "\n"
    tomllib.loads(text)
    config.write_text(text)


@dataclass(frozen=True)
class Row:
    """One stored record version, read straight from a node's SQLite file."""

    sequence: int
    name: str
    version: int
    envelope: bytes


def stored_rows(database: Path, parent: str) -> list[Row]:
    """Every stored version of a collection, in feed order, read through a read-only
    connection (safe while the node runs: WAL readers see the last committed state)."""
    import sqlite3

    uri = database.resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as conn:
        rows = conn.execute(
            "SELECT sequence, name, version, envelope FROM record_versions"
            " WHERE parent = ? ORDER BY sequence",
            (parent,),
        ).fetchall()
    return [Row(int(s), str(n), int(v), bytes(e)) for s, n, v, e in rows]


def sseaun_process(*argv: str) -> subprocess.Popen[bytes]:
    """`sseaun ARGV...` as a child process with stdout and stderr piped (bytes)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "sseaun.sdk.cli", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
