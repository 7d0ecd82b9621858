"""Test support: the driver conformance suites and their harness, for driver
authors, and :func:`session_for`/:func:`asession_for`, to read and write an
application's sessions in its tests without HTTP.

Needs pytest (a test dependency, not a runtime one).
"""

from .concurrency import AsyncConcurrentCommits, ConcurrentCommits
from .conformance import SAMPLE_VALUES, AsyncDriverConformance, DriverConformance, new_key
from .harness import Harness
from .sessions import asession_for, session_for

__all__ = [
    "SAMPLE_VALUES",
    "AsyncConcurrentCommits",
    "AsyncDriverConformance",
    "ConcurrentCommits",
    "DriverConformance",
    "Harness",
    "asession_for",
    "new_key",
    "session_for",
]
