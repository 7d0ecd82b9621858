"""What is installed: drivers, their flavours and options, and failed plugins.

Plain data (JSON-ready dicts), so ``sessions drivers --json`` and the table
show exactly the same facts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..driver import declared_options, flavours_of
from ..plugins import FIRST_PARTY, DriverEntry, Plugins

__all__ = ["driver_info", "inventory"]


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return repr(value)


def driver_info(entry: DriverEntry) -> dict[str, Any]:
    """One driver's facts; importing its class may fail, which is reported, not raised."""
    info: dict[str, Any] = {
        "name": entry.name,
        "distribution": entry.distribution,
        "version": entry.version,
        "factory": entry.target,
        "flavours": None,
        "capabilities": [],
        "options": [],
        "error": None,
    }
    try:
        factory = entry.load()
        if isinstance(factory, type):
            flavours = flavours_of(factory, entry.name)
            info["flavours"] = flavours.label
            capabilities = []
            if flavours.versioned:
                capabilities.append("conflict-free")
            if flavours.tagging:
                capabilities.append("tagging")
            if callable(getattr(factory, "gc", None)) or callable(getattr(factory, "agc", None)):
                capabilities.append("gc")
            if getattr(factory, "touches_on_read", False):
                capabilities.append("touches_on_read")
            info["capabilities"] = capabilities
        info["options"] = [
            {
                "name": opt.name,
                "type": opt.type_name,
                "default": _json_value(opt.default),
                "required": opt.required,
                "choices": _json_value(opt.choices),
                "help": opt.help,
            }
            for opt in declared_options(factory)
        ]
    except Exception as exc:
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def inventory(plugins: Plugins) -> dict[str, Any]:
    """Everything ``sessions drivers`` reports."""
    return {
        "drivers": [driver_info(plugins.drivers[name]) for name in sorted(plugins.drivers)],
        "failed": [
            {
                "name": f.name,
                "distribution": f.distribution,
                "version": f.version,
                "stage": f.stage,
                "error": f"{type(f.error).__name__}: {f.error}",
            }
            for f in sorted(
                [*plugins.failures.values(), *plugins.command_failures], key=lambda f: f.name
            )
        ],
        "conflicts": [
            {"name": name, "claimants": [entry.origin for entry in entries]}
            for name, entries in sorted(plugins.registry.conflicts.items())
        ],
        "disabled": [
            {"name": name, "reason": reason} for name, reason in sorted(plugins.skipped.items())
        ],
        "not_installed": sorted(
            set(FIRST_PARTY)
            - set(plugins.drivers)
            - set(plugins.failures)
            - set(plugins.skipped)
            - set(plugins.registry.conflicts)
        ),
    }
