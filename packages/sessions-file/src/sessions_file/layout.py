"""Where a session lives on disk: the location, its shard directories, file names.

This module is the only place a storage key becomes a path, and it refuses
anything that is not exactly a storage key (43 base64url characters), so no
cookie or caller can make the driver read or write outside ``location``.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from sessions.errors import ConfigError, SessionError
from sessions.keys import is_storage_key

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "MAX_SHARD_LEVELS",
    "InvalidSessionIdError",
    "Layout",
    "is_session_name",
    "is_spare_name",
    "is_temp_name",
    "prepare_location",
    "unsafe_ancestor",
]

FILE_MODE = 0o600
DIR_MODE = 0o700
MAX_SHARD_LEVELS = 3
TEMP_SUFFIX = ".tmp"
SPARE_SUFFIX = ".spare"
# ".<storage key>.<12 hex>.tmp": the leading dot keeps it out of the session namespace.
_TEMP_NAME = re.compile(r"\.[A-Za-z0-9_-]{43}\.[0-9a-f]{12}\.tmp")
# ".<storage key>.spare": the inode the next write of that session fills.
_SPARE_NAME = re.compile(r"\.[A-Za-z0-9_-]{43}\.spare")
_SHARD_NAME = re.compile(r"[A-Za-z0-9_-]")


class InvalidSessionIdError(SessionError, ValueError):
    """A session id that is not a storage key was given to the file driver."""

    def __init__(self, session_id: object) -> None:
        shown = repr(session_id)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        super().__init__(
            f"file driver refused session id {shown}: a session id must be a storage key "
            "(43 base64url characters, as sessions.keys.storage_key makes them); "
            "nothing else ever becomes a path"
        )


def is_session_name(name: str) -> bool:
    """True when a directory entry's name is a session file's name."""
    return is_storage_key(name)


def is_temp_name(name: str) -> bool:
    """True when a directory entry's name is one of our temporary files."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX) and bool(_TEMP_NAME.fullmatch(name))


def is_spare_name(name: str) -> bool:
    """True when a directory entry's name is a session's spare file."""
    return name.endswith(SPARE_SUFFIX) and bool(_SPARE_NAME.fullmatch(name))


def is_shard_name(name: str) -> bool:
    """True when a directory entry's name could be a shard directory."""
    return bool(_SHARD_NAME.fullmatch(name))


@dataclass(frozen=True)
class Layout:
    """Maps storage keys to files under ``root``, ``levels`` directories deep.

    Level ``i`` is named by character ``i`` of the key, so 2 levels give
    64 x 64 = 4096 leaf directories: a million sessions is about 250 per directory.
    """

    root: Path
    levels: int

    def directory(self, session_id: str) -> str:
        """The shard directory of ``session_id`` (which must be a storage key)."""
        if not is_storage_key(session_id):
            raise InvalidSessionIdError(session_id)
        if self.levels == 0:
            return str(self.root)
        return os.path.join(self.root, *session_id[: self.levels])

    def path(self, session_id: str) -> str:
        """The session file of ``session_id`` (which must be a storage key)."""
        return os.path.join(self.directory(session_id), session_id)

    def spare(self, session_id: str) -> str:
        """The spare file of ``session_id``, next to its session file."""
        return os.path.join(self.directory(session_id), f".{session_id}{SPARE_SUFFIX}")


def prepare_location(location: Path, option: str) -> Path:
    """Create ``location`` (0700) or check an existing one; return its absolute path.

    Refuses a directory another user owns or others may write to: they could
    plant or swap session files there. Refuses it too when a parent directory
    (of the path as given or of the one its symlinks lead to) lets others
    replace it: see :func:`unsafe_ancestor`.
    """
    root = location.expanduser().absolute()

    def refuse(problem: str) -> ConfigError:
        return ConfigError(
            option,
            str(location),
            f"{problem}; give a directory this user owns and only this user can write "
            "(it is created with mode 0700 when missing)",
        )

    try:
        if not root.exists():
            root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        info = root.stat()
    except OSError as exc:
        raise refuse(f"cannot create or open {root}: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(info.st_mode):
        raise refuse(f"{root} is not a directory")
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise refuse(f"{root} belongs to uid {info.st_uid}, not to this process's uid")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise refuse(
            f"{root} is writable by other users (mode {stat.filemode(info.st_mode)}; "
            f"chmod 700 {root} fixes it)"
        )
    if not os.access(root, os.W_OK | os.X_OK):
        raise refuse(f"{root} is not writable by this process")
    problem = unsafe_ancestor(root)
    if problem is not None:
        raise ConfigError(
            option,
            str(location),
            f"{problem}, so another user could move it aside and put their own directory "
            "(or a symlink) in its place; use a location whose parent directories only root "
            "or this user can write",
        )
    return root


def _open_to_others(mode: int) -> bool:
    """Group or world writable without the sticky bit (which /tmp has)."""
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH)) and not mode & stat.S_ISVTX


def unsafe_ancestor(root: Path) -> str | None:
    """Why a parent directory of ``root`` lets another user replace it, or None.

    Checks every parent as given and, when the path goes through symlinks,
    every parent of the path they lead to: no directory on either may be
    group- or world-writable without the sticky bit, and a symlink on the way
    may sit in a sticky directory only if root or this user owns it (anyone
    else may delete and re-point it).
    """
    me = os.geteuid() if hasattr(os, "geteuid") else None
    trusted = {0, me}
    chains = [root.parents]
    real = Path(os.path.realpath(root))
    if real != root:
        chains.append(real.parents)
    for chain in chains:
        for parent in reversed(chain):
            try:
                info = os.lstat(parent)
            except OSError as exc:
                return f"{parent} cannot be inspected ({exc.strerror or exc})"
            if stat.S_ISLNK(info.st_mode):
                holder = os.lstat(parent.parent).st_mode
                if holder & stat.S_ISVTX and me is not None and info.st_uid not in trusted:
                    return (
                        f"{parent} is a symlink owned by uid {info.st_uid} in the shared "
                        f"directory {parent.parent}"
                    )
                continue
            if _open_to_others(info.st_mode):
                who = "all users" if info.st_mode & stat.S_IWOTH else "its group"
                return (
                    f"its parent directory {parent} is writable by {who} without the "
                    f"sticky bit (mode {stat.filemode(info.st_mode)}; chmod go-w {parent}, "
                    "or chmod +t for a shared directory like /tmp)"
                )
    return None
