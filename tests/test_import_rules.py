"""Layering (DESIGN §3): the sdk core does no IO; nothing depends on the node."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IO_MODULES = {"grpc", "aiohttp", "asyncio", "sqlite3", "sqlite_utils", "socket", "urllib", "http"}


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """Every module each file under folder imports, by absolute top-level-qualified name."""
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_the_core_imports_no_io_module_statically() -> None:
    offences = {
        path: sorted(n for n in names if n.split(".")[0] in IO_MODULES)
        for path, names in imported_modules(ROOT / "sdk" / "core").items()
    }
    assert {p: n for p, n in offences.items() if n} == {}


def test_importing_the_core_loads_no_io_module() -> None:
    # Transitive check: what actually ends up in sys.modules, dependencies included.
    code = (
        "import sys, sseaun.sdk.core; "
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(IO_MODULES)!r}); "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_nothing_depends_on_the_node() -> None:
    for folder in ("sdk", "conformance"):
        for path, names in imported_modules(ROOT / folder).items():
            assert not any(n.startswith("sseaun.node") for n in names), path


def test_conformance_never_imports_the_node() -> None:
    for path, names in imported_modules(ROOT / "conformance").items():
        assert not any(n.startswith("sseaun.node") for n in names), path


def test_the_rule_would_catch_an_offence(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import asyncio\nfrom grpc import aio\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        names = imported_modules(tmp_path)["bad.py"]
    finally:
        ROOT = saved
    assert {"asyncio", "grpc"} <= names
