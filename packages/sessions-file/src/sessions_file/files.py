"""File operations on one session file: read, atomic write, touch, remove.

Writes go to a temporary file in the session's own directory and are renamed
over the old file, so a reader (in this process or any other) opens either the
old inode or the new one, never a partly written file. Expiry is the file's
modification time plus the session age.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time

from .layout import DIR_MODE, FILE_MODE, TEMP_SUFFIX

__all__ = ["Unreadable", "read_live", "remove", "touch_live", "write_atomic"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO someone left at a session path must not hang a request.
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0)
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
_TOUCH_BY_FD = os.utime in os.supports_fd
# errno values that mean "this entry cannot be read as a session", not "the disk is broken".
_UNREADABLE = {errno.EACCES, errno.EPERM, errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENOTDIR}


class Unreadable(Exception):
    """The entry at a session path exists but is not a readable session file."""


def _expired(mtime: float, age: int, now: float) -> bool:
    return mtime + age <= now


def read_live(path: str, age: int, touch: bool) -> bytes | None:
    """Bytes of the live session file at ``path``; None when missing or expired.

    An expired file is removed. With ``touch``, a live file's modification time
    is reset through the open descriptor (no second path lookup).
    Raises :class:`Unreadable` for something that is not a readable regular
    file, and OSError for failures of the disk itself.
    """
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
        now = time.time()
        if _expired(info.st_mtime, age, now):
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


def _read_exactly(fd: int, size: int) -> bytes:
    # The inode is never written again after its rename, so fstat's size is its size.
    data = os.read(fd, size)
    if len(data) == size:
        return data
    chunks = [data]
    got = len(data)
    while got < size:
        chunk = os.read(fd, size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _remove_same(path: str, opened: os.stat_result) -> None:
    """Unlink ``path`` only if it is still the inode that was found expired.

    A concurrent write may have renamed a fresh file into place meanwhile.
    """
    try:
        now = os.lstat(path)
        if (now.st_ino, now.st_dev) == (opened.st_ino, opened.st_dev):
            os.unlink(path)
    except FileNotFoundError:
        pass


def write_atomic(directory: str, path: str, session_id: str, data: bytes, fsync: bool) -> None:
    """Replace the file at ``path`` with ``data`` atomically.

    With ``fsync``, the data and then the directory entry are flushed to the
    device before returning, so the write survives a power loss.
    """
    temp = os.path.join(directory, f".{session_id}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    try:
        fd = os.open(temp, _WRITE_FLAGS, FILE_MODE)
    except FileNotFoundError:
        make_directories(directory)
        fd = os.open(temp, _WRITE_FLAGS, FILE_MODE)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
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
