"""The per-request session: values in memory, flash messages, and the commit rules."""

from __future__ import annotations

import copy
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from .changes import Changes
from .codec import check_value
from .commits import CommitPlan, Outcome
from .driver import Record, acall, in_async_context, on_asyncio, sleep
from .durations import parse_age
from .errors import (
    NotANumberError,
    ReadOnlySessionError,
    SessionError,
    SessionNotInitiatedError,
)
from .flash import FlashMessages
from .keys import new_token, storage_key
from .paths import delete_path, get_path, has_path, set_path
from .record import AGE_KEY, CREATED_KEY, FLASH_KEY, TAG_KEY

if TYPE_CHECKING:
    from .driver import RequestContext
    from .manager import SessionManager

__all__ = ["FLASH_KEY", "Session"]

_MISSING: Any = object()
# Shared, never mutated: what an uninitiated session holds.
_NO_VALUES: dict[str, Any] = {}
_READ_WRITE = (False,)
_new = object.__new__
_S = TypeVar("_S")
_NO_FLASH = FlashMessages({})
_META_KEYS = (TAG_KEY, CREATED_KEY, AGE_KEY)
#: The longest tag ``session.tag()`` accepts.
MAX_TAG_LENGTH = 256


def _form_dict(data: Any) -> dict[str, Any]:
    """A plain dict of a submitted form; file uploads are never flashed."""
    getlist = getattr(data, "getlist", None)
    if getlist is None:
        return dict(data)
    result: dict[str, Any] = {}
    for key in dict.fromkeys(data.keys()):
        values = [v for v in getlist(key) if isinstance(v, str)]
        if values:
            result[key] = values[0] if len(values) == 1 else values
    return result


class Session(MutableMapping[str, Any]):
    """One request's session.

    Reads and writes happen in memory; :meth:`commit`/:meth:`acommit` persists
    them through the driver. Keys with dots are paths (``get("user.name")``);
    mapping access (``session["k"]``) works on top-level keys.

    Integrations create, initiate and commit sessions; application code only
    reads and writes them.
    """

    __slots__ = (
        "_changes",
        "_context",
        "_context_source",
        "_driver",
        "_failed",
        "_flash_messages",
        "_flashed",
        "_form",
        "_had_flash",
        "_lazy",
        "_make_context",
        "_manager",
        "_meta",
        "_modified",
        "_old_id",
        "_reflashed",
        "_regenerated",
        "_signed",
        "_stored",
        "_token",
        "_touched_at",
        "_values",
        "_version",
        "accessed",
        "fresh",
        "initiated",
        "readonly",
        "session_id",
    )

    _context: RequestContext | None
    _context_source: Any
    _make_context: Callable[[Any], RequestContext]

    def __init__(
        self,
        manager: SessionManager,
        context: RequestContext,
        *,
        form: Callable[[], Any] | None = None,
        lazy: bool = False,
    ) -> None:
        """A session for the request of ``context``, not read yet.

        ``form`` returns the submitted form for :meth:`flash_all` and
        :meth:`flash_only`; ``lazy=True`` is :meth:`defer` at construction.
        """
        self._setup(manager, context, form, _READ_WRITE if lazy else None)

    def _setup(
        self,
        manager: SessionManager,
        context: RequestContext | None,
        form: Callable[[], Any] | None,
        lazy: tuple[bool] | None,
    ) -> None:
        # Only what is read before initiation is set here: a lazy request that
        # never uses its session pays for nothing more. _begin() sets the rest.
        self._manager = manager
        #: None only while a deferred() session has not made its context yet.
        self._context = context
        self._form = form
        #: ``(readonly,)`` while a lazy session waits for its first use (see defer()).
        self._lazy = lazy
        #: The application read or wrote the session (responses then vary on Cookie).
        self.accessed = False
        #: The storage key: SHA-256 of the cookie's token. Safe to log.
        self.session_id = ""
        self.fresh = False
        self.initiated = False
        self.readonly = False
        self._values: dict[str, Any] = _NO_VALUES

    @classmethod
    def deferred(
        cls, manager: SessionManager, make_context: Callable[[_S], RequestContext], source: _S
    ) -> Session:
        """A lazy session (see :meth:`defer`) whose context is made on first use.

        ``make_context(source)`` builds the :class:`~sessions.driver.RequestContext`
        when the session is first used (``RequestContext.for_asgi`` and the ASGI
        scope, say), so a request that never uses its session makes neither.
        The integration calls :meth:`detach` when the request is over.
        """
        # object.__new__ and a plain method call: CPython's class call is the
        # larger part of what such a request costs.
        session: Session = _new(cls)
        session._setup(manager, None, None, _READ_WRITE)
        session._make_context = make_context
        session._context_source = source
        return session

    @property
    def context(self) -> RequestContext:
        """The request's context: its cookies, and the cookies to send back."""
        context = self._context
        if context is None:
            source = self._context_source
            if source is None:
                raise SessionError(
                    "this session's request is over (the integration detached it): "
                    "use the session only while its request is handled"
                )
            context = self._context = self._make_context(source)
        return context

    def detach(self) -> None:
        """Let go of the framework's request once it is handled.

        The request holds the session (``scope["session"]``), so the session
        holding the request is a reference cycle, which would leave every
        request's objects to the cyclic garbage collector. Integrations call
        this last; the session stays readable in memory.
        """
        self._context_source = None
        if self._context is not None:
            self._context.scope = None

    def _reset_tracking(self) -> None:
        #: Set while a commit runs; cleared when it finished (so a raise keeps it).
        self._failed = False
        self._changes = Changes()
        self._version: int | None = None
        self._modified = False
        self._regenerated = False
        self._old_id: str | None = None
        self._stored = False
        self._had_flash = False
        self._flashed: dict[str, Any] = {}
        self._reflashed: dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------

    def _begin(self, readonly: bool) -> str | None:
        """Start initiation; return the storage key to read, if the cookie is valid."""
        manager = self._manager
        self._token = ""
        self._signed: str | None = None
        #: When the expiry was last refreshed, from the id cookie (touch_interval).
        self._touched_at: int | None = None
        #: Core's own keys of the stored dict (tag, creation time, own age).
        self._meta: dict[str, Any] = {}
        self._flash_messages = _NO_FLASH
        self._reset_tracking()
        self.readonly = readonly
        context = self.context
        self._driver = manager.request_driver(context)
        raw = context.cookies.get(manager.config.cookie_name)
        if raw is None:
            return None
        opened = manager.signer.open(raw)
        if opened is None:
            manager.report_decode_failure(
                "id-cookie", "the session cookie's signature does not verify"
            )
            return None
        self._token, current, key, self._touched_at = opened
        # A cookie signed with the current key can be sent back as it came.
        self._signed = raw if current else None
        return key

    def _touch_due(self) -> bool:
        """Whether this request refreshes the expiry (always, without ``touch_interval``)."""
        interval = self._manager.config.touch_interval_seconds
        touched = self._touched_at
        return not interval or touched is None or time.time() - touched >= interval

    def _read_args(self, key: str) -> tuple[str, tuple[Any, ...]]:
        """The read operation and its arguments: a plain read when no touch is due."""
        manager = self._manager
        op = "read_versioned" if manager.flavours.versioned else "read"
        if manager.flavours.read_touch_flag and not self._touch_due():
            return op, (key, False)
        return op, (key,)

    def _loaded(self, key: str | None, record: Any) -> None:
        values: dict[str, Any] | None
        if type(record) is Record:
            values, self._version = record.values, record.version
        else:
            values = record
        meta: dict[str, Any] = {}
        if values is not None:
            for name in _META_KEYS:
                if name in values:
                    meta[name] = values.pop(name)
            limit = self._manager.config.absolute_age_seconds
            created = meta.get(CREATED_KEY)
            if limit is not None and type(created) is int and created + limit <= time.time():
                # Past its absolute lifetime, however active: destroyed at commit.
                self._old_id = key
                values = None
                meta = {}
        if key is None or values is None:
            self._signed = None
            self._token = new_token()
            self.session_id = storage_key(self._token)
            self.fresh = True
            values = {}
        else:
            self.session_id = key
            self._stored = True
        if type(meta.get(CREATED_KEY)) is not int:
            # New, or stored by a release that kept no creation time: it starts now.
            meta[CREATED_KEY] = int(time.time())
        self._meta = meta
        flash = values.pop(FLASH_KEY, None)
        if flash is not None:
            self._had_flash = True
            if type(flash) is dict:
                self._flash_messages = FlashMessages(flash)
        self._values = values
        self.initiated = True
        manager = self._manager
        if manager.lifecycle_hooks is not None:
            manager.notify(
                "sessions_initiated",
                session_id=self.session_id,
                fresh=self.fresh,
                readonly=self.readonly,
                driver=manager.config.driver,
            )

    def initiate(self, readonly: bool = False) -> None:
        """Read the session for this request (sync drivers). Idempotent."""
        if self.initiated:
            return
        self._lazy = None
        key = self._begin(readonly)
        record = None
        if key is not None:
            self._manager.require_sync()
            op, args = self._read_args(key)
            record = getattr(self._driver, op)(*args)
        self._loaded(key, record)

    async def ainitiate(self, readonly: bool = False) -> None:
        """Read the session for this request (async). Idempotent."""
        if self.initiated:
            return
        self._lazy = None
        key = self._begin(readonly)
        record = None
        if key is not None:
            op, args = self._read_args(key)
            record = await self._call(op, *args)
        self._loaded(key, record)

    def defer(self, readonly: bool = False) -> None:
        """Make this a lazy session: it is read on first use, not now.

        Integrations call this when ``SessionConfig(lazy=True)``. A sync
        application (WSGI, Flask) reads it on first use; an async one awaits
        :meth:`ainitiate` (``sessions.asgi.load_session``) first, unless the
        driver never blocks (memory, cookie) or the request has no session cookie.
        """
        if not self.initiated:
            self._lazy = (readonly,)

    def _load_lazily(self) -> None:
        readonly = self._lazy[0] if self._lazy is not None else False
        manager = self._manager
        manager.driver  # noqa: B018 - built, so its blocking flag is known
        stored = manager.config.cookie_name in self.context.cookies
        if stored and in_async_context() and manager.blocking:
            raise SessionNotInitiatedError(
                "this lazy session (SessionConfig(lazy=True)) has not been read yet, and "
                "reading it now would block the event loop: await "
                "sessions.asgi.load_session(request) (or session.ainitiate()) first, or use "
                "the framework's session dependency, which does"
            )
        self.initiate(readonly)

    def _call(self, op: str, *args: Any) -> Awaitable[Any]:
        # The driver's own coroutine is returned, not wrapped in another one.
        flavours = self._manager.flavours
        name = flavours.async_methods.get(op)
        if name is not None and (flavours.async_library is None or on_asyncio()):
            return getattr(self._driver, name)(*args)  # type: ignore[no-any-return]
        return acall(flavours, self._driver, op, *args)

    def _plan(self) -> CommitPlan:
        """What commit must do, decided before any I/O (see :mod:`sessions.commits`)."""
        manager = self._manager
        plan = CommitPlan("none", self.session_id)
        if self._old_id is not None:
            plan.destroy.append(self._old_id)
        flash = self._flashed
        if self._reflashed:
            flash = {**self._reflashed, **self._flashed}
        versioned = manager.flavours.versioned
        changed = self._modified or self._regenerated or bool(flash) or self._had_flash
        # Core's own keys never keep a session alive on their own.
        values: dict[str, Any] = {}
        if self._values or flash:
            values = {**self._values, **self._meta}
            if flash:
                values[FLASH_KEY] = flash
        if not values:
            if not self._stored:
                # A new session that stays empty: lazy ones get no cookie at all.
                plan.cookie = not manager.config.lazy
                return plan
            if not versioned or self._changes.cleared:
                # clear() wins over every concurrent change: no merge, no condition.
                plan.destroy.append(self.session_id)
                plan.action = "destroy"
                return plan
            # Emptied key by key: remove it only if nobody changed it meanwhile.
            changed = True
        if changed:
            plan.action = "write" if values else "destroy"
            plan.values = values
            if versioned:
                plan.guarded = True
                plan.version = self._version if self._stored else None
                plan.changes = self._changes
                plan.own = {**self._values, **self._meta}
                plan.flash = flash
                plan.consumed = self.flash_messages.all()
            return plan
        if not self._touch_due():
            # Refreshed less than touch_interval ago: no touch, no new cookie.
            plan.cookie = False
            return plan
        if type(self._meta.get(AGE_KEY)) is int and self._meta[AGE_KEY] > 0:
            # touch() restarts the default age; a session with its own is written.
            plan.action = "write"
            plan.values = values
            if versioned:
                plan.guarded = True
                plan.version = self._version
                plan.own = {**self._values, **self._meta}
                plan.consumed = self.flash_messages.all()
            return plan
        if not manager.touches_on_read:
            plan.action = "touch"
        return plan

    def _committed(self, plan: CommitPlan, outcome: Outcome | None) -> None:
        manager = self._manager
        config = manager.config
        dropped = outcome is not None and outcome.result == "dropped"
        if plan.cookie and not dropped:
            if config.touch_interval_seconds:
                # The cookie carries when the expiry was refreshed: now.
                self._touched_at = int(time.time())
                self._signed = manager.signer.sign(self._token, self._touched_at)
            elif self._signed is None:
                self._signed = manager.signer.sign(self._token)
            self.context.set_cookie(
                config.cookie_name, self._signed, max_age=self._cookie_age(), options=config.cookie
            )
        if outcome is not None and outcome.result != "stored":
            manager.report_conflict(self.session_id, outcome.result, outcome.attempts)
        if manager.lifecycle_hooks is not None:
            driver = config.driver
            if self._regenerated and self._old_id is not None:
                manager.notify(
                    "sessions_migrated",
                    old_session_id=self._old_id,
                    new_session_id=self.session_id,
                    driver=driver,
                )
            for key in plan.destroy:
                manager.notify("sessions_destroyed", session_id=key, driver=driver)
            manager.notify(
                "sessions_committed", session_id=self.session_id, action=plan.action, driver=driver
            )
        if dropped:
            stored = False
        elif plan.action == "write":
            stored = True
        else:
            stored = self._stored and plan.action != "destroy"
        flashed = {**self._reflashed, **self._flashed}
        self._reset_tracking()
        self._stored = stored
        self._had_flash = bool(flashed)

    def _cookie_age(self) -> int | None:
        """The id cookie's Max-Age: the session's own age, or the config's (None: browser)."""
        own = self._meta.get(AGE_KEY)
        if type(own) is int:
            return own or None
        config = self._manager.config
        return None if config.clear_with_browser else config.age_seconds

    def commit(self) -> None:
        """Persist this request's changes (sync drivers) and queue the id cookie.

        Read-only or never-initiated sessions commit nothing. With a versioned
        driver a conflicting commit merges (see :mod:`sessions.commits`). A
        commit that raised is not tried again (an error page's second commit
        must not store what the failed one could not).
        """
        if not self.initiated or self.readonly or self._failed:
            return
        self._failed = True
        plan = self._plan()
        if plan.destroy or plan.action != "none":
            self._manager.require_sync()
        driver = self._driver
        for key in plan.destroy:
            driver.destroy(key)
        outcome = None
        if plan.guarded:
            op, args = plan.first_write()
            if not getattr(driver, op)(*args):
                steps = plan.resolve_conflict()
                try:
                    op, args = next(steps)
                    while True:
                        if op == "sleep":
                            time.sleep(*args)
                            result = None
                        else:
                            result = getattr(driver, op)(*args)
                        op, args = steps.send(result)
                except StopIteration as done:
                    outcome = done.value
        elif plan.action == "write":
            driver.write(self.session_id, plan.values)
        elif plan.action == "touch":
            driver.touch(self.session_id)
        self._committed(plan, outcome)

    async def acommit(self) -> None:
        """Persist this request's changes (async) and queue the id cookie."""
        if not self.initiated or self.readonly or self._failed:
            return
        self._failed = True
        plan = self._plan()
        for key in plan.destroy:
            await self._call("destroy", key)
        outcome = None
        if plan.guarded:
            op, args = plan.first_write()
            if not await self._call(op, *args):
                steps = plan.resolve_conflict()
                try:
                    op, args = next(steps)
                    while True:
                        if op == "sleep":
                            await sleep(*args)
                            result = None
                        else:
                            result = await self._call(op, *args)
                        op, args = steps.send(result)
                except StopIteration as done:
                    outcome = done.value
        elif plan.action == "write":
            await self._call("write", self.session_id, plan.values)
        elif plan.action == "touch":
            await self._call("touch", self.session_id)
        self._committed(plan, outcome)

    @property
    def flash_messages(self) -> FlashMessages:
        """The flash messages the previous request left (read-only)."""
        self._readable()
        return self._flash_messages

    # -- guards --------------------------------------------------------------

    def _readable(self) -> dict[str, Any]:
        self.accessed = True
        if not self.initiated:
            if self._lazy is not None:
                self._load_lazily()
                return self._values
            raise SessionNotInitiatedError(
                "the session is not initiated yet: the session middleware initiates it "
                "per request (or call session.initiate()/ainitiate() first)"
            )
        return self._values

    def _writable(self, action: str) -> dict[str, Any]:
        values = self._readable()
        if self.readonly:
            raise ReadOnlySessionError(
                f"cannot {action}: this session is read-only (websocket connections and "
                "initiate(readonly=True) sessions can be read, not changed)"
            )
        return values

    def _touched(self, key: str) -> None:
        self._modified = True
        self._changes.replace(key)

    # -- reading ---------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """Value at ``key`` (dot paths allowed), or ``default`` when absent or None."""
        return get_path(self._readable(), key, default)

    def all(self) -> dict[str, Any]:
        """A shallow copy of every value."""
        return dict(self._readable())

    def has(self, key: str) -> bool:
        """True when ``key`` is present and not None."""
        return has_path(self._readable(), key)

    @property
    def is_empty(self) -> bool:
        """True when the session holds no values."""
        return not self._readable()

    @property
    def has_been_modified(self) -> bool:
        """True when this request changed the values (put, forget, clear, ...)."""
        return self.initiated and self._modified

    @property
    def changed_keys(self) -> frozenset[str]:
        """Top-level keys this request wrote or removed (for conflict-free merges)."""
        return self._changes.keys if self.initiated else frozenset()

    @property
    def cleared(self) -> bool:
        """True when this request called :meth:`clear`."""
        return self.initiated and self._changes.cleared

    # -- writing ---------------------------------------------------------------

    def put(self, key: str, value: Any) -> None:
        """Set ``key`` (dot paths create nested dicts). Unsupported types are refused."""
        values = self._writable("put")
        check_value(key, value)
        set_path(values, key, value)
        self._touched(key)

    def forget(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        if delete_path(self._writable("forget"), key):
            self._touched(key)

    def pull(self, key: str, default: Any = None) -> Any:
        """Return the value at ``key`` and remove it."""
        value = get_path(self._writable("pull"), key, default)
        self.forget(key)
        return value

    def increment(self, key: str, amount: int | float | Decimal = 1) -> Any:
        """Add ``amount`` to the number at ``key`` (missing counts as 0); return it."""
        return self._add(key, amount, "increment")

    def decrement(self, key: str, amount: int | float | Decimal = 1) -> Any:
        """Subtract ``amount`` from the number at ``key`` (missing counts as 0); return it."""
        return self._add(key, -amount, "decrement")

    def _add(self, key: str, amount: Any, action: str) -> Any:
        values = self._writable(action)
        current = get_path(values, key, 0)
        for what, number in (("the value", current), ("the amount", amount)):
            if type(number) is bool or not isinstance(number, int | float | Decimal):
                raise NotANumberError(
                    f"cannot {action} session key {key!r}: {what} is "
                    f"{type(number).__name__} {number!r}, not a number (int, float, Decimal)"
                )
        result = current + amount
        set_path(values, key, result)
        self._modified = True
        self._changes.add(key, amount)
        return result

    def clear(self) -> None:
        """Remove every value, the tag and the session's own expiry (a logout)."""
        values = self._writable("clear")
        values.clear()
        self._meta.pop(TAG_KEY, None)
        self._meta.pop(AGE_KEY, None)
        self._changes.clear()
        self._modified = True

    def mark_modified(self, key: str | None = None) -> None:
        """Tell the session a value was changed in place, so commit stores it.

        ``session["cart"].append(item)`` changes a list the session holds
        without the session seeing it; call ``session.mark_modified("cart")``
        afterwards (or with no key: every current top-level key). Prefer
        ``put`` with a new value, which needs no such call.
        """
        values = self._writable("mark_modified")
        if key is None:
            for name in values:
                self._changes.replace(name, path=False)
        else:
            self._changes.replace(key)
        self._modified = True

    def regenerate(self) -> None:
        """Move the session to a new id, keeping its values.

        The old record is destroyed at commit, so the old cookie no longer opens
        the session. Call it on sign-in and sign-out to defeat session fixation.
        """
        self._writable("regenerate")
        if self._stored:
            self._old_id = self.session_id
            self._stored = False
        self._token = new_token()
        self._signed = None
        self.session_id = storage_key(self._token)
        self.fresh = True
        self._regenerated = True

    # -- tags and lifetimes --------------------------------------------------------

    @property
    def current_tag(self) -> str | None:
        """The session's tag (see :meth:`tag`), or None."""
        self._readable()
        tag = self._meta.get(TAG_KEY)
        return tag if type(tag) is str else None

    def tag(self, tag: str) -> None:
        """Tie this session to ``tag`` (usually the user id), kept across :meth:`regenerate`.

        ``manager.sessions.tagged(tag)`` then lists it, and
        ``manager.sessions.destroy_tagged(tag, keep=...)`` signs it out.

        Raises:
            TaggingNotSupportedError: the driver cannot find sessions by tag.
        """
        self._writable("tag")
        if type(tag) is not str or not tag or len(tag) > MAX_TAG_LENGTH:
            raise ValueError(
                f"session.tag() takes a non-empty str of at most {MAX_TAG_LENGTH} "
                f"characters (e.g. the user id as text), not {tag!r:.80}"
            )
        self._manager.require_tagging()
        if self._meta.get(TAG_KEY) != tag:
            self._meta[TAG_KEY] = tag
            self._changes.replace(TAG_KEY, path=False)
            self._modified = True

    def untag(self) -> None:
        """Remove the session's tag; a session without one is not an error."""
        self._writable("untag")
        if self._meta.pop(TAG_KEY, None) is not None:
            self._changes.replace(TAG_KEY, path=False)
            self._modified = True

    @property
    def expiry(self) -> int | None:
        """This session's own idle age in seconds (0: until the browser closes), or None."""
        self._readable()
        age = self._meta.get(AGE_KEY)
        return age if type(age) is int else None

    def set_expiry(self, age: int | float | str | timedelta | None) -> None:
        """Give this session its own idle age ("remember me for 30 days").

        ``age`` is seconds, a timedelta or a string such as ``"30d"``; ``0`` keeps
        the session until the browser closes (a cookie without Max-Age; the
        store keeps the configured age); ``None`` goes back to the configured
        age. The store's expiry and the cookie's Max-Age both follow it.
        """
        self._writable("set_expiry")
        if age is None:
            new = None
        elif age == 0 and type(age) is not bool:
            new = 0
        else:
            new = parse_age(age, "set_expiry(age)")
        if self._meta.get(AGE_KEY) != new:
            if new is None:
                self._meta.pop(AGE_KEY, None)
            else:
                self._meta[AGE_KEY] = new
            self._changes.replace(AGE_KEY, path=False)
            self._modified = True

    @property
    def created_at(self) -> datetime:
        """When this session was created (aware UTC)."""
        self._readable()
        return datetime.fromtimestamp(self._meta[CREATED_KEY], UTC)

    # -- flash messages ----------------------------------------------------------

    def flash(self, key: str | Mapping[str, Any], value: Any = _MISSING) -> None:
        """Keep a message for the next request only.

        ``flash("notice", "Saved")`` sets one (dot paths allowed);
        ``flash({"errors": {...}})`` merges a mapping.
        """
        self._writable("flash")
        if isinstance(key, str):
            if value is _MISSING:
                raise TypeError("flash(key, value) needs a value, or pass a mapping")
            check_value(key, value)
            set_path(self._flashed, key, value)
            return
        for name, item in key.items():
            check_value(name, item)
        self._flashed.update(key)

    def _input(self, data: Mapping[str, Any] | None, method: str) -> dict[str, Any]:
        if data is None:
            if self._form is None:
                raise TypeError(
                    f"{method}() needs the submitted form: pass it explicitly, e.g. "
                    f"session.{method}(await request.form()). Only integrations that parse "
                    "the form themselves (Flask, WSGI) can supply it for you."
                )
            data = self._form()
        return _form_dict(data)

    def flash_all(self, data: Mapping[str, Any] | None = None) -> None:
        """Flash every submitted field (to re-fill a form after a failed validation)."""
        self.flash(self._input(data, "flash_all"))

    def flash_only(self, keys: Iterable[str], data: Mapping[str, Any] | None = None) -> None:
        """Flash only the named submitted fields."""
        form = self._input(data, "flash_only")
        self.flash({k: form[k] for k in keys if k in form})

    def flash_except(self, keys: Iterable[str], data: Mapping[str, Any] | None = None) -> None:
        """Flash every submitted field but the named ones (e.g. passwords, CSRF tokens)."""
        form = self._input(data, "flash_except")
        skip = set(keys)
        self.flash({k: v for k, v in form.items() if k not in skip})

    def reflash(self) -> None:
        """Keep every current flash message for one more request."""
        self._writable("reflash")
        self._reflashed = self.flash_messages.all()

    def reflash_only(self, keys: Iterable[str]) -> None:
        """Keep only the named flash messages for one more request."""
        self._writable("reflash")
        kept: dict[str, Any] = {}
        for key in keys:
            value = self.flash_messages.get(key, _MISSING)
            if value is not _MISSING:
                set_path(kept, key, value)
        self._reflashed = kept

    def reflash_except(self, keys: Iterable[str]) -> None:
        """Keep every flash message but the named ones for one more request."""
        self._writable("reflash")
        kept = copy.deepcopy(self.flash_messages.all())
        for key in keys:
            delete_path(kept, key)
        self._reflashed = kept

    # -- mapping protocol (top-level keys) ------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._readable()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        values = self._writable("set an item")
        check_value(key, value)
        values[key] = value
        self._modified = True
        self._changes.replace(key, path=False)

    def __delitem__(self, key: str) -> None:
        del self._writable("delete an item")[key]
        self._modified = True
        self._changes.replace(key, path=False)

    def __iter__(self) -> Iterator[str]:
        return iter(self._readable())

    def __len__(self) -> int:
        return len(self._readable())

    def __contains__(self, key: object) -> bool:
        return key in self._readable()

    def __repr__(self) -> str:
        state = "initiated" if self.initiated else "not initiated"
        return f"<Session {self.session_id[:8] or '-'} {state} {self._values!r}>"

    def csrf_token(self) -> str:
        """A CSRF token for this session's forms (see :mod:`sessions.csrf`)."""
        from .csrf import csrf_token

        return csrf_token(self)
