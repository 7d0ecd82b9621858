"""The hook reference page (``docs/hooks.md``), generated from the hookspecs.

Deterministic: the same hookspecs always give the same text, so a test can
compare the page in the repository with a fresh rendering.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from .. import hookspecs

__all__ = ["hook_functions", "render_reference"]

_INTRO = """\
# Hooks

Plugins extend sessions through [pluggy](https://pluggy.readthedocs.io/) hooks.
A plugin is a module (or object) with functions marked `@sessions.hookimpl`,
named after the hooks below; implement only the hooks you need, with only the
arguments you need.

Plugins are found in two entry-point groups of installed distributions:

* `sessions.drivers`: the entry-point name is the driver's config name and the
  module registers that driver (see [Writing a driver](writing-a-driver.md));
* `sessions.plugins`: plugins that add no driver, such as audit logs or metrics.

An application can also register one without packaging it, before its first
request: `manager.plugins.register(my_audit_module)`.

```python
import logging

from sessions import hookimpl

log = logging.getLogger("audit")


@hookimpl
def sessions_migrated(old_session_id, new_session_id, driver):
    log.info("session %s regenerated as %s", old_session_id[:8], new_session_id[:8])


@hookimpl
def sessions_decode_failed(source, reason, driver):
    log.warning("rejected %s: %s", source, reason)
```

Core calls the lifecycle hooks only when some plugin implements them, so they
cost nothing otherwise. They run inside the request: keep them fast, and do not
raise (an exception propagates to the request).
`SESSIONS_PLUGINS` (allow-list) and `SESSIONS_DISABLED_PLUGINS` (block-list)
name entry points or distributions to load or skip.

This page is generated from `sessions/hookspecs.py` by
`sessions hooks --markdown > docs/hooks.md`; a test fails when they differ.
"""


def hook_functions() -> list[Callable[..., Any]]:
    """The hook specifications, in the order they are defined."""
    found = [
        obj
        for name, obj in vars(hookspecs).items()
        if name.startswith("sessions_") and inspect.isfunction(obj)
    ]
    return sorted(found, key=lambda fn: fn.__code__.co_firstlineno)


def _signature(fn: Callable[..., Any]) -> str:
    params = ", ".join(
        f"{p.name}: {p.annotation}" for p in inspect.signature(fn).parameters.values()
    )
    return f"def {fn.__name__}({params}) -> None"


def _markdown(doc: str) -> str:
    """Turn an ``Args:`` section into a list; leave the rest as written."""
    out: list[str] = []
    in_args = False
    for line in doc.splitlines():
        if line.strip() == "Args:":
            in_args = True
            out.append("**Arguments**")
            out.append("")
            continue
        if in_args:
            item = re.match(r"    (\w+): (.*)", line)
            if item:
                out.append(f"* `{item.group(1)}`: {item.group(2)}")
                continue
            if line.startswith("        "):
                out[-1] += " " + line.strip()
                continue
            if not line.strip():
                out.append("")
                continue
            in_args = False
        out.append(line)
    return "\n".join(out).strip()


def render_reference() -> str:
    """The whole ``docs/hooks.md`` page."""
    parts = [_INTRO]
    lifecycle = set(hookspecs.LIFECYCLE_HOOKS)
    for fn in hook_functions():
        kind = (
            "lifecycle hook, called during requests"
            if fn.__name__ in lifecycle
            else ("startup hook")
        )
        parts.append(f"## `{fn.__name__}`\n")
        parts.append(f"*{kind}*\n")
        parts.append(f"```python\n{_signature(fn)}\n```\n")
        parts.append(_markdown(inspect.getdoc(fn) or "") + "\n")
    return "\n".join(parts)
