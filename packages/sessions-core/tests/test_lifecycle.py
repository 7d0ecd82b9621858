"""The request lifecycle (DESIGN §5), scenario by scenario, through real HTTP
requests on every integration and every core driver.

These mirror the behaviours AdonisJS's own session tests pin down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import OpsClient

SECRET = "core-tests-secret-0123456789-abcdefghij"
OLD_SECRET = "core-tests-old-secret-9876543210-zyxwvu"


def test_excluded_path_gets_no_session_and_no_cookie(client: OpsClient) -> None:
    client.request(path="/static/x")
    assert client.set_cookies() == []
    assert client.spy.ops() == []


def test_first_request_gets_a_fresh_id_and_a_cookie(client: OpsClient) -> None:
    body = client.request()
    assert body["fresh"] is True
    assert len(body["session_id"]) == 43
    assert client.cookie is not None
    line = next(c for c in client.set_cookies() if c.startswith("session="))
    assert "Max-Age=7200" in line
    assert "HttpOnly" in line
    assert "SameSite=Lax" in line
    assert "Path=/" in line


def test_empty_session_is_not_stored_but_cookie_is_set(client: OpsClient) -> None:
    client.request()
    assert client.spy.ops() == []
    assert client.cookie is not None


def test_session_with_data_is_written_and_read_back(client: OpsClient) -> None:
    first = client.request([["put", "user.name", "ada"]])
    assert client.spy.ops() == ["write"]
    second = client.request([["get", "user.name"], ["all"]])
    assert second["fresh"] is False
    assert second["session_id"] == first["session_id"]
    assert second["results"] == ["ada", {"user": {"name": "ada"}}]


def test_unmodified_session_is_touched_not_written(client: OpsClient) -> None:
    client.request([["put", "a", 1]])
    client.spy.ops()
    body = client.request([["get", "a"]])
    assert body["modified"] is False
    assert client.spy.ops() == ["touch"]


def test_emptied_session_destroys_the_record(client: OpsClient) -> None:
    client.request([["put", "a", 1]])
    client.spy.ops()
    client.request([["forget", "a"]])
    assert client.spy.ops() == ["destroy"]
    body = client.request([["all"]])
    assert body["results"] == [{}]


def test_pull_returns_and_removes(client: OpsClient) -> None:
    client.request([["put", "token", "abc"]])
    body = client.request([["pull", "token"], ["pull", "token", "gone"], ["has", "token"]])
    assert body["results"] == ["abc", "gone", False]


def test_increment_and_decrement(client: OpsClient) -> None:
    body = client.request([["increment", "n"], ["increment", "n", 5], ["decrement", "n", 2]])
    assert body["results"] == [1, 6, 4]
    body = client.request(
        [["get", "n"], ["put", "s", "x"], ["increment", "s"], ["increment", "flag"]]
    )
    assert body["results"][0] == 4
    assert body["results"][2]["error"] == "NotANumberError"
    assert "'s'" in body["results"][2]["message"]
    body = client.request([["put", "flag", True], ["increment", "flag"]])
    assert body["results"][1]["error"] == "NotANumberError"


def test_clear_empties_and_destroys(client: OpsClient) -> None:
    client.request([["put", "a", 1], ["put", "b", 2]])
    client.spy.ops()
    body = client.request([["clear"], ["is_empty"]])
    assert body["results"] == [None, True]
    assert client.spy.ops() == ["destroy"]


def test_mapping_access_on_top_level_keys(client: OpsClient) -> None:
    body = client.request([["set", "cart", {"items": 2}], ["item", "cart"], ["get", "cart.items"]])
    assert body["results"] == [None, {"items": 2}, 2]
    body = client.request([["item", "missing"]])
    assert body["results"][0]["error"] == "KeyError"


def test_regenerate_keeps_data_and_kills_the_old_id(client: OpsClient) -> None:
    first = client.request([["put", "user", "ada"]])
    old_cookie = client.cookie
    client.spy.ops()
    second = client.request([["regenerate"]])
    assert second["fresh"] is True
    assert second["session_id"] != first["session_id"]
    assert client.cookie != old_cookie
    assert client.spy.ops() == ["destroy", "write"]
    assert client.request([["get", "user"]])["results"] == ["ada"]
    stale = client.request([["get", "user"]], cookie=f"session={old_cookie}")
    assert stale["fresh"] is True
    assert stale["results"] == [None]


def test_regenerate_of_a_fresh_session_destroys_nothing(client: OpsClient) -> None:
    client.request([["regenerate"], ["put", "a", 1]])
    assert client.spy.ops() == ["write"]


def test_flash_lives_exactly_one_request(client: OpsClient) -> None:
    body = client.request([["flash", "notice", "saved"], ["flash_messages"]])
    assert body["results"][1] == {}
    body = client.request()
    assert body["flash"] == {"notice": "saved"}
    body = client.request()
    assert body["flash"] == {}
    assert client.spy.ops()[-1] == "destroy"


def test_flash_by_mapping_and_dot_paths(client: OpsClient) -> None:
    client.request(
        [["flash", {"errors": {"title": "required"}}], ["flash", "errors.body", "short"]]
    )
    body = client.request(
        [["flash_messages"]],
    )
    assert body["flash"] == {"errors": {"title": "required", "body": "short"}}


def test_flash_all_only_except_with_explicit_input(client: OpsClient) -> None:
    form = {"title": "Hi", "password": "secret", "_csrf": "t"}
    client.request([["flash_except", ["password", "_csrf"], form]])
    assert client.request()["flash"] == {"title": "Hi"}
    client.request([["flash_only", ["title", "nope"], form]])
    assert client.request()["flash"] == {"title": "Hi"}
    client.request([["flash_all", form]])
    assert client.request()["flash"] == form


def test_reflash_keeps_messages_and_explicit_flash_wins(client: OpsClient) -> None:
    client.request([["flash", {"a": 1, "b": 2, "c": 3}]])
    client.request([["flash", "b", "new"], ["reflash"]])
    assert client.request()["flash"] == {"a": 1, "b": "new", "c": 3}


def test_reflash_only_and_except(client: OpsClient) -> None:
    client.request([["flash", {"a": 1, "b": {"x": 1, "y": 2}}]])
    client.request([["reflash_only", ["b.x"]]])
    assert client.request()["flash"] == {"b": {"x": 1}}
    client.request([["flash", {"a": 1, "b": {"x": 1, "y": 2}}]])
    client.request([["reflash_except", ["b.y"]]])
    assert client.request()["flash"] == {"a": 1, "b": {"x": 1}}


def test_tampered_unsigned_and_invented_cookies_give_fresh_sessions(client: OpsClient) -> None:
    first = client.request([["put", "a", 1]])
    real = client.cookie
    assert real is not None
    token, _, sig = real.partition(".")
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    for forged in (f"{token}.{flipped}", token, f"{token}.", "x" * 87, "invented"):
        body = client.request([["get", "a"]], cookie=f"session={forged}")
        assert body["fresh"] is True, forged
        assert body["results"] == [None]
        assert body["session_id"] != first["session_id"]


def test_bad_cookie_headers_never_crash(client: OpsClient) -> None:
    for header in (
        "session",
        ";;;==;",
        "session=" + "A" * 10_000,
        "session=ünïcödé",
        "session=" + "\u2603" * 50,
        'session="quoted"; other=1',
        "session=abc.def; session=ghi.jkl",
    ):
        body = client.request(cookie=header)
        assert body["fresh"] is True


def test_cookie_from_another_app_with_the_same_name(
    client: OpsClient, make_client: Callable[..., OpsClient]
) -> None:
    other = make_client(secret="another-app-secret-with-enough-length-000")
    other.request([["put", "a", 1]])
    assert other.cookie is not None
    body = client.request([["get", "a"]], cookie=f"session={other.cookie}")
    assert body["fresh"] is True
    assert body["results"] == [None]


def test_secret_rotation(make_client: Callable[..., OpsClient]) -> None:
    old = make_client(secret=OLD_SECRET)
    old.request([["put", "a", 1]])
    cookies = "; ".join(f"{k}={v}" for k, v in old.jar.items())
    rotated = make_client(secret=SECRET, secret_fallbacks=(OLD_SECRET,), share_store_with=old)
    body = rotated.request([["get", "a"]], cookie=cookies)
    assert body["fresh"] is False
    assert body["results"] == [1]
    # The response re-signs with the current secret only.
    assert rotated.cookie is not None
    removed = make_client(secret=SECRET, share_store_with=old)
    body = removed.request([["get", "a"]], cookie=cookies)
    assert body["fresh"] is True
    assert body["results"] == [None]
    # A cookie signed under the current secret opens the session without fallbacks.
    resigned = "; ".join(f"{k}={v}" for k, v in rotated.jar.items())
    body = removed.request([["get", "a"]], cookie=resigned)
    assert body["results"] == [1]


def test_clear_with_browser_sends_no_max_age(make_client: Callable[..., OpsClient]) -> None:
    client = make_client(clear_with_browser=True)
    client.request([["put", "a", 1]])
    for line in client.set_cookies():
        assert "Max-Age" not in line


def test_cookie_options_are_honoured(make_client: Callable[..., OpsClient]) -> None:
    client = make_client(
        cookie_name="sid",
        age="30m",
        cookie={"path": "/app", "domain": "example.test", "secure": True, "same_site": "strict"},
    )
    client.request([["put", "a", 1]])
    line = next(c for c in client.set_cookies() if c.startswith("sid="))
    for part in ("Path=/app", "Max-Age=1800", "Domain=example.test", "Secure", "SameSite=Strict"):
        assert part in line
