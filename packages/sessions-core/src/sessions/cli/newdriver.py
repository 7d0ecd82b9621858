"""``sessions new-driver NAME``: write a ready driver distribution to start from.

The generated project is complete and passing from the first minute: its
driver keeps sessions in a dict in the process (with expiry), its tests run
core's conformance kit against it, and it installs as a wheel whose entry
point makes ``SESSION_DRIVER=NAME`` select it. The author then swaps the dict
for their storage's client, and the same tests say whether it still behaves.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from string import Template

import click

from ..plugins import FIRST_PARTY

__all__ = ["new_driver", "render"]

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_RESERVED = {"memory", "cookie", *FIRST_PARTY}

PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[project]
name = "$dist"
version = "0.1.0"
description = "A session driver for sessions-core: SESSION_DRIVER=$name."
readme = "README.md"
requires-python = ">=3.11"
license = "MIT"
dependencies = ["sessions-core>=$core_version"]
classifiers = [
    "Programming Language :: Python :: 3",
    "Topic :: Internet :: WWW/HTTP :: Session",
    "Typing :: Typed",
]

[project.optional-dependencies]
test = ["pytest>=8.3", "anyio>=4.4", "trio>=0.26", "mypy>=1.11", "ruff>=0.6"]

# The entry point's name is the driver's config name; its value is the plugin module.
[project.entry-points."sessions.drivers"]
$name = "$module.plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/$module"]

[tool.pytest.ini_options]
addopts = "-ra --import-mode=importlib"
testpaths = ["tests"]
pythonpath = ["src"]

[tool.mypy]
strict = true
files = ["src", "tests"]
mypy_path = "src"

[tool.ruff]
line-length = 100
src = ["src"]

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP", "SIM", "RUF"]
ignore = ["RUF012"]  # the conformance kit's settings are plain class attributes
"""

INIT = '''\
"""$dist: the ``$name`` session driver for sessions-core.

Importing this package imports nothing heavy: the driver class lives in
:mod:`$module.driver`, imported only when ``SESSION_DRIVER=$name`` selects it.
"""

__version__ = "0.1.0"
'''

PLUGIN = '''\
"""The plugin module named by this distribution's entry point:

    [project.entry-points."sessions.drivers"]
    $name = "$module.plugin"

sessions-core imports it on the first driver lookup of any application, so it
stays cheap: the driver class is named as a string and imported only when an
application selects ``$name``.
"""

from __future__ import annotations

from sessions import hookimpl
from sessions.plugins import DriverRegistry


@hookimpl
def sessions_register_drivers(registry: DriverRegistry) -> None:
    """Register the ``$name`` driver."""
    registry.add("$name", "$module.driver:$cls")
'''

DRIVER = '''\
"""The ``$name`` session driver.

Written by ``sessions new-driver`` as a working starting point: it keeps
sessions in a dict in this process, expiring ``age`` seconds after the last
write or touch. Replace the dict with your storage's client (the four methods
are the whole contract); the conformance tests in ``tests/`` tell you whether
the driver still behaves. See the "Writing a driver" guide of sessions-core.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from sessions import DecodeError, Driver, DriverConfig, Option
from sessions.codec import decode, encode
from sessions.driver import GcProgress, GcResult

__all__ = ["$cls"]


class $cls(Driver):
    """Sessions stored under ``<namespace>:<session id>``, as codec bytes.

    Sync methods only: async applications call them in a worker thread. Add
    ``async def aread/awrite/adestroy/atouch`` when your client has an async API.
    """

    #: Settable as ``drivers={"$name": {...}}`` or ``SESSION_${upper}_<OPTION>``.
    options: ClassVar[tuple[Option, ...]] = (
        Option("namespace", str, "sessions", "prefix of every key this driver stores"),
    )

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self._prefix = f"{config.options['namespace']}:"
        # Connect to your storage here: the driver is built once per manager,
        # so pools and clients live as long as the application.
        self._store: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        """Where the sessions are kept (``sessions check`` prints it)."""
        return f"in-process dict, namespace {self._prefix[:-1]!r}"

    def _live(self, key: str, now: float) -> bytes | None:
        entry = self._store.get(key)
        if entry is None:
            return None
        expires, payload = entry
        if expires <= now:
            del self._store[key]
            return None
        return payload

    def read(self, session_id: str) -> dict[str, Any] | None:
        """The values of a live session; None when missing, expired or unreadable."""
        with self._lock:
            payload = self._live(self._prefix + session_id, time.time())
        if payload is None:
            return None
        try:
            return decode(payload)
        except DecodeError:
            self.config.notify_decode_failed("store", f"undecodable {session_id}")
            return None

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Store the whole session dict for ``age`` seconds."""
        record = (time.time() + self.config.age, encode(values))
        with self._lock:
            self._store[self._prefix + session_id] = record

    def destroy(self, session_id: str) -> None:
        """Remove the session; a missing one is not an error."""
        with self._lock:
            self._store.pop(self._prefix + session_id, None)

    def touch(self, session_id: str) -> None:
        """Restart the expiry of a live session; a missing one is not an error."""
        key = self._prefix + session_id
        now = time.time()
        with self._lock:
            payload = self._live(key, now)
            if payload is not None:
                self._store[key] = (now + self.config.age, payload)

    def gc(self, progress: GcProgress | None = None) -> GcResult:
        """Remove expired sessions in bulk: the ``gc`` capability (``sessions gc``).

        Delete it if your storage expires entries by itself (as Redis does).
        """
        started = time.monotonic()
        now = time.time()
        removed = freed = 0
        with self._lock:
            keys = [key for key in self._store if key.startswith(self._prefix)]
            for key in keys:
                expires, payload = self._store[key]
                if expires <= now:
                    del self._store[key]
                    removed += 1
                    freed += len(payload)
        if progress is not None:
            progress(len(keys), len(keys))
        return GcResult(len(keys), removed, freed, time.monotonic() - started)

    def store_raw(self, session_id: str, payload: bytes) -> None:
        """Store ``payload`` as is (the tests plant unreadable data with it)."""
        expires = time.time() + self.config.age
        with self._lock:
            self._store[self._prefix + session_id] = (expires, payload)

    def close(self) -> None:
        """Release the storage's resources (``manager.close()`` calls it)."""
        with self._lock:
            self._store.clear()
'''

TESTS = '''\
"""The driver passes sessions-core's conformance kit, sync, async and on trio.

Test against the real storage (start it in a fixture), never a mock: set
``self.driver_options`` from an autouse fixture when they depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from sessions.testing import AsyncDriverConformance, DriverConformance, Harness

from $module.driver import $cls


class _Setup:
    driver_factory: ClassVar[Callable[..., Any] | None] = $cls
    driver_options: dict[str, Any] = {"namespace": "tests"}

    def corrupt(self, harness: Harness, session_id: str) -> None:
        harness.driver.store_raw(session_id, b"not a session payload")


class TestSync(_Setup, DriverConformance):
    """Through the driver's own sync methods."""


class TestAsync(_Setup, AsyncDriverConformance):
    """Through core's async path (a worker thread for a sync-only driver)."""


class TestTrio(TestAsync):
    backend = "trio"
'''

PLUGIN_TEST = '''\
"""The plugin registers the driver under its name, as the entry point promises."""

from __future__ import annotations

from sessions import SessionConfig, SessionManager
from sessions.plugins import DriverRegistry

from $module import plugin
from $module.driver import $cls


def test_plugin_registers_the_driver_by_name() -> None:
    registry = DriverRegistry()
    plugin.sessions_register_drivers(registry)
    assert list(registry.entries) == ["$name"]
    assert registry.entries["$name"].load() is $cls


def test_selected_by_name_through_the_manager() -> None:
    secret = "driver-tests-secret-0123456789-abcdefgh"  # random enough for the check
    config = SessionConfig(secret=secret, driver="$name")
    manager = SessionManager(config, autoload_plugins=False, drivers={"$name": $cls})
    assert isinstance(manager.driver, $cls)
'''

README = """\
# $dist

A session driver for [sessions-core](https://pypi.org/project/sessions-core/),
selected with `SESSION_DRIVER=$name`.

## Use it

    pip install sessions-core $dist

    SESSION_DRIVER=$name
    SESSION_SECRET=...                  # `sessions secret` prints one

or in code:

```python
from sessions import SessionConfig, SessionManager

config = SessionConfig(secret="...", driver="$name", drivers={"$name": {"namespace": "app"}})
manager = SessionManager(config)
```

## Options

| option | environment | default | meaning |
|---|---|---|---|
| `namespace` | `SESSION_${upper}_NAMESPACE` | `sessions` | prefix of every key this driver stores |

`sessions drivers` lists the installed drivers with their options;
`sessions check` runs a throwaway session through this one.

## Develop

    python -m pip install -e ".[test]"
    python -m pytest          # sessions-core's conformance kit, sync, async and trio
    python -m mypy            # strict
    python -m ruff check . && python -m ruff format --check .

The driver starts as an in-process dict (`src/$module/driver.py`): replace it
with your storage's client, keep the tests green, and publish with
`python -m build` and `twine upload` (or `uv build && uv publish`).
"""

WORKFLOW = """\
name: test

on:
  push:
  pull_request:

jobs:
  test:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        python-version: ["3.11", "3.12", "3.13"]
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: $${{ matrix.python-version }}
      - run: python -m pip install -e ".[test]"
      - run: python -m ruff check .
      - run: python -m ruff format --check .
      - run: python -m mypy
      - run: python -m pytest
"""

GITIGNORE = """\
__pycache__/
*.egg-info/
build/
dist/
.venv/
.mypy_cache/
.pytest_cache/
"""

FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    ".gitignore": GITIGNORE,
    ".github/workflows/test.yml": WORKFLOW,
    "src/$module/__init__.py": INIT,
    "src/$module/plugin.py": PLUGIN,
    "src/$module/driver.py": DRIVER,
    "src/$module/py.typed": "",
    "tests/test_conformance.py": TESTS,
    "tests/test_plugin.py": PLUGIN_TEST,
}


def _core_version() -> str:
    try:
        return version("sessions-core")
    except PackageNotFoundError:  # running from a source tree
        return "0.1.0"


def render(name: str) -> dict[str, str]:
    """The generated project's files, ``{relative path: text}``, for driver ``name``."""
    if not _NAME.fullmatch(name):
        raise click.BadParameter(
            f"{name!r} is not a driver name: use lowercase letters, digits and "
            "underscores, starting with a letter (it becomes SESSION_DRIVER and "
            "part of SESSION_<DRIVER>_<OPTION>)",
            param_hint="NAME",
        )
    if name in _RESERVED:
        raise click.BadParameter(
            f"{name!r} is the name of a first-party driver; installing both would be a "
            "conflict. Pick another name",
            param_hint="NAME",
        )
    values = {
        "name": name,
        "upper": name.upper(),
        "dist": "sessions-" + name.replace("_", "-"),
        "module": f"sessions_{name}",
        "cls": "".join(part.capitalize() for part in name.split("_")) + "Driver",
        "core_version": _core_version(),
    }
    return {
        Template(path).substitute(values): Template(text).substitute(values)
        for path, text in FILES.items()
    }


@click.command("new-driver")
@click.argument("name")
@click.option(
    "-o",
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the project (default: ./sessions-NAME). Must not exist or be empty.",
)
def new_driver(name: str, directory: Path | None) -> None:
    """Write a new driver distribution, sessions-NAME, ready to build and test.

    The driver starts as a working in-process store that passes the
    conformance kit; replace its dict with your storage's client.
    """
    files = render(name)
    target = directory or Path("sessions-" + name.replace("_", "-"))
    if target.exists() and any(target.iterdir()):
        raise click.ClickException(
            f"{target} already exists and is not empty: choose another --directory"
        )
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    click.echo(f"Wrote {len(files)} files to {target}/:")
    for relative in files:
        click.echo(f"  {relative}")
    click.echo(
        f"\nNext:\n  cd {target}\n  python -m pip install -e '.[test]'\n"
        f"  python -m pytest\n  sessions drivers      # lists {name!r}"
    )
