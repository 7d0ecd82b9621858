"""The Lua scripts the driver runs, and running them with one command each.

A script is sent as ``EVALSHA <sha1> ...``; a server that does not have it
(restarted, failed over, a cluster node seeing it for the first time, or
``SCRIPT FLUSH``) answers ``NOSCRIPT``, and the same call is sent once more
as ``EVAL <source> ...``, which also caches it there. That is what redis-py's
``Script`` object does, minus its extra ``SCRIPT LOAD`` round trip, and it works
over the driver's lanes (:mod:`sessions_redis.lanes`), which send single
commands rather than exposing redis-py's client API.

Every script touches one session key (``KEYS[1]``), so it runs on Cluster
(the tag set, on another slot, is passed as ``KEYS[2]`` only off Cluster), and
each parses the record header of :mod:`sessions_redis.records`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from redis.exceptions import NoScriptError

__all__ = ["CAS", "DESTROY_IF_TAGGED", "PEEK", "TAG_QUERY", "Script"]

# header(rec) -> version string (or false: unreadable), tag ('' when untagged).
# Mirrors sessions_redis.records.parse.
#
# stored(key) -> present, version, tag: the same, read with GETRANGE so that a
# write never copies the whole record into Lua: 300 bytes hold the header and
# any tag up to about 256 bytes; a longer tag costs a second GETRANGE.
_HEADER = """
local function header(rec)
  if type(rec) ~= 'string' then return false, '' end
  if string.byte(rec, 1) == 123 then return '0', '' end
  local version, n, colon = string.match(rec, '^v(%d+),?(%d*)():')
  if not version then return false, '' end
  if n == '' then return version, '' end
  return version, string.sub(rec, colon + 1, colon + tonumber(n))
end

local function stored(key)
  local rec = redis.pcall('GETRANGE', key, 0, 299)
  if type(rec) ~= 'string' then return true, false, '' end
  if rec == '' then return false, false, '' end
  if string.byte(rec, 1) == 123 then return true, '0', '' end
  local version, n, colon = string.match(rec, '^v(%d+),?(%d*)():')
  if not version then return true, false, '' end
  if n == '' then return true, version, '' end
  local last = colon + tonumber(n)
  if last > #rec then rec = redis.call('GETRANGE', key, 0, last - 1) end
  return true, version, string.sub(rec, colon + 1, last)
end
"""


class Script:
    """One Lua script: its source and SHA1, run with EVALSHA, falling back to EVAL."""

    def __init__(self, name: str, body: str) -> None:
        self.name = name
        self.source = (_HEADER + body).encode("utf-8")
        self.sha = hashlib.sha1(self.source, usedforsecurity=False).hexdigest()

    def run(self, client: Any, keys: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        """Run on a sync client (or lane); one command unless the server lacks the script."""
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.execute_command("EVAL", self.source, len(keys), *keys, *args)

    async def arun(self, client: Any, keys: tuple[Any, ...], args: tuple[Any, ...]) -> Any:
        """:meth:`run` on a redis.asyncio client (or lane)."""
        try:
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.execute_command("EVAL", self.source, len(keys), *keys, *args)


#: The compare-and-set write, also used (with expected ``*``) for plain writes.
#:
#: KEYS[1] the session key; KEYS[2] (standalone only) the set of the new tag.
#: ARGV[1] expected version: '' = create (no readable record), '*' = any;
#: ARGV[2] the new version (what the new record's header carries);
#: ARGV[3] the new record, '' = delete; ARGV[4] TTL seconds;
#: ARGV[5] the new tag ('' = untagged); ARGV[6] the session id (the set member).
#: Returns 0: refused; 1: done; 2: stored, and the tag differs from the old
#: record's (the caller adds the member to the tag set when KEYS[2] was absent).
CAS = Script(
    "cas",
    """
local present, version, tag = stored(KEYS[1])
if version == ARGV[2] then
  -- This very write, sent again after its reply was lost: it already happened.
  if ARGV[5] ~= '' and KEYS[2] == nil then return 2 end
  return 1
end
local expected = ARGV[1]
if expected == '' then
  if version then return 0 end
elseif expected ~= '*' and version ~= expected then
  return 0
end
if ARGV[3] == '' then
  if present then redis.call('DEL', KEYS[1]) end
  return 1
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
if ARGV[5] ~= '' and ARGV[5] ~= tag then
  if KEYS[2] then redis.call('SADD', KEYS[2], ARGV[6]) end
  return 2
end
return 1
""",
)

#: Read without refreshing the expiry: KEYS[1] the session key. Returns
#: {record or nil, PTTL in ms (-2 missing, -1 no expiry)}.
PEEK = Script(
    "peek",
    """
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
""",
)

#: Delete a session only if its record still carries the tag (Cluster's
#: destroy_tagged, one call per member). KEYS[1] session key; ARGV[1] the tag.
#: Returns 1 when deleted, 0 when the record is gone or carries another tag.
DESTROY_IF_TAGGED = Script(
    "destroy_if_tagged",
    """
local present, version, tag = stored(KEYS[1])
if version and tag == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
""",
)

#: A whole tag query in one step, on a standalone or Sentinel-managed server
#: (never on Cluster: it reads the members' keys, which it cannot declare).
#: KEYS[1] the tag set; ARGV[1] the session key prefix; ARGV[2] the tag;
#: ARGV[3] 'list' or 'destroy'; ARGV[4] the session id to keep ('' = none).
#: Members whose record is gone or carries another tag are removed from the set.
#: 'list' returns {id, record, PTTL, id, record, PTTL, ...};
#: 'destroy' deletes every tagged member but the kept one and returns the count.
TAG_QUERY = Script(
    "tag_query",
    """
local members = redis.call('SMEMBERS', KEYS[1])
local listing = ARGV[3] == 'list'
local out, drop = {}, {}
local destroyed = 0
for _, id in ipairs(members) do
  local key = ARGV[1] .. id
  local rec = redis.pcall('GET', key)
  local version, tag = header(rec)
  if not version or tag ~= ARGV[2] then
    drop[#drop + 1] = id
  elseif listing then
    out[#out + 1] = id
    out[#out + 1] = rec
    out[#out + 1] = redis.call('PTTL', key)
  elseif id ~= ARGV[4] then
    redis.call('DEL', key)
    drop[#drop + 1] = id
    destroyed = destroyed + 1
  end
end
for i = 1, #drop, 1000 do
  redis.call('SREM', KEYS[1], unpack(drop, i, math.min(i + 999, #drop)))
end
if listing then return out end
return destroyed
""",
)
