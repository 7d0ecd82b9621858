"""Installed from wheels, the family works as users get it from PyPI.

Builds wheels of every workspace package with ``uv build``, plus a third-party
plugin wheel whose plugin module raises on import, installs them into fresh
virtual environments with ``uv pip install --find-links`` (third-party
dependencies come from the package index or uv's cache), and checks there,
through the installed ``sessions`` console script and interpreter, that:

* ``sessions drivers`` lists the installed driver and reports the broken plugin,
  which stops nothing;
* ``SessionConfig(driver="dbm")`` selects the driver by name and a request round
  trip works; a first-party driver that is not installed names its package;
* installing only a driver wheel pulls in sessions-core (without the cli extra).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

BROKEN_PYPROJECT = """
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "sessions-broken-demo"
version = "0.0.1"
requires-python = ">=3.11"
dependencies = ["sessions-core"]

[project.entry-points."sessions.drivers"]
broken = "sessions_broken_demo.plugin"

[tool.hatch.build.targets.wheel]
packages = ["sessions_broken_demo"]
"""

ROUND_TRIP = """
import json, sys
from sessions import DriverNotFoundError, Session, SessionConfig, SessionManager
from sessions.driver import RequestContext

SECRET = "wheel-0123456789-abcdefghijklmnop"
config = SessionConfig(secret=SECRET, driver="dbm", drivers={"dbm": {"path": sys.argv[1]}})
manager = SessionManager(config)
first = RequestContext({})
session = manager.session(first)
session.initiate()
session.put("user.name", "ada")
session.commit()
cookies = {name: c.value for name, c in first.outgoing.items()}
again = manager.session(RequestContext(cookies))
again.initiate()
result = {
    "driver": type(manager.driver).__module__ + "." + type(manager.driver).__name__,
    "fresh": again.fresh,
    "name": again.get("user.name"),
}
manager.close()
try:
    SessionManager(SessionConfig(secret=SECRET, driver="redis")).driver
except DriverNotFoundError as exc:
    result["missing"] = str(exc)
print(json.dumps(result))
"""


LIST_DRIVERS = """
import json
from sessions.plugins import load_plugins
plugins = load_plugins()
print(json.dumps({"drivers": sorted(plugins.drivers), "failed": sorted(plugins.failures)}))
"""


def _env() -> dict[str, str]:
    # The test itself runs inside the workspace venv; the commands must not.
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT_ENVIRONMENT", "SESSIONS_PLUGINS")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SESSION_")}
    env["NO_COLOR"] = "1"
    return env


def _run(argv: Sequence[str | Path], cwd: Path = REPO, **extra: str) -> str:
    proc = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env={**_env(), **extra},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, argv))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        message = "uv is not on PATH (the README's test command installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return uv


def _venv(uv: str, path: Path, wheels: Path, *requirements: str) -> Path:
    _run([uv, "venv", "-q", path, "--python", sys.executable])
    python = path / "bin" / "python"
    _run([uv, "pip", "install", "-q", "--python", python, "--find-links", wheels, *requirements])
    return path / "bin"


def test_wheels_install_discover_and_serve(tmp_path: Path) -> None:
    uv = _uv()
    wheels = tmp_path / "wheels"
    _run([uv, "build", "--all-packages", "--wheel", "-o", wheels])
    built = sorted(p.name.split("-")[0] for p in wheels.glob("*.whl"))
    assert built == [
        "sessions_core",
        "sessions_dbm",
        "sessions_file",
        "sessions_memcached",
        "sessions_redis",
        "sessions_sql",
    ]

    broken = tmp_path / "broken"
    (broken / "sessions_broken_demo").mkdir(parents=True)
    (broken / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (broken / "sessions_broken_demo" / "__init__.py").write_text("")
    (broken / "sessions_broken_demo" / "plugin.py").write_text(
        'raise RuntimeError("this plugin is broken on purpose")\n'
    )
    _run([uv, "build", "--wheel", "-o", wheels, broken])

    # sessions-core plus one driver (and the broken third-party plugin).
    bin1 = _venv(
        uv, tmp_path / "venv1", wheels, "sessions-core[cli]", "sessions-dbm", "sessions-broken-demo"
    )
    report = json.loads(_run([bin1 / "sessions", "drivers", "--json"]))
    drivers = {d["name"]: d for d in report["drivers"]}
    assert sorted(drivers) == ["cookie", "dbm", "memory"]
    dbm = drivers["dbm"]
    assert (dbm["distribution"], dbm["version"], dbm["flavours"]) == (
        "sessions-dbm",
        "0.1.0",
        "sync",
    )
    assert [o["name"] for o in dbm["options"]] == ["path", "backend"]
    assert report["failed"] == [
        {
            "name": "broken",
            "distribution": "sessions-broken-demo",
            "version": "0.0.1",
            "stage": "import",
            "error": "RuntimeError: this plugin is broken on purpose",
        }
    ]
    table = _run([bin1 / "sessions", "drivers"], COLUMNS="200")
    assert "sessions-dbm" in table
    assert "failed plugin broken from sessions-broken-demo 0.0.1" in table

    result = json.loads(_run([bin1 / "python", "-c", ROUND_TRIP, tmp_path / "db" / "sessions"]))
    assert result["driver"] == "sessions_dbm.driver.DbmDriver"
    assert (result["fresh"], result["name"]) == (False, "ada")
    assert "installed: cookie, dbm, memory" in result["missing"]
    assert "pip install sessions-redis" in result["missing"]

    check = _run(
        [bin1 / "sessions", "check"],
        cwd=tmp_path,
        SESSION_DRIVER="dbm",
        SESSION_SECRET="wheel-cli-secret-0123456789-abcdefghijk",
        SESSION_DBM_PATH=str(tmp_path / "checkdb" / "sessions"),
    )
    assert "OK: driver 'dbm'" in check

    # Only the driver: sessions-core comes along as its dependency.
    bin2 = _venv(uv, tmp_path / "venv2", wheels, "sessions-dbm")
    versions = _run(
        [
            bin2 / "python",
            "-c",
            textwrap.dedent(
                """
                from importlib.metadata import version
                print(version("sessions-core"), version("sessions-dbm"))
                """
            ),
        ]
    )
    assert versions.split() == [(REPO / "VERSION").read_text().strip(), "0.1.0"]
    alone = json.loads(_run([bin2 / "python", "-c", LIST_DRIVERS]))
    assert alone == {"drivers": ["cookie", "dbm", "memory"], "failed": []}


def test_new_driver_scaffold_installs_as_a_wheel_that_sessions_lists(tmp_path: Path) -> None:
    """``sessions new-driver`` output builds, installs beside sessions-core's wheel,
    is listed by ``sessions drivers`` and serves ``sessions check``."""
    uv = _uv()
    wheels = tmp_path / "wheels"
    _run(
        [Path(sys.executable).parent / "sessions", "new-driver", "scaffolded", "-o", "proj"],
        cwd=tmp_path,
    )
    _run([uv, "build", "--wheel", "-o", wheels, tmp_path / "proj"])
    _run([uv, "build", "--package", "sessions-core", "--wheel", "-o", wheels])
    bin_dir = _venv(uv, tmp_path / "venv", wheels, "sessions-scaffolded", "sessions-core[cli]")
    report = json.loads(_run([bin_dir / "sessions", "drivers", "--json"]))
    drivers = {d["name"]: d for d in report["drivers"]}
    assert sorted(drivers) == ["cookie", "memory", "scaffolded"]
    found = drivers["scaffolded"]
    assert (found["distribution"], found["version"], found["flavours"]) == (
        "sessions-scaffolded",
        "0.1.0",
        "sync",
    )
    assert found["capabilities"] == ["gc"]
    assert [o["name"] for o in found["options"]] == ["namespace"]
    assert report["failed"] == []
    check = _run(
        [bin_dir / "sessions", "check"],
        cwd=tmp_path,
        SESSION_DRIVER="scaffolded",
        SESSION_SECRET="wheel-cli-secret-0123456789-abcdefghijk",
    )
    assert "OK: driver 'scaffolded'" in check
    marker = "import importlib.resources as r; print(r.files('sessions_scaffolded') / 'py.typed')"
    typed = Path(_run([bin_dir / "python", "-c", marker]).strip())
    assert typed.is_file()
