"""Garbage collection: remove expired session files, their spare files, and
stale temporary files.

Files are found by their modification time (``lstat``): a session file's is
its expiry (the previous release's files expire ``age`` after it), so only
files whose time has passed are looked at more closely. Each is removed the
way a read removes an expired file (:func:`.files.remove_expired`): locked
without waiting, checked again, then unlinked, so a session a request is
reading, refreshing or rewriting is never removed, and nothing needs a grace
period. Its spare and its tag marker go with it. A spare left alone
``age`` past its last change goes too, under its lock (removing a spare is
always safe: the next write of that session makes a new one).
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

from . import files
from .layout import (
    MAX_SHARD_LEVELS,
    SPARE_SUFFIX,
    is_session_name,
    is_shard_name,
    is_spare_name,
    is_temp_name,
)
from .tags import TAGS_DIRECTORY

__all__ = ["STALE_TEMP_SECONDS", "collect"]

#: A temporary file this old belongs to a write that died (process killed,
#: disk full); a live write renames its temporary file within milliseconds.
STALE_TEMP_SECONDS = 600


_NS = 1_000_000_000
#: What to remove, and how: ("session" | "spare" | "temp", path).
Candidate = tuple[str, str]


@dataclass
class _Walk:
    now_ns: int
    spare_cutoff_ns: int
    temp_cutoff_ns: int
    progress: GcProgress | None
    stop: threading.Event | None
    batch: int
    pause: float
    remove: Callable[[list[Candidate]], list[list[int]]]
    pending: list[Candidate] = field(default_factory=list)
    scanned: int = 0
    removed: int = 0
    freed: int = 0
    estimate: int | None = None
    stopped: bool = False

    def entry(self, entry: os.DirEntry[str]) -> None:
        name = entry.name
        if is_session_name(name):
            kind, cutoff = "session", self.now_ns
        elif is_spare_name(name):
            kind, cutoff = "spare", self.spare_cutoff_ns
        elif is_temp_name(name):
            kind, cutoff = "temp", self.temp_cutoff_ns
        else:
            return  # not ours: never touched
        self.scanned += 1
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            pass  # removed meanwhile by a request, a destroy or another collector
        else:
            if info.st_mtime_ns <= cutoff:
                self.pending.append((kind, entry.path))
        if self.scanned % self.batch == 0:
            self.end_batch()

    def flush(self) -> None:
        """Remove the files found expired in this batch."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        for sizes in self.remove(pending):
            self.removed += len(sizes)
            self.freed += sum(sizes)

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


def _remover(age: int, tag_root: str, spare_cutoff_ns: int) -> Callable[[Candidate], list[int]]:
    """Removes one candidate; returns the sizes of the files it removed."""

    def remove(candidate: Candidate) -> list[int]:
        kind, path = candidate
        if kind == "temp":
            try:
                size = os.lstat(path).st_size
                os.unlink(path)
            except FileNotFoundError:
                return []  # removed meanwhile by a request, a destroy or another collector
            return [size]
        if kind == "spare":
            freed = files.remove_spare(path, spare_cutoff_ns)
            return [] if freed is None else [freed]
        freed = files.remove_expired(path, age, tag_root)
        if freed is None:
            return []
        directory, name = os.path.split(path)
        spare = files.remove_spare(os.path.join(directory, f".{name}{SPARE_SUFFIX}"))
        return [freed] if spare is None else [freed, spare]

    return remove


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
    started = time.monotonic()
    now_ns = time.time_ns() if now is None else int(now * _NS)
    spare_cutoff_ns = now_ns - age * _NS
    one = _remover(age, os.path.join(root, TAGS_DIRECTORY), spare_cutoff_ns)
    with ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(
                ThreadPoolExecutor(workers, thread_name_prefix="sessions-file-gc")
            )

            def remove(candidates: list[Candidate]) -> list[list[int]]:
                return list(pool.map(one, candidates))

        else:

            def remove(candidates: list[Candidate]) -> list[list[int]]:
                return [one(candidate) for candidate in candidates]

        walk = _Walk(
            now_ns=now_ns,
            spare_cutoff_ns=spare_cutoff_ns,
            temp_cutoff_ns=now_ns - STALE_TEMP_SECONDS * _NS,
            progress=progress,
            stop=stop,
            batch=max(1, batch),
            pause=pause,
            remove=remove,
        )
        return _collect(root, walk, progress, started)


def _collect(root: str, walk: _Walk, progress: GcProgress | None, started: float) -> GcResult:
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
