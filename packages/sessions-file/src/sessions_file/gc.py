"""Garbage collection: remove expired session files, their spare files, and
stale temporary files.

Files are judged by their modification time alone (``lstat``), never opened.
A spare file is as old as its session's activity before the last write, so it
goes once that is past the session cutoff (removing a spare is always safe: the
next write of that session makes a new one).
The walk covers every shard depth up to :data:`~sessions_file.layout.MAX_SHARD_LEVELS`,
so sessions written under an earlier ``shard_levels`` setting are collected
too. Work is done in bounded batches: after each, progress is reported, a stop
request is honoured and (for the in-process collector) other threads get the CPU.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from sessions.driver import GcProgress, GcResult

from .layout import (
    MAX_SHARD_LEVELS,
    is_session_name,
    is_shard_name,
    is_spare_name,
    is_temp_name,
)

__all__ = ["GRACE_SECONDS", "STALE_TEMP_SECONDS", "collect"]

#: A session file is removed only once it has been expired this long. A request
#: that read its session just before expiry and touches or rewrites it a moment
#: later can therefore never lose it to a collector that looked in between.
GRACE_SECONDS = 60
#: A temporary file this old belongs to a write that died (process killed,
#: disk full); a live write renames its temporary file within milliseconds.
STALE_TEMP_SECONDS = 600


@dataclass
class _Walk:
    session_cutoff: float
    temp_cutoff: float
    progress: GcProgress | None
    stop: threading.Event | None
    batch: int
    pause: float
    scanned: int = 0
    removed: int = 0
    freed: int = 0
    estimate: int | None = None
    stopped: bool = False

    def entry(self, entry: os.DirEntry[str]) -> None:
        name = entry.name
        if is_session_name(name) or is_spare_name(name):
            cutoff = self.session_cutoff
        elif is_temp_name(name):
            cutoff = self.temp_cutoff
        else:
            return  # not ours: never touched
        self.scanned += 1
        try:
            info = entry.stat(follow_symlinks=False)
            if info.st_mtime <= cutoff:
                os.unlink(entry.path)
                self.removed += 1
                self.freed += info.st_size
        except FileNotFoundError:
            pass  # removed meanwhile by a request, a destroy or another collector
        if self.scanned % self.batch == 0:
            self.end_batch()

    def end_batch(self) -> None:
        if self.progress is not None:
            self.progress(self.scanned, self.estimate)
        if self.stop is not None and self.stop.is_set():
            self.stopped = True
        elif self.pause:
            time.sleep(self.pause)

    def directory(self, path: str, depth: int) -> list[str]:
        """Handle the files in ``path``; return its shard subdirectories."""
        subdirectories: list[str] = []
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if self.stopped:
                        break
                    if entry.is_dir(follow_symlinks=False):
                        if depth < MAX_SHARD_LEVELS and is_shard_name(entry.name):
                            subdirectories.append(entry.path)
                    else:
                        self.entry(entry)
        except FileNotFoundError:
            pass
        return subdirectories

    def tree(self, path: str, depth: int) -> None:
        for sub in self.directory(path, depth):
            if self.stopped:
                return
            self.tree(sub, depth + 1)


def collect(
    root: str,
    age: int,
    *,
    progress: GcProgress | None = None,
    stop: threading.Event | None = None,
    batch: int = 1000,
    pause: float = 0.0,
    now: float | None = None,
) -> GcResult:
    """Remove expired session files and stale temporary files under ``root``.

    ``progress(scanned, total)`` is called after every ``batch`` files and once
    at the end. ``total`` is None until the first top-level shard directory is
    done, then an estimate from the share of shard directories scanned (keys
    are uniformly spread), and exact in the last call. ``stop`` ends the walk
    after the current batch; ``pause`` sleeps between batches so a collector
    running inside a server leaves the CPU to requests.
    """
    started = time.monotonic()
    now = time.time() if now is None else now
    walk = _Walk(
        session_cutoff=now - age - GRACE_SECONDS,
        temp_cutoff=now - STALE_TEMP_SECONDS,
        progress=progress,
        stop=stop,
        batch=max(1, batch),
        pause=pause,
    )
    tops = walk.directory(root, 0)
    at_root = walk.scanned
    for done, top in enumerate(tops, start=1):
        if walk.stopped:
            break
        walk.tree(top, 1)
        walk.estimate = max(
            walk.scanned, at_root + round((walk.scanned - at_root) * len(tops) / done)
        )
    if progress is not None:
        progress(walk.scanned, walk.scanned if not walk.stopped else walk.estimate)
    return GcResult(
        scanned=walk.scanned,
        removed=walk.removed,
        bytes_freed=walk.freed,
        seconds=time.monotonic() - started,
    )
