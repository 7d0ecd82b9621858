"""Each integration page's complete example runs as written: served by a real
server process (uvicorn, hypercorn, or the page's own ``__main__``) on a loopback
port, used over HTTP.

A page's example is its ``# app.py`` python block plus any other blocks whose
first line names a file: ``# name.py`` or ``{# templates/name.html #}``."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sessions.testing.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "integrations"
SECRET = "docs-example-secret-0123456789-abcdefghij"


FILE_HEADER = re.compile(r"# (\S+)|\{# (\S+) #\}")


def example(page: str) -> dict[str, str]:
    """The files of ``page``'s example: every fenced block whose first line names one."""
    # A page under docs/integrations, or a path from the repository's root.
    text = (DOCS / page if (DOCS / page).exists() else ROOT / page).read_text()
    files: dict[str, str] = {}
    for block in re.findall(r"```\w+\n(.*?)```", text, flags=re.S):
        named = FILE_HEADER.fullmatch(block.split("\n", 1)[0])
        if named:
            files[named.group(1) or named.group(2)] = block
    if "app.py" not in files:
        raise AssertionError(f"{page} has no ```python block starting with '# app.py'")
    return files


@pytest.fixture
def run_example() -> Iterator[Callable[[str, str], httpx.Client]]:
    started: list[tuple[ServerProcess, httpx.Client]] = []

    def run(page: str, how: str) -> httpx.Client:
        files = example(page)

        def command(port: int, workdir: Path) -> list[str]:
            for name, source in files.items():
                (workdir / name).parent.mkdir(parents=True, exist_ok=True)
                (workdir / name).write_text(source)
            env = ["env", "-u", "SESSIONS_PLUGINS", f"SESSION_SECRET={SECRET}"]
            env += ["SESSION_DRIVER=memory", f"PORT={port}"]
            if how == "uvicorn":
                server = ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)]
                return [*env, sys.executable, *server]
            if how == "hypercorn":
                server = ["-m", "hypercorn", "app:app", "--bind", f"127.0.0.1:{port}"]
                return [*env, sys.executable, *server]
            return [*env, sys.executable, "app.py"]

        server = ServerProcess(f"docs-{Path(page).name}", command).start(timeout=30)
        client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}")
        started.append((server, client))
        return client

    yield run
    for server, client in started:
        client.close()
        server.cleanup()


@pytest.mark.parametrize(("page", "how"), [("asgi.md", "uvicorn"), ("wsgi.md", "python")])
def test_asgi_and_wsgi_examples(
    run_example: Callable[[str, str], httpx.Client], page: str, how: str
) -> None:
    client = run_example(page, how)
    assert client.get("/").text == "visits=1 notice= name="
    path = "/save" if page == "asgi.md" else "/"
    response = client.post(path, data={"name": "ada", "password": "secret"})
    assert response.status_code == 303
    assert client.get("/").text == "visits=2 notice=saved name=ada"
    assert client.get("/").text == "visits=3 notice= name="
    if page == "asgi.md":
        before = client.cookies["session"]
        client.post("/sign-in")
        assert client.cookies["session"] != before
        assert client.get("/").text == "visits=4 notice= name="


def test_flask_example(run_example: Callable[[str, str], httpx.Client]) -> None:
    client = run_example("flask.md", "python")
    assert "visits=1" in client.get("/").text
    assert client.post("/save", data={"title": "", "password": "x"}).status_code == 303
    page = client.get("/").text
    assert "<p>A title is required.</p>" in page
    assert 'value=""' in page
    client.post("/save", data={"title": "Hello", "password": "x"})
    page = client.get("/").text
    assert '<p class="success">Saved.</p>' in page
    assert "A title is required." not in page
    assert "Saved." not in client.get("/").text
    before = client.cookies["session"]
    client.post("/sign-in")
    assert client.cookies["session"] != before
    assert "visits=5" in client.get("/").text


def test_jinja_example(run_example: Callable[[str, str], httpx.Client]) -> None:
    client = run_example("jinja.md", "uvicorn")
    assert "Items in your cart: 0" in client.get("/").text
    client.post("/", data={"title": ""})
    page = client.get("/").text
    assert "Items in your cart: 1" in page
    assert '<p class="error">A title is required.</p>' in page
    client.post("/", data={"title": "Hi"})
    page = client.get("/").text
    assert "Items in your cart: 2" in page
    assert "error" not in page


def test_fastapi_example(run_example: Callable[[str, str], httpx.Client]) -> None:
    client = run_example("fastapi.md", "uvicorn")
    assert client.get("/").text == "visits=1 notice= user="
    assert client.post("/cart/apple").status_code == 303
    client.post("/cart/apple")
    client.post("/cart/pear")
    assert client.get("/").text == "visits=2 notice=added pear user="
    assert client.get("/").text == "visits=3 notice= user="
    assert client.get("/cart").json() == {"apple": 2, "pear": 1}
    before = client.cookies["session"]
    client.post("/sign-in")
    assert client.cookies["session"] != before
    assert client.get("/").text == "visits=4 notice= user=ada"
    health = client.get("/health")
    assert health.text == "ok"
    assert "set-cookie" not in health.headers


def notes_page_scenario(client: httpx.Client) -> None:
    """The Litestar and Quart examples: templates, flash messages, re-filled forms."""
    assert "visits=1 user=" in client.get("/").text
    response = client.post("/notes", data={"title": "", "password": "hunter2"})
    assert response.status_code == 303
    page = client.get("/").text
    assert "visits=2" in page
    assert '<p class="error">A title is required.</p>' in page
    assert "hunter2" not in page
    assert "A title is required." not in client.get("/").text  # shown once
    client.post("/notes", data={"title": "Hello <b>", "password": "x"})
    page = client.get("/").text
    assert '<p class="success">Saved.</p>' in page
    assert "<li>Hello &lt;b&gt;</li>" in page  # autoescaped
    assert "Saved." not in client.get("/").text
    before = client.cookies["session"]
    client.post("/sign-in")
    assert client.cookies["session"] != before
    assert "user=ada" in client.get("/").text
    health = client.get("/health")
    assert health.text == "ok"
    assert "set-cookie" not in health.headers


@pytest.mark.parametrize(("page", "how"), [("litestar.md", "uvicorn"), ("quart.md", "hypercorn")])
def test_litestar_and_quart_examples(
    run_example: Callable[[str, str], httpx.Client], page: str, how: str
) -> None:
    notes_page_scenario(run_example(page, how))


def test_readme_example(run_example: Callable[[str, str], httpx.Client]) -> None:
    client = run_example("README.md", "uvicorn")
    assert client.get("/").text == "items=0 notice="
    assert client.post("/add").status_code == 303
    client.post("/add")
    assert client.get("/").text == "items=2 notice=Added to cart"
    assert client.get("/").text == "items=2 notice="
