"""The tagged JSON codec and the security primitives."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from sessions.codec import decode, encode
from sessions.errors import DecodeError
from sessions.keys import IdSigner, is_storage_key, new_token, storage_key
from sessions.testing import SAMPLE_VALUES

SECRET = "codec-tests-secret-0123456789-abcdefghij"


def test_round_trip_keeps_types() -> None:
    decoded = decode(encode(SAMPLE_VALUES))
    assert decoded == SAMPLE_VALUES
    assert type(decoded["aware"].tzinfo) is type(SAMPLE_VALUES["aware"].tzinfo)
    assert decoded["naive"].tzinfo is None
    assert str(decoded["decimal"]) == "10.50"


@pytest.mark.parametrize(
    "value",
    [
        {"\x00": 1},
        {"\x00": ["dt", "2020-01-01"]},
        {"nested": {"\x00": {"\x00": "x"}}},
        {"s": "\x00", "t": '"\\u0000":'},
        {"list": [{"\x00": b"bytes"}, date(2020, 1, 1)]},
    ],
)
def test_user_data_that_looks_like_a_tag_round_trips(value: dict[str, Any]) -> None:
    assert decode(encode(value)) == value


def test_output_is_compact_utf8_json() -> None:
    data = encode({"name": "Zoë", "n": 1})
    assert data == '{"name":"Zoë","n":1}'.encode()
    assert json.loads(data) == {"name": "Zoë", "n": 1}


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"string"',
        b'{"a": {"\\u0000": ["nope", "x"]}}',
        b'{"a": {"\\u0000": ["dt", "not a date"]}}',
        b'{"a": {"\\u0000": ["b", "!!!"]}}',
        b'{"a": {"\\u0000": ["dec", "abc"]}}',
        b'{"a": {"\\u0000": "x", "b": 1}}',
        b'{"a": {"\\u0000": ["map", [[1]]]}}',
        b"[" * 100_000,
    ],
)
def test_garbage_raises_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(payload)


def test_tokens_and_storage_keys() -> None:
    token = new_token()
    assert len(token) == 43
    key = storage_key(token)
    assert is_storage_key(key)
    assert key != token
    assert storage_key(token) == key
    assert not is_storage_key("../../etc/passwd")
    assert not is_storage_key("a" * 42)
    assert not is_storage_key(None)
    assert len({new_token() for _ in range(1000)}) == 1000


def test_signer_round_trip_and_rejections() -> None:
    signer = IdSigner([SECRET], "session")
    token = new_token()
    value = signer.sign(token)
    assert signer.unsign(value) == token
    assert IdSigner([SECRET], "other").unsign(value) is None  # bound to the cookie name
    assert IdSigner(["x" * 40], "session").unsign(value) is None
    for bad in ("", token, value + "x", value[:-1], "." * 87, value.replace(".", "-"), "é" * 87):
        assert signer.unsign(bad) is None


def test_signer_rotation() -> None:
    old = IdSigner(["old-secret-" + "o" * 30], "session")
    value = old.sign(new_token())
    rotated = IdSigner([SECRET, "old-secret-" + "o" * 30], "session")
    assert rotated.unsign(value) is not None
    assert rotated.sign("t" * 43) == IdSigner([SECRET], "session").sign("t" * 43)


def test_specials_come_back_from_json_as_their_types() -> None:
    u = uuid4()
    values = {"u": u, "d": Decimal("0.1"), "t": datetime(2026, 5, 1, tzinfo=UTC)}
    assert decode(encode(values)) == values


def test_open_remembers_only_verified_values_and_stays_bounded() -> None:
    signer = IdSigner([SECRET], "session", cache_size=3)
    token = new_token()
    value = signer.sign(token)
    assert signer.open(value) == (token, True, storage_key(token), None)
    assert signer.open(value) == (token, True, storage_key(token), None)
    forged = value[:-1] + ("A" if value[-1] != "A" else "B")
    assert signer.open(forged) is None
    assert forged not in signer._verified
    for _ in range(10):
        assert signer.open(signer.sign(new_token())) is not None
    assert len(signer._verified) == 3
    assert value not in signer._verified  # oldest evicted first
    assert signer.open(value) == (token, True, storage_key(token), None)


def test_open_reports_a_fallback_signature() -> None:
    old = "old-secret-" + "o" * 30
    value = IdSigner([old], "session").sign(new_token())
    opened = IdSigner([SECRET, old], "session").open(value)
    assert opened is not None
    assert opened[1] is False
