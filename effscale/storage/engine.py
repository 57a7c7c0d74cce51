"""Storage URLs and engines (Optuna's RDB storage on them: `effscale.storage.optuna_storage`).

One URL names one database: Optuna's tables (studies, trials) and ours (`effscale_*`) live side
by side in it. This module checks the URL (scheme, SQLite directory, reachability) before anything
is written, so that bad input becomes one `UsageError` line with any password shown as `***`.

Engine options per backend:

* SQLite: ``connect_args={"timeout": 30}``: the driver's busy timeout (``PRAGMA busy_timeout`` reads
  30000), so parallel trial workers wait for the write lock instead of failing "database is locked".
  Whatever writes a SQLite database (a search, `ProjectStore`, ``open_storage`` without
  ``read_only``) puts it in write-ahead-log mode (`use_wal`), where readers never wait for the writer
  nor it for them: the REST API's worker processes read while a search writes. Of the readers, only
  ``effscale serve`` sets the mode (it writes trial summaries itself, and runs several workers in WAL).
* PostgreSQL: ``pool_pre_ping=True`` (a search runs for hours; the server or a proxy may drop idle
  connections; effscale's own engines ping only a connection that idled, `_ping_after_idle`),
  ``pool_size=POSTGRES_POOL_SIZE`` and ``connect_args={"connect_timeout": N}`` so an unreachable
  host fails in N seconds. Reads that need no transaction use `get_reader` (autocommit).
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url

from effscale.errors import UsageError

SUPPORTED_SCHEMES: tuple[str, ...] = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_S = 30.0
DEFAULT_CONNECT_TIMEOUT_S = 10
PING_AFTER_IDLE_S = 1.0  # `_ping_after_idle`
# Connections a PostgreSQL engine keeps open: the REST API's route threads (4 per worker), each
# with up to two at once. A connection beyond the pool is opened and closed for one use, which
# costs a PostgreSQL backend's start each time.
POSTGRES_POOL_SIZE = 8

_URL_EXAMPLES = "sqlite:///effscale.db or postgresql://user:password@host:5432/dbname"
_SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "passfile", "sslpassword")


class StorageError(RuntimeError):
    """A database error that is not the user's to fix (a server down or unreachable, a bug, a broken
    server); message redacted. Not a usage error: the CLI prints one line and exits 1, not 2."""


# --------------------------------------------------------------------------------------------
# URL handling
# --------------------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """Return ``url`` with any password (in the user-info or the query string) replaced by ``***``.

    Works on strings SQLAlchemy cannot parse too, so error messages never echo a password.
    """
    text = str(url)
    scheme_end = text.find("://")
    if scheme_end < 0:
        return _redact_query(text)
    head, rest = text[: scheme_end + 3], text[scheme_end + 3 :]
    rest_no_query, sep, query = rest.partition("?")
    if not head.lower().startswith("sqlite"):
        # The user-info ends at the last "@" before the query (a password may itself contain "@").
        at = rest_no_query.rfind("@")
        if at >= 0:
            userinfo, hostpart = rest_no_query[:at], rest_no_query[at:]
            user, colon, _password = userinfo.partition(":")
            if colon:
                rest_no_query = f"{user}:***{hostpart}"
    return head + rest_no_query + (sep + _redact_query(query) if sep else "")


def _redact_query(query: str) -> str:
    keys = "|".join(_SECRET_QUERY_KEYS)
    return re.sub(rf"(?i)(^|[?&;\s])({keys})=([^&;\s]*)", r"\1\2=***", query)


def _password_of(url: str) -> str | None:
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - unparsable URL: fall back to the raw user-info
        match = re.match(r"^[^:/]+://[^:/@]*:(?P<pw>.*)@", url.partition("?")[0])
        password = match.group("pw") if match else None
    return str(password) if password else None


def _scrub(message: str, url: str) -> str:
    """One line of ``message`` (a driver error) with the URL's password, if any, replaced."""
    line = " ".join(str(message).split()) or "unknown error"
    password = _password_of(url)
    if password:
        for secret in {password, unquote(password)}:
            if secret:
                line = line.replace(secret, "***")
    return line


def _parse(url: str) -> URL:
    if not isinstance(url, str) or not url.strip():
        raise UsageError(f"storage URL is empty: pass a URL such as {_URL_EXAMPLES}")
    try:
        parsed = make_url(url.strip())
    except sa_exc.ArgumentError:
        raise UsageError(
            f"storage URL {redact_url(url)!r} is not a URL: use {_URL_EXAMPLES}"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_SCHEMES:
        raise UsageError(
            f"storage URL scheme {parsed.drivername!r} in {redact_url(url)!r} is not supported: "
            f"use one of {', '.join(SUPPORTED_SCHEMES)} (e.g. {_URL_EXAMPLES})"
        )
    return parsed


def _check_sqlite_path(parsed: URL, url: str) -> None:
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:") or (
        parsed.query.get("mode") == "memory"
    ):
        raise UsageError(
            f"storage URL {redact_url(url)!r} is an in-memory SQLite database, which Optuna's "
            "workers and effscale cannot share: use a file such as sqlite:///effscale.db"
        )
    if database.startswith("file:"):  # URI filename (?uri=true); let SQLite judge it
        return
    path = Path(database).expanduser()
    if path.is_dir():
        raise UsageError(
            f"SQLite path {str(path)!r} in storage URL {redact_url(url)!r} is a directory: "
            "name a file, e.g. sqlite:///effscale.db"
        )
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(
            f"directory {str(parent)!r} of SQLite storage URL {redact_url(url)!r} does not exist: "
            "create it or choose another path"
        )


def normalize_url(url: str) -> str:
    """``url`` with the driver made explicit where SQLAlchemy's default is not installed.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3; effscale depends on psycopg2, so a
    bare URL gets ``+psycopg2`` unless psycopg 3 is importable. Other URLs come back unchanged.
    """
    text = url.strip() if isinstance(url, str) else url
    if isinstance(text, str) and text.startswith("postgresql://") and not _has_module("psycopg"):
        return "postgresql+psycopg2://" + text[len("postgresql://") :]
    return text


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def validate_url(url: str) -> str:
    """Check a storage URL's form without connecting; return its backend (sqlite or postgresql)."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _check_sqlite_path(parsed, url)
    return backend


def sqlite_file_missing(url: str) -> bool:
    """Whether ``url`` names a SQLite file that is not there (opening it would create it)."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    _check_sqlite_path(parsed, url)
    database = parsed.database or ""
    return not database.startswith("file:") and not Path(database).expanduser().is_file()


def require_existing(url: str) -> None:
    """For reads: a SQLite file that is not there is an error, never a new empty database (a query
    must not create one). PostgreSQL databases are never created by a connection anyway."""
    if sqlite_file_missing(url):
        raise UsageError(
            f"storage {redact_url(url)!r} does not exist: a query never creates a database; "
            "check the path, or run a search first"
        )


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------


def engine_options(url: str, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S) -> dict[str, Any]:
    """Keyword arguments for ``sqlalchemy.create_engine`` (and Optuna's ``engine_kwargs``)."""
    backend = validate_url(normalize_url(url))
    if backend == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {
        "pool_pre_ping": True,
        "pool_size": POSTGRES_POOL_SIZE,
        "connect_args": {"connect_timeout": max(1, int(connect_timeout))},
    }


_ENGINES: dict[tuple[int, str, int, bool], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(url: str, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S, autocommit: bool = False) -> Engine:
    """A process-wide engine for ``url`` (memoized per process id, so a fork gets its own pool).
    ``autocommit``: `get_reader`'s.

    The URL is validated and the database reached once; failures raise `UsageError` (`StorageError`
    for a server that does not answer).
    """
    url = normalize_url(url)
    key = (os.getpid(), url, int(connect_timeout), autocommit)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
    if engine is not None:
        return engine
    options = engine_options(url, connect_timeout=connect_timeout)
    ping = options.pop("pool_pre_ping", False)  # effscale's engines ping a connection only after idling
    if autocommit:
        options["isolation_level"] = "AUTOCOMMIT"
    engine = _wrap_connect_errors(url, lambda: sqlalchemy.create_engine(url, **options))
    if engine.dialect.name == "sqlite":
        sqlalchemy.event.listen(engine, "connect", _sqlite_on_connect)
    if ping:
        _ping_after_idle(engine)
    try:
        check_reachable(engine, url)
    except (UsageError, StorageError):
        engine.dispose()
        raise
    with _ENGINES_LOCK:
        existing = _ENGINES.setdefault(key, engine)
    if existing is not engine:
        engine.dispose()
    return existing


def _ping_after_idle(engine: Engine) -> None:
    """``pool_pre_ping``, but only for a connection that sat in the pool `PING_AFTER_IDLE_S` or
    more: the REST API checks connections out hundreds of times a second, and a round trip for each
    is a round trip its answer waits for. A connection that fails its ping is replaced (the pool's
    `DisconnectionError` protocol); one broken since its last use, less than that ago, fails its
    statement, which invalidates the whole pool (SQLAlchemy) and is retried where writes are
    (`effscale.storage.retry`)."""

    @sqlalchemy.event.listens_for(engine, "checkin")
    def _idle_from(_: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @sqlalchemy.event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _: Any) -> None:
        since = record.info.get("idle_since")  # none: a connection opened for this checkout
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except Exception as exc:  # noqa: BLE001 - any failure: replace the connection
            raise sa_exc.DisconnectionError(str(exc)) from exc


def get_reader(url: str, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S) -> Engine:
    """An engine of its own for reads, in autocommit: no transaction is begun, so none is rolled
    back when the connection goes back to the pool (two round trips on PostgreSQL, for every read of
    the REST API), and its connections never switch modes. A statement reads what is committed when
    it runs, as in PostgreSQL's default isolation; writes use `get_engine`."""
    return get_engine(url, connect_timeout=connect_timeout, autocommit=True)


def use_wal(engine: Engine) -> None:
    """SQLite only: put the database in write-ahead-log mode, once (the mode is kept in the file).
    Best effort: a database busy at that moment keeps its mode, and effscale works in either."""
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.connect() as connection:
            if str(connection.exec_driver_sql("PRAGMA journal_mode").scalar()).lower() != "wal":
                connection.exec_driver_sql("PRAGMA journal_mode=WAL").fetchall()
    except sa_exc.SQLAlchemyError:
        pass


def dispose_engines() -> None:
    """Close every memoized engine's pool (tests, or a process about to exit or fork)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.dispose()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def check_reachable(engine: Engine, url: str) -> None:
    """Connect once and read the schema; raise `UsageError`, or `StorageError` for a server that
    does not answer (password redacted), when that fails."""

    def probe() -> None:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                # Reads the file header: a non-SQLite file fails here, not halfway through a write.
                connection.exec_driver_sql("PRAGMA schema_version").fetchall()
            else:
                connection.exec_driver_sql("SELECT 1").fetchall()

    _wrap_connect_errors(url, probe)


def _wrap_connect_errors(url: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except UsageError:
        raise
    except (sa_exc.NoSuchModuleError, ImportError, ModuleNotFoundError) as exc:
        raise UsageError(
            f"no database driver for storage URL {redact_url(url)!r} "
            f"({_scrub(str(exc), url)}): install it or use {_URL_EXAMPLES}"
        ) from None
    except sa_exc.ArgumentError as exc:
        raise UsageError(
            f"storage URL {redact_url(url)!r} is invalid ({_scrub(str(exc), url)}): "
            f"use {_URL_EXAMPLES}"
        ) from None
    except sa_exc.DBAPIError as exc:
        reason = _scrub(str(exc.orig) if exc.orig is not None else str(exc), url)
        if make_url(url).get_backend_name() == "sqlite":
            fix = "check the path, its permissions, and that it is a SQLite file"
        else:
            fix = "start the server (scripts/start-postgres.sh) or fix host, port, user, password"
        # A server that does not answer is an outage (StorageError); one that answered and refused
        # the login or the database, and a bad file, are the user's to fix (UsageError).
        down = make_url(url).get_backend_name() != "sqlite" and not any(r in reason.lower() for r in _REFUSALS)
        raise (StorageError if down else UsageError)(
            f"cannot open storage {redact_url(url)!r}: {reason}: {fix}"
        ) from None


# What a PostgreSQL server says when it answered but refused: the user's to fix, not an outage.
_REFUSALS = ("authentication failed", "does not exist", "no password supplied", "no pg_hba.conf entry",
             "permission denied")


def describe_db_error(exc: sa_exc.SQLAlchemyError, url: str) -> Exception:
    """Turn a SQLAlchemy error raised mid-use into `UsageError` (a SQLite file the user can fix) or
    `StorageError` (a database server gone, or anything else)."""
    reason = _scrub(str(getattr(exc, "orig", None) or exc), url)
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        if url.startswith("sqlite"):
            fix = "check the file, its permissions, and that no other process holds it locked"
            return UsageError(f"storage {redact_url(url)!r} is unavailable: {reason}: {fix}")
        return StorageError(f"storage {redact_url(url)!r} is unavailable: {reason}: "
                            "check that the database server is running and reachable")
    return StorageError(f"database error on storage {redact_url(url)!r}: {reason}")
