"""Parse session ages: ``"2h"``, ``"30m"``, ``"1h30m"``, ``"7d"``, seconds or a timedelta."""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)\s*([smhdw])")
_WHOLE = re.compile(r"\s*(?:\d+\s*[smhdw]\s*)+")

VALID_AGE = (
    "a positive duration: seconds (7200), a timedelta, or a string of number+unit parts "
    'with units s, m, h, d, w ("2h", "30m", "1h30m", "7d")'
)


def parse_age(value: object, field: str = "age") -> int:
    """Return ``value`` as a whole, positive number of seconds.

    Raises :class:`~sessions.errors.ConfigError` naming ``field`` when the value
    is not a positive duration.
    """
    seconds: float
    if isinstance(value, bool):
        raise ConfigError(field, value, VALID_AGE)
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            seconds = int(text)
        elif _WHOLE.fullmatch(text):
            seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(text))
        else:
            raise ConfigError(field, value, VALID_AGE)
    else:
        raise ConfigError(field, value, VALID_AGE)
    if seconds < 1 or seconds != seconds:
        raise ConfigError(field, value, VALID_AGE)
    return int(seconds)
