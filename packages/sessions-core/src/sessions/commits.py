"""The commit plan: what a request's commit reads, writes, destroys, and how it merges.

:class:`~sessions.session.Session` records what the request did; this module
turns that into store operations. With a driver that has the ``versioned``
capability, a changed session is stored with a compare-and-set against the
version the request read. When another request committed in between, the
record is read again and this request's own changes are replayed onto it
(see :mod:`sessions.changes`), a bounded number of times with a little jitter.
A commit that read a stored session never creates it again: if the record is
gone (a logout, a regenerate, an expiry), this request's changes to that id
are dropped and reported, and the response still succeeds.

The conflict loop is written once, as a generator of driver steps, and run by
a sync and an async runner, so both flavours follow exactly the same rules.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal

from .changes import Changes
from .driver import Record
from .errors import SessionError
from .record import FLASH_KEY

__all__ = [
    "COMMIT_DEADLINE",
    "FLASH_KEY",
    "MAX_ATTEMPTS",
    "CommitConflictError",
    "CommitPlan",
    "Outcome",
    "Step",
]

log = logging.getLogger("sessions")

#: How long a commit keeps retrying its compare-and-set before it gives up, in
#: seconds, and at most how many attempts it makes. Each conflict costs one read
#: and one write; under heavy contention (8 clients hammering one session) most
#: commits need one or two attempts, and an unlucky one a few dozen.
COMMIT_DEADLINE = 10.0
MAX_ATTEMPTS = 1000
_MISSING: Any = object()
# Shared defaults of CommitPlan, only ever read.
_EMPTY: dict[str, Any] = {}
_NO_CHANGES = Changes()

Action = Literal["write", "touch", "destroy", "none"]
#: One thing the runner must do: (driver operation or "sleep", its arguments).
Step = tuple[str, tuple[Any, ...]]


class CommitConflictError(SessionError):
    """A commit kept conflicting with other requests and gave up.

    Raised only after :data:`COMMIT_DEADLINE` seconds (or :data:`MAX_ATTEMPTS`
    attempts) of conflicts, so the request fails (and is not acknowledged)
    rather than losing its change.
    """


@dataclass(slots=True)
class Outcome:
    """What the guarded write ended as."""

    #: ``"stored"`` (first try), ``"merged"`` (after conflicts) or ``"dropped"``
    #: (the record was destroyed meanwhile; this request's changes were discarded).
    result: Literal["stored", "merged", "dropped"]
    attempts: int


class CommitPlan:
    """Everything one commit does, decided before any I/O.

    A plain slotted class: one is made per request, so the fields that most
    commits leave alone share one empty, never-mutated default.
    """

    __slots__ = (
        "action",
        "changes",
        "consumed",
        "cookie",
        "destroy",
        "flash",
        "guarded",
        "own",
        "session_id",
        "values",
        "version",
    )

    def __init__(self, action: Action, session_id: str) -> None:
        self.action = action
        self.session_id = session_id
        #: Keys destroyed unconditionally first (a regenerated session's old id, a cleared one).
        self.destroy: list[str] = []
        #: The record to store (values plus outgoing flash), for ``action == "write"``.
        self.values: dict[str, Any] | None = None
        #: Compare-and-set: False when the driver is not versioned (plain write).
        self.guarded = False
        #: The version read (``None``: the session is new, so the write creates it).
        self.version: int | None = None
        self.changes = _NO_CHANGES
        #: This request's final values, without flash messages.
        self.own: dict[str, Any] = _EMPTY
        #: Flash messages this request stores for the next one.
        self.flash: dict[str, Any] = _EMPTY
        #: Flash messages this request read (shown), so a merge does not show them twice.
        self.consumed: dict[str, Any] = _EMPTY
        #: Send the id cookie (with a fresh Max-Age) on the response.
        self.cookie = True

    def merge(self, fresh: dict[str, Any]) -> dict[str, Any]:
        """This request's changes replayed onto a newer stored record."""
        fresh = dict(fresh)
        theirs = fresh.pop(FLASH_KEY, None)
        merged = self.changes.replay(fresh, self.own)
        flash: dict[str, Any] = {}
        if type(theirs) is dict and not self.changes.cleared:
            consumed = self.consumed
            flash = {k: v for k, v in theirs.items() if consumed.get(k, _MISSING) != v}
        flash.update(self.flash)
        if flash:
            merged[FLASH_KEY] = flash
        return merged

    def first_write(self) -> Step:
        """The first compare-and-set: the only step of a commit without a conflict."""
        values = self.values if self.values is not None else {}
        return ("write_versioned", (self.session_id, values, self.version))

    def resolve_conflict(self) -> Generator[Step, Any, Outcome]:
        """After the first compare-and-set failed: re-read, replay, try again, as
        driver steps (the runner sends back each step's result)."""
        version = self.version
        deadline = time.monotonic() + COMMIT_DEADLINE
        attempt = 1
        while attempt < MAX_ATTEMPTS and time.monotonic() < deadline:
            record: Record | None = yield ("read_versioned", (self.session_id,))
            if record is None:
                if self.version is not None:
                    # It was stored when this request read it, and is gone now:
                    # never write it back.
                    return Outcome("dropped", attempt)
                # A create raced another create that vanished: create again.
                attempt += 1
                if (yield ("write_versioned", (self.session_id, self.values or {}, None))):
                    return Outcome("merged", attempt)
                continue
            values = self.merge(record.values)
            version = record.version
            if attempt > 1:
                # Spread out writers that keep colliding; the first retry is immediate.
                yield ("sleep", (random.uniform(0, min(0.01, 0.0005 * 2**attempt)),))
            attempt += 1
            if (yield ("write_versioned", (self.session_id, values, version))):
                return Outcome("merged", attempt)
        raise CommitConflictError(
            f"session {self.session_id[:12]}... could not be committed: the store reported "
            f"a conflicting change on each of {attempt} attempts (another request commits "
            "this session continuously); the request's changes were not stored"
        )
