"""The ``dbm`` session driver: sessions in a local key-value file.

Each record is an 8-byte expiry time (big-endian float, seconds since the
epoch) followed by the session values in the sessions codec (tagged JSON), so
expired records are recognised without decoding them and the values come
back with the types they were stored with.

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
from sessions.driver import GcProgress, GcResult

__all__ = ["DbmDriver"]

_EXPIRY = struct.Struct(">d")
_BACKENDS = ("auto", "gnu", "ndbm", "dumb")


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
    last write or touch. Sync methods only: core runs them in a worker thread
    for async applications."""

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

    def read(self, session_id: str) -> dict[str, Any] | None:
        """Values of a live session, or None if missing, expired or unreadable."""
        key = session_id.encode()
        with self._lock:
            raw = self._db.get(key)
            if raw is None:
                return None
            if self._expired(raw, time.time()):
                del self._db[key]
                return None
        try:
            return decode(raw[_EXPIRY.size :])
        except DecodeError:
            self.config.notify_decode_failed("store", f"undecodable dbm record {session_id}")
            return None

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Store the whole session dict for ``age`` seconds."""
        record = _EXPIRY.pack(time.time() + self.config.age) + encode(values)
        with self._lock:
            self._db[session_id.encode()] = record

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
                self._db[key] = _EXPIRY.pack(now + self.config.age) + raw[_EXPIRY.size :]

    def gc(self, progress: GcProgress | None = None) -> GcResult:
        """Remove expired (and malformed) records; the ``gc`` capability."""
        started = time.monotonic()
        now = time.time()
        with self._lock:
            keys = list(self._db.keys())
        removed = freed = 0
        for scanned, key in enumerate(keys, start=1):
            # One key per lock hold, so requests are not blocked for the whole scan.
            with self._lock:
                raw = self._db.get(key)
                if raw is not None and self._expired(raw, now):
                    del self._db[key]
                    removed += 1
                    freed += len(raw)
            if progress is not None and (scanned % 100 == 0 or scanned == len(keys)):
                progress(scanned, len(keys))
        if progress is not None and not keys:
            progress(0, 0)
        return GcResult(len(keys), removed, freed, time.monotonic() - started)

    def store_raw(self, session_id: str, record: bytes) -> None:
        """Store ``record`` as is (tests use it to plant unreadable data)."""
        with self._lock:
            self._db[session_id.encode()] = record

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()
