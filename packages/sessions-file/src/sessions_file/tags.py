"""The tag index on disk: which sessions carry a tag.

Under ``<location>/.tags/`` each tag has a directory named by its digest
(base64url SHA-256 of the tag, so any tag is a safe name and a user id is not
readable from the listing), two shard levels deep like the sessions, holding
one empty *marker* file per member, named by the session's storage key::

    .tags/q/3/q3kV...43 characters/<storage key>

Creating or removing a marker is one atomic directory operation. The index
only says where to look: a marker is added before a record carrying the tag is
put in place and removed after the record stops carrying it, both under the
session's write lock, so every live tagged session has its marker. A marker
left behind (a crashed write) is pruned, under the same lock, when the tag is
listed. ``.tags`` is not a shard name, so the session garbage collector never
walks it.
"""

from __future__ import annotations

import base64
import contextlib
import os

from sessions.keys import is_storage_key

from .layout import FILE_MODE, make_directories

__all__ = ["TAGS_DIRECTORY", "add", "directory", "discard", "members"]

TAGS_DIRECTORY = ".tags"
_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def directory(root: str, digest: bytes) -> str:
    """The member directory of the tag with ``digest`` under the index ``root``."""
    name = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return os.path.join(root, name[0], name[1], name)


def add(root: str, digest: bytes, session_id: str, fsync: bool = False) -> None:
    """Make ``session_id`` a member of the tag (an existing marker is fine)."""
    where = directory(root, digest)
    marker = os.path.join(where, session_id)
    for _ in range(8):
        try:
            fd = os.open(marker, _FLAGS, FILE_MODE)
        except FileNotFoundError:
            # A new tag, or its empty directory was just removed: make it again.
            make_directories(where)
            continue
        os.close(fd)
        if fsync:
            dir_fd = os.open(where, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return
    raise FileNotFoundError(f"the tag directory {where} kept disappearing")


def discard(root: str, digest: bytes, session_id: str) -> None:
    """Remove ``session_id`` from the tag; the tag's directory goes with its last member."""
    where = directory(root, digest)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(where, session_id))
    # Fails (not empty) while the tag has members; a marker being added
    # meanwhile makes the directory again.
    with contextlib.suppress(OSError):
        os.rmdir(where)


def members(root: str, digest: bytes) -> list[str]:
    """The session ids with a marker in the tag's directory."""
    try:
        names = os.listdir(directory(root, digest))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [name for name in names if is_storage_key(name)]
