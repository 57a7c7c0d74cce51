"""Storage URLs, engines and Optuna's RDB storage.

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
  connections) and ``connect_args={"connect_timeout": N}`` so an unreachable host fails in N seconds.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import unquote

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Engine, make_url

from effscale.errors import UsageError
from effscale.storage.url import DEFAULT_STORAGE_URL

SUPPORTED_SCHEMES: tuple[str, ...] = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_S = 30.0
DEFAULT_CONNECT_TIMEOUT_S = 10

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
        "connect_args": {"connect_timeout": max(1, int(connect_timeout))},
    }


_ENGINES: dict[tuple[int, str, int], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(url: str, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S) -> Engine:
    """A process-wide engine for ``url`` (memoized per process id, so a fork gets its own pool).

    The URL is validated and the database reached once; failures raise `UsageError` (`StorageError`
    for a server that does not answer).
    """
    url = normalize_url(url)
    key = (os.getpid(), url, int(connect_timeout))
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
    if engine is not None:
        return engine
    options = engine_options(url, connect_timeout=connect_timeout)
    engine = _wrap_connect_errors(url, lambda: sqlalchemy.create_engine(url, **options))
    if engine.dialect.name == "sqlite":
        sqlalchemy.event.listen(engine, "connect", _sqlite_on_connect)
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


# --------------------------------------------------------------------------------------------
# Optuna
# --------------------------------------------------------------------------------------------


# An arbitrary constant: the PostgreSQL advisory lock held while Optuna creates its schema.
_OPTUNA_SCHEMA_LOCK_KEY = 0x0EFF5CA1F


@contextlib.contextmanager
def _optuna_schema_lock(engine: Engine) -> Iterator[None]:
    """Two drivers opening a fresh PostgreSQL database at once would both run Optuna's
    ``create_all`` and collide on its enum types; a session advisory lock makes them take turns.
    (SQLite's own write lock and busy timeout already serialize them.)"""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(sqlalchemy.select(sqlalchemy.func.pg_advisory_lock(_OPTUNA_SCHEMA_LOCK_KEY)))
        try:
            yield
        finally:
            connection.execute(sqlalchemy.select(sqlalchemy.func.pg_advisory_unlock(_OPTUNA_SCHEMA_LOCK_KEY)))
            connection.commit()


def open_storage(
    url: str = DEFAULT_STORAGE_URL,
    *,
    read_only: bool = False,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    heartbeat_stale_trial_callback: Callable[..., None] | None = None,
    skip_compatibility_check: bool = False,
) -> "optuna.storages.BaseStorage":
    """Optuna's RDB storage for ``url`` with effscale's engine options.

    The URL is checked and the database reached first, so bad input raises one-line `UsageError`
    (password redacted) before Optuna writes anything. ``heartbeat_*`` and ``grace_period`` are
    passed to Optuna unchanged (its failed-trial reaping).

    ``read_only`` (every query: `effscale studies`, `effscale trials`, the REST API's reads) creates
    nothing: no SQLite file, no table, no version row; Optuna's tables are read as they are, never
    migrated. A SQLite file that is not there, or a database without Optuna's tables, reads as an
    empty storage (no studies). Without it, Optuna creates its tables on first use.
    """
    import optuna  # here, not at the top: `effscale plan` checks a URL's form without it (0.16 s)

    url = normalize_url(url)
    if read_only and sqlite_file_missing(url):
        return optuna.storages.InMemoryStorage()
    engine = get_engine(url, connect_timeout=connect_timeout)  # validates and probes; memoized
    options = engine_options(url, connect_timeout=connect_timeout)
    if read_only and not _has_optuna_tables(engine, url):
        return optuna.storages.InMemoryStorage()
    if not read_only:
        use_wal(engine)
    try:
        with contextlib.nullcontext() if read_only else _optuna_schema_lock(engine):
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=options,
                skip_compatibility_check=skip_compatibility_check,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=heartbeat_stale_trial_callback,
                skip_table_creation=read_only,
            )
    except Exception as exc:  # noqa: BLE001 - each kind becomes one redacted line
        raise _optuna_open_error(exc, url) from None


# The tables and rows Optuna writes when it first opens a database: a reader that found one of
# them missing would make Optuna write it.
_OPTUNA_TABLES = ("studies", "trials", "version_info", "alembic_version")


def _has_optuna_tables(engine: Engine, url: str) -> bool:
    """Whether Optuna's tables and their version rows are all there (read, never written)."""

    def probe() -> bool:
        with engine.connect() as connection:
            if not all(sqlalchemy.inspect(connection).has_table(t) for t in _OPTUNA_TABLES):
                return False
            return all(connection.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar() for t in _OPTUNA_TABLES[2:])

    try:
        return probe()
    except sa_exc.SQLAlchemyError as exc:
        raise describe_db_error(exc, url) from None


def _optuna_open_error(exc: Exception, url: str) -> Exception:
    """What opening Optuna's storage raised, as one line with the password redacted."""
    import optuna

    if isinstance(exc, sa_exc.SQLAlchemyError):
        return describe_db_error(exc, url)
    if isinstance(exc, optuna.exceptions.StorageInternalError):
        cause = exc.__cause__
        if isinstance(cause, sa_exc.SQLAlchemyError):
            return describe_db_error(cause, url)
        return StorageError(f"storage {redact_url(url)!r}: {_scrub(str(exc), url)}")
    if isinstance(exc, RuntimeError):  # Optuna's "table schema is not compatible" check
        return UsageError(f"storage {redact_url(url)!r}: {_scrub(str(exc), url)}")
    if isinstance(exc, (KeyError, IndexError)):  # Optuna formats the URL as a template ("{...}")
        return UsageError(
            f"storage URL {redact_url(url)!r} has a brace Optuna cannot format: "
            "percent-encode '{' and '}' (%7B, %7D) in the password"
        )
    if isinstance(exc, ValueError):  # bad heartbeat_interval / grace_period, or a stray brace
        return UsageError(f"cannot open storage {redact_url(url)!r}: {_scrub(str(exc), url)}")
    return exc
