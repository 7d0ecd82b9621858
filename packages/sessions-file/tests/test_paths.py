"""Only a storage key ever becomes a path; files and directories are private."""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sessions import ConfigError, SessionConfig, SessionManager
from sessions.keys import storage_key
from sessions.testing import Harness, new_key
from sessions_file import FileDriver, InvalidSessionIdError

# Fixed, so every xdist worker collects the same parameters.
VALID = storage_key("a-fixed-token-for-parametrized-hostile-ids-0")
HOSTILE: list[Any] = [
    "",
    "..",
    "../../../../etc/passwd",
    "../" + VALID[3:],  # 43 characters, but with a path in it
    VALID[:21] + "/" + VALID[22:],
    "/" + VALID[1:],
    VALID[:42],
    VALID + "A",
    VALID[:42] + "\x00",
    VALID[:42] + ".",
    VALID + "\n",
    "é" * 43,
    "%2e%2e%2f" + VALID[9:],
    "." * 43,
    None,
    42,
    VALID.encode(),
    Path(VALID),
]

# -- an audit hook that records file system events of the current thread --------

_FS_EVENTS = {"open", "os.remove", "os.rename", "os.utime", "os.mkdir", "os.scandir", "os.chmod"}
_recording: dict[int, list[tuple[str, Any]]] = {}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    events = _recording.get(threading.get_ident())
    if events is not None and event in _FS_EVENTS:
        events.append((event, args[0] if args else None))


sys.addaudithook(_audit)


@pytest.fixture
def fs_events() -> Iterator[list[tuple[str, Any]]]:
    """File system events this thread causes while the test runs."""
    events: list[tuple[str, Any]] = []
    _recording[threading.get_ident()] = events
    yield events
    _recording.pop(threading.get_ident(), None)


@pytest.mark.parametrize("session_id", HOSTILE, ids=repr)
def test_hostile_id_never_touches_the_disk(
    harness: Harness, session_id: Any, fs_events: list[tuple[str, Any]]
) -> None:
    driver: FileDriver = harness.driver
    fs_events.clear()
    assert driver.read(session_id) is None
    driver.touch(session_id)
    driver.destroy(session_id)
    with pytest.raises(InvalidSessionIdError, match="43 base64url characters"):
        driver.write(session_id, {"pwned": True})
    assert fs_events == []


def test_hostile_ids_refused_through_async_flavour(harness: Harness) -> None:
    driver: FileDriver = harness.driver

    async def main() -> None:
        for session_id in HOSTILE:
            assert await driver.aread(session_id) is None
            await driver.atouch(session_id)
            await driver.adestroy(session_id)
            with pytest.raises(InvalidSessionIdError):
                await driver.awrite(session_id, {"pwned": True})

    anyio.run(main)


def test_audit_hook_sees_the_driver_touch_the_disk(
    harness: Harness, fs_events: list[tuple[str, Any]]
) -> None:
    # The instrument of the test above: a valid id does cause file system events.
    driver: FileDriver = harness.driver
    driver.write(VALID, {"a": 1})
    assert driver.read(VALID) == {"a": 1}
    driver.touch(VALID)
    driver.destroy(VALID)
    kinds = {event for event, _ in fs_events}
    assert {"open", "os.rename", "os.utime", "os.remove"} <= kinds


def test_cannot_reach_a_session_file_outside_location(harness: Harness, tmp_path: Path) -> None:
    driver: FileDriver = harness.driver
    # A perfectly valid session payload sitting next to the sessions directory.
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / VALID
    target.write_bytes(b'{"admin":true}')
    relative = os.path.relpath(target, driver.layout.directory(VALID))
    assert relative.startswith("..")
    assert driver.read(relative) is None
    assert driver.read(str(target)) is None
    with pytest.raises(InvalidSessionIdError):
        driver.write(relative, {"admin": False})
    driver.destroy(relative)
    assert target.read_bytes() == b'{"admin":true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside", "sessions"]


def test_invalid_id_error_names_the_rule() -> None:
    message = str(InvalidSessionIdError("../" * 50))
    assert "refused session id" in message
    assert "..." in message  # long ids are cut short in the message
    assert "storage key" in message


@pytest.mark.parametrize(
    ("levels", "parts"),
    [(0, 0), (1, 1), (2, 2), (3, 3)],
)
def test_sharding(
    make_harness: Callable[..., Harness], location: Path, levels: int, parts: int
) -> None:
    h = make_harness(shard_levels=levels)
    key = new_key()
    h.call("write", key, {"a": 1})
    expected = location.joinpath(*key[:parts], key)
    assert expected.is_file()
    assert h.call("read", key) == {"a": 1}


def test_default_spreads_a_thousand_sessions_over_many_directories(
    harness: Harness, location: Path
) -> None:
    for _ in range(1000):
        harness.driver.write(new_key(), {"n": 1})
    per_directory = [len(files) for _, _, files in os.walk(location) if files]
    # 4096 leaf directories: a thousand keys land in hundreds of them, a few per directory.
    assert len(per_directory) > 700
    assert max(per_directory) < 10


def test_files_and_directories_are_private_whatever_the_umask(
    make_harness: Callable[..., Harness], location: Path
) -> None:
    old = os.umask(0)
    try:
        h = make_harness()
        key = new_key()
        h.call("write", key, {"secret": "value"})
    finally:
        os.umask(old)
    path = Path(h.driver.layout.path(key))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(location.stat().st_mode) == 0o700
    for directory in (path.parent, path.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_nested_location_is_created(make_harness: Callable[..., Harness], tmp_path: Path) -> None:
    h = Harness(FileDriver, {"location": str(tmp_path / "a" / "b" / "sessions")}, 60)
    key = new_key()
    h.call("write", key, {"a": 1})
    assert (tmp_path / "a" / "b" / "sessions").is_dir()


def _build(location: Any, **options: Any) -> Any:
    config = SessionConfig(
        secret="file-driver-tests-secret-0123456789abcdef",
        driver="file",
        drivers={"file": {"location": location, **options}},
    )
    manager = SessionManager(config, autoload_plugins=False, drivers={"file": FileDriver})
    return manager.driver


def test_world_writable_location_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match=r"drivers\.file\.location.*writable by other users"):
        _build(str(shared))


def test_location_that_is_a_file_is_refused(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        _build(str(afile))


def test_location_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another user")
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)
    with pytest.raises(ConfigError, match="belongs to uid 65534"):
        _build(str(foreign))


def test_relative_location_resolves_against_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    driver = _build("rel/sessions")
    assert driver.describe() == str(tmp_path / "rel" / "sessions")
    assert (tmp_path / "rel" / "sessions").is_dir()


def test_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = SessionConfig(secret="file-driver-tests-secret-0123456789abcdef", driver="file")
    manager = SessionManager(config, autoload_plugins=False, drivers={"file": FileDriver})
    assert manager.driver.describe() == str(tmp_path / "tmp" / "sessions")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("shard_levels", 4, "one of 0, 1, 2, 3"),
        ("shard_levels", "deep", "int"),
        ("gc_probability", 1.5, "a probability from 0"),
        ("gc_probability", -0.1, "a probability from 0"),
        ("fsync", "sometimes", "bool"),
        ("compress", True, "valid options: fsync, gc_probability, location, shard_levels"),
    ],
)
def test_bad_options_fail_at_startup(tmp_path: Path, option: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _build(str(tmp_path / "s"), **{option: value})


def test_options_from_environment_strings(tmp_path: Path) -> None:
    config = SessionConfig.from_env(
        {
            "SESSION_SECRET": "file-driver-tests-secret-0123456789abcdef",
            "SESSION_DRIVER": "file",
            "SESSION_FILE_LOCATION": str(tmp_path / "env"),
            "SESSION_FILE_SHARD_LEVELS": "1",
            "SESSION_FILE_FSYNC": "true",
            "SESSION_FILE_GC_PROBABILITY": "0.25",
        }
    )
    manager = SessionManager(config, autoload_plugins=False, drivers={"file": FileDriver})
    driver: FileDriver = manager.driver
    assert (driver.layout.levels, driver.fsync, driver.gc_probability) == (1, True, 0.25)
    assert driver.root == tmp_path / "env"


def test_plant_helper_matches_driver_layout(harness: Harness, plant: Callable[..., str]) -> None:
    key = new_key()
    plant(harness.driver, key, {"planted": 1})
    assert harness.call("read", key) == {"planted": 1}


# -- the directories above the location ------------------------------------------------


@pytest.mark.parametrize(("mode", "who"), [(0o777, "all users"), (0o775, "its group")])
def test_a_parent_others_can_write_is_refused(tmp_path: Path, mode: int, who: str) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(ConfigError) as info:
        _build(str(shared / "app" / "sessions"))
    message = str(info.value)
    assert f"parent directory {shared} is writable by {who} without the sticky bit" in message
    assert "only root or this user can write" in message


def test_a_sticky_shared_parent_is_accepted(tmp_path: Path) -> None:
    shared = tmp_path / "sticky"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    driver = _build(str(shared / "app" / "sessions"))
    assert driver.describe() == str(shared / "app" / "sessions")


def test_a_symlink_into_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    open_dir = tmp_path / "open"
    (open_dir / "inner").mkdir(parents=True)
    open_dir.chmod(0o777)
    link = tmp_path / "link"
    link.symlink_to(open_dir / "inner")
    with pytest.raises(ConfigError, match=rf"parent directory {open_dir} is writable by all"):
        _build(str(link / "sessions"))


def test_a_symlink_to_a_safe_directory_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o755)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "data")
    assert _build(str(link / "sessions")).describe() == str(link / "sessions")


def test_a_foreign_symlink_in_a_sticky_directory_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a symlink to another user")
    shared = tmp_path / "sticky"
    shared.mkdir()
    shared.chmod(0o1777)
    (tmp_path / "data").mkdir(mode=0o755)
    link = shared / "app"
    link.symlink_to(tmp_path / "data")
    os.lchown(link, 65534, 65534)
    with pytest.raises(ConfigError, match=r"symlink owned by uid 65534 in the shared directory"):
        _build(str(link / "sessions"))
