"""The encrypted cookie driver: conformance, tampering, rotation, size, lifecycle."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from sessions import Session, SessionConfig, SessionManager, hookimpl
from sessions.asgi import SessionMiddleware
from sessions.driver import DriverConfig, RequestContext
from sessions.drivers.cookie import COOKIE_LIMIT, CookieDriver, CookieRequest, data_cookie_name
from sessions.errors import CookieTooLargeError
from sessions.plugins import load_plugins
from sessions.testing import AsyncDriverConformance, DriverConformance, Harness, new_key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

SECRET = "cookie-driver-tests-secret-0123456789abcdef"
OLD = "cookie-driver-tests-old-secret-abcdefghijklmn"
OTHER = "an-entirely-different-app-secret-0123456789"
DATA = "session.data"
#: RFC 6265 token: the characters a cookie name may contain.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


# -- helpers ---------------------------------------------------------------------


class Recorder:
    """Collects what the driver reports to the decode-failed hook."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, source: str, reason: str) -> None:
        self.events.append((source, reason))

    @property
    def reasons(self) -> str:
        return " | ".join(reason for _, reason in self.events)


def make_driver(
    secret: str = SECRET, *, fallbacks: tuple[str, ...] = (), age: int = 60, **config: Any
) -> tuple[CookieDriver, Recorder]:
    session = SessionConfig(secret=secret, secret_fallbacks=fallbacks, age=age, **config)
    recorder = Recorder()
    driver = CookieDriver(DriverConfig("cookie", {}, session.age_seconds, session, recorder))
    return driver, recorder


def request(
    driver: CookieDriver, cookies: dict[str, str], **kw: Any
) -> tuple[CookieRequest, RequestContext]:
    context = RequestContext(dict(cookies), **kw)
    return driver.for_request(context), context


def sealed(driver: CookieDriver, key: str, values: dict[str, Any]) -> str:
    """The data cookie value ``driver`` sends for ``values`` under ``key``."""
    bound, context = request(driver, {})
    bound.write(key, values)
    return context.outgoing[driver.cookie_name].value


def raw_bytes(value: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


def to_value(raw: bytes) -> str:
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def expiry_of(driver: CookieDriver, key: str, value: str) -> int:
    return driver.cipher.open(value, driver.bind_prefix + key.encode())[0]


# -- the conformance suite ---------------------------------------------------------


def _garbage(harness: Harness, session_id: str) -> None:
    harness.jar[data_cookie_name(harness.manager.config.cookie_name)] = "bm90IGEgc2Vzc2lvbg"


def _small_version(i: int) -> dict[str, Any]:
    # The kit's versions grow past a cookie's 4 KB; these stay well inside.
    return {"version": i, "payload": str(i) * (100 + 13 * i)}


def _small_consistent(values: Any) -> bool:
    if type(values) is not dict or set(values) != {"version", "payload"}:
        return False
    i = values["version"]
    return bool(values["payload"] == str(i) * (100 + 13 * i))


class TestCookieSync(DriverConformance):
    driver_factory = CookieDriver

    def corrupt(self, harness: Harness, session_id: str) -> None:
        _garbage(harness, session_id)

    def test_sessions_are_independent(self) -> None:
        # One browser holds one session; independence is between browsers.
        h = self.make_harness()
        one, two = new_key(), new_key()
        h.call("write", one, {"who": 1})
        first_browser = dict(h.jar)
        h.jar.clear()
        h.call("write", two, {"who": 2})
        second_browser = dict(h.jar)
        assert h.call("read", two) == {"who": 2}
        h.jar = first_browser
        assert h.call("read", one) == {"who": 1}
        assert h.call("read", two) is None
        h.jar = second_browser
        assert h.call("read", one) is None

    def test_one_megabyte_value(self) -> None:
        # A megabyte cannot travel in a cookie: the write refuses it, sends nothing.
        h = self.make_harness()
        key = new_key()
        with pytest.raises(CookieTooLargeError, match="4096-byte limit"):
            h.call("write", key, {"blob": "x" * (1024 * 1024)})
        assert h.jar == {}
        assert h.call("read", key) is None

    def test_write_racing_read_never_tears(self) -> None:
        import threading

        h = self.make_harness()
        key = new_key()
        h.call("write", key, _small_version(0))
        errors: list[str] = []
        done = threading.Event()

        def reader() -> None:
            while not done.is_set():
                got = h.call("read", key)
                if not _small_consistent(got):
                    errors.append(repr(got)[:200])

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for i in range(1, 60):
                h.call("write", key, _small_version(i))
        finally:
            done.set()
            thread.join()
        assert errors == []
        assert h.call("read", key) == _small_version(59)


class TestCookieAsync(AsyncDriverConformance):
    driver_factory = CookieDriver

    def corrupt(self, harness: Harness, session_id: str) -> None:
        _garbage(harness, session_id)

    def test_one_megabyte_value(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            with pytest.raises(CookieTooLargeError, match="server-side driver"):
                await h.acall("write", key, {"blob": "y" * (1024 * 1024)})
            assert h.jar == {}

        self._run(body)

    def test_write_racing_read_never_tears(self) -> None:
        async def body(h: Harness) -> None:
            key = new_key()
            await h.acall("write", key, _small_version(0))
            errors: list[str] = []
            done = anyio.Event()

            async def reader() -> None:
                while not done.is_set():
                    got = await h.acall("read", key)
                    if not _small_consistent(got):
                        errors.append(repr(got)[:200])
                    await anyio.sleep(0)

            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                for i in range(1, 60):
                    await h.acall("write", key, _small_version(i))
                    await anyio.sleep(0)
                done.set()
            assert errors == []
            assert await h.acall("read", key) == _small_version(59)

        self._run(body)


class TestCookieTrio(TestCookieAsync):
    backend = "trio"


# -- bad cookies give None and fire the hook ----------------------------------------


def test_garbage_of_10_kb_is_refused_unread() -> None:
    driver, seen = make_driver()
    bound, _ = request(driver, {DATA: "A" * 10_240})
    assert bound.read(new_key()) is None
    assert seen.events
    assert seen.events[0][0] == "data-cookie"
    assert "longer than any cookie" in seen.reasons


@pytest.mark.parametrize(
    "value",
    ["not base64!", "abc$def", "%7B%22a%22%3A1%7D", "with space", "é", '"quoted"', "A"],
)
def test_non_base64_is_refused(value: str) -> None:
    driver, seen = make_driver()
    bound, _ = request(driver, {DATA: value})
    assert bound.read(new_key()) is None
    assert len(seen.events) == 1


def test_empty_and_short_values_are_refused() -> None:
    driver, seen = make_driver()
    for value in ["", "AQ", to_value(b"\x01" * 40)]:
        bound, _ = request(driver, {DATA: value})
        assert bound.read(new_key()) is None
    assert len(seen.events) == 3


@pytest.mark.parametrize(
    ("part", "offset"),
    [
        ("version", 0),
        ("key id", 1),
        ("key id", 4),
        ("nonce", 5),
        ("nonce", 16),
        ("expiry", 17),
        ("payload", 30),
        ("tag", -16),
        ("tag", -1),
    ],
)
def test_a_flipped_bit_in_any_part_is_refused(part: str, offset: int) -> None:
    driver, seen = make_driver()
    key = new_key()
    value = sealed(driver, key, {"user": "ada", "role": "admin"})
    raw = raw_bytes(value)
    bound, _ = request(driver, {DATA: value})
    assert bound.read(key) == {"user": "ada", "role": "admin"}
    for bit in (0x01, 0x80):
        broken = bytearray(raw)
        broken[offset] ^= bit
        bound, _ = request(driver, {DATA: to_value(broken)})
        assert bound.read(key) is None, f"flipped bit {bit:#x} in the {part} was accepted"
    assert len(seen.events) == 2


def test_truncated_cookie_is_refused() -> None:
    driver, seen = make_driver()
    key = new_key()
    value = sealed(driver, key, {"a": 1})
    for cut in (1, 2, 5, len(value) // 2):
        bound, _ = request(driver, {DATA: value[:-cut]})
        assert bound.read(key) is None
    assert len(seen.events) == 4


def test_cookie_from_another_app_with_the_same_name() -> None:
    ours, seen = make_driver()
    theirs, _ = make_driver(OTHER)
    key = new_key()
    foreign = [
        sealed(theirs, key, {"admin": True}),  # same library, other secret
        "eyJ1c2VyIjogImFkYSJ9.ZmFrZQ.c2lnbmF0dXJl",  # a Starlette-style signed cookie
        "gAJ9cQBYBAAAAHVzZXJxAVgDAAAAYWRhcQJzLg",  # base64 of a pickle
    ]
    for value in foreign:
        bound, _ = request(ours, {DATA: value})
        assert bound.read(key) is None
    assert len(seen.events) == 3


def test_cookie_is_bound_to_its_session() -> None:
    driver, seen = make_driver()
    mine, yours = new_key(), new_key()
    value = sealed(driver, yours, {"user": "victim"})
    bound, _ = request(driver, {DATA: value})
    assert bound.read(mine) is None
    assert "does not authenticate" in seen.reasons


def test_cookie_is_bound_to_its_name() -> None:
    driver, _ = make_driver(cookie_name="app_a")
    other, seen = make_driver(cookie_name="app_b")
    key = new_key()
    value = sealed(driver, key, {"user": "ada"})
    bound, _ = request(other, {"app_b.data": value})
    assert bound.read(key) is None
    assert "does not authenticate" in seen.reasons


def test_expired_cookie_replayed_gives_none_and_is_not_touched_back_to_life() -> None:
    driver, seen = make_driver()
    key = new_key()
    stale = driver.cipher.seal(1_000, b'{"user":"ada"}', driver.bind_prefix + key.encode())
    bound, context = request(driver, {DATA: stale})
    assert bound.read(key) is None
    assert "expired" in seen.reasons
    assert context.outgoing[DATA].max_age == 0
    bound.touch(key)
    assert context.outgoing[DATA].max_age == 0


def test_decode_failure_after_decryption_is_reported() -> None:
    # Only a holder of the key can make this; the payload is still checked.
    driver, seen = make_driver()
    key = new_key()
    odd = driver.cipher.seal(2**62, b"[1, 2]", driver.bind_prefix + key.encode())
    bound, _ = request(driver, {DATA: odd})
    assert bound.read(key) is None
    assert "top level is list" in seen.reasons


def test_missing_cookie_is_not_a_decode_failure() -> None:
    driver, seen = make_driver()
    bound, _ = request(driver, {})
    assert bound.read(new_key()) is None
    assert seen.events == []


# -- rotation ----------------------------------------------------------------------


def test_fallback_secret_opens_and_touch_reseals_under_current_key() -> None:
    before, _ = make_driver(OLD)
    after, seen = make_driver(SECRET, fallbacks=(OLD,))
    only_new, _ = make_driver(SECRET)
    key = new_key()
    old_value = sealed(before, key, {"cart": [1, 2]})
    bound, context = request(after, {DATA: old_value})
    assert bound.read(key) == {"cart": [1, 2]}
    bound.touch(key)
    new_value = context.outgoing[DATA].value
    assert raw_bytes(new_value)[1:5] != raw_bytes(old_value)[1:5]
    check, _ = request(only_new, {DATA: new_value})
    assert check.read(key) == {"cart": [1, 2]}
    assert seen.events == []
    bind = after.bind_prefix + key.encode()
    assert after.cipher.open(old_value, bind)[2] is True
    assert after.cipher.open(new_value, bind)[2] is False


def test_cookie_made_under_a_removed_secret_is_refused_without_trying() -> None:
    before, _ = make_driver(OLD)
    after, seen = make_driver(SECRET)
    key = new_key()
    bound, _ = request(after, {DATA: sealed(before, key, {"a": 1})})
    assert bound.read(key) is None
    assert "not configured" in seen.reasons


def test_rotation_through_the_whole_stack() -> None:
    old_app = _app(SessionConfig(secret=OLD))
    new_app = _app(SessionConfig(secret=SECRET, secret_fallbacks=(OLD,)))
    with TestClient(old_app) as old, TestClient(new_app) as new:
        old.post("/put", json={"user": "ada"})
        new.cookies = old.cookies
        response = new.get("/get")
        assert response.json()["values"] == {"user": "ada"}
        data = _set_cookie(response, DATA)
        assert data is not None
        assert "Max-Age=7200" in data
        removed_app = _app(SessionConfig(secret=SECRET))
        with TestClient(removed_app) as current:
            current.cookies = new.cookies
            assert current.get("/get").json()["values"] == {"user": "ada"}
            current.cookies = old.cookies
            assert current.get("/get").json()["values"] == {}


# -- lifecycle through core ------------------------------------------------------------


def _commit(h: Harness, work: Any) -> tuple[Session, RequestContext]:
    context = h.context()
    session = Session(h.manager, context)
    session.initiate()
    work(session)
    session.commit()
    h.finish(context)
    return session, context


def test_regenerate_keeps_data_cookie_under_new_id() -> None:
    h = Harness(CookieDriver, {}, age=60)
    first, _ = _commit(h, lambda s: s.put("user", "ada"))
    old_id_cookie = h.jar["session"]
    second, context = _commit(h, lambda s: s.regenerate())
    assert second.session_id != first.session_id
    data = context.outgoing[DATA]
    assert data.max_age == 60
    assert data.value
    third, _ = _commit(h, lambda s: None)
    assert third.fresh is False
    assert third.get("user") == "ada"
    # The old id cookie no longer opens the data cookie, now bound to the new id.
    h.jar["session"] = old_id_cookie
    stale, _ = _commit(h, lambda s: None)
    assert stale.fresh is True
    assert stale.all() == {}


def test_clearing_the_session_deletes_the_data_cookie() -> None:
    h = Harness(CookieDriver, {}, age=60)
    _commit(h, lambda s: s.put("a", 1))
    assert DATA in h.jar
    _, context = _commit(h, lambda s: s.clear())
    assert context.outgoing[DATA].max_age == 0
    assert DATA not in h.jar


def test_unchanged_session_is_resealed_with_a_later_expiry() -> None:
    h = Harness(CookieDriver, {}, age=60)
    _commit(h, lambda s: s.put("a", 1))
    first = h.jar[DATA]
    session, context = _commit(h, lambda s: s.get("a"))
    second = context.outgoing[DATA].value
    assert second != first
    assert expiry_of(h.driver, session.session_id, second) >= expiry_of(
        h.driver, session.session_id, first
    )


def test_clear_with_browser_sends_no_max_age() -> None:
    driver, _ = make_driver(clear_with_browser=True)
    bound, context = request(driver, {})
    bound.write(new_key(), {"a": 1})
    assert context.outgoing[DATA].max_age is None
    assert "Max-Age" not in context.outgoing[DATA].header()


def test_data_cookie_follows_cookie_options() -> None:
    driver, _ = make_driver(
        cookie={"path": "/app", "domain": "example.test", "same_site": "strict"}
    )
    bound, context = request(driver, {}, https=True)
    bound.write(new_key(), {"a": 1})
    header = context.outgoing[DATA].header()
    for part in ("Path=/app", "Domain=example.test", "Secure", "HttpOnly", "SameSite=Strict"):
        assert part in header


@pytest.mark.parametrize("name", ["session", "app_session", "x", "a.b-c"])
def test_data_cookie_name_is_a_valid_cookie_name(name: str) -> None:
    derived = data_cookie_name(name)
    assert derived == f"{name}.data"
    assert TOKEN.fullmatch(derived)


def test_manager_wide_instance_refuses_work_without_a_request() -> None:
    driver, _ = make_driver()
    with pytest.raises(RuntimeError, match="for_request"):
        driver.read(new_key())
    with pytest.raises(RuntimeError, match="for_request"):
        anyio.run(driver.awrite, new_key(), {})


def test_describe_names_the_cookie() -> None:
    driver, _ = make_driver()
    assert "session.data" in driver.describe()


# -- size limit ------------------------------------------------------------------------


def _largest_fitting(driver: CookieDriver, https: bool) -> int:
    """The longest string value whose data cookie still fits, found by bisection."""
    low, high = 0, COOKIE_LIMIT
    while low < high:
        mid = (low + high + 1) // 2
        bound, _ = request(driver, {}, https=https)
        try:
            bound.write(new_key(), {"v": "x" * mid})
        except CookieTooLargeError:
            high = mid - 1
        else:
            low = mid
    return low


@pytest.mark.parametrize(
    "cookie", [{}, {"domain": "a-rather-long-subdomain.example.test", "path": "/some/app/path"}]
)
def test_limit_is_exact_on_the_whole_set_cookie_line(cookie: dict[str, Any]) -> None:
    driver, _ = make_driver(cookie=cookie)
    # Plain http and https alternate, so the per-Secure-flag size cache is
    # exercised both ways on one driver.
    for https in (False, True, False):
        fits = _largest_fitting(driver, https)
        bound, context = request(driver, {}, https=https)
        bound.write(new_key(), {"v": "x" * fits})
        header = context.outgoing[DATA].header()
        assert ("; Secure" in header) is https
        assert COOKIE_LIMIT - 4 <= len(header) <= COOKIE_LIMIT
        bound, context = request(driver, {}, https=https)
        with pytest.raises(CookieTooLargeError) as caught:
            bound.write(new_key(), {"v": "x" * (fits + 3)})
        message = str(caught.value)
        assert "4096-byte limit" in message
        assert "server-side driver" in message
        assert re.search(r"would be 409[7-9] bytes|would be 41\d\d bytes", message)
        assert DATA not in context.outgoing


def test_too_large_write_keeps_the_earlier_queued_cookie() -> None:
    driver, _ = make_driver()
    bound, context = request(driver, {})
    key = new_key()
    bound.write(key, {"small": 1})
    queued = context.outgoing[DATA]
    with pytest.raises(CookieTooLargeError):
        bound.write(key, {"big": "z" * 5000})
    assert context.outgoing[DATA] is queued


def _app(config: SessionConfig, **client: Any) -> SessionMiddleware:
    async def put(request: Request) -> Response:
        request.session.update(await request.json())
        return JSONResponse({"ok": True})

    async def get(request: Request) -> Response:
        return JSONResponse({"values": dict(request.session)})

    app = Starlette(routes=[Route("/put", put, methods=["POST"]), Route("/get", get)])
    return SessionMiddleware(app, SessionManager(config, autoload_plugins=False))


def _set_cookie(response: Any, name: str) -> str | None:
    for line in response.headers.get_list("set-cookie"):
        if line.startswith(name + "="):
            return str(line)
    return None


def test_over_4kb_session_raises_at_commit_and_nothing_is_sent() -> None:
    app = _app(SessionConfig(secret=SECRET))
    with TestClient(app) as client:
        assert client.post("/put", json={"note": "small"}).status_code == 200
        with pytest.raises(CookieTooLargeError, match=r"over the 4096-byte limit"):
            client.post("/put", json={"essay": "w" * 5000})
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/put", json={"essay": "w" * 5000})
        assert response.status_code == 500
        assert _set_cookie(response, DATA) is None


# -- end to end: bad cookies give a fresh session and a 200 ------------------------------


class _Audit:
    def __init__(self) -> None:
        self.failures: list[tuple[str, str, str]] = []

    @hookimpl
    def sessions_decode_failed(self, source: str, reason: str, driver: str) -> None:
        self.failures.append((source, reason, driver))


@pytest.fixture
def audit() -> Iterator[_Audit]:
    plugin = _Audit()
    pm = load_plugins(autoload=False).pm
    pm.register(plugin)
    try:
        yield plugin
    finally:
        pm.unregister(plugin)


@pytest.mark.parametrize(
    "bad",
    [
        "A" * 10_240,
        "%%%not-base64%%%",
        "",
        "flip",  # replaced below by the real cookie with one bit flipped
    ],
)
def test_bad_data_cookie_gives_fresh_session_and_200(bad: str, audit: _Audit) -> None:
    app = _app(SessionConfig(secret=SECRET))
    with TestClient(app) as client:
        client.post("/put", json={"user": "ada"})
        good = client.cookies[DATA]
        if bad == "flip":
            raw = raw_bytes(good)
            raw[-3] ^= 0x10
            bad = to_value(raw)
        header = f"session={client.cookies['session']}; {DATA}={bad}"
        client.cookies.clear()
        response = client.get("/get", headers={"cookie": header})
        assert response.status_code == 200
        assert response.json()["values"] == {}
        deletion = _set_cookie(response, DATA)
        assert deletion is not None
        assert "Max-Age=0" in deletion
    assert [(source, driver) for source, _, driver in audit.failures] == [("data-cookie", "cookie")]


def test_over_4kb_session_raises_at_commit_under_wsgi_too() -> None:
    import io

    from sessions.wsgi import ENVIRON_KEY
    from sessions.wsgi import SessionMiddleware as WsgiSessions

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ[ENVIRON_KEY]["essay"] = "w" * 5000
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    sent: list[tuple[str, str]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        sent.extend(headers)
        return lambda data: None

    manager = SessionManager(SessionConfig(secret=SECRET), autoload_plugins=False)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
    }
    with pytest.raises(CookieTooLargeError, match="4096-byte limit"):
        list(WsgiSessions(app, manager)(environ, start_response))
    assert not any(value.startswith(DATA + "=") for _, value in sent)


def test_sealed_length_and_max_payload_match_real_seals() -> None:
    from sessions.drivers.cookie_cipher import CookieCipher, max_payload, sealed_length

    cipher = CookieCipher([SECRET])
    for size in (0, 1, 2, 3, 100, 2999, 3000, 3001):
        assert len(cipher.seal(0, b"p" * size, b"bind")) == sealed_length(size)
    for prefix in (13, 20, 100):
        fits = max_payload(prefix, COOKIE_LIMIT)
        assert prefix + sealed_length(fits) <= COOKIE_LIMIT < prefix + sealed_length(fits + 1)
