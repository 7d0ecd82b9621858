"""The ``dbm`` session driver: sessions in a local key-value file.

Each record is an 8-byte expiry time (big-endian float, seconds since the
epoch), the byte ``v`` and an 8-byte version, then the session values in the
sessions codec (tagged JSON), so expired records are recognised without
decoding them and the values come back with the types they were stored with.
Records written by the previous release have no version (the values follow the
expiry directly); they read as version 0, so an upgrade logs nobody out.

The driver is *versioned*: ``write_versioned`` is a compare-and-set on the
version, done under the same lock as every other access to the database, so
core can merge overlapping requests instead of letting the last one win.

It supports *tagging* (a user's sessions): every write of a tagged session
adds its id to an index record under the reserved key ``tag:<tag>`` (session
ids are storage keys, which never contain ``:``). The index only says where
to look: listing reads each member and drops those no longer live with that
tag, so it is never wrong, only sometimes longer than it needs to be.

dbm files are not safe to share between processes, so this driver suits
single-process applications (a development server, a desktop app, a small
service); use the file, SQL or Redis drivers for several workers.
"""

from __future__ import annotations

import contextlib
import dbm
import importlib
import struct
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from sessions import ConfigError, DecodeError, Driver, DriverConfig, Option
from sessions.codec import decode, encode
from sessions.driver import GcProgress, GcResult, Record, StoredSession
from sessions.record import store_age, tag_of

__all__ = ["DbmDriver"]

_EXPIRY = struct.Struct(">d")
# expiry, b"v", version: the header of a record.
_HEADER = struct.Struct(">dcQ")
# The index of a tag lives under b"tag:" + the tag: the member ids, one per line.
_TAG_PREFIX = b"tag:"
_BACKENDS = ("auto", "gnu", "ndbm", "dumb")


def _index_key(tag: str) -> bytes:
    """Where the index of ``tag`` lives (any str is a tag, even a lone surrogate)."""
    return _TAG_PREFIX + tag.encode("utf-8", "surrogatepass")


def _open_module(driver: str, backend: str) -> Any:
    """The dbm module for ``backend``; a ConfigError naming those this Python has."""
    if backend == "auto":
        return dbm
    try:
        return importlib.import_module(f"dbm.{backend}")
    except ImportError:
        available = [name for name in _BACKENDS[1:] if _has(name)]
        raise ConfigError(
            f"drivers.{driver}.backend",
            backend,
            f"a dbm backend this Python has: auto, {', '.join(available)}",
        ) from None


def _has(backend: str) -> bool:
    try:
        importlib.import_module(f"dbm.{backend}")
    except ImportError:
        return False
    return True


class DbmDriver(Driver):
    """Sessions in a :mod:`dbm` database file, expiring ``age`` seconds after the
    last write or touch. Versioned (conflict-free commits) and tagging (a user's
    sessions). Sync methods only: core runs them in a worker thread for async
    applications."""

    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "path",
            Path,
            Path("sessions.dbm"),
            "database file (the dbm backend may add extensions); its directory is created",
        ),
        Option(
            "backend",
            str,
            "auto",
            "dbm implementation: auto (the best this Python has), gnu, ndbm or dumb",
            choices=_BACKENDS,
        ),
    )

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        self._path: Path = config.options["path"]
        module = _open_module(config.name, config.options["backend"])
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._db = module.open(str(self._path), "c", 0o600)
        except OSError as exc:
            raise ConfigError(
                f"drivers.{config.name}.path",
                str(self._path),
                f"a writable database file ({type(exc).__name__}: {exc})",
            ) from exc
        self._backend = dbm.whichdb(str(self._path)) or module.__name__
        # dbm handles are not thread-safe; requests run on several threads.
        self._lock = threading.Lock()

    def describe(self) -> str:
        """Where the sessions are stored."""
        return f"{self._backend} file {self._path}"

    def _expired(self, raw: bytes | None, now: float) -> bool:
        return raw is None or len(raw) < _EXPIRY.size or _EXPIRY.unpack_from(raw)[0] <= now

    def _live(self, key: bytes, now: float) -> bytes | None:
        """The live record under ``key`` (an expired one is deleted). Hold the lock."""
        raw: bytes | None = self._db.get(key)
        if raw is not None and self._expired(raw, now):
            del self._db[key]
            return None
        return raw

    @staticmethod
    def _version(raw: bytes) -> int:
        """A record's version; 0 for a record of the previous release (no version)."""
        if raw[_EXPIRY.size : _EXPIRY.size + 1] == b"v" and len(raw) >= _HEADER.size:
            return int(_HEADER.unpack_from(raw)[2])
        return 0

    @staticmethod
    def _payload(raw: bytes) -> bytes:
        if raw[_EXPIRY.size : _EXPIRY.size + 1] == b"v":
            return raw[_HEADER.size :]
        return raw[_EXPIRY.size :]

    def _store(self, session_id: str, values: dict[str, Any], version: int) -> None:
        """Write the record (and index its tag). Hold the lock."""
        # The session's own age (session.set_expiry) or the configured one.
        expires = time.time() + store_age(values, self.config.age)
        key = session_id.encode()
        self._db[key] = _HEADER.pack(expires, b"v", version) + encode(values)
        tag = tag_of(values)
        if tag is not None:
            members = self._members(tag)
            if key not in members:
                self._db[_index_key(tag)] = b"\n".join([*members, key])

    def _members(self, tag: str) -> list[bytes]:
        """The ids indexed under ``tag``. Hold the lock."""
        raw = self._db.get(_index_key(tag))
        return raw.split(b"\n") if raw else []

    def read(self, session_id: str) -> dict[str, Any] | None:
        """Values of a live session, or None if missing, expired or unreadable."""
        record = self.read_versioned(session_id)
        return None if record is None else record.values

    def read_versioned(self, session_id: str) -> Record | None:
        """Values and version of a live session, or None (the versioned capability)."""
        with self._lock:
            raw = self._live(session_id.encode(), time.time())
        if raw is None:
            return None
        try:
            return Record(decode(self._payload(raw)), self._version(raw))
        except DecodeError:
            self.config.notify_decode_failed("store", f"undecodable dbm record {session_id}")
            return None

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Store the whole session dict (last write wins); the version moves on."""
        key = session_id.encode()
        with self._lock:
            raw = self._live(key, time.time())
            self._store(session_id, values, 1 if raw is None else self._version(raw) + 1)

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        """Compare-and-set: store ``values`` (or, with ``{}``, delete the record) only
        if the live record still has ``version`` (None: only if there is none).

        The check and the write happen under one hold of the lock.
        """
        key = session_id.encode()
        with self._lock:
            raw = self._live(key, time.time())
            current = None if raw is None else self._version(raw)
            if current != version:
                return False
            if values:
                self._store(session_id, values, 1 if current is None else current + 1)
            elif raw is not None:
                del self._db[key]
            return True

    def destroy(self, session_id: str) -> None:
        """Remove the session; a missing one is not an error."""
        with self._lock, contextlib.suppress(KeyError):
            del self._db[session_id.encode()]

    def touch(self, session_id: str) -> None:
        """Restart the expiry of a live session; a missing one is not an error."""
        key = session_id.encode()
        now = time.time()
        with self._lock:
            raw = self._db.get(key)
            if raw is not None and not self._expired(raw, now):
                # Only the expiry changes; the version stays (the values did not change).
                self._db[key] = _EXPIRY.pack(now + self.config.age) + raw[_EXPIRY.size :]

    # -- tagging: a user's sessions -----------------------------------------------------

    def _stored(self, key: bytes, now: float) -> StoredSession | None:
        """The live session under ``key`` as the tagging capability reports it. Hold the lock."""
        raw = self._live(key, now)
        if raw is None:
            return None
        try:
            values = decode(self._payload(raw))
        except DecodeError:
            return None
        return StoredSession(key.decode(), values, _EXPIRY.unpack_from(raw)[0])

    def _tagged(self, tag: str, now: float) -> list[StoredSession]:
        """The live sessions carrying ``tag``; the index loses the others. Hold the lock."""
        found = []
        for key in self._members(tag):
            stored = self._stored(key, now)
            if stored is not None and tag_of(stored.values) == tag:
                found.append(stored)
        index = _index_key(tag)
        if found:
            self._db[index] = b"\n".join(stored.session_id.encode() for stored in found)
        elif index in self._db:
            del self._db[index]
        return found

    def tagged(self, tag: str) -> list[StoredSession]:
        """Every live session whose record carries ``tag``."""
        with self._lock:
            return self._tagged(tag, time.time())

    def peek(self, session_id: str) -> StoredSession | None:
        """A live session with its expiry; reading it does not refresh it."""
        with self._lock:
            return self._stored(session_id.encode(), time.time())

    def destroy_tagged(self, tag: str, keep: str | None = None) -> int:
        """Destroy every live session carrying ``tag`` but ``keep``; return how many."""
        with self._lock:
            doomed = [s for s in self._tagged(tag, time.time()) if s.session_id != keep]
            for stored in doomed:
                del self._db[stored.session_id.encode()]
            return len(doomed)

    def gc(self, progress: GcProgress | None = None) -> GcResult:
        """Remove expired (and malformed) records, and prune the tag indexes; the
        ``gc`` capability."""
        started = time.monotonic()
        now = time.time()
        with self._lock:
            keys = list(self._db.keys())
        indexes = [key for key in keys if key.startswith(_TAG_PREFIX)]
        sessions = [key for key in keys if not key.startswith(_TAG_PREFIX)]
        removed = freed = 0
        for scanned, key in enumerate(sessions, start=1):
            # One key per lock hold, so requests are not blocked for the whole scan.
            with self._lock:
                raw = self._db.get(key)
                if raw is not None and self._expired(raw, now):
                    del self._db[key]
                    removed += 1
                    freed += len(raw)
            if progress is not None and (scanned % 100 == 0 or scanned == len(sessions)):
                progress(scanned, len(sessions))
        if progress is not None and not sessions:
            progress(0, 0)
        for index in indexes:
            with self._lock:
                self._tagged(index[len(_TAG_PREFIX) :].decode("utf-8", "surrogatepass"), now)
        return GcResult(len(sessions), removed, freed, time.monotonic() - started)

    def store_raw(self, session_id: str, record: bytes) -> None:
        """Store ``record`` as is (tests use it to plant unreadable data)."""
        with self._lock:
            self._db[session_id.encode()] = record

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()
