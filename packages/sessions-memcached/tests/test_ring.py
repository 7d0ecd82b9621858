"""Rendezvous hashing: an even spread, and losing a server moves only its keys."""

from __future__ import annotations

from collections import Counter

import pytest
from sessions.testing import new_key
from sessions_memcached.ring import Ring


def test_spread_is_even() -> None:
    ring = Ring({name: name for name in ("a:1", "b:1", "c:1")})
    counts = Counter(ring.pick(new_key()) for _ in range(3000))
    assert set(counts) == {"a:1", "b:1", "c:1"}
    assert all(850 <= n <= 1150 for n in counts.values()), counts


def test_removing_a_server_moves_only_its_keys() -> None:
    three = Ring({name: name for name in ("a:1", "b:1", "c:1")})
    two = Ring({name: name for name in ("a:1", "c:1")})
    keys = [new_key() for _ in range(1000)]
    for key in keys:
        before = three.pick(key)
        if before != "b:1":
            assert two.pick(key) == before


def test_single_server_and_empty_ring() -> None:
    assert Ring({"only": 1}).pick(new_key()) == 1
    with pytest.raises(ValueError, match="at least one member"):
        Ring({})
