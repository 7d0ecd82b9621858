"""Test support for driver authors: the conformance suites and their harness.

Needs pytest (a driver package's test dependency, not a runtime one).
"""

from .concurrency import AsyncConcurrentCommits, ConcurrentCommits
from .conformance import SAMPLE_VALUES, AsyncDriverConformance, DriverConformance, new_key
from .harness import Harness

__all__ = [
    "SAMPLE_VALUES",
    "AsyncConcurrentCommits",
    "AsyncDriverConformance",
    "ConcurrentCommits",
    "DriverConformance",
    "Harness",
    "new_key",
]
