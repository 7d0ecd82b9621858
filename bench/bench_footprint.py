"""Install size and import time: sessions-core plus the Redis driver against
Flask-Session and starsessions with their Redis backends (and core alone).

Each contender is installed alone into a fresh virtual environment
(``uv venv`` + ``uv pip install``; ours from wheels built from this checkout,
the peers at the versions in uv.lock) and measured there:

* distributions installed, and ``du`` of site-packages right after the install
  (before anything is imported, so without bytecode caches);
* the CPU time (and wall time) of the imports an application needs to use
  sessions on Redis, in a fresh interpreter, its start-up excluded: the median
  of several runs, after a warm-up run that writes the bytecode caches, with the
  contenders interleaved. CPU time moves least on a loaded machine;
* the same imports once the application's framework is already imported, since
  Flask-Session and starsessions import Flask and Starlette, which an
  application of theirs has loaded anyway.

``uv run python bench/run.py footprint`` (needs the package index or uv's cache).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUNS_QUICK, RUNS_FULL = 3, 11


@dataclass(frozen=True)
class Contender:
    name: str
    #: Requirements, with "{wheels}" standing for the directory of our built wheels.
    requirements: tuple[str, ...]
    #: What an app imports to use sessions on Redis.
    imports: tuple[str, ...]
    #: The framework an app of this library has imported already.
    framework: tuple[str, ...]


def _pinned(dist: str, extra: str = "") -> str:
    return f"{dist}{extra}=={metadata.version(dist)}"


CONTENDERS = (
    Contender(
        "sessions-core (memory and cookie drivers)",
        ("{wheels}/sessions_core",),
        ("sessions", "sessions.asgi", "sessions.drivers.cookie"),
        (),
    ),
    Contender(
        "sessions-core + sessions-redis",
        ("{wheels}/sessions_core", "{wheels}/sessions_redis"),
        ("sessions", "sessions.asgi", "sessions_redis.driver"),
        (),
    ),
    Contender(
        "Flask-Session (redis)",
        (_pinned("flask-session"), _pinned("redis")),
        ("flask_session", "flask_session.redis"),
        ("flask",),
    ),
    Contender(
        "starsessions (redis)",
        (_pinned("starsessions", "[redis]"),),
        ("starsessions", "starsessions.stores.redis"),
        ("starlette.applications",),
    ),
)

TIMER = """
import sys, time
for name in {framework!r}:
    __import__(name)
before = len(sys.modules)
wall, cpu = time.perf_counter(), time.process_time()
for name in {imports!r}:
    __import__(name)
print(time.perf_counter() - wall, time.process_time() - cpu, len(sys.modules) - before)
"""


def _run(argv: list[str | Path], **kwargs: object) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.run(
        [str(a) for a in argv], env=env, capture_output=True, text=True, check=False, **kwargs
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {proc.returncode}\n{proc.stderr}")
    return proc.stdout + proc.stderr


def _wheels(uv: str, out: Path) -> dict[str, Path]:
    for package in ("sessions-core", "sessions-redis"):
        _run([uv, "build", "-q", "--wheel", "--package", package, "-o", out], cwd=ROOT)
    return {w.name.split("-")[0]: w for w in out.glob("*.whl")}


def _site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python*/site-packages")
    return found


def _du_kib(path: Path) -> int:
    return int(_run(["du", "-sk", path]).split()[0])


@dataclass
class Installed:
    contender: Contender
    python: Path
    installed: list[str]
    site_packages_kib: int
    #: (wall ms, CPU ms, modules) per run, without and with the framework imported first.
    alone: list[tuple[float, float, int]] = field(default_factory=list)
    after_framework: list[tuple[float, float, int]] = field(default_factory=list)


def install(uv: str, tmp: Path, wheels: dict[str, Path], contender: Contender) -> Installed:
    """A fresh venv holding only ``contender``, measured before any import."""
    venv = tmp / re.sub(r"\W+", "-", contender.name)
    _run([uv, "venv", "-q", venv, "--python", sys.executable])
    python = venv / "bin" / "python"
    empty_kib = _du_kib(_site_packages(venv))
    requirements = [
        str(wheels[r.removeprefix("{wheels}/")]) if r.startswith("{wheels}/") else r
        for r in contender.requirements
    ]
    _run([uv, "pip", "install", "-q", "--python", python, *requirements])
    listing = (
        "import json; from importlib import metadata as m; "
        "print(json.dumps(sorted(d.metadata['Name'] for d in m.distributions())))"
    )
    installed = json.loads(_run([python, "-c", listing]))
    size_kib = _du_kib(_site_packages(venv)) - empty_kib
    return Installed(contender, python, installed, size_kib)


def time_imports(item: Installed, framework: tuple[str, ...]) -> tuple[float, float, int]:
    """One fresh interpreter: wall and CPU milliseconds of the imports, modules added."""
    script = TIMER.format(framework=framework, imports=item.contender.imports)
    wall, cpu, modules = _run([item.python, "-c", script]).split()
    return float(wall) * 1000, float(cpu) * 1000, int(modules)


def _median(samples: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    return (
        statistics.median(s[0] for s in samples),
        statistics.median(s[1] for s in samples),
        samples[0][2],
    )


def main(quick: bool) -> str:
    uv = shutil.which("uv")
    if uv is None:
        return "footprint: uv is not on PATH; skipped"
    runs = RUNS_QUICK if quick else RUNS_FULL
    with tempfile.TemporaryDirectory(prefix="sessions-footprint-") as tmp:
        wheels = _wheels(uv, Path(tmp) / "wheels")
        items = [install(uv, Path(tmp), wheels, c) for c in CONTENDERS]
        for item in items:  # warm-up: writes the bytecode caches
            time_imports(item, item.contender.framework)
        # Rounds interleave the contenders, so background load spreads evenly.
        for _ in range(runs):
            for item in items:
                item.alone.append(time_imports(item, ()))
                if item.contender.framework:
                    item.after_framework.append(time_imports(item, item.contender.framework))
    results = []
    for item in items:
        wall, cpu, modules = _median(item.alone)
        # Ours imports no framework: loading one first would change nothing.
        after = _median(item.after_framework) if item.after_framework else (wall, cpu, modules)
        results.append(
            {
                "name": item.contender.name,
                "installed": item.installed,
                "site_packages_kib": item.site_packages_kib,
                "imports": list(item.contender.imports),
                "framework": list(item.contender.framework),
                "import_wall_ms": wall,
                "import_cpu_ms": cpu,
                "modules": modules,
                "after_framework_wall_ms": after[0],
                "after_framework_cpu_ms": after[1],
                "after_framework_modules": after[2],
            }
        )
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "footprint.json").write_text(json.dumps(results, indent=2))
    return report(results, runs)


def report(results: list[dict[str, Any]], runs: int) -> str:
    """The Markdown table of docs/benchmarks.md, and the ratios to the peers."""
    lines = [
        f"Install size and import time (median of {runs} fresh interpreters; "
        f"Python {sys.version.split()[0]}; CPU time, wall time in brackets)",
        "",
        "| install | distributions | site-packages | import: CPU (wall) | modules "
        "| framework already imported: CPU (wall) | modules |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {len(r['installed'])} | {r['site_packages_kib'] / 1024:.1f} MiB "
            f"| {r['import_cpu_ms']:.0f} ms ({r['import_wall_ms']:.0f}) | {r['modules']} "
            f"| {r['after_framework_cpu_ms']:.0f} ms ({r['after_framework_wall_ms']:.0f}) "
            f"| {r['after_framework_modules']} |"
        )
    lines += ["", "Installed:"]
    lines += [f"* {r['name']}: {', '.join(r['installed'])}" for r in results]
    ours = results[1]  # core plus the Redis driver, as the peers are measured with Redis
    lines += ["", "Ratios, core + redis driver / peer:"]
    lines += [
        f"* {r['name']}: size {ours['site_packages_kib'] / r['site_packages_kib']:.2f}, "
        f"import CPU {ours['import_cpu_ms'] / r['import_cpu_ms']:.2f}, "
        f"with the framework already imported "
        f"{ours['after_framework_cpu_ms'] / r['after_framework_cpu_ms']:.2f}"
        for r in results[2:]
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(quick="--quick" in sys.argv))
