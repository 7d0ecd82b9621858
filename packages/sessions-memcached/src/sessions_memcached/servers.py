"""Parsing the ``servers`` option: ``host:port``, ``[v6]:port``, ``host`` or a socket path."""

from __future__ import annotations

from collections.abc import Sequence

from sessions.errors import ConfigError

__all__ = ["DEFAULT_PORT", "ServerAddress", "parse_servers"]

DEFAULT_PORT = 11211
ServerAddress = tuple[str, int] | str
_VALID = (
    "one or more memcached servers as 'host:port' (e.g. 127.0.0.1:11211), '[ipv6]:port', "
    "'host' (port 11211) or a Unix socket path starting with '/'; "
    "a list or a comma-separated string"
)


def parse_servers(field: str, given: Sequence[str]) -> list[ServerAddress]:
    """Parse and check every entry; duplicates are refused (they would skew hashing)."""
    if not given:
        raise ConfigError(field, list(given), _VALID)
    result: list[ServerAddress] = []
    for entry in given:
        address = _parse_one(field, entry)
        if address in result:
            raise ConfigError(field, list(given), f"each server once ({entry!r} is repeated)")
        result.append(address)
    return result


def label(address: ServerAddress) -> str:
    """``host:port`` (``[v6]:port``) or the socket path, as messages show it."""
    if isinstance(address, str):
        return address
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_one(field: str, entry: str) -> ServerAddress:
    text = entry.strip()
    if text.startswith("/"):
        return text
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not host or (rest and not rest.startswith(":")):
            raise ConfigError(field, entry, _VALID)
        port_text = rest[1:] if rest else ""
    else:
        if text.count(":") > 1:
            raise ConfigError(field, entry, f"{_VALID} (put IPv6 addresses in brackets)")
        host, _, port_text = text.partition(":")
    if not host or any(c.isspace() for c in host):
        raise ConfigError(field, entry, _VALID)
    if not port_text:
        return (host, DEFAULT_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(field, entry, f"a port between 1 and 65535 in {_VALID}")
    return (host, int(port_text))
