"""Generate the committed Python code for the wire contract, or check that it is current.

    python proto/generate.py          # regenerate proto/sseaun/v1/*_pb2.py(i)
    python proto/generate.py --check  # exit 1 if regeneration would change any committed file

Uses grpcio-tools' bundled protoc and mypy-protobuf (buf cannot generate Python gRPC code offline).
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = PROTO_ROOT / "sseaun" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _generate(out_dir: Path) -> None:
    import grpc_tools  # noqa: PLC0415 - dev dependency, only needed here

    include = Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PACKAGE_DIR.glob("*.proto"))
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *sources,
    ]
    subprocess.run(cmd, check=True, cwd=PROTO_ROOT, env=env)
    # protoc writes a grpc module for every file; keep only those of files that define a service.
    for proto in PACKAGE_DIR.glob("*.proto"):
        if "\nservice " not in proto.read_text():
            for suffix in ("_pb2_grpc.py", "_pb2_grpc.pyi"):
                (out_dir / "sseaun" / "v1" / (proto.stem + suffix)).unlink(missing_ok=True)


def _committed() -> dict[str, str]:
    return {
        p.name: p.read_text() for p in PACKAGE_DIR.iterdir() if p.name.endswith(GENERATED_SUFFIXES)
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        _generate(out)
        fresh = {p.name: p.read_text() for p in (out / "sseaun" / "v1").iterdir()}
        if args.check:
            old = _committed()
            stale = sorted(n for n in fresh.keys() | old.keys() if fresh.get(n) != old.get(n))
            for name in stale:
                diff = difflib.unified_diff(
                    old.get(name, "").splitlines(),
                    fresh.get(name, "").splitlines(),
                    f"committed/{name}",
                    f"regenerated/{name}",
                    lineterm="",
                    n=1,
                )
                print("\n".join(list(diff)[:20]), file=sys.stderr)
            if stale:
                print(
                    f"generated code is stale: {', '.join(stale)}; run "
                    "'python proto/generate.py' and commit the result",
                    file=sys.stderr,
                )
                return 1
            print(f"generated code is current ({len(fresh)} files)")
            return 0
        for name in _committed():
            (PACKAGE_DIR / name).unlink()
        for name in fresh:
            shutil.copyfile(out / "sseaun" / "v1" / name, PACKAGE_DIR / name)
        (PACKAGE_DIR / "__init__.py").touch()
        (PACKAGE_DIR / "py.typed").touch()
        print(f"wrote {len(fresh)} files to {PACKAGE_DIR.relative_to(PROTO_ROOT.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
