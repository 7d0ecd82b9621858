"""Reading and appending to ``.env`` files (``KEY=value`` lines).

Only what the commands need: ``KEY=value``, an optional ``export`` prefix,
single or double quotes, ``#`` comments. Malformed lines are reported with
their line number rather than guessed at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["EnvFileError", "format_line", "merged_environ", "parse_env", "read_env_file"]

_LINE = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_SAFE = re.compile(r"[A-Za-z0-9_./:@,+=-]*")


class EnvFileError(ValueError):
    """A ``.env`` file has a line that is not ``KEY=value``."""


def _unquote(raw: str, where: str) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = raw.find(quote, 1)
        while quote == '"' and end > 0 and raw[end - 1] == "\\":
            end = raw.find(quote, end + 1)
        if end < 0:
            raise EnvFileError(f"{where}: unterminated {quote} quote")
        rest = raw[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise EnvFileError(f"{where}: unexpected text after the closing quote: {rest!r}")
        body = raw[1:end]
        if quote == "'":
            return body
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)
    # An unquoted value ends at a comment that follows whitespace.
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def parse_env(text: str, source: str = ".env") -> dict[str, str]:
    """The variables set in ``text``; the last assignment of a name wins."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        where = f"{source}, line {number}"
        if match is None:
            raise EnvFileError(f"{where}: expected KEY=value, got {stripped[:60]!r}")
        values[match.group(1)] = _unquote(match.group(2), where)
    return values


def read_env_file(path: Path) -> dict[str, str]:
    """Variables of the file at ``path``; an empty mapping if it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_env(text, str(path))


def merged_environ(path: Path | None) -> dict[str, str]:
    """The file's variables overlaid with the real environment (which wins)."""
    merged = read_env_file(path) if path is not None else {}
    merged.update(os.environ)
    return merged


def format_line(key: str, value: str) -> str:
    """``KEY=value``, quoted when the value needs it."""
    if _SAFE.fullmatch(value):
        return f"{key}={value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{key}="{escaped}"'
