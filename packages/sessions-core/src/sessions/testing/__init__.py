"""Test support for driver authors: the conformance suite and its harness.

Needs pytest (a driver package's test dependency, not a runtime one).
"""

from .conformance import SAMPLE_VALUES, AsyncDriverConformance, DriverConformance, new_key
from .harness import Harness

__all__ = ["SAMPLE_VALUES", "AsyncDriverConformance", "DriverConformance", "Harness", "new_key"]
