"""Advisory locks on session files, and the atomic exchange of two paths.

Writers rewrite a session's *spare* file in place and then swap it with the
session file (``renameat2(RENAME_EXCHANGE)``), so a write costs no new inode.
An inode is therefore rewritten later, when it has become the spare again;
``flock`` keeps that rewrite away from a reader still holding the inode open
(readers take a shared lock, writers an exclusive one), and the exclusive lock
on the spare is also what serialises the writes of one session (see
:mod:`.files`). Locks are waited for with a deadline, so a stopped process can
never hang a request for good.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import time
from collections.abc import Callable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK_TIMEOUT",
    "exchange",
    "lock_exclusive",
    "lock_shared",
    "locking",
    "try_lock_exclusive",
]

#: Longest a request waits for another process's write of the same session.
LOCK_TIMEOUT = 2.0
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2

#: True where advisory locks exist (every POSIX system).
locking = fcntl is not None


def _wait(fd: int, operation: int, path: str) -> None:
    assert fcntl is not None
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    deadline = time.monotonic() + LOCK_TIMEOUT
    pause = 0.00005
    while True:
        time.sleep(pause)
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    errno.ETIMEDOUT,
                    f"another process held the lock for more than {LOCK_TIMEOUT:g}s",
                    path,
                ) from None
        pause = min(pause * 2, 0.005)


def lock_shared(fd: int, path: str) -> None:
    """Take a shared lock on ``fd`` (no-op without fcntl)."""
    if fcntl is not None:
        _wait(fd, fcntl.LOCK_SH, path)


def lock_exclusive(fd: int, path: str) -> None:
    """Take an exclusive lock on ``fd`` (no-op without fcntl)."""
    if fcntl is not None:
        _wait(fd, fcntl.LOCK_EX, path)


def try_lock_exclusive(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` if nobody holds one; never wait."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
    return True


def _load_exchange() -> Callable[[str, str], None] | None:
    if not sys.platform.startswith("linux") or fcntl is None:
        return None
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None  # a C library without renameat2 (glibc < 2.28)
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes.append(ctypes.c_uint)
    renameat2.restype = ctypes.c_int

    def swap(one: str, other: str) -> None:
        result = renameat2(
            _AT_FDCWD, os.fsencode(one), _AT_FDCWD, os.fsencode(other), _RENAME_EXCHANGE
        )
        if result != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), one, None, other)

    return swap


#: ``exchange(a, b)`` swaps two paths atomically; None where the system has no way to.
exchange = _load_exchange()
