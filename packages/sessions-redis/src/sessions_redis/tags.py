"""The tagging capability: a Redis set per tag, listed and emptied in few round trips.

``<prefix>tag:<tag>`` holds the ids of the sessions tagged ``tag``. A member is
added when a write gives a session that tag (inside the compare-and-set script
off Cluster; on Cluster, where the set lives on another slot, by one ``SADD``
the driver sends only when the script reports the tag changed). Members are
never removed on write: a session that expires, is destroyed, regenerated or
re-tagged leaves a stale member, pruned when the tag is next listed or
destroyed. Whether a session still belongs to a tag is decided by its record's
header, never by the set alone.

The queries are written once, as generators of steps (like core's commit plan),
and run by the driver's sync and async runners:

* standalone and Sentinel: the whole query is one script (``TAG_QUERY``), one
  round trip whatever the number of sessions;
* Cluster: ``SMEMBERS`` on the tag's slot, then one pipeline that redis-py
  splits per node and sends to every node at once (one round trip per node,
  in parallel), then, only if stale members were found, their removal (see
  :func:`_prune` for why it re-checks them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from redis.exceptions import NoScriptError
from sessions.driver import StoredSession

from .records import UnreadableRecord, parse
from .scripts import DESTROY_IF_TAGGED, PEEK, TAG_QUERY, Script

__all__ = [
    "Step",
    "apipeline",
    "destroy_tagged_plan",
    "peek_plan",
    "pipeline",
    "run_scripts_async",
    "run_scripts_sync",
    "tagged_plan",
]

#: One thing a runner does, and what it sends back into the plan:
#: ("script", Script, keys, args) -> the reply;
#: ("command", args) -> the reply;
#: ("pipeline", [args, ...]) -> the replies, exceptions included (Cluster only);
#: ("scripts", Script, [(keys, args), ...]) -> the replies (Cluster only).
Step = tuple[Any, ...]
#: Decodes one member's record: (session id, record bytes) -> values, or None if unreadable.
Decode = Callable[[str, bytes], dict[str, Any] | None]


def _text(member: bytes | str) -> str:
    return member.decode("utf-8") if isinstance(member, bytes) else member


def _tag_of_record(data: Any) -> str | None:
    if not isinstance(data, bytes):
        return None
    try:
        return parse(data).tag
    except UnreadableRecord:
        return None


def _expires_at(pttl: int, now: float, default_age: int) -> float:
    # -1: no expiry (someone PERSISTed the key); report the default age from now.
    return now + (pttl / 1000 if pttl >= 0 else default_age)


def peek_plan(
    key: str, session_id: str, decode: Decode, default_age: int
) -> Generator[Step, Any, StoredSession | None]:
    """One script: GET and PTTL of one key, the expiry untouched."""
    now = time.time()
    data, pttl = yield ("script", PEEK, (key,), ())
    if data is None or pttl == -2:
        return None
    values = decode(session_id, data)
    if values is None:
        return None
    return StoredSession(session_id, values, _expires_at(pttl, now, default_age))


def tagged_plan(
    prefix: str, tag_key: str, tag: str, cluster: bool, decode: Decode, default_age: int
) -> Generator[Step, Any, list[StoredSession]]:
    """Every live session whose record carries ``tag``; stale members pruned."""
    now = time.time()
    found: list[tuple[str, bytes, int]] = []
    if not cluster:
        flat = yield ("script", TAG_QUERY, (tag_key,), (prefix, tag, "list", ""))
        for i in range(0, len(flat), 3):
            found.append((_text(flat[i]), flat[i + 1], int(flat[i + 2])))
    else:
        members = [_text(m) for m in (yield ("command", ("SMEMBERS", tag_key)))]
        if not members:
            return []
        commands = []
        for member in members:
            commands += [("GET", prefix + member), ("PTTL", prefix + member)]
        replies = yield ("pipeline", commands)
        stale = []
        for i, member in enumerate(members):
            data, pttl = _raise_first(replies[2 * i : 2 * i + 2])
            if _tag_of_record(data) != tag or pttl == -2:
                stale.append(member)
            else:
                found.append((member, data, int(pttl)))
        if stale:
            yield from _prune(prefix, tag_key, tag, stale, [])
    sessions = []
    for member, data, pttl in found:
        values = decode(member, data)
        if values is not None:
            sessions.append(StoredSession(member, values, _expires_at(pttl, now, default_age)))
    return sessions


def destroy_tagged_plan(
    prefix: str, tag_key: str, tag: str, keep: str | None, cluster: bool
) -> Generator[Step, Any, int]:
    """Destroy every session whose record carries ``tag`` but ``keep``; count them."""
    if not cluster:
        destroyed = yield ("script", TAG_QUERY, (tag_key,), (prefix, tag, "destroy", keep or ""))
        return int(destroyed)
    members = [_text(m) for m in (yield ("command", ("SMEMBERS", tag_key)))]
    targets = [m for m in members if m != keep]
    if not targets:
        return 0
    # Each delete checks the record's tag in the same step: a session re-tagged
    # since it joined the set is left alone.
    replies = yield ("scripts", DESTROY_IF_TAGGED, [((prefix + m,), (tag,)) for m in targets])
    _raise_first(replies)
    gone = [m for m, reply in zip(targets, replies, strict=True) if reply == 1]
    stale = [m for m, reply in zip(targets, replies, strict=True) if reply != 1]
    if gone or stale:
        yield from _prune(prefix, tag_key, tag, stale, gone)
    return len(gone)


def _prune(
    prefix: str, tag_key: str, tag: str, stale: list[str], gone: list[str]
) -> Generator[Step, Any, None]:
    """Remove members from the tag set (Cluster: the set and the sessions are on
    different slots, so this cannot be one atomic step).

    ``gone`` were destroyed and can never come back (a destroyed id is never
    written again). ``stale`` were found expired, untagged or re-tagged, but a
    request may tag one of them with ``tag`` again meanwhile: its script stores
    the record, then its driver adds the member. If that ``SADD`` lands before
    our ``SREM``, the member would be lost; so after the ``SREM`` the stale
    records are read once more and any that carries ``tag`` is added back.
    Either the re-check sees the new tag, or the writer's ``SADD`` comes after
    our ``SREM``: the set never misses a session that has the tag.
    """
    yield ("command", ("SREM", tag_key, *stale, *gone))
    if not stale:
        return
    again = yield ("pipeline", [("GET", prefix + m) for m in stale])
    back = [m for m, data in zip(stale, again, strict=True) if _tag_of_record(data) == tag]
    if back:
        yield ("command", ("SADD", tag_key, *back))


def _raise_first(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply
    return replies


def run_scripts_sync(client: Any, script: Script, calls: list[tuple[Any, Any]]) -> list[Any]:
    """EVALSHA each call in one cluster pipeline; the calls a node answered
    NOSCRIPT go again as EVAL in a second one."""
    replies = _script_pipeline(client, [("EVALSHA", script.sha, k, a) for k, a in calls])
    missing = [i for i, r in enumerate(replies) if _no_script(r)]
    if missing:
        again = _script_pipeline(
            client, [("EVAL", script.source, calls[i][0], calls[i][1]) for i in missing]
        )
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    return replies


def _script_pipeline(client: Any, calls: list[tuple[str, Any, Any, Any]]) -> list[Any]:
    # redis-py's sync cluster pipeline asks a server (COMMAND GETKEYS, one round
    # trip each) where a script call's keys are, unless told its node: tell it.
    pipe = client.pipeline()
    for command, script, keys, args in calls:
        node = client.get_node_from_key(keys[0])
        pipe.execute_command(command, script, len(keys), *keys, *args, target_nodes=node)
    replies: list[Any] = pipe.execute(raise_on_error=False)
    return replies


async def run_scripts_async(client: Any, script: Script, calls: list[tuple[Any, Any]]) -> list[Any]:
    """Async :func:`run_scripts_sync`."""
    commands = [("EVALSHA", script.sha, len(k), *k, *a) for k, a in calls]
    replies = await apipeline(client, commands)
    missing = [i for i, r in enumerate(replies) if _no_script(r)]
    if missing:
        again = await apipeline(
            client,
            [
                ("EVAL", script.source, len(calls[i][0]), *calls[i][0], *calls[i][1])
                for i in missing
            ],
        )
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    return replies


def _no_script(reply: Any) -> bool:
    return isinstance(reply, NoScriptError)


def pipeline(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` through a cluster pipeline (redis-py groups them per node
    and writes to every node before reading); errors come back as values."""
    pipe = client.pipeline()
    for command in commands:
        pipe.execute_command(*command)
    replies: list[Any] = pipe.execute(raise_on_error=False)
    return replies


async def apipeline(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Async :func:`pipeline` (redis.asyncio sends to the nodes concurrently)."""
    pipe = client.pipeline()
    for command in commands:
        pipe.execute_command(*command)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    return replies
