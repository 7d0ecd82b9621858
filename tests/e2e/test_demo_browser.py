"""The demo in a real browser: Debian's chromium, driven by Playwright, against
the demo served by uvicorn on a loopback port, for the cookie driver and for
server-side drivers (memory, held by the uvicorn process; file)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sessions.testing.servers import ServerProcess

DRIVERS = ["cookie", "memory", "file"]


def submit(page: Page, selector: str) -> None:
    """Click a form's button and wait for the redirected page to load."""
    with page.expect_navigation():
        page.click(selector)


def session_cookie(context: BrowserContext, base: str) -> str:
    values = [c["value"] for c in context.cookies(base) if c["name"] == "session"]
    assert len(values) == 1, context.cookies(base)
    return values[0]


@pytest.mark.slow
@pytest.mark.parametrize("driver", DRIVERS)
def test_sign_in_cart_and_sign_out_in_a_browser(
    driver: str,
    serve_demo: Callable[..., ServerProcess],
    browser_context: Any,
) -> None:
    context: BrowserContext = browser_context
    server = serve_demo(driver)
    base = f"http://127.0.0.1:{server.port}"
    page = context.new_page()
    page.goto(base + "/")
    expect(page.locator("#driver")).to_have_text(driver)
    expect(page.locator("#fresh")).to_have_text("yes")
    count = page.locator("#cart-count")
    expect(count).to_have_text("0")

    # The cart survives reloads, and a session holding data keeps its cookie.
    for selector, expected in (
        ("#cart-add", "1"),
        ("#cart-add", "2"),
        ("#cart-remove", "1"),
        ("#cart-add", "2"),
    ):
        submit(page, selector)
        expect(count).to_have_text(expected)
    page.reload()
    expect(count).to_have_text("2")
    expect(page.locator("#fresh")).to_have_text("no")
    before_sign_in = session_cookie(context, base)
    page.reload()
    expect(count).to_have_text("2")
    assert session_cookie(context, base) == before_sign_in

    # An invalid sign-in shows the errors and the re-filled field once...
    page.fill("#username", "ab")
    page.fill("#password", "short")
    submit(page, "#sign-in")
    expect(page.locator("#username-error")).to_have_text(
        "Use 3 to 32 letters, digits, dots, dashes or underscores."
    )
    expect(page.locator("#password-error")).to_have_text(
        "The password needs at least 8 characters."
    )
    expect(page.locator("#username")).to_have_value("ab")
    expect(page.locator("#password")).to_have_value("")
    # ...and a reload no longer shows them.
    page.reload()
    expect(page.locator("#username")).to_have_value("")
    expect(page.locator(".error")).to_have_count(0)
    expect(count).to_have_text("2")
    assert session_cookie(context, base) == before_sign_in

    # Signing in moves the session to a new id (a new cookie value), keeping the cart.
    page.fill("#username", "ada")
    page.fill("#password", "correct horse")
    submit(page, "#sign-in")
    expect(page.locator("#signed-in-as")).to_have_text("ada")
    expect(page.locator("#notice")).to_have_text("Welcome, ada!")
    expect(count).to_have_text("2")
    signed_in = session_cookie(context, base)
    assert signed_in != before_sign_in
    page.reload()
    expect(page.locator("#notice")).to_have_count(0)
    expect(page.locator("#signed-in-as")).to_have_text("ada")
    expect(count).to_have_text("2")

    # Signing out empties the session (the cart too) and changes the id again.
    submit(page, "#sign-out")
    expect(page.locator("#notice")).to_have_text("Signed out. Your cart was emptied.")
    expect(count).to_have_text("0")
    expect(page.locator("#sign-in")).to_be_visible()
    assert session_cookie(context, base) not in (signed_in, before_sign_in)
    page.reload()
    expect(count).to_have_text("0")
    expect(page.locator("#signed-in-as")).to_have_count(0)


@pytest.mark.slow
@pytest.mark.parametrize("driver", ["memory", "cookie"])
def test_forms_need_a_valid_csrf_token(
    driver: str,
    serve_demo: Callable[..., ServerProcess],
    browser_context: Any,
) -> None:
    context: BrowserContext = browser_context
    server = serve_demo(driver)
    base = f"http://127.0.0.1:{server.port}"
    page = context.new_page()
    page.goto(base + "/")
    count = page.locator("#cart-count")

    # The demo's form carries the token: the post works.
    submit(page, "#cart-add")
    expect(count).to_have_text("1")

    # The same form without its token (what a forged cross-site form sends) is refused.
    page.evaluate("document.querySelector('#cart-add').form.csrf_token.remove()")
    with page.expect_navigation() as refused:
        page.click("#cart-add")
    response = refused.value
    assert response is not None
    assert response.status == 403
    expect(page.locator("body")).to_contain_text("CSRF check failed")
    page.goto(base + "/")
    expect(count).to_have_text("1")  # the refused post changed nothing

    # A wrong token is refused too.
    page.evaluate("document.querySelector('#cart-add').form.csrf_token.value = 'x'.repeat(86)")
    with page.expect_navigation() as wrong:
        page.click("#cart-add")
    assert wrong.value is not None
    assert wrong.value.status == 403

    # Signing in regenerates the session, which rotates the token: one taken
    # from the page before sign-in no longer works.
    page.goto(base + "/")
    old_token = page.locator("#cart-add").evaluate("b => b.form.csrf_token.value")
    page.fill("#username", "ada")
    page.fill("#password", "correct horse")
    submit(page, "#sign-in")
    expect(page.locator("#signed-in-as")).to_have_text("ada")
    page.locator("#cart-add").evaluate("(b, t) => { b.form.csrf_token.value = t }", old_token)
    with page.expect_navigation() as stale:
        page.click("#cart-add")
    assert stale.value is not None
    assert stale.value.status == 403
    page.goto(base + "/")
    submit(page, "#cart-add")  # the page's fresh token works
    expect(count).to_have_text("2")


@pytest.mark.slow
@pytest.mark.parametrize("driver", ["memory"])
def test_signed_in_devices_and_signing_out_the_others(
    driver: str, serve_demo: Callable[..., ServerProcess], chromium: str
) -> None:
    """Two browsers sign in as one user; the first signs the other out."""
    from playwright.sync_api import sync_playwright

    from .conftest import CHROMIUM_ARGS

    server = serve_demo(driver)
    base = f"http://127.0.0.1:{server.port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            laptop = browser.new_context(
                user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"
            )
            phone = browser.new_context(
                user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1"
            )
            pages = []
            for context in (laptop, phone):
                context.set_default_timeout(10_000)
                page = context.new_page()
                page.goto(base + "/")
                page.fill("#username", "ada")
                page.fill("#password", "correct horse")
                submit(page, "#sign-in")
                expect(page.locator("#signed-in-as")).to_have_text("ada")
                pages.append(page)
            first, second = pages

            first.goto(base + "/devices")
            expect(first.locator("#device-count")).to_have_text("2")
            names = first.locator(".device-name")
            expect(names).to_have_count(2)
            assert sorted(names.all_inner_texts()) == ["Chrome on Linux", "Safari on iPhone"]
            expect(first.locator(".this-device")).to_have_count(1)

            submit(first, "#sign-out-others")
            expect(first.locator("#notice")).to_have_text("Signed out 1 other device.")
            expect(first.locator("#device-count")).to_have_text("1")

            # The other browser's next page is signed out; this one is not.
            second.reload()
            expect(second.locator("#signed-in-as")).to_have_count(0)
            expect(second.locator("#sign-in")).to_be_visible()
            first.goto(base + "/")
            expect(first.locator("#signed-in-as")).to_have_text("ada")
        finally:
            browser.close()
