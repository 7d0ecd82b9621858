"""The ``file`` driver: one file per session under a private, sharded directory."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import anyio.to_thread
from sessions.codec import decode, encode
from sessions.driver import (
    Driver,
    DriverConfig,
    GcProgress,
    GcResult,
    Option,
    Record,
    StoredSession,
)
from sessions.errors import ConfigError, DecodeError, DriverError
from sessions.keys import is_storage_key
from sessions.record import store_age, tag_of

from . import files, header, locks, tags
from .gc import collect
from .layout import MAX_SHARD_LEVELS, SPARE_SUFFIX, Layout, prepare_location

__all__ = ["DEFAULT_LOCATION", "FileDriver"]

logger = logging.getLogger("sessions_file")

#: Relative to the working directory at startup, as a local app is usually run
#: from its project directory (add it to .gitignore).
DEFAULT_LOCATION = Path("tmp/sessions")
# The background collector sleeps this long between batches of 1000 files, so
# it never holds the interpreter long enough to delay a request noticeably.
_BACKGROUND_PAUSE = 0.001
# Removals in flight at once for an explicit gc(): unlink mostly waits on the
# journal. The background collector removes one at a time, to stay out of the way.
_GC_WORKERS = 8
_NS = 1_000_000_000


class FileDriver(Driver):
    """Sessions as files: atomic writes, expiry in the modification time.

    A write refills the session's spare file and swaps it in (Linux), or renames
    a fresh temporary file over the session file (elsewhere); either way readers
    see the old or the new session, never a mix. Every operation is plain file
    I/O; the async flavour runs it in a worker thread, never on the event loop.
    ``read`` also refreshes the expiry of a live session, so an unchanged
    session costs one file open per request.

    Versioned: each file carries a version, and a compare-and-set of it is one
    step under the session's write lock (a ``flock`` shared by every thread and
    process). Tagging: a tag index of marker files under ``.tags``. Each record
    lives its own age (``sessions.record.store_age``).
    """

    options: ClassVar[tuple[Option, ...]] = (
        Option(
            "location",
            Path,
            DEFAULT_LOCATION,
            "directory of the session files (relative: to the working directory at startup); "
            "created with mode 0700",
        ),
        Option(
            "shard_levels",
            int,
            2,
            "directory levels named by the first characters of the key (64 directories "
            "per level), so no directory holds too many files",
            choices=tuple(range(MAX_SHARD_LEVELS + 1)),
        ),
        Option(
            "fsync",
            bool,
            False,
            "flush every write to the device before answering, so it survives a power loss "
            "(costs a disk flush per write)",
        ),
        Option(
            "gc_probability",
            float,
            0.0,
            "chance (0 to 1) per session read or write of starting a background clean-up; "
            "0 turns it off (run `sessions gc` from cron instead)",
        ),
    )
    touches_on_read: ClassVar[bool] = True

    def __init__(self, config: DriverConfig) -> None:
        super().__init__(config)
        options = config.options
        prefix = f"drivers.{config.name}"
        probability = float(options.get("gc_probability") or 0.0)
        if not 0.0 <= probability <= 1.0:
            raise ConfigError(
                f"{prefix}.gc_probability",
                probability,
                "a probability from 0 (off) to 1 (every read or write), e.g. 0.01",
            )
        location = options.get("location") or DEFAULT_LOCATION
        levels = options.get("shard_levels")
        self.root = prepare_location(Path(location), f"{prefix}.location")
        self.layout = Layout(self.root, 2 if levels is None else int(levels))
        self.fsync = bool(options.get("fsync"))
        # Swap spare files in where the system can; learnt per file system at first write.
        self._swap = locks.exchange is not None
        self.gc_probability = probability
        self._age = config.age
        self._root = str(self.root)
        self._tags = os.path.join(self._root, tags.TAGS_DIRECTORY)
        self._stop = threading.Event()
        self._gc_lock = threading.Lock()
        self._gc_thread: threading.Thread | None = None
        #: The result of the last background clean-up, for monitoring.
        self.last_background_gc: GcResult | None = None

    def describe(self) -> str:
        """The sessions directory."""
        return self._root

    @contextmanager
    def _failure(self, operation: str, where: str) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise DriverError(self.config.name, operation, where, exc) from exc

    # -- the contract ----------------------------------------------------------------

    def _load(self, session_id: str, touch: bool) -> tuple[files.Stored, dict[str, Any]] | None:
        """The live record and its values; None if missing, expired, unreadable or
        not a storage key."""
        if not is_storage_key(session_id):
            return None
        path = self.layout.path(session_id)
        try:
            with self._failure("read", path):
                stored = files.read_live(path, self._age, touch, self._tags)
        except files.Unreadable as exc:
            self.config.notify_decode_failed("store", str(exc))
            return None
        if self.gc_probability:
            self._maybe_collect()
        if stored is None:
            return None
        try:
            return stored, decode(header.payload(stored.data, stored.header))
        except DecodeError as exc:
            self.config.notify_decode_failed("store", f"{path}: {exc}")
            return None

    def read(self, session_id: str, touch: bool = True) -> dict[str, Any] | None:
        """Values of a live session (and, with ``touch``, refresh its expiry); None
        if missing, expired, unreadable or not a storage key."""
        loaded = self._load(session_id, touch)
        return None if loaded is None else loaded[1]

    def read_versioned(self, session_id: str, touch: bool = True) -> Record | None:
        """:meth:`read` with the record's version (0 for a file of the previous release)."""
        loaded = self._load(session_id, touch)
        return None if loaded is None else Record(loaded[1], loaded[0].header.version)

    def write(self, session_id: str, values: dict[str, Any]) -> None:
        """Replace the session file atomically (last write wins); its expiry restarts
        and its version moves on.

        Raises :class:`~sessions_file.layout.InvalidSessionIdError` for an id
        that is not a storage key, before touching the disk.
        """
        self._store(session_id, values, None, conditional=False)

    def write_versioned(self, session_id: str, values: dict[str, Any], version: int | None) -> bool:
        """Compare-and-set: store ``values`` only if the live record still has
        ``version`` (None: only if there is no live record); ``{}`` removes it.

        The check and the write are one step under the session's write lock,
        for every thread and process. Returns False when the condition failed.
        """
        return self._store(session_id, values, version, conditional=True)

    def _store(
        self, session_id: str, values: dict[str, Any], version: int | None, conditional: bool
    ) -> bool:
        directory = self.layout.directory(session_id)
        path = os.path.join(directory, session_id)
        age = min(store_age(values, self._age), header.MAX_AGE)
        tag = header.tag_digest(tag_of(values))
        data = encode(values) if values or not conditional else b""
        spare = os.path.join(directory, f".{session_id}{SPARE_SUFFIX}")
        with (
            self._failure("write", path),
            files.write_lock(directory, path, spare, self._age) as held,
        ):
            assert held is not None  # created when missing
            old = held.header
            if conditional:
                current = old.version if old is not None and held.live else None
                if current != version:
                    return False
            old_tag = header.NO_TAG if old is None else old.tag
            if not data:
                held.remove()
            else:
                new = header.first(age, tag) if old is None else old.next(age, tag)
                if tag != old_tag and tag != header.NO_TAG:
                    # Before the record: a live tagged session always has its marker.
                    tags.add(self._tags, tag, session_id, self.fsync)
                now = time.time_ns()
                held.replace(new.pack() + data, now + age * _NS, swap=self._swap, fsync=self.fsync)
                if held.swap_refused:
                    logger.info("%s cannot swap files; writing through temporary files", directory)
                    self._swap = False
            if old_tag != header.NO_TAG and old_tag != (tag if data else header.NO_TAG):
                tags.discard(self._tags, old_tag, session_id)
        if self.gc_probability:
            self._maybe_collect()
        return True

    def destroy(self, session_id: str) -> None:
        """Remove the session file (and its spare); a missing one (or an invalid
        id) is not an error."""
        if not is_storage_key(session_id):
            return
        directory = self.layout.directory(session_id)
        path = os.path.join(directory, session_id)
        spare = os.path.join(directory, f".{session_id}{SPARE_SUFFIX}")
        with (
            self._failure("destroy", path),
            files.write_lock(directory, path, spare, self._age, create=False) as held,
        ):
            if held is None:
                return  # no directory, no session
            old = held.header
            held.remove()
            if old is not None and old.tag != header.NO_TAG:
                tags.discard(self._tags, old.tag, session_id)

    def touch(self, session_id: str) -> None:
        """Restart the expiry of a live session without rewriting it (an expired
        one stays expired)."""
        if is_storage_key(session_id):
            path = self.layout.path(session_id)
            with self._failure("touch", path):
                files.touch_live(path, self._age)

    async def aread(self, session_id: str, touch: bool = True) -> dict[str, Any] | None:
        """:meth:`read` in a worker thread."""
        return await anyio.to_thread.run_sync(self.read, session_id, touch)

    async def aread_versioned(self, session_id: str, touch: bool = True) -> Record | None:
        """:meth:`read_versioned` in a worker thread."""
        return await anyio.to_thread.run_sync(self.read_versioned, session_id, touch)

    async def awrite(self, session_id: str, values: dict[str, Any]) -> None:
        """:meth:`write` in a worker thread."""
        await anyio.to_thread.run_sync(self.write, session_id, values)

    async def awrite_versioned(
        self, session_id: str, values: dict[str, Any], version: int | None
    ) -> bool:
        """:meth:`write_versioned` in a worker thread."""
        return await anyio.to_thread.run_sync(self.write_versioned, session_id, values, version)

    async def adestroy(self, session_id: str) -> None:
        """:meth:`destroy` in a worker thread."""
        await anyio.to_thread.run_sync(self.destroy, session_id)

    async def atouch(self, session_id: str) -> None:
        """:meth:`touch` in a worker thread."""
        await anyio.to_thread.run_sync(self.touch, session_id)

    # -- tagging: a user's sessions -----------------------------------------------------

    def _paths(self, session_id: str) -> tuple[str, str, str]:
        directory = self.layout.directory(session_id)
        return (
            directory,
            os.path.join(directory, session_id),
            os.path.join(directory, f".{session_id}{SPARE_SUFFIX}"),
        )

    def peek(self, session_id: str) -> StoredSession | None:
        """The live session with its expiry, read without refreshing it."""
        loaded = self._load(session_id, touch=False)
        if loaded is None:
            return None
        stored, values = loaded
        return StoredSession(session_id, values, stored.expires_ns / _NS)

    def _locked(self, session_id: str) -> files.write_lock:
        directory, path, spare = self._paths(session_id)
        return files.write_lock(directory, path, spare, self._age)

    def tagged(self, tag: str) -> list[StoredSession]:
        """Every live session whose current record carries ``tag``; index entries
        found stale (expired, destroyed, re-tagged, untagged) are pruned."""
        digest = header.tag_digest(tag)
        found = []
        for session_id in tags.members(self._tags, digest):
            stored = self.peek(session_id)
            if stored is not None and tag_of(stored.values) == tag:
                found.append(stored)
                continue
            path = self.layout.path(session_id)
            with self._failure("list tag", path), self._locked(session_id) as held:
                # Checked again under the write lock: no write is adding the tag meanwhile.
                assert held is not None  # created when missing
                if not (held.live and held.header is not None and held.header.tag == digest):
                    tags.discard(self._tags, digest, session_id)
        return found

    def destroy_tagged(self, tag: str, keep: str | None = None) -> int:
        """Destroy every live session carrying ``tag`` but ``keep`` (a storage key);
        return how many."""
        digest = header.tag_digest(tag)
        destroyed = 0
        for session_id in tags.members(self._tags, digest):
            if session_id == keep:
                continue
            path = self.layout.path(session_id)
            with self._failure("destroy tagged", path), self._locked(session_id) as held:
                assert held is not None  # created when missing
                if held.live and held.header is not None and held.header.tag == digest:
                    held.remove()
                    destroyed += 1
                tags.discard(self._tags, digest, session_id)
        return destroyed

    async def atagged(self, tag: str) -> list[StoredSession]:
        """:meth:`tagged` in a worker thread."""
        return await anyio.to_thread.run_sync(self.tagged, tag)

    async def apeek(self, session_id: str) -> StoredSession | None:
        """:meth:`peek` in a worker thread."""
        return await anyio.to_thread.run_sync(self.peek, session_id)

    async def adestroy_tagged(self, tag: str, keep: str | None = None) -> int:
        """:meth:`destroy_tagged` in a worker thread."""
        return await anyio.to_thread.run_sync(self.destroy_tagged, tag, keep)

    # -- garbage collection ----------------------------------------------------------

    def gc(self, progress: GcProgress | None = None) -> GcResult:
        """Remove expired session files and stale temporary files.

        ``progress(scanned, total)`` is called after every batch of 1000 files;
        ``total`` is an estimate that firms up as shard directories are
        scanned (None at first) and exact in the last call.
        """
        with self._failure("collect garbage", self._root):
            return collect(self._root, self._age, progress=progress, workers=_GC_WORKERS)

    async def agc(self, progress: GcProgress | None = None) -> GcResult:
        """:meth:`gc` in a worker thread."""
        return await anyio.to_thread.run_sync(lambda: self.gc(progress))

    def _maybe_collect(self) -> None:
        if random.random() < self.gc_probability:
            self.start_background_gc()

    def start_background_gc(self) -> bool:
        """Start a clean-up in a background thread unless one is running.

        Returns True when one was started. The request that triggers it never
        waits for it.
        """
        with self._gc_lock:
            running = self._gc_thread is not None and self._gc_thread.is_alive()
            if running or self._stop.is_set():
                return False
            thread = threading.Thread(
                target=self._background_gc, name="sessions-file-gc", daemon=True
            )
            self._gc_thread = thread
            thread.start()
            return True

    def _background_gc(self) -> None:
        try:
            result = collect(self._root, self._age, stop=self._stop, pause=_BACKGROUND_PAUSE)
        except Exception:
            logger.exception("background session clean-up of %s failed", self._root)
            return
        self.last_background_gc = result
        logger.debug(
            "background session clean-up of %s: scanned %d, removed %d in %.3fs",
            self._root,
            result.scanned,
            result.removed,
            result.seconds,
        )

    def wait_for_background_gc(self, timeout: float | None = None) -> None:
        """Block until a running background clean-up has finished."""
        thread = self._gc_thread
        if thread is not None:
            thread.join(timeout)

    def close(self) -> None:
        """Stop a running background clean-up (after its current batch)."""
        self._stop.set()
        self.wait_for_background_gc(timeout=10)
