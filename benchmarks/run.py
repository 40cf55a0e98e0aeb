"""Run every ``benchmarks/bench_*.py`` and print one ``bench: NAME ratio=R target=T`` line each.

Each module exposes ``run() -> list[Result]``. Detail lines (absolute rates, for context only)
follow a benchmark's line, indented. The exit status is 1 if any ratio is below its target,
after every line has been printed; 0 otherwise.

Usage: ``python benchmarks/run.py [NAME_SUBSTRING ...]`` (``make bench`` runs them all).
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from benchmarks._timing import Result  # noqa: E402


def _modules(only: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [n for n in names if not only or any(o in n for o in only)]


def _line(result: Result) -> str:
    return f"bench: {result.name} ratio={result.ratio:.3f} target={result.target:g}"


def main(argv: list[str]) -> int:
    start = time.perf_counter()
    missed: list[str] = []
    for module_name in _modules(argv):
        module = importlib.import_module(f"benchmarks.{module_name}")
        results: list[Result] = module.run()
        for result in results:
            print(_line(result))
            for detail in result.details:
                print(f"    {detail}")
            sys.stdout.flush()
            if not result.passed:
                missed.append(result.name)
    elapsed = time.perf_counter() - start
    if missed:
        print(f"FAILED: ratio below target for {', '.join(missed)} ({elapsed:.0f} s)")
        return 1
    print(f"all ratios meet their targets ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
