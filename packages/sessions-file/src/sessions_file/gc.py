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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

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
    unlink: Callable[[list[str]], list[bool]]
    pending: list[tuple[str, int]] = field(default_factory=list)
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
        except FileNotFoundError:
            pass  # removed meanwhile by a request, a destroy or another collector
        else:
            if info.st_mtime <= cutoff:
                self.pending.append((entry.path, info.st_size))
        if self.scanned % self.batch == 0:
            self.end_batch()

    def flush(self) -> None:
        """Remove the files found expired in this batch."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        for (_, size), removed in zip(pending, self.unlink([p for p, _ in pending]), strict=True):
            if removed:
                self.removed += 1
                self.freed += size

    def end_batch(self) -> None:
        self.flush()
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


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False  # removed meanwhile by a request, a destroy or another collector
    return True


def collect(
    root: str,
    age: int,
    *,
    progress: GcProgress | None = None,
    stop: threading.Event | None = None,
    batch: int = 1000,
    pause: float = 0.0,
    workers: int = 1,
    now: float | None = None,
) -> GcResult:
    """Remove expired session files and stale temporary files under ``root``.

    ``progress(scanned, total)`` is called after every ``batch`` files and once
    at the end. ``total`` is None until the first top-level shard directory is
    done, then an estimate from the share of shard directories scanned (keys
    are uniformly spread), and exact in the last call. ``stop`` ends the walk
    after the current batch; ``pause`` sleeps between batches so a collector
    running inside a server leaves the CPU to requests. With ``workers`` > 1,
    each batch's removals run in that many threads: an unlink mostly waits on
    the file system's journal, so several in flight finish much sooner.
    """
    with ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(
                ThreadPoolExecutor(workers, thread_name_prefix="sessions-file-gc")
            )

            def unlink(paths: list[str]) -> list[bool]:
                return list(pool.map(_unlink, paths))

        else:

            def unlink(paths: list[str]) -> list[bool]:
                return [_unlink(path) for path in paths]

        return _collect(root, age, progress, stop, batch, pause, unlink, now)


def _collect(
    root: str,
    age: int,
    progress: GcProgress | None,
    stop: threading.Event | None,
    batch: int,
    pause: float,
    unlink: Callable[[list[str]], list[bool]],
    now: float | None,
) -> GcResult:
    started = time.monotonic()
    now = time.time() if now is None else now
    walk = _Walk(
        session_cutoff=now - age - GRACE_SECONDS,
        temp_cutoff=now - STALE_TEMP_SECONDS,
        progress=progress,
        stop=stop,
        batch=max(1, batch),
        pause=pause,
        unlink=unlink,
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
    walk.flush()
    if progress is not None:
        progress(walk.scanned, walk.scanned if not walk.stopped else walk.estimate)
    return GcResult(
        scanned=walk.scanned,
        removed=walk.removed,
        bytes_freed=walk.freed,
        seconds=time.monotonic() - started,
    )
