"""Excluded paths, shared by the ASGI, WSGI and Flask integrations."""

from __future__ import annotations

import pytest
from sessions.exclude import ExcludedPaths


def test_prefixes_cover_the_path_and_below_only() -> None:
    excluded = ExcludedPaths(["/static", "/health/"])
    for path in ("/static", "/static/", "/static/app.css", "/health", "/health/live"):
        assert path in excluded, path
    for path in ("/", "/staticky", "/healthz", "/app/static", "", None):
        assert path not in excluded, path


def test_root_covers_everything_and_empty_covers_nothing() -> None:
    assert "/anything" in ExcludedPaths(["/"])
    assert not ExcludedPaths([])
    assert "/static" not in ExcludedPaths([])


@pytest.mark.parametrize("bad", ["static", "", 3])
def test_entries_must_be_absolute_paths(bad: object) -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        ExcludedPaths([bad])  # type: ignore[list-item]
