"""Test support: the driver conformance suites and their harness, for driver
authors, and :func:`session_for`/:func:`asession_for`, to read and write an
application's sessions in its tests without HTTP.

Needs pytest (a test dependency, not a runtime one) and anyio
(``pip install "sessions-core[testing]"``).
"""

try:
    import anyio  # noqa: F401  (the async checks run on asyncio or trio through it)
except ModuleNotFoundError as exc:  # sessions-core installed without the extra
    raise ModuleNotFoundError(
        f'{exc}: sessions.testing needs the testing extra: pip install "sessions-core[testing]"',
        name=exc.name,
    ) from exc

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
