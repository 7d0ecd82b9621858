"""Run the benchmarks: ``uv run python bench/run.py [name ...] [--quick]``.

Each ``bench/bench_<name>.py`` module has ``main(quick: bool) -> str`` that
measures our library and its peers in one run and returns a report of
µs/request and ratios. With no names, every module runs, each in a process
of its own (peers such as Django configure process-wide state).
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    available = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    names = args.names or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}"
        )
    if len(names) > 1 or not args.here:
        failed = 0
        for name in names:
            command = [
                sys.executable,
                __file__,
                name,
                "--here",
                *(["--quick"] if args.quick else []),
            ]
            failed |= subprocess.run(command, check=False).returncode
        return failed
    sys.path.insert(0, str(HERE))
    module = importlib.import_module(f"bench_{names[0]}")
    print(f"# {names[0]}", flush=True)
    print(module.main(args.quick), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
