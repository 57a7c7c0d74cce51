"""Optuna's RDB storage on an effscale URL: `open_storage`.

The URL is checked and the database reached by `effscale.storage.engine` first, so that bad input
is one `UsageError` line, password redacted; the engine options are its `engine_options`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable, Iterator

import sqlalchemy
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from effscale.errors import UsageError
from effscale.storage.engine import (
    DEFAULT_CONNECT_TIMEOUT_S,
    StorageError,
    _scrub,
    describe_db_error,
    engine_options,
    get_engine,
    normalize_url,
    redact_url,
    sqlite_file_missing,
    use_wal,
)
from effscale.storage.url import DEFAULT_STORAGE_URL

if TYPE_CHECKING:
    import optuna


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
