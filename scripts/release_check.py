"""What ``scripts/release.sh`` checks in the distributions it built.

    python scripts/release_check.py metadata DIST_DIR   # names, versions, pins, licence, pages
    python scripts/release_check.py install DIST_DIR    # each wheel alone in a fresh venv

``metadata`` first moves distributions marked ``Private :: Do Not Upload`` (the
example driver) to ``DIST_DIR/not-released/``, so what is left in ``DIST_DIR`` is
exactly what a release would upload. Every problem found is listed, then the
exit status is 1. Nothing is ever published.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from email.message import Message
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
#: The released distributions: the package each one installs, the driver it provides.
RELEASED = {
    "sessions-core": ("sessions", "cookie"),
    "sessions-file": ("sessions_file", "file"),
    "sessions-redis": ("sessions_redis", "redis"),
    "sessions-sql": ("sessions_sql", "sql"),
    "sessions-memcached": ("sessions_memcached", "memcached"),
}
CORE = "sessions-core"
URL_LABELS = ("Homepage", "Documentation", "Source", "Changelog", "Issues")
PRIVATE = "Private :: Do Not Upload"
#: What ``pip install sessions-core`` may bring: the engine's two requirements and theirs.
CORE_CLOSURE = {"sessions-core", "cryptography", "pluggy", "cffi", "pycparser"}


def workspace_version() -> str:
    """The one version of the workspace, from ``VERSION``."""
    return (ROOT / "VERSION").read_text().strip()


def read_metadata(path: Path) -> Message:
    """The core metadata of a wheel (METADATA) or an sdist (PKG-INFO)."""
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as wheel:
            (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            text = wheel.read(name).decode()
    else:
        with tarfile.open(path) as sdist:
            member = sdist.getmember(f"{path.name.removesuffix('.tar.gz')}/PKG-INFO")
            handle = sdist.extractfile(member)
            assert handle is not None
            text = handle.read().decode()
    return email.parser.Parser().parsestr(text)


def licence_text(path: Path) -> str | None:
    """The LICENSE file a wheel or an sdist carries, if any."""
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
            return wheel.read(names[0]).decode() if names else None
    with tarfile.open(path) as sdist:
        try:
            member = sdist.getmember(f"{path.name.removesuffix('.tar.gz')}/LICENSE")
        except KeyError:
            return None
        handle = sdist.extractfile(member)
        return None if handle is None else handle.read().decode()


def pin_problems(name: str, requires: Iterable[str], version: str) -> list[str]:
    """A driver must require ``sessions-core>=VERSION``: the release it was built with."""
    if canonicalize_name(name) == CORE:
        return []
    core = [Requirement(r) for r in requires if canonicalize_name(Requirement(r).name) == CORE]
    if len(core) != 1:
        return [f"{name}: requires sessions-core {len(core)} times (expected once)"]
    (requirement,) = core
    if requirement.marker is not None or requirement.specifier != SpecifierSet(f">={version}"):
        return [
            f"{name}: requires {requirement}, but the workspace version is {version} "
            f"(expected sessions-core>={version})"
        ]
    return []


def classifier_problems(name: str, classifiers: list[str]) -> list[str]:
    """Classifiers PyPI knows, with the ones a package page needs."""
    from trove_classifiers import classifiers as known

    found = [f"{name}: unknown classifier {c!r}" for c in classifiers if c not in known]
    if "Typing :: Typed" not in classifiers:
        found.append(f"{name}: no 'Typing :: Typed' classifier")
    if not any(c.startswith("Programming Language :: Python :: 3.") for c in classifiers):
        found.append(f"{name}: no Python version classifier")
    if not any(c.startswith("Framework :: ") for c in classifiers):
        found.append(f"{name}: no framework classifier")
    return found


def dist_problems(path: Path, meta: Message, version: str, licence: str) -> list[str]:
    """Everything wrong with one released distribution file."""
    name = meta["Name"]
    found = [f"{path.name}: {p}" for p in classifier_problems(name, meta.get_all("Classifier", []))]
    if meta["Version"] != version:
        found.append(f"{path.name}: version {meta['Version']}, workspace version {version}")
    found += [
        f"{path.name}: {p}" for p in pin_problems(name, meta.get_all("Requires-Dist", []), version)
    ]
    if meta.get("License-Expression") != "MIT":
        found.append(f"{path.name}: License-Expression {meta.get('License-Expression')!r}")
    if licence_text(path) != licence:
        found.append(f"{path.name}: carries no LICENSE identical to the repository's")
    labels = {url.partition(",")[0].strip() for url in meta.get_all("Project-URL", [])}
    found += [
        f"{path.name}: no project URL {label!r}" for label in URL_LABELS if label not in labels
    ]
    page = meta.get_payload()
    if meta.get("Description-Content-Type") != "text/markdown" or not isinstance(page, str):
        found.append(f"{path.name}: the README is not its Markdown description")
    elif "pip install" not in page or "https://" not in page:
        found.append(f"{path.name}: the package page has no install line or no link to the docs")
    return found


def check_metadata(dist_dir: Path) -> list[str]:
    """Set private distributions aside and check the others; the problems found."""
    version = workspace_version()
    licence = (ROOT / "LICENSE").read_text()
    aside = dist_dir / "not-released"
    found: list[str] = []
    seen: dict[str, list[str]] = {}
    for path in sorted([*dist_dir.glob("*.whl"), *dist_dir.glob("*.tar.gz")]):
        meta = read_metadata(path)
        if PRIVATE in meta.get_all("Classifier", []):
            aside.mkdir(exist_ok=True)
            shutil.move(path, aside / path.name)
            print(f"not released (marked {PRIVATE!r}): {path.name}")
            continue
        name = canonicalize_name(meta["Name"])
        kind = "wheel" if path.name.endswith(".whl") else "sdist"
        seen.setdefault(name, []).append(kind)
        if name not in RELEASED:
            found.append(f"{path.name}: {name} is not one of {', '.join(RELEASED)}")
            continue
        found += dist_problems(path, meta, version, licence)
    for name in RELEASED:
        if sorted(seen.get(name, [])) != ["sdist", "wheel"]:
            found.append(
                f"{name}: built {sorted(seen.get(name, []))}, expected one sdist, one wheel"
            )
    return found


def _env() -> dict[str, str]:
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {k: v for k, v in env.items() if not k.startswith(("SESSION_", "SESSIONS_"))}


def _run(argv: list[str | Path], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(  # noqa: S603 (our own commands: uv, and the venvs' python)
        [str(a) for a in argv], env=_env(), capture_output=True, text=True, timeout=300
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {proc.returncode}\n{proc.stderr}")
    return proc


INSPECT = """
import json, sys
from importlib import metadata
import {package}
after_import = sorted(sys.modules)
# The driver, found through the installed entry point as an application finds it.
from sessions.plugins import load_plugins
driver = load_plugins().get("{driver}").load()
print(json.dumps({{
    "modules": after_import,
    "driver": driver.__module__ + "." + driver.__qualname__,
    "installed": sorted(d.metadata["Name"].lower() for d in metadata.distributions()),
    "core": metadata.version("sessions-core"),
}}))
"""


def check_installs(dist_dir: Path) -> list[str]:
    """Install each wheel alone (a driver with the core wheel it needs) into a fresh
    venv, import it there; core alone must bring only its two requirements, import
    no click, rich or anyio, and its ``sessions`` script must say how to get the CLI."""
    version = workspace_version()
    wheels = {canonicalize_name(read_metadata(w)["Name"]): w for w in dist_dir.glob("*.whl")}
    found: list[str] = []
    uv = shutil.which("uv") or "uv"
    with tempfile.TemporaryDirectory(prefix="sessions-release-") as tmp:
        for name, (package, driver) in RELEASED.items():
            venv = Path(tmp) / name
            _run([uv, "venv", "-q", venv, "--python", sys.executable])
            python = venv / "bin" / "python"
            given = [wheels[name]] if name == CORE else [wheels[name], wheels[CORE]]
            _run([uv, "pip", "install", "-q", "--python", python, *given])
            script = INSPECT.format(package=package, driver=driver)
            proc = _run([python, "-c", script], check=False)
            if proc.returncode != 0:
                found.append(f"{name}: import or driver {driver!r} failed:\n{proc.stderr.strip()}")
                continue
            report = json.loads(proc.stdout)
            if report["core"] != version:
                found.append(f"{name}: installed sessions-core {report['core']}, not {version}")
            if name == CORE:
                found += _core_alone(venv, report)
            print(
                f"ok: {name} alone: {len(report['installed'])} distributions installed, "
                f"imports {package}, driver {driver!r} is {report['driver']}"
            )
    return found


def _core_alone(venv: Path, report: dict[str, Any]) -> list[str]:
    found = []
    extra = sorted(set(report["installed"]) - CORE_CLOSURE)
    if extra:
        found.append(f"sessions-core alone installed more than it needs: {', '.join(extra)}")
    heavy = sorted({m.partition(".")[0] for m in report["modules"]} & {"click", "rich", "anyio"})
    if heavy:
        found.append(f"import sessions imported {', '.join(heavy)}")
    script = _run([venv / "bin" / "sessions", "drivers"], check=False)
    if script.returncode != 1 or 'pip install "sessions-core[cli]"' not in script.stderr:
        found.append(
            "the sessions script without the cli extra did not say how to install it: "
            f"exit {script.returncode}, {script.stderr.strip()!r}"
        )
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("metadata", "install"):
        print(__doc__, file=sys.stderr)
        return 2
    dist_dir = Path(argv[1])
    found = check_metadata(dist_dir) if argv[0] == "metadata" else check_installs(dist_dir)
    for problem in found:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
