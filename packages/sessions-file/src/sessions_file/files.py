"""File operations on one session: locked reads, guarded writes, removal.

Locks (``flock``, waited for with a deadline, see :mod:`.locks`):

* A session's **write lock** is an exclusive lock on the inode at its spare
  path (``.<key>.spare``), created when missing and checked, once locked, to
  still be there. Every change to the names ``<key>`` and ``.<key>.spare``
  by a write or a destroy happens under it, so the writes of one session are
  serialised and a compare-and-set of the version is one atomic step across
  threads and processes.
* **Readers** hold a shared lock on the session file while they read and
  refresh it, and check that the inode they hold is still the session file.
* A **writer** also holds a shared lock on the session file from reading its
  header to putting the new record in place. **Removing an expired file**
  takes an exclusive lock on it without waiting, checks again that it is the
  session file and expired, and only then unlinks it. So a file is never
  removed while a request reads, refreshes or replaces it, and no write can
  slip in between the check and the removal.

A write never changes what a reader sees half-way: where the system can swap
two paths (Linux ``renameat2``), the new record is written into the spare
inode (the one the write lock holds) and swapped with the session file, and
the old inode becomes the next spare, so no inode is created or freed per
write; elsewhere, or on a file system that refuses the swap, the record goes
to a fresh temporary file renamed over the session file.

Expiry is the file's modification time (see :mod:`.header`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
from typing import NamedTuple

from . import locks, tags
from .header import HEADER_SIZE, NO_TAG, Header, parse
from .layout import FILE_MODE, TEMP_SUFFIX, make_directories

__all__ = [
    "Stored",
    "Unreadable",
    "Writer",
    "read_live",
    "remove_expired",
    "remove_spare",
    "touch_live",
    "write_lock",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO someone left at a session path must not hang a request.
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0)
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
_SPARE_FLAGS = os.O_RDWR | _NOFOLLOW | _CLOEXEC
_TOUCH_BY_FD = os.utime in os.supports_fd
# errno values that mean "this entry cannot be read as a session", not "the disk is broken".
_UNREADABLE = {errno.EACCES, errno.EPERM, errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENOTDIR}
# The file system cannot swap paths: fall back to temporary files.
_NO_SWAP = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}
# Rounds of "the inode moved under us" before giving up; each needs a concurrent change.
_ATTEMPTS = 16
_NS = 1_000_000_000


class Unreadable(Exception):
    """The entry at a session path exists but is not a readable session file."""


class Stored(NamedTuple):
    """A live record as read."""

    header: Header
    #: The whole file (header included).
    data: bytes
    #: When it expires, epoch nanoseconds (after the read's refresh, if any).
    expires_ns: int


def _same(one: os.stat_result, other: os.stat_result) -> bool:
    return one.st_ino == other.st_ino and one.st_dev == other.st_dev


def _set_times(fd: int, path: str, atime_ns: int, mtime_ns: int) -> None:
    if _TOUCH_BY_FD:
        os.utime(fd, ns=(atime_ns, mtime_ns))
    else:  # pragma: no cover - platforms without futimens
        os.utime(path, ns=(atime_ns, mtime_ns), follow_symlinks=False)


def _refreshed(fd: int, path: str, header: Header, now: int) -> int:
    """Restart the life of the record open at ``fd``; return its new expiry."""
    if header.legacy:
        # The previous release's files expire age after their mtime.
        _set_times(fd, path, now, now)
        return header.expires_ns(now)
    expires = now + header.age * _NS
    _set_times(fd, path, now, expires)
    return expires


def _open_shared(path: str) -> tuple[int, os.stat_result] | None:
    """Open the session file with a shared lock; None when missing.

    Returns the descriptor (the caller closes it) and its status as of the lock.
    Raises :class:`Unreadable` for something that is not a readable regular file.
    """
    for attempt in range(_ATTEMPTS):
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in _UNREADABLE:
                raise Unreadable(f"{path}: {exc.strerror}") from exc
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise Unreadable(f"{path}: not a regular file")
            locks.lock_shared(fd, path)
            if attempt < _ATTEMPTS - 1:
                # Swapped out between open and lock: this inode is now a spare.
                try:
                    if not _same(info, os.lstat(path)):
                        os.close(fd)
                        continue
                except FileNotFoundError:
                    os.close(fd)
                    return None
            return fd, os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
    raise AssertionError("unreachable: the last attempt always returns")  # pragma: no cover


def read_live(
    path: str, default_age: int, touch: bool, tag_root: str | None = None
) -> Stored | None:
    """The live record at ``path``; None when missing or expired.

    An expired file is removed (with its tag marker under ``tag_root``). With
    ``touch``, a live record's expiry restarts through the open descriptor (no
    second path lookup). Raises :class:`Unreadable` for something that is not
    a session file, and OSError for failures of the disk itself.
    """
    opened = _open_shared(path)
    if opened is None:
        return None
    fd, info = opened
    expired = False
    try:
        data = _read_exactly(fd, info.st_size)
        header = parse(data, default_age)
        if header is None:
            raise Unreadable(f"{path}: not a session file")
        now = time.time_ns()
        expires = header.expires_ns(info.st_mtime_ns)
        if expires <= now:
            expired = True
            return None
        if touch:
            expires = _refreshed(fd, path, header, now)
        return Stored(header, data, expires)
    finally:
        os.close(fd)
        if expired:
            remove_expired(path, default_age, tag_root)


def touch_live(path: str, default_age: int) -> None:
    """Restart the life of a live record; no-op if missing, expired or unreadable."""
    try:
        opened = _open_shared(path)
    except Unreadable:
        return
    if opened is None:
        return
    fd, info = opened
    try:
        header = parse(os.pread(fd, HEADER_SIZE, 0), default_age)
        now = time.time_ns()
        if header is not None and header.expires_ns(info.st_mtime_ns) > now:
            _refreshed(fd, path, header, now)
    finally:
        os.close(fd)


def _read_exactly(fd: int, size: int) -> bytes:
    data = os.pread(fd, size, 0)
    if len(data) == size:
        return data
    chunks = [data]
    got = len(data)
    while got < size:
        chunk = os.pread(fd, size - got, got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# -- removal of expired files (reads and garbage collection) -------------------------


def remove_expired(path: str, default_age: int, tag_root: str | None = None) -> int | None:
    """Remove the session file at ``path`` if it is expired and nobody is using it.

    Returns the bytes freed, or None when it was kept (live, busy, or gone).
    The record's tag marker under ``tag_root`` goes first, while the file is
    still locked, so a write that recreates the session re-adds its marker.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _UNREADABLE:
            return _remove_stray(path, default_age)
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _remove_stray(path, default_age)
        # Busy: a request is reading or replacing it, so it is not for removal now.
        if not locks.try_lock_exclusive(fd):
            return None
        try:
            if not _same(info, os.lstat(path)):
                return None  # replaced by a write since it was opened
        except FileNotFoundError:
            return None
        info = os.fstat(fd)
        header = parse(os.pread(fd, HEADER_SIZE, 0), default_age)
        # Something unreadable under a session's name goes as the previous release's files did.
        rule = header or Header(0, default_age, NO_TAG, legacy=True)
        if rule.expires_ns(info.st_mtime_ns) > time.time_ns():
            return None
        if tag_root is not None and header is not None and header.tag != NO_TAG:
            tags.discard(tag_root, header.tag, os.path.basename(path))
        os.unlink(path)
        return info.st_size
    finally:
        os.close(fd)


def _remove_stray(path: str, default_age: int) -> int | None:
    """Remove something that is not a regular file under one of our names, once old."""
    try:
        info = os.lstat(path)
        if info.st_mtime_ns + default_age * _NS > time.time_ns():
            return None
        os.unlink(path)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None
    except OSError as exc:
        if exc.errno in (errno.EISDIR, errno.EPERM):
            return None  # a directory: never ours to remove
        raise
    return info.st_size


def remove_spare(spare: str, older_than_ns: int | None = None) -> int | None:
    """Remove a spare file under its write lock (never waiting for it).

    With ``older_than_ns``, only a spare last modified before then. Returns
    the bytes freed, or None when it was kept.
    """
    try:
        fd = os.open(spare, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _UNREADABLE:
            return None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not locks.try_lock_exclusive(fd):
            return None
        try:
            if not _same(info, os.lstat(spare)):
                return None
        except FileNotFoundError:
            return None
        info = os.fstat(fd)
        if older_than_ns is not None and info.st_mtime_ns > older_than_ns:
            return None
        os.unlink(spare)
        return info.st_size
    finally:
        os.close(fd)


# -- writes --------------------------------------------------------------------------


class Writer:
    """A session's write lock, held; what it guards, and the ways to change it.

    ``header`` is the record in place (expired or not; None when there is
    none or it is unreadable) and ``live`` whether it is still live: both
    stay true until the lock is released.
    """

    __slots__ = (
        "_directory",
        "_file",
        "_made",
        "_path",
        "_spare",
        "_spare_fd",
        "_spare_size",
        "changed",
        "header",
        "live",
        "swap_refused",
    )

    def __init__(
        self, directory: str, path: str, spare: str, spare_fd: int, spare_size: int, made: bool
    ) -> None:
        self._directory = directory
        self._path = path
        self._spare = spare
        self._spare_fd = spare_fd
        self._spare_size = spare_size
        self._made = made
        self._file: int | None = None
        self.header: Header | None = None
        self.live = False
        self.changed = False
        #: The file system refused to swap: the write went through a temporary file.
        self.swap_refused = False

    def _load(self, default_age: int) -> None:
        path = self._path
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno in _UNREADABLE:
                return  # not a session file: written over (or the write fails naming it)
            raise
        try:
            locks.lock_shared(fd, path)
            info = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        if info.st_nlink == 0 or not stat.S_ISREG(info.st_mode):
            # Not a session file; or removed as expired between the open and the
            # lock, and nothing but a holder of this write lock puts a file at
            # the path, so it stays absent.
            os.close(fd)
            return
        self._file = fd
        self.header = parse(os.pread(fd, HEADER_SIZE, 0), default_age)
        if self.header is not None:
            self.live = self.header.expires_ns(info.st_mtime_ns) > time.time_ns()

    def replace(self, record: bytes, expires_ns: int, *, swap: bool, fsync: bool) -> None:
        """Put ``record`` in place of the session file, expiring at ``expires_ns``."""
        self.changed = True
        now = time.time_ns()
        if swap:
            fd = self._spare_fd
            _write_all(fd, record)
            if self._spare_size > len(record):
                os.ftruncate(fd, len(record))
            self._spare_size = len(record)
            _set_times(fd, self._spare, now, expires_ns)
            if fsync:
                os.fsync(fd)
            try:
                if self._file is None or locks.exchange is None:
                    os.rename(self._spare, self._path)
                else:
                    locks.exchange(self._spare, self._path)
            except OSError as exc:
                if exc.errno not in _NO_SWAP:
                    raise
                self.swap_refused = True
            else:
                if fsync:
                    _fsync_directory(self._directory)
                return
        _write_temporary(self._directory, self._path, record, now, expires_ns, fsync)

    def remove(self) -> None:
        """Remove the session file and its spare."""
        self.changed = True
        for path in (self._path, self._spare):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def _close(self) -> None:
        if self._file is not None:
            os.close(self._file)
        if self._made and not self.changed:
            # An empty spare made only to hold the lock (a refused or read-only
            # look): the next write makes one again if it needs it.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._spare)
        os.close(self._spare_fd)


def _lock_spare(directory: str, spare: str, create: bool) -> tuple[int, int, bool] | None:
    """Open (creating if needed) and lock the spare: its descriptor, its size and
    whether it was made now; None when ``directory`` is missing and ``create`` is false."""
    for _ in range(_ATTEMPTS):
        made = False
        try:
            fd = os.open(spare, _SPARE_FLAGS)
        except FileNotFoundError:
            try:
                fd = os.open(spare, _SPARE_FLAGS | os.O_CREAT | os.O_EXCL, FILE_MODE)
                made = True
            except FileExistsError:
                continue
            except FileNotFoundError:
                if not create:
                    return None
                make_directories(directory)
                continue
        try:
            locks.lock_exclusive(fd, spare)
            info = os.fstat(fd)
            if _same(info, os.lstat(spare)):
                return fd, info.st_size, made
        except FileNotFoundError:
            pass  # removed (destroy, gc) while we waited: lock the one there now
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise OSError(errno.EAGAIN, f"the spare file kept changing over {_ATTEMPTS} attempts", spare)


class write_lock:  # lower case: it reads as a function, ``with write_lock(...) as held``
    """Hold the write lock of the session at ``path`` and read the header of its record.

    Gives None (and locks nothing) when ``directory`` does not exist and
    ``create`` is false: there is no session there.
    """

    __slots__ = ("_args", "_writer")

    def __init__(
        self, directory: str, path: str, spare: str, default_age: int, *, create: bool = True
    ) -> None:
        self._args = (directory, path, spare, default_age, create)
        self._writer: Writer | None = None

    def __enter__(self) -> Writer | None:
        directory, path, spare, default_age, create = self._args
        locked = _lock_spare(directory, spare, create)
        if locked is None:
            return None
        writer = self._writer = Writer(directory, path, spare, *locked)
        try:
            writer._load(default_age)
        except BaseException:
            writer._close()
            raise
        return writer

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer._close()


def _write_all(fd: int, data: bytes, offset: int = 0) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _write_temporary(
    directory: str, path: str, data: bytes, now_ns: int, expires_ns: int, fsync: bool
) -> None:
    """Replace the file at ``path`` with ``data`` through a fresh temporary file.

    With ``fsync``, the data and then the directory entry are flushed to the
    device before returning, so the write survives a power loss.
    """
    name = os.path.basename(path)
    temp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    try:
        fd = os.open(temp, _TEMP_FLAGS, FILE_MODE)
    except FileNotFoundError:
        make_directories(directory)
        fd = os.open(temp, _TEMP_FLAGS, FILE_MODE)
    try:
        try:
            _write_all(fd, data)
            _set_times(fd, temp, now_ns, expires_ns)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    if fsync:
        _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
