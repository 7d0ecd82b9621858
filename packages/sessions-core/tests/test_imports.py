"""Import isolation: importing sessions and selecting one driver imports no other
driver's module and no client library it does not need.

Each check runs in a fresh interpreter with every installed plugin autoloaded
(as an application would), and inspects ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from typing import Any

import pytest
from packaging.requirements import Requirement

#: Client libraries a driver may import, by driver name; no other driver may.
CLIENTS = {"redis": {"redis"}, "sql": {"sqlalchemy"}, "memcached": {"pymemcache"}}
#: Never imported just by importing sessions and resolving a driver.
FRAMEWORKS = {
    "starlette",
    "flask",
    "werkzeug",
    "jinja2",
    "httpx",
    "fastapi",
    "litestar",
    "quart",
    "itsdangerous",
}
#: The command line's libraries (the ``cli`` extra) and async libraries core does not need.
CLI_AND_ASYNC = {"click", "rich", "anyio", "trio"}
INTEGRATIONS = {
    "sessions.asgi",
    "sessions.wsgi",
    "sessions.flask",
    "sessions.jinja",
    "sessions.fastapi",
    "sessions.litestar",
    "sessions.quart",
    "sessions.bridges.starlette",
}

DRIVERS = ["memory", "cookie", "file", "redis", "sql", "memcached", "dbm"]

# The parent imports nothing of sessions; each driver is resolved in a forked child,
# so every check starts from a clean interpreter without paying its start-up again.
SCRIPT = """
import json, os, sys

def resolve(name):
    import sessions
    after_import = sorted(sys.modules)
    from sessions.plugins import load_plugins
    plugins = load_plugins()
    try:
        plugins.get(name).load()
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return {
        "after_import": after_import,
        "modules": sorted(sys.modules),
        "targets": {n: e.target for n, e in plugins.drivers.items()},
        "error": error,
    }

results = {}
for name in sys.argv[1:]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        with os.fdopen(write_end, "w") as out:
            json.dump(resolve(name), out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        results[name] = json.loads(pipe.read())
    os.waitpid(pid, 0)
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def resolved() -> dict[str, dict[str, Any]]:
    """What each driver's resolution imported, from one fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONS_")}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *DRIVERS], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, f"resolving drivers failed:\n{proc.stderr[-3000:]}"
    result: dict[str, dict[str, Any]] = json.loads(proc.stdout.splitlines()[-1])
    return result


def top(module: str) -> str:
    return module.partition(".")[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("driver", DRIVERS)
def test_resolving_one_driver_imports_nothing_of_the_others(
    resolved: dict[str, dict[str, Any]], driver: str
) -> None:
    found = resolved[driver]
    assert found["error"] is None, found["error"]
    modules = set(found["modules"])
    own_module = found["targets"][driver].partition(":")[0]
    assert own_module in modules
    problems = [
        f"{other!r}'s driver module {module}"
        for other, target in sorted(found["targets"].items())
        if other != driver
        and (module := target.partition(":")[0]) != own_module
        and module in modules
    ]
    allowed = CLIENTS.get(driver, set())
    forbidden = (set().union(*CLIENTS.values()) - allowed) | FRAMEWORKS
    problems += [f"library {name}" for name in sorted({top(m) for m in modules} & forbidden)]
    problems += [f"integration {name}" for name in sorted(INTEGRATIONS & modules)]
    assert problems == [], f"resolving {driver!r} imported: {'; '.join(problems)}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_importing_sessions_loads_no_plugin(resolved: dict[str, dict[str, Any]]) -> None:
    found = resolved["memory"]
    after_import = set(found["after_import"])
    assert not [m for m in after_import if m.startswith("sessions_")]
    assert "sessions.drivers.memory" not in after_import
    assert not {top(m) for m in after_import} & (set().union(*CLIENTS.values()) | FRAMEWORKS)
    assert not {top(m) for m in after_import} & CLI_AND_ASYNC
    # asyncio costs a fifth of the import; a WSGI app never needs it.
    assert "asyncio" not in after_import


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("driver", ["memory", "cookie"])
def test_core_drivers_import_no_cli_or_async_library(
    resolved: dict[str, dict[str, Any]], driver: str
) -> None:
    modules = {top(m) for m in resolved[driver]["modules"]}
    assert not modules & CLI_AND_ASYNC, f"resolving {driver!r} imported {modules & CLI_AND_ASYNC}"


def test_core_requires_only_pluggy_and_cryptography() -> None:
    requires = [Requirement(r) for r in metadata.requires("sessions-core") or []]
    assert sorted(r.name for r in requires if r.marker is None) == ["cryptography", "pluggy"]
    cli = sorted(r.name for r in requires if r.marker and r.marker.evaluate({"extra": "cli"}))
    assert cli == ["anyio", "click", "rich"]
