"""Test support for driver authors: the conformance suites and their harness.

Needs pytest (a driver package's test dependency, not a runtime one) and anyio
(``pip install "sessions-core[testing]"``).
"""

try:
    import anyio  # noqa: F401  (the async checks run on asyncio or trio through it)
except ModuleNotFoundError as exc:  # sessions-core installed without the extra
    raise ModuleNotFoundError(
        f'{exc}: the conformance kit needs the testing extra: pip install "sessions-core[testing]"',
        name=exc.name,
    ) from exc

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
