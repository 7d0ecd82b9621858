"""Driver discovery through real entry points, and the lifecycle hooks.

Each test builds tiny distributions (a ``*.dist-info`` with ``entry_points.txt``
next to the plugin's module) in a temporary directory on ``sys.path``, exactly
what importlib.metadata reads for an installed wheel, and loads plugins with
``SESSIONS_PLUGINS`` naming only those, so the workspace's own driver packages
stay out of the way.
"""

from __future__ import annotations

import re
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sessions import (
    ConfigError,
    DriverConflictError,
    DriverNotFoundError,
    SessionConfig,
    SessionManager,
    hookspecs,
)
from sessions.cli.hookdoc import hook_functions, render_reference
from sessions.driver import RequestContext
from sessions.plugins import DriverRegistry, Plugins, load_plugins, reset_plugins

SECRET = "plugin-tests-secret-0123456789abcdefgh"
REPO = Path(__file__).resolve().parents[3]

DRIVER_SOURCE = """
from sessions.drivers.memory import MemoryDriver

class {cls}(MemoryDriver):
    pass
"""


class Dists:
    """Writes distributions into site directories that are put on sys.path."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.monkeypatch = monkeypatch
        self.tag = "plug" + uuid.uuid4().hex[:8]
        self._sites: set[Path] = set()

    def mod(self, name: str) -> str:
        """A module name unique to this test."""
        return f"{self.tag}_{name}"

    def module(self, name: str, source: str, site: str = "site-a") -> str:
        path = self._site(site) / f"{self.mod(name)}.py"
        path.write_text(textwrap.dedent(source).replace("{tag}", self.tag))
        return self.mod(name)

    def dist(
        self,
        name: str,
        entry_points: dict[str, dict[str, str]],
        *,
        version: str = "1.0",
        site: str = "site-a",
    ) -> None:
        info = self._site(site) / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        info.joinpath("METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{ep} = {value}" for ep, value in eps.items()]
        info.joinpath("entry_points.txt").write_text("\n".join(lines) + "\n")

    def _site(self, site: str) -> Path:
        path = self.root / site
        if path not in self._sites:
            path.mkdir()
            self._sites.add(path)
            self.monkeypatch.syspath_prepend(str(path))
        return path

    def imported(self, name: str) -> bool:
        return self.mod(name) in sys.modules

    def plugin(
        self, name: str, drivers: dict[str, str], extra: str = "", site: str = "site-a"
    ) -> str:
        """A plugin module registering ``drivers`` (name -> "module:Class")."""
        adds = (
            "\n".join(f"    registry.add({n!r}, {t!r})" for n, t in drivers.items()) or "    pass"
        )
        header = (
            "from sessions import hookimpl\n\n@hookimpl\ndef sessions_register_drivers(registry):"
        )
        source = f"{header}\n{adds}\n{extra}"
        return self.module(name, source, site)

    def driver_module(self, name: str, cls: str = "Driver", site: str = "site-a") -> str:
        return self.module(name, DRIVER_SOURCE.format(cls=cls), site)


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dists]:
    made = Dists(tmp_path, monkeypatch)
    monkeypatch.delenv("SESSIONS_DISABLED_PLUGINS", raising=False)
    reset_plugins()
    yield made
    for name in [n for n in sys.modules if n.startswith(made.tag)]:
        del sys.modules[name]
    reset_plugins()


def allow(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    monkeypatch.setenv("SESSIONS_PLUGINS", ",".join(names))


def good_dist(dists: Dists, name: str = "alpha", dist: str = "sessions-alpha") -> None:
    driver = dists.driver_module(f"{name}_driver", "AlphaDriver")
    plugin = dists.plugin(name, {name: f"{driver}:AlphaDriver"})
    dists.dist(dist, {"sessions.drivers": {name: plugin}}, version="2.3")


# -- core's default plugin ------------------------------------------------------------


def test_core_drivers_come_from_the_default_plugin() -> None:
    plugins = Plugins(autoload=False)
    assert set(plugins.drivers) == {"memory", "cookie"}
    memory = plugins.get("memory")
    assert memory.distribution == "sessions-core"
    assert memory.target == "sessions.drivers.memory:MemoryDriver"
    assert plugins.failures == {}


# -- discovery ------------------------------------------------------------------------------


def test_entry_point_driver_is_registered_lazily(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_dist(dists)
    allow(monkeypatch, "alpha")
    plugins = Plugins()
    entry = plugins.get("alpha")
    assert (entry.distribution, entry.version) == ("sessions-alpha", "2.3")
    assert dists.imported("alpha")  # the plugin module
    assert not dists.imported("alpha_driver")  # the driver: only once selected
    cls = entry.load()
    assert cls.__name__ == "AlphaDriver"
    assert dists.imported("alpha_driver")
    assert entry.load() is cls


def test_broken_plugin_is_recorded_and_does_not_stop_others(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_dist(dists)
    broken = dists.module("broken", "raise RuntimeError('no database client configured')\n")
    dists.dist("sessions-broken", {"sessions.drivers": {"broken": broken}}, version="0.9")
    allow(monkeypatch, "alpha", "broken")
    plugins = Plugins()
    assert "alpha" in plugins.drivers
    failure = plugins.failures["broken"]
    assert (failure.distribution, failure.version, failure.stage) == (
        "sessions-broken",
        "0.9",
        "import",
    )
    assert isinstance(failure.error, RuntimeError)
    assert "no database client configured" in failure.traceback
    with pytest.raises(DriverNotFoundError) as info:
        plugins.get("broken")
    assert info.value.__cause__ is failure.error
    assert "sessions-broken 0.9" in str(info.value)
    assert "no database client configured" in str(info.value)


def test_plugin_whose_hook_raises_leaves_nothing_behind(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = dists.driver_module("half_driver")
    plugin = dists.module(
        "half",
        f"""
        from sessions import hookimpl

        @hookimpl
        def sessions_register_drivers(registry):
            registry.add("half", "{driver}:Driver")
            registry.add("half_extra", "{driver}:Driver")
            raise KeyError("missing setting")
        """,
    )
    dists.dist("sessions-half", {"sessions.drivers": {"half": plugin}})
    good_dist(dists)
    allow(monkeypatch, "half", "alpha")
    plugins = Plugins()
    assert "half" not in plugins.drivers
    assert "half_extra" not in plugins.drivers
    assert "alpha" in plugins.drivers
    assert plugins.failures["half"].stage == "register"
    with pytest.raises(DriverNotFoundError, match="missing setting"):
        plugins.get("half")


def test_plugin_must_register_the_name_its_entry_point_promises(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = dists.driver_module("wrong_driver")
    plugin = dists.plugin("wrong", {"other": f"{driver}:Driver"})
    dists.dist("sessions-wrong", {"sessions.drivers": {"wrong": plugin}})
    allow(monkeypatch, "wrong")
    plugins = Plugins()
    with pytest.raises(DriverNotFoundError, match=r"promises a driver named 'wrong'.*'other'"):
        plugins.get("wrong")


def test_bad_registrations_are_refused_with_the_reason() -> None:
    registry = DriverRegistry()
    with pytest.raises(ValueError, match=r"driver name 'Bad-Name' is not valid"):
        registry.add("Bad-Name", "x:Y")
    with pytest.raises(ValueError, match=r"'module:attr'"):
        registry.add("ok", "no_colon_here")
    with pytest.raises(TypeError, match="not int"):
        registry.add("ok", 42)  # type: ignore[arg-type]


def test_unimportable_factory_fails_on_selection_chained(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = dists.plugin("ghost", {"ghost": "no_such_module_anywhere:Driver"})
    dists.dist("sessions-ghost", {"sessions.drivers": {"ghost": plugin}})
    allow(monkeypatch, "ghost")
    entry = Plugins().get("ghost")
    with pytest.raises(DriverNotFoundError, match=r"sessions-ghost 1\.0") as info:
        entry.load()
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_same_distribution_twice_on_sys_path_is_not_a_conflict(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = dists.driver_module("twin_driver")
    plugin = dists.plugin("twin", {"twin": f"{driver}:Driver"})
    for site in ("site-a", "site-b"):
        dists.dist("sessions-twin", {"sessions.drivers": {"twin": plugin}}, site=site)
    allow(monkeypatch, "twin")
    plugins = Plugins()
    assert plugins.get("twin").distribution == "sessions-twin"
    assert plugins.registry.conflicts == {}
    assert plugins.failures == {}


def test_two_distributions_claiming_one_name_is_an_error_naming_both(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = dists.plugin("claim_one", {"claimed": "x:Y"})
    two = dists.plugin("claim_two", {"claimed": "x:Y"})
    dists.dist("sessions-one", {"sessions.drivers": {"claimed": one}}, version="1.1")
    dists.dist("sessions-two", {"sessions.drivers": {"claimed": two}}, version="2.2")
    allow(monkeypatch, "claimed")
    plugins = Plugins()
    with pytest.raises(DriverConflictError) as info:
        plugins.get("claimed")
    message = str(info.value)
    assert "sessions-one 1.1" in message
    assert "sessions-two 2.2" in message
    assert "Uninstall" in message
    assert not dists.imported("claim_one")
    assert not dists.imported("claim_two")


def test_disabling_one_claimant_settles_a_conflict(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = dists.driver_module("settled_driver")
    one = dists.plugin("settle_one", {"settled": f"{driver}:Driver"})
    two = dists.plugin("settle_two", {"settled": "x:Y"})
    dists.dist("sessions-one", {"sessions.drivers": {"settled": one}})
    dists.dist("sessions-two", {"sessions.drivers": {"settled": two}})
    allow(monkeypatch, "settled")
    monkeypatch.setenv("SESSIONS_DISABLED_PLUGINS", "sessions-two")
    plugins = Plugins()
    assert plugins.get("settled").distribution == "sessions-one"
    assert not dists.imported("settle_two")


def test_plugin_calling_sys_exit_is_contained(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    quitter = dists.module("quitter", "import sys\nsys.exit('missing configuration')\n")
    dists.dist("sessions-quitter", {"sessions.drivers": {"quitter": quitter}})
    allow(monkeypatch, "quitter")
    plugins = Plugins()
    assert isinstance(plugins.failures["quitter"].error, SystemExit)
    assert "memory" in plugins.drivers


def test_a_plugin_cannot_take_over_a_core_driver_name(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = dists.driver_module("usurper_driver")
    plugin = dists.plugin("usurper", {"usurper": f"{driver}:Driver", "memory": f"{driver}:Driver"})
    dists.dist("sessions-usurper", {"sessions.drivers": {"usurper": plugin}})
    allow(monkeypatch, "usurper")
    plugins = Plugins()
    with pytest.raises(DriverConflictError, match=r"sessions-core .*sessions-usurper"):
        plugins.get("memory")
    assert "usurper" in plugins.drivers


def test_empty_allow_list_loads_nothing(dists: Dists, monkeypatch: pytest.MonkeyPatch) -> None:
    good_dist(dists)
    allow(monkeypatch)
    plugins = Plugins()
    assert set(plugins.drivers) == {"memory", "cookie"}
    assert not dists.imported("alpha")
    assert "SESSIONS_PLUGINS" in plugins.skipped["alpha"]
    with pytest.raises(DriverNotFoundError, match=r"'alpha' is installed but disabled"):
        plugins.get("alpha")


def test_block_list_is_applied_before_import(dists: Dists, monkeypatch: pytest.MonkeyPatch) -> None:
    good_dist(dists)
    good_dist(dists, "beta", "sessions-beta")
    monkeypatch.delenv("SESSIONS_PLUGINS")
    monkeypatch.setenv(
        "SESSIONS_DISABLED_PLUGINS",
        "beta, sessions-file,sessions-redis,sessions-sql,sessions-memcached,sessions-dbm",
    )
    plugins = Plugins()
    assert "alpha" in plugins.drivers
    assert "beta" not in plugins.drivers
    assert not dists.imported("beta")
    assert "SESSIONS_DISABLED_PLUGINS" in plugins.skipped["beta"]


def test_allow_list_accepts_distribution_names(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_dist(dists)
    allow(monkeypatch, "Sessions_Alpha")
    assert "alpha" in Plugins().drivers


def test_missing_driver_lists_installed_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first-party hint ("pip install sessions-redis") is checked in tests/test_wheels.py,
    # in a virtual environment where sessions-redis really is not installed.
    allow(monkeypatch)
    plugins = Plugins()
    with pytest.raises(DriverNotFoundError) as info:
        plugins.get("mongo")
    assert "no session driver named 'mongo' is installed (installed: cookie, memory)" in str(
        info.value
    )
    assert "Check the spelling" in str(info.value)


def test_disabled_first_party_driver_says_how_to_enable_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allow(monkeypatch, "file")
    plugins = Plugins()
    with pytest.raises(DriverNotFoundError, match=r"'redis' is installed but disabled: not listed"):
        plugins.get("redis")


def test_manager_selects_an_entry_point_driver_by_name(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    good_dist(dists)
    allow(monkeypatch, "alpha")
    manager = SessionManager(SessionConfig(secret=SECRET, driver="alpha"))
    assert type(manager.driver).__name__ == "AlphaDriver"
    assert manager.plugins is load_plugins()


def test_plugin_set_is_cached_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    allow(monkeypatch)
    reset_plugins()
    first = load_plugins()
    assert load_plugins() is first
    reset_plugins()
    assert load_plugins() is not first
    reset_plugins()


# -- lifecycle hooks, through a real plugin of the sessions.plugins group --------------------

AUDIT_SOURCE = """
from sessions import hookimpl

calls = []


@hookimpl
def sessions_initiated(session_id, fresh, readonly, driver):
    calls.append(("sessions_initiated", dict(session_id=session_id, fresh=fresh,
                                             readonly=readonly, driver=driver)))


@hookimpl
def sessions_committed(session_id, action, driver):
    calls.append(("sessions_committed", dict(session_id=session_id, action=action, driver=driver)))


@hookimpl
def sessions_migrated(old_session_id, new_session_id, driver):
    calls.append(("sessions_migrated", dict(old_session_id=old_session_id,
                                            new_session_id=new_session_id, driver=driver)))


@hookimpl
def sessions_destroyed(session_id, driver):
    calls.append(("sessions_destroyed", dict(session_id=session_id, driver=driver)))


@hookimpl
def sessions_decode_failed(source, reason, driver):
    calls.append(("sessions_decode_failed", dict(source=source, reason=reason, driver=driver)))


@hookimpl
def sessions_conflict(session_id, outcome, attempts, driver):
    calls.append(("sessions_conflict", dict(session_id=session_id, outcome=outcome,
                                            attempts=attempts, driver=driver)))
"""

BROKEN_AUDIT_SOURCE = """
from sessions import hookimpl


@hookimpl
def sessions_initiated(session_id, fresh, readonly, driver):
    raise RuntimeError("audit bug")


@hookimpl
def sessions_decode_failed(source, reason, driver):
    raise RuntimeError("audit bug")
"""


class Browser:
    """Requests against one manager, carrying cookies between them."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.jar: dict[str, str] = {}

    def request(self, action: Any = None, readonly: bool = False) -> Any:
        context = RequestContext(dict(self.jar))
        session = self.manager.session(context)
        session.initiate(readonly=readonly)
        if action is not None:
            action(session)
        session.commit()
        for name, cookie in context.outgoing.items():
            self.jar[name] = cookie.value
        return session


@pytest.fixture
def audit(dists: Dists, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = dists.module("audit", AUDIT_SOURCE)
    dists.dist("sessions-audit", {"sessions.plugins": {"audit": module}})
    allow(monkeypatch, "audit")
    manager = SessionManager(SessionConfig(secret=SECRET, driver="memory"))
    manager.driver
    return manager, sys.modules[module].calls


def test_lifecycle_hooks_fire_with_their_arguments(audit: Any) -> None:
    manager, calls = audit
    browser = Browser(manager)
    first = browser.request(lambda s: s.put("user", "ada"))
    assert calls == [
        (
            "sessions_initiated",
            {"session_id": first.session_id, "fresh": True, "readonly": False, "driver": "memory"},
        ),
        (
            "sessions_committed",
            {"session_id": first.session_id, "action": "write", "driver": "memory"},
        ),
    ]
    calls.clear()

    browser.request()  # unchanged: touched
    assert calls[0] == (
        "sessions_initiated",
        {"session_id": first.session_id, "fresh": False, "readonly": False, "driver": "memory"},
    )
    assert calls[1] == (
        "sessions_committed",
        {"session_id": first.session_id, "action": "touch", "driver": "memory"},
    )
    calls.clear()

    browser.request(readonly=True)
    assert calls == [
        (
            "sessions_initiated",
            {"session_id": first.session_id, "fresh": False, "readonly": True, "driver": "memory"},
        ),
    ]
    calls.clear()

    moved = browser.request(lambda s: s.regenerate())
    assert moved.session_id != first.session_id
    assert calls[1:] == [
        (
            "sessions_migrated",
            {
                "old_session_id": first.session_id,
                "new_session_id": moved.session_id,
                "driver": "memory",
            },
        ),
        ("sessions_destroyed", {"session_id": first.session_id, "driver": "memory"}),
        (
            "sessions_committed",
            {"session_id": moved.session_id, "action": "write", "driver": "memory"},
        ),
    ]
    calls.clear()

    browser.request(lambda s: s.clear())
    assert calls[1:] == [
        ("sessions_destroyed", {"session_id": moved.session_id, "driver": "memory"}),
        (
            "sessions_committed",
            {"session_id": moved.session_id, "action": "destroy", "driver": "memory"},
        ),
    ]


def test_decode_failures_reach_the_hook(audit: Any) -> None:
    manager, calls = audit
    browser = Browser(manager)
    browser.request(lambda s: s.put("n", 1))
    calls.clear()

    stored = next(iter(manager.driver._data))
    manager.driver.store_raw(stored, b"\x80not json")
    again = browser.request()
    assert again.fresh
    assert (
        "sessions_decode_failed",
        {"source": "store", "reason": f"undecodable entry for {stored}", "driver": "memory"},
    ) in calls
    calls.clear()

    browser.jar[manager.config.cookie_name] = "forged.value"
    browser.request()
    failures = [args for name, args in calls if name == "sessions_decode_failed"]
    assert failures == [
        {
            "source": "id-cookie",
            "reason": "the session cookie's signature does not verify",
            "driver": "memory",
        }
    ]


def test_conflicts_reach_the_hook(audit: Any) -> None:
    manager, calls = audit
    browser = Browser(manager)
    first = browser.request(lambda s: s.put("n", 1))
    one, two = (manager.session(RequestContext(dict(browser.jar))) for _ in range(2))
    one.initiate()
    two.initiate()
    one.put("a", 1)
    two.put("b", 2)
    one.commit()
    calls.clear()
    two.commit()
    assert (
        "sessions_conflict",
        {"session_id": first.session_id, "outcome": "merged", "attempts": 2, "driver": "memory"},
    ) in calls
    logout, slow = (manager.session(RequestContext(dict(browser.jar))) for _ in range(2))
    logout.initiate()
    slow.initiate()
    logout.clear()
    logout.commit()
    calls.clear()
    slow.put("c", 3)
    slow.commit()
    assert (
        "sessions_conflict",
        {"session_id": first.session_id, "outcome": "dropped", "attempts": 1, "driver": "memory"},
    ) in calls


def test_a_raising_hook_is_logged_and_the_request_goes_on(
    dists: Dists, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    module = dists.module("broken", BROKEN_AUDIT_SOURCE)
    dists.dist("sessions-broken-audit", {"sessions.plugins": {"brokenaudit": module}})
    allow(monkeypatch, "brokenaudit")
    manager = SessionManager(SessionConfig(secret=SECRET, driver="memory"))
    browser = Browser(manager)
    browser.jar[manager.config.cookie_name] = "garbage.cookie"
    with caplog.at_level("ERROR", logger="sessions"):
        session = browser.request(lambda s: s.put("a", 1))
    assert session.fresh
    assert session.get("a") == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("sessions_initiated" in m and "brokenaudit" in m for m in messages), messages
    assert any("sessions_decode_failed" in m for m in messages), messages


def test_without_implementations_core_skips_the_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    allow(monkeypatch)
    reset_plugins()
    manager = SessionManager(SessionConfig(secret=SECRET, driver="memory"))
    manager.driver
    assert manager.lifecycle_hooks is None
    reset_plugins()


def test_application_can_register_an_unpackaged_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Audit:
        @hookspecs.hookimpl
        def sessions_committed(self, session_id: str, action: str, driver: str) -> None:
            seen.append(action)

    plugins = Plugins(autoload=False)
    plugins.register(Audit(), name="app-audit")
    manager = SessionManager(SessionConfig(secret=SECRET, driver="memory"), autoload_plugins=False)
    manager._plugins = plugins  # this test's own plugin set, not the process-wide one
    Browser(manager).request(lambda s: s.put("a", 1))
    assert seen == ["write"]


# -- every hook has docs and a test ---------------------------------------------------------


def test_every_hook_is_documented_and_tested() -> None:
    names = [fn.__name__ for fn in hook_functions()]
    assert set(hookspecs.LIFECYCLE_HOOKS) <= set(names)
    assert {"sessions_register_drivers", "sessions_register_commands"} <= set(names)
    page = (REPO / "docs" / "hooks.md").read_text()
    tests = Path(__file__).read_text() + (Path(__file__).parent / "test_cli.py").read_text()
    for name in names:
        assert f"## `{name}`" in page, f"{name} has no section in docs/hooks.md"
        assert re.search(rf"\b{name}\b", tests.replace(f"def {name}", "")), f"{name} has no test"
        doc = getattr(hookspecs, name).__doc__ or ""
        for param in list(getattr(hookspecs, name).__annotations__)[:-1]:
            assert f"    {param}:" in doc, f"{name} does not document its argument {param}"


def test_hook_reference_page_is_generated_from_the_hookspecs() -> None:
    page = (REPO / "docs" / "hooks.md").read_text()
    assert page == render_reference(), (
        "docs/hooks.md is out of date: run `sessions hooks --markdown > docs/hooks.md`"
    )


# -- the four-method contract, published through an entry point -----------------------------

PLAIN_SOURCE = """
store = {}


class PlainDriver:
    def read(self, session_id):
        return store.get(session_id)

    def write(self, session_id, values):
        store[session_id] = dict(values)

    def destroy(self, session_id):
        store.pop(session_id, None)

    def touch(self, session_id):
        pass


class AsyncPlainDriver:
    async def read(self, session_id):
        return store.get(session_id)

    async def write(self, session_id, values):
        store[session_id] = dict(values)

    async def destroy(self, session_id):
        store.pop(session_id, None)

    async def touch(self, session_id):
        pass
"""


@pytest.mark.parametrize(
    ("cls", "integration"),
    [("PlainDriver", "asgi"), ("PlainDriver", "wsgi"), ("AsyncPlainDriver", "asgi")],
)
def test_a_plain_four_method_class_works_through_an_entry_point(
    dists: Dists, monkeypatch: pytest.MonkeyPatch, cls: str, integration: str
) -> None:
    from .plain_apps import two_requests

    driver = dists.module("plain_driver", PLAIN_SOURCE)
    plugin = dists.plugin("plain", {"plain": f"{driver}:{cls}"})
    dists.dist("sessions-plain", {"sessions.drivers": {"plain": plugin}})
    allow(monkeypatch, "plain")
    manager = SessionManager(SessionConfig(secret=SECRET, driver="plain"))
    assert two_requests(manager, integration) == 2
    assert len(sys.modules[driver].store) == 1


def test_an_async_plain_class_is_refused_by_wsgi_at_startup(
    dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sessions.wsgi import SessionMiddleware

    driver = dists.module("plain_driver", PLAIN_SOURCE)
    plugin = dists.plugin("plain", {"plain": f"{driver}:AsyncPlainDriver"})
    dists.dist("sessions-plain", {"sessions.drivers": {"plain": plugin}})
    allow(monkeypatch, "plain")
    manager = SessionManager(SessionConfig(secret=SECRET, driver="plain"))
    with pytest.raises(ConfigError, match="async-only"):
        SessionMiddleware(lambda environ, start_response: [], manager)
