"""File operations on one session file: read, atomic write, touch, remove.

A write never changes what a reader of the session file sees half-way:

* where the system can swap two paths atomically (Linux ``renameat2``), the
  new content is written into the session's *spare* file under an exclusive
  lock and the spare is swapped with the session file; the old inode becomes
  the next spare. No inode is created or freed per write, which on many file
  systems is most of a write's cost.
* elsewhere (or on a file system that refuses the swap), the content goes to a
  fresh temporary file in the same directory, renamed over the session file.

Readers hold a shared lock while they read and check that the inode they hold
is still the session file, so a spare being refilled is never read.
Expiry is the file's modification time plus the session age.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time

from . import locks
from .layout import DIR_MODE, FILE_MODE, TEMP_SUFFIX

__all__ = ["Unreadable", "read_live", "remove", "touch_live", "write_atomic", "write_swapped"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO someone left at a session path must not hang a request.
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0)
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
_SPARE_FLAGS = os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC
_TOUCH_BY_FD = os.utime in os.supports_fd
# errno values that mean "this entry cannot be read as a session", not "the disk is broken".
_UNREADABLE = {errno.EACCES, errno.EPERM, errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENOTDIR}
# The file system cannot swap paths: fall back to temporary files.
_NO_SWAP = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}
# Rounds of "the inode moved under us" before giving up; each needs a concurrent write.
_ATTEMPTS = 16


class Unreadable(Exception):
    """The entry at a session path exists but is not a readable session file."""


class SwapUnsupported(Exception):
    """The file system refused to swap two paths; use :func:`write_atomic`."""


def _expired(mtime: float, age: int, now: float) -> bool:
    return mtime + age <= now


def _same(one: os.stat_result, other: os.stat_result) -> bool:
    return one.st_ino == other.st_ino and one.st_dev == other.st_dev


def read_live(path: str, age: int, touch: bool) -> bytes | None:
    """Bytes of the live session file at ``path``; None when missing or expired.

    An expired file is removed. With ``touch``, a live file's modification time
    is reset through the open descriptor (no second path lookup).
    Raises :class:`Unreadable` for something that is not a readable regular
    file, and OSError for failures of the disk itself.
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
                        continue
                except FileNotFoundError:
                    return None
            info = os.fstat(fd)  # size and mtime as of the lock
            if _expired(info.st_mtime, age, time.time()):
                _remove_same(path, info)
                return None
            data = _read_exactly(fd, info.st_size)
            if touch:
                if _TOUCH_BY_FD:
                    os.utime(fd)
                else:  # pragma: no cover - platforms without futimens
                    os.utime(path)
            return data
        finally:
            os.close(fd)
    raise AssertionError("unreachable: the last attempt always returns")  # pragma: no cover


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


def _remove_same(path: str, opened: os.stat_result) -> None:
    """Unlink ``path`` only if it is still the inode that was found expired.

    A concurrent write may have put a fresh file in place meanwhile.
    """
    try:
        if _same(os.lstat(path), opened):
            os.unlink(path)
    except FileNotFoundError:
        pass


def _write_all(fd: int, data: bytes, offset: int = 0) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def write_swapped(directory: str, path: str, spare: str, data: bytes, fsync: bool) -> None:
    """Replace the session file at ``path`` with ``data`` by refilling and
    swapping in its spare file.

    Raises :class:`SwapUnsupported` when the file system cannot swap paths.
    """
    exchange = locks.exchange
    if exchange is None:
        raise SwapUnsupported(path)
    for _ in range(_ATTEMPTS):
        try:
            fd = os.open(spare, _SPARE_FLAGS, FILE_MODE)
        except FileNotFoundError:
            make_directories(directory)
            continue
        try:
            locks.lock_exclusive(fd, spare)
            info = os.fstat(fd)
            try:
                if not _same(info, os.lstat(spare)):
                    continue  # swapped in by another writer while we waited
            except FileNotFoundError:
                continue  # removed by destroy or gc while we waited
            _write_all(fd, data)
            if info.st_size > len(data):
                os.ftruncate(fd, len(data))
            if fsync:
                os.fsync(fd)
            try:
                exchange(spare, path)
            except FileNotFoundError:
                # No session file yet (or the spare just went): move instead of swap.
                try:
                    os.rename(spare, path)
                except FileNotFoundError:
                    continue
            except OSError as exc:
                if exc.errno in _NO_SWAP:
                    raise SwapUnsupported(path) from exc
                raise
        finally:
            os.close(fd)
        if fsync:
            _fsync_directory(directory)
        return
    raise OSError(errno.EAGAIN, f"the spare file kept changing over {_ATTEMPTS} attempts", spare)


def write_atomic(directory: str, path: str, session_id: str, data: bytes, fsync: bool) -> None:
    """Replace the file at ``path`` with ``data`` through a fresh temporary file.

    With ``fsync``, the data and then the directory entry are flushed to the
    device before returning, so the write survives a power loss.
    """
    temp = os.path.join(directory, f".{session_id}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    try:
        fd = os.open(temp, _TEMP_FLAGS, FILE_MODE)
    except FileNotFoundError:
        make_directories(directory)
        fd = os.open(temp, _TEMP_FLAGS, FILE_MODE)
    try:
        try:
            _write_all(fd, data)
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


def make_directories(directory: str) -> None:
    """Create ``directory`` and missing parents, each with mode 0700.

    ``os.makedirs`` gives intermediate directories the umask's mode, not ours.
    """
    parent = os.path.dirname(directory)
    if parent != directory and not os.path.isdir(parent):
        make_directories(parent)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, DIR_MODE)


def touch_live(path: str, age: int) -> None:
    """Reset the modification time of a live session file; no-op if missing or expired."""
    try:
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode) and not _expired(info.st_mtime, age, time.time()):
            os.utime(path, follow_symlinks=False)
    except FileNotFoundError:
        pass


def remove(path: str) -> None:
    """Remove the file at ``path``; a missing file is not an error."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
