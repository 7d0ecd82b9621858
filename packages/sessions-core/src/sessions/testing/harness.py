"""A driver under test, wired through a real manager, one "request" per call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..config import SessionConfig
from ..driver import DriverConfig, RequestContext, acall
from ..manager import SessionManager

UNDER_TEST = "under_test"
SECRET = "conformance-kit-secret-0123456789abcdef"  # noqa: S105 - a test fixture


class Harness:
    """Builds the driver through :meth:`SessionManager.extend` (so declared
    options are validated as in an application) and runs each operation as
    its own request. A cookie jar carries cookies from one request to the next,
    so drivers that keep data in the browser are tested the same way.
    """

    def __init__(
        self,
        factory: Callable[[DriverConfig], Any],
        options: Mapping[str, Any],
        age: int,
        **config: Any,
    ) -> None:
        session_config = SessionConfig(
            secret=SECRET, driver=UNDER_TEST, age=age, drivers={UNDER_TEST: dict(options)}, **config
        )
        self.manager = SessionManager(
            session_config, autoload_plugins=False, drivers={UNDER_TEST: factory}
        )
        self.jar: dict[str, str] = {}

    @property
    def driver(self) -> Any:
        """The manager-wide driver instance."""
        return self.manager.driver

    def context(self) -> RequestContext:
        """A request carrying the jar's cookies."""
        return RequestContext(dict(self.jar))

    def finish(self, context: RequestContext) -> None:
        """Apply the response's cookies to the jar, as a browser would."""
        for name, cookie in context.outgoing.items():
            if cookie.max_age == 0:
                self.jar.pop(name, None)
            else:
                self.jar[name] = cookie.value

    def call(self, op: str, *args: Any) -> Any:
        """Run one sync operation as a request."""
        context = self.context()
        result = getattr(self.manager.request_driver(context), op)(*args)
        self.finish(context)
        return result

    async def acall(self, op: str, *args: Any) -> Any:
        """Run one async operation as a request (a worker thread for sync-only drivers)."""
        context = self.context()
        driver = self.manager.request_driver(context)
        result = await acall(self.manager.flavours, driver, op, *args)
        self.finish(context)
        return result
