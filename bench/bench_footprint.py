"""Install size and import time: sessions-core plus the Redis driver against
Flask-Session and starsessions with their Redis backends (and core alone).

Each contender is installed alone into a fresh virtual environment
(``uv venv`` + ``uv pip install``; ours from wheels built from this checkout,
the peers at the versions in uv.lock) and measured there:

* distributions installed, and ``du`` of site-packages right after the install
  (before anything is imported, so without bytecode caches);
* the wall time of the imports an application needs to use sessions on Redis,
  in a fresh interpreter (median of several runs after a warm-up run that writes
  the bytecode caches), its start-up excluded; ``python -X importtime`` of the same
  imports gives the modules' own cumulative total;
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
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS_QUICK, RUNS_FULL = 3, 15


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
start = time.perf_counter()
for name in {imports!r}:
    __import__(name)
print(time.perf_counter() - start, len(sys.modules) - before)
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


def _importtime_ms(python: Path, contender: Contender) -> float:
    """Cumulative -X importtime of the contender's own imports (framework pre-imported)."""
    pre = "".join(f"import {m}\n" for m in contender.framework)
    script = pre + "".join(f"import {m}\n" for m in contender.imports)
    out = _run([python, "-X", "importtime", "-c", script])
    total = 0  # modules the framework imported are not listed again: not the library's
    for line in out.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if match and match.group(2) in contender.imports:
            total += int(match.group(1))
    return total / 1000


def measure(
    uv: str, tmp: Path, wheels: dict[str, Path], contender: Contender, runs: int
) -> dict[str, object]:
    venv = tmp / re.sub(r"\W+", "-", contender.name)
    _run([uv, "venv", "-q", venv, "--python", sys.executable])
    python = venv / "bin" / "python"
    empty_kib = _du_kib(_site_packages(venv))
    requirements = [
        str(wheels[r.removeprefix("{wheels}/")]) if r.startswith("{wheels}/") else r
        for r in contender.requirements
    ]
    _run([uv, "pip", "install", "-q", "--python", python, *requirements])
    installed = json.loads(
        _run(
            [
                python,
                "-c",
                "import json; from importlib import metadata as m; "
                "print(json.dumps(sorted(d.metadata['Name'] for d in m.distributions())))",
            ]
        )
    )
    size_kib = _du_kib(_site_packages(venv)) - empty_kib

    def timed(framework: tuple[str, ...]) -> tuple[float, int]:
        script = TIMER.format(framework=framework, imports=contender.imports)
        _run([python, "-c", script])  # warm-up: writes the bytecode caches
        samples = [_run([python, "-c", script]).split() for _ in range(runs)]
        return statistics.median(float(s[0]) for s in samples) * 1000, int(samples[0][1])

    cold_ms, cold_modules = timed(())
    # Ours imports no framework: loading one first would measure nothing new.
    warm_ms, warm_modules = (
        timed(contender.framework) if contender.framework else (cold_ms, cold_modules)
    )
    return {
        "name": contender.name,
        "installed": installed,
        "site_packages_kib": size_kib,
        "import_ms": cold_ms,
        "modules": cold_modules,
        "import_after_framework_ms": warm_ms,
        "modules_after_framework": warm_modules,
        "importtime_ms": _importtime_ms(python, contender),
        "imports": list(contender.imports),
    }


def main(quick: bool) -> str:
    uv = shutil.which("uv")
    if uv is None:
        return "footprint: uv is not on PATH; skipped"
    runs = RUNS_QUICK if quick else RUNS_FULL
    with tempfile.TemporaryDirectory(prefix="sessions-footprint-") as tmp:
        wheels = _wheels(uv, Path(tmp) / "wheels")
        results = [measure(uv, Path(tmp), wheels, c, runs) for c in CONTENDERS]
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "footprint.json").write_text(json.dumps(results, indent=2))
    ours = results[1]  # core plus the Redis driver, as the peers are measured with Redis
    lines = [
        f"Install size and import time ({runs} runs, median; Python {sys.version.split()[0]})",
        "",
        "| install | distributions | site-packages | import | modules | import, framework loaded "
        "| -X importtime, framework loaded |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {len(r['installed'])} | {r['site_packages_kib'] / 1024:.1f} MiB "
            f"| {r['import_ms']:.0f} ms | {r['modules']} | {r['import_after_framework_ms']:.0f} ms "
            f"| {r['importtime_ms']:.0f} ms |"
        )
    lines += ["", "Installed:"]
    lines += [f"* {r['name']}: {', '.join(r['installed'])}" for r in results]
    lines += [
        "",
        "Ratios (ours / peer): "
        + ", ".join(
            f"{r['name']}: size {ours['site_packages_kib'] / r['site_packages_kib']:.2f}, "
            f"import {ours['import_ms'] / r['import_ms']:.2f}"
            for r in results[2:]
        ),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(quick="--quick" in sys.argv))
