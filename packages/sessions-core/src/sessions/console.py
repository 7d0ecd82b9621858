"""The ``sessions`` console script: the command line, or how to install it.

The command line needs click and rich, which ``sessions-core`` does not pull in
(an application needs neither); they come with the ``cli`` extra. This module
imports nothing but the standard library until it knows they are there, so a
plain install gets one clear line instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.util import find_spec

__all__ = ["CLI_REQUIREMENTS", "main", "missing_requirements"]

#: Import names the command line needs, all installed by ``sessions-core[cli]``.
CLI_REQUIREMENTS = ("click", "rich", "anyio")
INSTALL_HINT = 'pip install "sessions-core[cli]"'


def missing_requirements() -> list[str]:
    """The command line's requirements that cannot be imported, in order."""
    missing = []
    for name in CLI_REQUIREMENTS:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):  # a module set to None, or without a spec
            found = False
        if not found:
            missing.append(name)
    return missing


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``sessions`` command line, or exit 1 saying what to install."""
    missing = missing_requirements()
    if missing:
        sys.stderr.write(
            f"sessions: the command line needs {', '.join(missing)}, which "
            f"sessions-core does not install by itself.\nInstall it with: {INSTALL_HINT}\n"
        )
        raise SystemExit(1)
    from .cli import main as run

    run(argv)
