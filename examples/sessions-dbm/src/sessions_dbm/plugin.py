"""The plugin module named by this distribution's entry point:

    [project.entry-points."sessions.drivers"]
    dbm = "sessions_dbm.plugin"

sessions-core imports it on the first driver lookup. It must stay cheap to
import: it names the driver class as a string, so the driver module is only
imported when an application selects ``dbm``.
"""

from __future__ import annotations

from sessions import hookimpl
from sessions.plugins import DriverRegistry


@hookimpl
def sessions_register_drivers(registry: DriverRegistry) -> None:
    """Register the ``dbm`` driver."""
    registry.add("dbm", "sessions_dbm.driver:DbmDriver")
