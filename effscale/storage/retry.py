"""Riding out a database restart: writes retried with backoff for a bounded time.

A search runs for hours; the PostgreSQL server behind it may restart. The driver's reads and writes
go through `RetryingStorage` (Optuna's storage) and `retrying` (effscale's own store): a call that
fails because the server is unreachable is retried with exponential backoff until ``timeout_s``
has passed, then `DatabaseUnavailable` says so in one line. Finished results wait in the driver
meanwhile, so none is lost while the server is down.

A write retried after the server committed it but before the answer arrived could be applied
twice; the window is one network round trip during a restart, and every effscale write but trial
creation is idempotent (a state, a value, an attribute).
"""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any, Callable, TypeVar

from optuna.storages import BaseStorage
from sqlalchemy import exc as sa_exc

from effscale.storage.engine import StorageError

T = TypeVar("T")
DEFAULT_DB_TIMEOUT_S = 300.0
_FIRST_WAIT_S, _MAX_WAIT_S = 0.5, 5.0


class DatabaseUnavailable(StorageError):
    """The database stayed unreachable for longer than the retry window (an outage: exit 1)."""


def is_transient(exc: BaseException) -> bool:
    """A connection-level failure (server down or restarting), not a bad statement."""
    return _transient_cause(exc) is not None


def _transient_cause(exc: BaseException | None) -> BaseException | None:
    """The connection-level error in ``exc``'s chain (Optuna wraps it in its own StorageInternalError,
    whose text blames "invalid data in the commit")."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return exc
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _first_line(exc: BaseException) -> str:
    cause = _transient_cause(exc) or exc
    text = str(getattr(cause, "orig", None) or cause).strip()
    return (text.splitlines() or [type(cause).__name__])[0][:200]


def call_with_retries(
    fn: Callable[..., T], *args: Any, timeout_s: float, on_wait: Callable[[float], None] | None = None, **kwargs: Any
) -> T:
    """``fn(*args, **kwargs)``, retried on transient database errors for up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    wait = _FIRST_WAIT_S
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - filtered just below
            if not is_transient(exc):
                raise
            if time.monotonic() + wait > deadline:
                raise DatabaseUnavailable(
                    f"the database stayed unreachable for {timeout_s:.0f} s ({_first_line(exc)}); "
                    "start it again and re-run the same command to resume, or raise --db-timeout"
                ) from None
            if on_wait is not None:
                on_wait(wait)
            time.sleep(wait)
            wait = min(_MAX_WAIT_S, wait * 2)


class RetryingStorage(BaseStorage):
    """Optuna storage that retries every call on transient database errors (see module doc)."""

    def __init__(self, inner: BaseStorage, *, timeout_s: float = DEFAULT_DB_TIMEOUT_S,
                 on_wait: Callable[[float], None] | None = None) -> None:
        self.inner = inner
        self.timeout_s = timeout_s
        self.on_wait = on_wait


def _delegate(name: str) -> Callable[..., Any]:
    @functools.wraps(getattr(BaseStorage, name))
    def method(self: RetryingStorage, *args: Any, **kwargs: Any) -> Any:
        return call_with_retries(getattr(self.inner, name), *args, timeout_s=self.timeout_s, on_wait=self.on_wait, **kwargs)

    return method


for _name, _ in inspect.getmembers(BaseStorage, inspect.isfunction):
    if not _name.startswith("_"):
        setattr(RetryingStorage, _name, _delegate(_name))
RetryingStorage.__abstractmethods__ = frozenset()


class retrying:  # noqa: N801 - used like a function: retrying(store).heartbeat(name)
    """Any object whose method calls are retried on transient database errors (effscale's store)."""

    def __init__(self, target: Any, *, timeout_s: float = DEFAULT_DB_TIMEOUT_S) -> None:
        self._target = target
        self._timeout_s = timeout_s

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        return functools.partial(call_with_retries, attr, timeout_s=self._timeout_s)
