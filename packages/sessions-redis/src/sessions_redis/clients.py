"""Building, recognising and describing the redis-py clients the driver talks through.

The driver owns the clients it builds from ``url`` (one sync client and one
async client per event loop, each with its own connection pool; for standalone
servers each wrapped in a lane, see :mod:`sessions_redis.lanes`) and closes
them; a client handed in through the ``client`` option belongs to the application.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from sessions.errors import ConfigError
from sessions.redact import redact_text

from .lanes import AsyncLane, AsyncPatientClient, PatientClient, SyncLane, backoff

__all__ = [
    "adopt",
    "build_async",
    "build_sync",
    "check_options",
    "describe_client",
    "is_async_client",
]

_SCHEMES = ("redis", "rediss", "unix")
_CLUSTER_SCHEMES = ("redis", "rediss")


def is_async_client(client: object) -> bool:
    """True for a redis.asyncio client (its ``execute_command`` is a coroutine function)."""
    return inspect.iscoroutinefunction(getattr(client, "execute_command", None))


def check_options(driver: str, options: Mapping[str, Any]) -> None:
    """Raise ConfigError for option values redis-py would reject later, or misread."""
    client = options.get("client")
    if client is not None:
        if not callable(getattr(client, "execute_command", None)):
            raise ConfigError(
                f"drivers.{driver}.client",
                client,
                "a redis-py client: redis.Redis, redis.cluster.RedisCluster, a "
                "Sentinel master_for(...) client, or their redis.asyncio counterparts",
            )
        if options.get("cluster"):
            raise ConfigError(
                f"drivers.{driver}.cluster",
                True,
                "leave cluster unset when a client is given: pass a RedisCluster as client",
            )
    else:
        url = options.get("url") or ""
        scheme = urlsplit(url).scheme
        allowed = _CLUSTER_SCHEMES if options.get("cluster") else _SCHEMES
        if scheme not in allowed:
            examples = "redis://127.0.0.1:6379/0, rediss://user:pass@host:6380/0"
            if not options.get("cluster"):
                examples += ", unix:///run/redis.sock?db=0"
            raise ConfigError(
                f"drivers.{driver}.url",
                mask_url(url),
                f"a URL with scheme {', '.join(s + '://' for s in allowed)} such as {examples}",
            )
        _check_url(driver, url, options)
    prefix = options.get("key_prefix")
    if prefix is None:
        raise ConfigError(f"drivers.{driver}.key_prefix", prefix, "a string (may be empty)")
    if options.get("cluster") and "{" in prefix:
        raise ConfigError(
            f"drivers.{driver}.key_prefix",
            prefix,
            "a prefix without '{': a hash tag in the prefix would put every session "
            "in one cluster slot, on one node",
        )
    for name in ("max_connections", "retries"):
        value = options.get(name)
        if value is not None and value < (1 if name == "max_connections" else 0):
            minimum = 1 if name == "max_connections" else 0
            raise ConfigError(f"drivers.{driver}.{name}", value, f"an integer >= {minimum}")
    for name in ("socket_timeout", "socket_connect_timeout"):
        value = options.get(name)
        if value is not None and value <= 0:
            raise ConfigError(
                f"drivers.{driver}.{name}", value, "a number of seconds > 0 (or unset)"
            )


def _check_url(driver: str, url: str, options: Mapping[str, Any]) -> None:
    # redis-py reads ports and query parameters lazily, when the first
    # connection is made; make one (it connects only when used) so that a
    # typo fails at startup rather than on the first request.
    try:
        probe = redis.Redis.from_url(url, **_client_kwargs(options, Retry(NoBackoff(), 0)))
        probe.connection_pool.make_connection()
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"drivers.{driver}.url",
            mask_url(url),
            f"a URL redis-py accepts (it said: {exc}); query parameters are connection "
            "settings such as ?ssl_cert_reqs=none or ?protocol=3",
        ) from None


def _client_kwargs(options: Mapping[str, Any], retry: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": options.get("socket_timeout"),
        "socket_connect_timeout": options.get("socket_connect_timeout"),
        "retry": retry,
        # Payloads are the codec's bytes; decoding is the codec's job.
        "decode_responses": False,
    }
    if options.get("max_connections") is not None:
        kwargs["max_connections"] = options["max_connections"]
    return kwargs


def _backoff_retry(retry_class: type[Any], options: Mapping[str, Any]) -> Any:
    return retry_class(backoff(), int(options.get("retries") or 0))


def build_sync(options: Mapping[str, Any]) -> Any:
    """What the sync flavour sends commands through, for the ``url`` option: a
    :class:`SyncLane` over a standalone client, or a ``RedisCluster``."""
    patience = options.get("socket_timeout")
    if options.get("cluster"):
        kwargs = _client_kwargs(options, _backoff_retry(Retry, options))
        cluster = redis.cluster.RedisCluster.from_url(options["url"], **kwargs)
        return PatientClient(cluster, patience)
    # The lane retries; the connections themselves must not retry again.
    client = redis.Redis.from_url(options["url"], **_client_kwargs(options, Retry(NoBackoff(), 0)))
    return SyncLane(client, int(options.get("retries") or 0), patience)


def build_async(options: Mapping[str, Any]) -> Any:
    """The async counterpart of :func:`build_sync`; call it inside the loop that will use it."""
    if options.get("cluster"):
        kwargs = _client_kwargs(options, _backoff_retry(AsyncRetry, options))
        cluster = redis.asyncio.cluster.RedisCluster.from_url(options["url"], **kwargs)
        return AsyncPatientClient(cluster, options.get("socket_timeout"))
    kwargs = _client_kwargs(options, AsyncRetry(NoBackoff(), 0))
    # The lane enforces socket_timeout over the whole command itself: redis-py
    # would spawn a task per send to enforce it.
    kwargs["socket_timeout"] = None
    client = redis.asyncio.Redis.from_url(options["url"], **kwargs)
    return AsyncLane(client, int(options.get("retries") or 0), options.get("socket_timeout"))


def adopt(client: Any, options: Mapping[str, Any]) -> Any:
    """An application's client, asking again after a "try again shortly" reply for
    up to the driver's ``socket_timeout`` (the client's own settings do the rest)."""
    if is_async_client(client):
        return AsyncPatientClient(client, options.get("socket_timeout"))
    return PatientClient(client, options.get("socket_timeout"))


def mask_url(url: str) -> str:
    """``url`` with any password (user info or ``?password=``) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            netloc = parts.netloc.rsplit("@", 1)[1]
            url = urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc}"))
    except ValueError:
        return "<unparsable URL>"
    return redact_text(url)


def describe_client(client: Any) -> str:
    """Where a ready-made client points, as well as redis-py lets us see it."""
    nodes = getattr(client, "get_nodes", None)
    if callable(nodes) and getattr(client, "nodes_manager", None) is not None:
        try:
            names = sorted(node.name for node in nodes())
        except Exception:  # describing must never raise
            names = []
        if names:
            return "redis cluster " + ",".join(names)
        startup = getattr(client.nodes_manager, "startup_nodes", {}) or {}
        return "redis cluster " + (",".join(sorted(startup)) or "(no nodes known)")
    pool = getattr(client, "connection_pool", None)
    service = getattr(pool, "service_name", None)
    if service is not None:
        return f"redis sentinel master {service!r}"
    kwargs: Mapping[str, Any] = getattr(pool, "connection_kwargs", {}) or {}
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    if "host" in kwargs:
        return f"redis://{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    return f"redis client {type(client).__module__}.{type(client).__qualname__}"
