"""The ``sessions`` command line, run in-process with click's CliRunner against
real plugins (dist-info directories on sys.path) and real drivers."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sessions import SessionConfig, SessionManager
from sessions.cli import make_cli
from sessions.cli.envfile import EnvFileError, format_line, parse_env
from sessions.plugins import reset_plugins
from sessions.testing import new_key

SECRET = "cli-tests-secret-0123456789-abcdefghijk"

LOSSY_DRIVER = """
from sessions import Driver, Option

class LossyDriver(Driver):
    '''Accepts writes and forgets them: what `sessions check` must catch.'''

    options = (Option("region", str, "eu", "where the data would go"),
               Option("retries", int, None, "attempts per call", required=True))

    def read(self, session_id):
        return None

    def write(self, session_id, values):
        pass

    def destroy(self, session_id):
        pass

    def touch(self, session_id):
        pass
"""

LOSSY_PLUGIN = """
from sessions import hookimpl

@hookimpl
def sessions_register_drivers(registry):
    registry.add("lossy", "{tag}_lossy_driver:LossyDriver")
"""

GREETER_PLUGIN = """
import click
from sessions import hookimpl

@hookimpl
def sessions_register_commands(cli):
    @cli.command()
    @click.argument("name")
    def hello(name):
        '''Say hello (a plugin command).'''
        click.echo(f"hello {name}")
"""

ASYNC_ONLY = """
from sessions import Driver, hookimpl
from sessions.codec import decode, encode


class AsyncOnlyDriver(Driver):
    # Keeps encoded sessions in a dict, through async methods only.

    def __init__(self, config):
        super().__init__(config)
        self.data = {}

    async def read(self, session_id):
        raw = self.data.get(session_id)
        return None if raw is None else decode(raw)

    async def write(self, session_id, values):
        self.data[session_id] = encode(values)

    async def destroy(self, session_id):
        self.data.pop(session_id, None)

    async def touch(self, session_id):
        pass

    async def agc(self, progress=None):
        from sessions.driver import GcResult

        if progress is not None:
            progress(len(self.data), len(self.data))
        return GcResult(scanned=len(self.data), removed=0, bytes_freed=None, seconds=0.0)


@hookimpl
def sessions_register_drivers(registry):
    registry.add("aonly", AsyncOnlyDriver)
"""

FAULTY_COMMANDS = """
from sessions import hookimpl

@hookimpl
def sessions_register_commands(cli):
    raise RuntimeError("command registration exploded")
"""


class Site:
    """A site directory on sys.path holding plugin distributions."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = root / "site"
        self.path.mkdir()
        self.tag = "cli" + uuid.uuid4().hex[:8]
        monkeypatch.syspath_prepend(str(self.path))

    def add(self, dist: str, group: str, name: str, modules: dict[str, str]) -> None:
        for module, source in modules.items():
            text = textwrap.dedent(source).replace("{tag}", self.tag)
            (self.path / f"{self.tag}_{module}.py").write_text(text)
        info = self.path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        info.joinpath("METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        plugin = f"{self.tag}_{next(iter(modules))}"
        info.joinpath("entry_points.txt").write_text(f"[{group}]\n{name} = {plugin}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    made = Site(tmp_path, monkeypatch)
    reset_plugins()
    yield made
    for name in [n for n in sys.modules if n.startswith(made.tag)]:
        del sys.modules[name]
    reset_plugins()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for var in [v for v in os.environ if v.startswith("SESSION_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("SESSIONS_PLUGINS", "")
    monkeypatch.chdir(tmp_path)
    reset_plugins()
    yield
    reset_plugins()


def run(*args: str, **env: str) -> Result:
    """Invoke a fresh command group; ``env`` applies only during the call."""
    reset_plugins()  # plugins load inside the call, under ``env``
    return CliRunner().invoke(make_cli(), list(args), env=env, catch_exceptions=False)


# -- without the cli extra -------------------------------------------------------------------


@pytest.mark.parametrize("blocked", [["click", "rich"], ["rich"]])
def test_console_script_without_the_cli_extra_says_what_to_install(blocked: list[str]) -> None:
    # A module set to None in sys.modules cannot be imported: as if not installed.
    script = (
        "import sys\n"
        f"for name in {blocked!r}:\n    sys.modules[name] = None\n"
        "from sessions.console import main\n"
        "main(['drivers'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"the command line needs {', '.join(blocked)}," in proc.stderr
    assert 'pip install "sessions-core[cli]"' in proc.stderr
    assert proc.stdout == ""


def test_console_script_runs_the_cli_when_the_extra_is_installed() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from sessions.console import main; main(['secret'])"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip()) == 64


# -- secret -------------------------------------------------------------------------------


def test_secret_is_long_random_and_url_safe() -> None:
    one, two = run("secret"), run("secret")
    assert one.exit_code == 0
    first = one.output.strip()
    assert len(first) == 64
    assert first != two.output.strip()
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    SessionConfig(secret=first)  # accepted as a secret


def test_secret_refuses_weak_lengths() -> None:
    result = run("secret", "--bytes", "8")
    assert result.exit_code == 2
    assert "8 is not in the range 24<=x<=1024" in result.output


def test_secret_loads_no_plugin_and_no_rich() -> None:
    script = (
        "import json, sys\n"
        "from sessions.cli import main\n"
        "try:\n    main(['secret'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SESSIONS_PLUGINS"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    modules = json.loads(out[-1])
    assert len(out[0]) == 64
    assert not [m for m in modules if m.startswith("sessions_")], "a driver plugin was imported"
    assert "rich" not in modules
    assert "sessions.cli.drivers" not in modules


# -- drivers ------------------------------------------------------------------------------------


def test_drivers_json_lists_drivers_options_and_failures(site: Site) -> None:
    site.add(
        "sessions-lossy",
        "sessions.drivers",
        "lossy",
        {"lossy": LOSSY_PLUGIN, "lossy_driver": LOSSY_DRIVER},
    )
    site.add(
        "sessions-broken",
        "sessions.drivers",
        "broken",
        {"broken": "import no_such_client_library\n"},
    )
    result = run("drivers", "--json", SESSIONS_PLUGINS="lossy,broken")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    by_name = {d["name"]: d for d in report["drivers"]}
    assert set(by_name) == {"cookie", "memory", "lossy"}
    lossy = by_name["lossy"]
    assert (lossy["distribution"], lossy["version"], lossy["flavours"]) == (
        "sessions-lossy",
        "1.0",
        "sync",
    )
    assert lossy["options"] == [
        {
            "name": "region",
            "type": "str",
            "default": "eu",
            "required": False,
            "choices": None,
            "help": "where the data would go",
        },
        {
            "name": "retries",
            "type": "int",
            "default": None,
            "required": True,
            "choices": None,
            "help": "attempts per call",
        },
    ]
    assert report["disabled"][0]["reason"].startswith("not listed in SESSIONS_PLUGINS")
    assert "file" not in report["not_installed"]  # installed in this workspace, only disabled
    assert by_name["memory"]["flavours"] == "sync+async"
    assert by_name["memory"]["capabilities"] == ["conflict-free", "tagging", "gc"]
    assert report["failed"] == [
        {
            "name": "broken",
            "distribution": "sessions-broken",
            "version": "1.0",
            "stage": "import",
            "error": "ModuleNotFoundError: No module named 'no_such_client_library'",
        }
    ]


def test_drivers_table_never_breaks_option_names_at_80_columns() -> None:
    plugins = "file,redis,sql,memcached,dbm"  # the first-party drivers' long option names
    report = json.loads(run("drivers", "--json", SESSIONS_PLUGINS=plugins).output)
    names = [d["name"] for d in report["drivers"]]
    options = [o["name"] for d in report["drivers"] for o in d["options"]]
    assert "socket_connect_timeout" in options  # the longest, broken before the fix
    result = run("drivers", SESSIONS_PLUGINS=plugins, COLUMNS="80")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80
    first_cells = {line.split("│")[1].strip() for line in lines if line.startswith("│ ")}
    assert set(options) <= first_cells, sorted(set(options) - first_cells)
    assert set(names) <= first_cells


def test_drivers_table_shows_failed_plugins(site: Site) -> None:
    site.add(
        "sessions-broken",
        "sessions.drivers",
        "broken",
        {"broken": "raise ValueError('bad [config]')\n"},
    )
    result = run("drivers", SESSIONS_PLUGINS="broken", COLUMNS="200")
    assert result.exit_code == 0
    assert "memory" in result.output
    assert "max_sessions" in result.output
    assert (
        "failed plugin broken from sessions-broken 1.0 (import): ValueError: bad [config]"
        in result.output
    )
    assert "not installed" not in result.output or "pip install" in result.output


# -- gc --------------------------------------------------------------------------------------------


def test_gc_removes_expired_sessions_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "SESSIONS_PLUGINS": "dbm",
        "SESSION_DRIVER": "dbm",
        "SESSION_SECRET": SECRET,
        "SESSION_DBM_PATH": str(tmp_path / "store" / "sessions.dbm"),
    }
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    reset_plugins()
    manager = SessionManager(SessionConfig.from_env())
    live = new_key()
    manager.driver.write(live, {"x": 1})
    manager.driver.store_raw(new_key(), b"\x00" * 8 + b"{}")
    manager.driver.store_raw(new_key(), b"\x00" * 8 + b'{"y": 2}')
    manager.close()

    result = run("gc", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["driver"], report["scanned"], report["removed"]) == ("dbm", 3, 2)
    assert report["bytes_freed"] == 26
    again = run("gc")
    assert again.exit_code == 0
    assert again.stdout.startswith("dbm: scanned 1, removed 0, freed 0 bytes, in ")


def test_gc_runs_an_async_only_drivers_agc(site: Site) -> None:
    site.add("sessions-aonly", "sessions.drivers", "aonly", {"aonly": ASYNC_ONLY})
    env = {"SESSIONS_PLUGINS": "aonly", "SESSION_DRIVER": "aonly", "SESSION_SECRET": SECRET}
    result = run("gc", **env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("aonly: scanned 0, removed 0, freed unknown, in ")


def test_gc_on_a_driver_without_the_capability_is_a_no_op() -> None:
    result = run("gc", SESSION_DRIVER="cookie", SESSION_SECRET=SECRET)
    assert result.exit_code == 0
    assert "expires sessions by itself" in result.output


def test_gc_needs_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "store" / "sessions.dbm")
    config = SessionConfig(secret=SECRET, driver="dbm", drivers={"dbm": {"path": path}})
    monkeypatch.setenv("SESSIONS_PLUGINS", "dbm")
    reset_plugins()
    manager = SessionManager(config)
    live = new_key()
    manager.driver.write(live, {"x": 1})
    manager.driver.store_raw(new_key(), b"\x00" * 8 + b"{}")  # expired
    manager.close()

    env = {"SESSIONS_PLUGINS": "dbm", "SESSION_DRIVER": "dbm", "SESSION_DBM_PATH": path}
    assert "SESSION_SECRET" not in os.environ
    result = run("gc", "--json", **env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["driver"], report["scanned"], report["removed"]) == ("dbm", 2, 1)
    manager = SessionManager(config)
    assert manager.driver.read(live) == {"x": 1}
    manager.close()


def test_gc_with_a_bad_secret_still_says_what_is_wrong() -> None:
    result = run("gc", SESSION_DRIVER="memory", SESSION_SECRET="short")
    assert result.exit_code == 1
    assert "invalid session config SESSION_SECRET (secret)='<5 characters, hidden>'" in (
        result.output
    )


# -- init -------------------------------------------------------------------------------------


def test_init_writes_settings_with_a_fresh_secret(tmp_path: Path) -> None:
    result = run("init", "--driver", "memory", "-o", "max_sessions=500")
    assert result.exit_code == 0, result.output
    env_file = tmp_path / ".env"
    values = parse_env(env_file.read_text())
    assert values["SESSION_DRIVER"] == "memory"
    assert values["SESSION_AGE"] == "2h"
    assert values["SESSION_MEMORY_MAX_SESSIONS"] == "500"
    assert len(values["SESSION_SECRET"]) == 64
    assert values["SESSION_SECRET"] not in result.output
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    config = SessionConfig.from_env(values)
    assert config.driver == "memory"


def test_init_never_overwrites_existing_settings(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("export SESSION_SECRET='kept-secret-0123456789-abcdefghijklm'\nOTHER=1")
    result = run("init", "--driver", "cookie")
    assert result.exit_code == 0, result.output
    assert "kept     SESSION_SECRET (already set)" in result.output
    text = env_file.read_text()
    assert text.startswith(
        "export SESSION_SECRET='kept-secret-0123456789-abcdefghijklm'\nOTHER=1\n"
    )
    assert text.count("SESSION_SECRET=") == 1
    assert parse_env(text)["SESSION_DRIVER"] == "cookie"

    second = run("init", "--driver", "memory")
    assert "warning: .env already selects SESSION_DRIVER=cookie" in second.output
    values = parse_env(env_file.read_text())
    assert values["SESSION_DRIVER"] == "cookie"
    assert values["SESSION_MEMORY_MAX_SESSIONS"] == "100000"
    third = run("init", "--driver", "memory")
    assert "nothing written" in third.output
    assert env_file.read_text().count("SESSION_DRIVER=") == 1


def test_init_leaves_required_options_without_default_as_placeholders(site: Site) -> None:
    site.add(
        "sessions-lossy",
        "sessions.drivers",
        "lossy",
        {"lossy": LOSSY_PLUGIN, "lossy_driver": LOSSY_DRIVER},
    )
    result = run("init", "-d", "lossy", SESSIONS_PLUGINS="lossy")
    assert result.exit_code == 0, result.output
    text = Path(".env").read_text()
    assert "SESSION_LOSSY_REGION=eu" in text
    assert "# SESSION_LOSSY_RETRIES=    # required: attempts per call" in text
    assert "todo     SESSION_LOSSY_RETRIES" in result.output


def test_init_does_not_print_a_password(site: Site) -> None:
    site.add(
        "sessions-lossy",
        "sessions.drivers",
        "lossy",
        {"lossy": LOSSY_PLUGIN, "lossy_driver": LOSSY_DRIVER},
    )
    url = "postgresql://app:hunter2@127.0.0.1/db?sslpassword=hunter3"
    result = run("init", "-d", "lossy", "-o", f"region={url}", SESSIONS_PLUGINS="lossy")
    assert result.exit_code == 0, result.output
    assert "SESSION_LOSSY_REGION=postgresql://app:***@127.0.0.1/db?sslpassword=***" in (
        result.output
    )
    assert "hunter2" not in result.output
    assert "hunter3" not in result.output
    assert url in Path(".env").read_text()  # the file itself keeps the real value


def test_init_marks_only_required_options_as_todo(site: Site) -> None:
    site.add(
        "sessions-lossy",
        "sessions.drivers",
        "lossy",
        {"lossy": LOSSY_PLUGIN, "lossy_driver": LOSSY_DRIVER},
    )
    result = run("init", "-d", "lossy", SESSIONS_PLUGINS="lossy")
    todo = [line for line in result.output.splitlines() if line.startswith("todo")]
    assert todo == ["todo     SESSION_LOSSY_RETRIES (attempts per call)"]

    # redis declares no required option, and max_connections has no default.
    Path(".env").unlink()
    result = run("init", "-d", "redis", SESSIONS_PLUGINS="redis")
    assert result.exit_code == 0, result.output
    assert "todo" not in result.output
    assert "optional SESSION_REDIS_MAX_CONNECTIONS (most connections" in result.output
    text = Path(".env").read_text()
    assert "# SESSION_REDIS_MAX_CONNECTIONS=    # optional: most connections" in text
    assert "SESSION_REDIS_URL=redis://127.0.0.1:6379/0" in text


def test_init_refuses_unknown_drivers_and_options() -> None:
    result = run("init", "--driver", "mongo")
    assert result.exit_code == 1
    assert (
        "no session driver named 'mongo' is installed (installed: cookie, memory)" in result.output
    )
    bad = run("init", "--driver", "memory", "-o", "colour=blue")
    assert bad.exit_code == 2
    assert "has no option 'colour'" in bad.output
    assert "valid: max_sessions" in bad.output
    wrong_type = run("init", "--driver", "memory", "-o", "max_sessions=lots")
    assert wrong_type.exit_code == 2
    assert "drivers.memory.max_sessions='lots'" in wrong_type.output
    assert not Path(".env").exists()


def test_init_reports_a_malformed_env_file_by_line() -> None:
    Path(".env").write_text("A=1\nthis is not an assignment\n")
    result = run("init")
    assert result.exit_code == 1
    assert ".env, line 2: expected KEY=value" in result.output


# -- check ------------------------------------------------------------------------------------


def test_check_passes_for_a_working_driver() -> None:
    result = run("check", SESSION_DRIVER="memory", SESSION_SECRET=SECRET)
    assert result.exit_code == 0, result.output
    for step in ("write", "read back", "touch", "destroy", "read after destroy"):
        assert f"ok    {step} (" in result.output
    assert "via the sync flavour" in result.output
    assert result.output.rstrip().endswith("OK: driver 'memory' stores, reads and removes sessions")
    # The memory driver declares itself not durable: the check says what that costs.
    assert "warning: driver 'memory' is not durable" in result.output
    assert "a restart of its store logs every user out" in result.output


def test_check_through_the_async_flavour_and_an_env_file(tmp_path: Path) -> None:
    Path(".env").write_text(f"SESSION_DRIVER=memory\nSESSION_SECRET={SECRET}\n")
    result = run("check", "--flavour", "async")
    assert result.exit_code == 0, result.output
    assert "via the async flavour" in result.output


def test_check_fails_with_a_verdict_when_data_is_lost(site: Site) -> None:
    site.add(
        "sessions-lossy",
        "sessions.drivers",
        "lossy",
        {"lossy": LOSSY_PLUGIN, "lossy_driver": LOSSY_DRIVER},
    )
    result = run(
        "check",
        SESSIONS_PLUGINS="lossy",
        SESSION_DRIVER="lossy",
        SESSION_SECRET=SECRET,
        SESSION_LOSSY_RETRIES="3",
    )
    assert result.exit_code == 1
    assert "ok    write" in result.output
    assert "FAIL  read back: expected" in result.output
    assert "read None" in result.output
    assert "FAILED: driver 'lossy' did not pass the check (step: read back)" in result.output


def test_check_uses_the_async_flavour_of_an_async_only_driver(site: Site) -> None:
    site.add("sessions-aonly", "sessions.drivers", "aonly", {"aonly": ASYNC_ONLY})
    env = {"SESSIONS_PLUGINS": "aonly", "SESSION_DRIVER": "aonly", "SESSION_SECRET": SECRET}
    result = run("check", **env)
    assert result.exit_code == 0, result.output
    assert "flavours async" in result.output
    assert "via the async flavour" in result.output
    assert "not durable" not in result.output  # durable unless a driver says otherwise
    forced = run("check", "--flavour", "sync", **env)
    assert forced.exit_code == 1
    assert "FAIL  sync flavour available: ConfigError" in forced.output
    assert "async-only" in forced.output


def test_check_fails_when_the_driver_cannot_be_built() -> None:
    result = run("check", SESSION_DRIVER="redis", SESSION_SECRET=SECRET)
    assert result.exit_code == 1
    assert "FAIL  load and build the driver: DriverNotFoundError" in result.output
    assert "FAILED" in result.output


def test_check_fails_on_bad_config() -> None:
    result = run("check", SESSION_DRIVER="memory", SESSION_SECRET="short")
    assert result.exit_code == 1
    assert (
        "invalid session config SESSION_SECRET (secret)='<5 characters, hidden>'" in result.output
    )


# -- plugin commands --------------------------------------------------------------------------


def test_plugins_add_subcommands_and_a_faulty_one_stops_nothing(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add("sessions-greeter", "sessions.plugins", "greeter", {"greeter": GREETER_PLUGIN})
    site.add("sessions-faulty", "sessions.plugins", "faulty", {"faulty": FAULTY_COMMANDS})
    monkeypatch.setenv("SESSIONS_PLUGINS", "greeter,faulty")
    result = run("hello", "ada")
    assert result.exit_code == 0, result.output
    assert result.output == "hello ada\n"
    listing = run("--help")
    assert "hello" in listing.output
    assert "Say hello (a plugin command)." in listing.output
    missing = run("nosuch")
    assert missing.exit_code == 2
    assert "No such command 'nosuch'" in missing.output
    assert "command registration exploded" in missing.output
    hooks = run("hooks")
    assert "sessions_register_commands:" in hooks.output
    assert "sessions-greeter:greeter" in hooks.output


def test_builtin_commands_do_not_load_plugins(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site.add("sessions-greeter", "sessions.plugins", "greeter", {"greeter": GREETER_PLUGIN})
    monkeypatch.setenv("SESSIONS_PLUGINS", "greeter")
    run("secret")
    assert f"{site.tag}_greeter" not in sys.modules


def test_hooks_markdown_is_the_reference_page() -> None:
    result = run("hooks", "--markdown")
    page = (Path(__file__).resolve().parents[3] / "docs" / "hooks.md").read_text()
    assert result.output == page


# -- .env files --------------------------------------------------------------------------------


def test_env_file_syntax() -> None:
    text = (
        "# comment\n"
        "A=plain  # trailing comment\n"
        "export B='single # not a comment'\n"
        'C="double \\"quoted\\"\\nline"\n'
        "D=\n"
        "A=last wins\n"
    )
    assert parse_env(text) == {
        "A": "last wins",
        "B": "single # not a comment",
        "C": 'double "quoted"\nline',
        "D": "",
    }
    with pytest.raises(EnvFileError, match="line 1: unterminated"):
        parse_env("A='open\n")
    with pytest.raises(EnvFileError, match="line 2: unexpected text after the closing quote"):
        parse_env("A=1\nB='x' y\n")


@pytest.mark.parametrize(
    "value", ["simple", "with space", 'q"uote', "back\\slash", "multi\nline", ""]
)
def test_written_values_read_back(value: Any) -> None:
    assert parse_env(format_line("K", value)) == {"K": value}


def test_environment_wins_over_env_file() -> None:
    Path("custom.env").write_text(f"SESSION_DRIVER=cookie\nSESSION_SECRET={SECRET}\n")
    result = run("check", "--env-file", "custom.env", SESSION_DRIVER="memory")
    assert result.exit_code == 0, result.output
    assert "driver 'memory'" in result.output


# -- list and revoke ------------------------------------------------------------------------

SHARED_MEMORY = """
from collections import OrderedDict
import threading

from sessions import hookimpl
from sessions.drivers.memory import MemoryDriver


class SharedMemory(MemoryDriver):
    '''The memory driver with one store per process, so commands see what a test wrote.'''

    data = OrderedDict()
    tags = {}
    lock = threading.Lock()

    def __init__(self, config):
        super().__init__(config)
        self._data, self._tags, self._lock = self.data, self.tags, self.lock


@hookimpl
def sessions_register_drivers(registry):
    registry.add("shared", SharedMemory)
"""


@pytest.fixture
def tagged_store(site: Site, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    site.add("sessions-shared", "sessions.drivers", "shared", {"shared": SHARED_MEMORY})
    monkeypatch.setenv("SESSIONS_PLUGINS", "shared")
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    monkeypatch.setenv("SESSION_DRIVER", "shared")
    reset_plugins()
    manager = SessionManager(SessionConfig(secret=SECRET, driver="shared"))
    ids: dict[str, Any] = {"ada": [], "bob": []}
    for user, count in (("ada", 3), ("bob", 1)):
        for i in range(count):
            session = manager.session(manager.context({}))
            session.initiate()
            session.put("device", f"{user}-{i}")
            session.tag(user)
            session.commit()
            ids[user].append(session.session_id)
    return ids


def test_list_shows_a_tags_sessions_without_their_values(tagged_store: dict[str, Any]) -> None:
    result = run("list", "--tag", "ada", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert sorted(row["session_id"] for row in rows) == sorted(tagged_store["ada"])
    assert all(row["tag"] == "ada" and row["keys"] == ["device"] for row in rows)
    assert "ada-0" not in result.output
    table = run("list", "--tag", "ada")
    assert table.exit_code == 0
    assert "(3)" in table.output


def test_revoke_a_tag_keeping_one_then_one_by_id(tagged_store: dict[str, Any]) -> None:
    keep = tagged_store["ada"][0]
    result = run("revoke", "--tag", "ada", "--keep", keep)
    assert result.exit_code == 0, result.output
    assert "revoked 2 sessions tagged 'ada'" in result.output
    assert [
        row["session_id"] for row in json.loads(run("list", "--tag", "ada", "--json").output)
    ] == [keep]
    assert run("revoke", "--id", keep).exit_code == 0
    assert json.loads(run("list", "--tag", "ada", "--json").output) == []
    assert len(json.loads(run("list", "--tag", "bob", "--json").output)) == 1


def test_revoke_needs_exactly_one_target() -> None:
    assert "exactly one of --tag or --id" in run("revoke").output
    assert run("revoke", "--id", "x", "--keep", "y").exit_code != 0


def test_list_on_a_driver_without_tagging_says_which_can(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run("list", "--tag", "ada", SESSION_SECRET=SECRET, SESSION_DRIVER="cookie")
    assert result.exit_code == 1
    assert "cannot find sessions by tag" in result.output
    assert "memory, file, redis, sql" in result.output
