"""`ProjectStore`: searches and emitted families, in the same database as Optuna's trials.

Every write goes through `session_scope`, the one session helper: it commits, or rolls back and
turns a SQLAlchemy error into `UsageError` (server gone, duplicate name) or `StorageError`, with the
password redacted. Nothing is half-written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, defer

from effscale.errors import UsageError
from effscale.storage.engine import (
    DEFAULT_CONNECT_TIMEOUT_S,
    describe_db_error,
    get_engine,
    get_reader,
    normalize_url,
    redact_url,
    sqlite_file_missing,
    use_wal,
    validate_url,
)
from effscale.storage.tables import (
    RESULTS_SINCE,
    SCHEMA_VERSION,
    STUDY_NAME_MAX,
    CandidateRow,
    FamilyRow,
    SearchRow,
    migrate,
    newer_schema_error,
    read_schema_version,
)
from effscale.storage.url import DEFAULT_STORAGE_URL

STATUSES: tuple[str, ...] = ("pending", "running", "completed", "failed", "cancelled", "interrupted")
# "interrupted": stopped by a signal or a database outage; the same command resumes it.
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "interrupted"})
_SEARCHES, _FAMILIES, _CANDIDATES = SearchRow.__table__, FamilyRow.__table__, CandidateRow.__table__
CANDIDATE_FIELDS = ("alpha", "beta", "gamma", "arch_id", "flops", "standing", "n", "mean", "stderr",
                    "confirm_n", "confirm_mean", "confirm_stderr")


@dataclass(frozen=True)
class SearchRecord:
    """One search as stored; timestamps are timezone-aware UTC."""

    study_name: str
    status: str
    config: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    error: str | None
    cancel_requested: bool


@contextmanager
def session_scope(
    engine: Engine, *, url: str, conflict_message: str | None = None
) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    SQLAlchemy errors are wrapped (password redacted): an integrity error becomes
    ``UsageError(conflict_message)`` when one is given; see `describe_db_error` for the rest.
    Other exceptions pass through unchanged, after the rollback.
    """
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except sa_exc.SQLAlchemyError as exc:
        session.rollback()
        if conflict_message is not None and isinstance(exc, sa_exc.IntegrityError):
            raise UsageError(conflict_message) from None
        raise describe_db_error(exc, url) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _to_json(value: Any, *, what: str) -> str:
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a dict, got {type(value).__name__}: pass a JSON object")
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"{what} is not JSON-serializable ({exc}): use str/int/float/bool/list/dict values "
            "and finite numbers"
        ) from None


def _check_study_name(study_name: str) -> str:
    if not isinstance(study_name, str) or not study_name.strip():
        raise UsageError(f"study name {study_name!r} is empty: pass a non-empty name")
    if len(study_name) > STUDY_NAME_MAX:
        raise UsageError(
            f"study name {study_name[:40]!r}... is {len(study_name)} characters: "
            f"use at most {STUDY_NAME_MAX}"
        )
    return study_name


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise UsageError(f"search status {status!r} is unknown: use one of {', '.join(STATUSES)}")
    return status


def _record(row: SearchRow) -> SearchRecord:
    return SearchRecord(
        study_name=row.study_name,
        status=row.status,
        config=json.loads(row.config_json),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        error=row.error,
        cancel_requested=bool(row.cancel_requested),
    )


class ProjectStore:
    """Searches and families for one storage URL (the same database Optuna's storage uses).

    Constructing it validates the URL, reaches the database (`UsageError` if it cannot) and
    creates or migrates effscale's tables. Engines are shared per URL within a process.

    ``read_only`` (every query: `effscale studies`, the REST API's reads) creates and migrates
    nothing, not even a SQLite file: the tables are read as they are found on each read (a search
    may create them meanwhile), a database without them has no searches, one at an older version
    is read without the newer columns, and writes are refused.
    """

    def __init__(
        self, url: str = DEFAULT_STORAGE_URL, *, connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_S,
        read_only: bool = False,
    ) -> None:
        self._url = normalize_url(url)
        self._connect_timeout = connect_timeout
        self._read_only = read_only
        if read_only:
            validate_url(self._url)
            missing = sqlite_file_missing(self._url)
            self._engine: Engine | None = None if missing else get_engine(url, connect_timeout=connect_timeout)
            self._schema_version = 0
        else:
            self._engine = get_engine(url, connect_timeout=connect_timeout)
            self._schema_version = self._ensure_schema()

    def __repr__(self) -> str:
        return f"ProjectStore({redact_url(self._url)!r})"

    @property
    def url(self) -> str:
        """The storage URL as given (may contain a password: print `redact_url(store.url)`)."""
        return self._url

    @property
    def engine(self) -> Engine | None:
        """The engine (None: a read-only store on a SQLite file that is not there yet)."""
        return self._engine

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def schema_version(self) -> int:
        """The version of effscale's tables in this database (after migrating; read-only: as last
        found, 0 for none)."""
        return self._schema_version

    @contextmanager
    def session(self, *, conflict_message: str | None = None) -> Iterator[Session]:
        """`session_scope` on this store's engine: commit, or roll back and wrap the error."""
        assert self._engine is not None, "a read-only store reads only once its tables are found"
        with session_scope(self._engine, url=self._url, conflict_message=conflict_message) as s:
            yield s

    # -- schema ---------------------------------------------------------------------------

    def _ensure_schema(self) -> int:
        use_wal(self._engine)
        try:
            with self._engine.connect() as connection:
                if read_schema_version(connection) == SCHEMA_VERSION:
                    return SCHEMA_VERSION
            with self._engine.connect() as connection:
                if connection.dialect.name == "sqlite":
                    # Take the write lock first, so concurrent first uses run one after another
                    # (the driver's implicit transactions would otherwise leave DDL outside one).
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                version = migrate(connection, url_for_messages=redact_url(self._url))
                connection.commit()
                return version
        except sa_exc.SQLAlchemyError as exc:
            raise describe_db_error(exc, self._url) from exc

    def _tables(self) -> int:
        """The version of effscale's tables to read (0: none, so nothing to read). A read-only store
        looks again on each read until it finds the current version; nothing is created."""
        if not self._read_only or self._schema_version == SCHEMA_VERSION:
            return self._schema_version
        if self._engine is None:
            if sqlite_file_missing(self._url):
                return 0
            self._engine = get_engine(self._url, connect_timeout=self._connect_timeout)
        try:
            with self._engine.connect() as connection:
                version = read_schema_version(connection)
        except sa_exc.SQLAlchemyError as exc:
            raise describe_db_error(exc, self._url) from exc
        if version > SCHEMA_VERSION:
            raise newer_schema_error(redact_url(self._url), version)
        self._schema_version = version
        return version

    def _writable(self) -> None:
        if self._read_only:
            raise RuntimeError(f"{self!r} was opened read_only: open a ProjectStore without it to write")

    def _row_options(self) -> list[Any]:
        """How to load a search row: without ``result_json`` from tables older than it."""
        return [defer(SearchRow.result_json)] if self._tables() < RESULTS_SINCE else []

    def _search_columns(self) -> list[Any]:
        """The search row's columns a read returns: all but ``result_json`` (`load_result` reads it)."""
        return [c for c in _SEARCHES.columns if c.name != "result_json"]

    def _read(self, statement: Any) -> list[Any]:
        """The rows of one read statement, in SQL without the ORM's session (the REST API reads a
        search's rows on every request): a SQLAlchemy error is wrapped as `session_scope` wraps it."""
        assert self._engine is not None, "a read-only store reads only once its tables are found"
        try:
            with get_reader(self._url, connect_timeout=self._connect_timeout).connect() as connection:
                return list(connection.execute(statement))
        except sa_exc.SQLAlchemyError as exc:
            raise describe_db_error(exc, self._url) from exc

    # -- searches -------------------------------------------------------------------------

    def create_search(
        self, study_name: str, *, config: dict[str, Any], status: str = "pending"
    ) -> SearchRecord:
        """Insert a search; `UsageError` if one with this study name exists already."""
        self._writable()
        _check_study_name(study_name)
        _check_status(status)
        config_json = _to_json(config, what=f"config of search {study_name!r}")
        now = _now()
        conflict = (
            f"search {study_name!r} already exists: choose another study name "
            "or resume the existing search"
        )
        with self.session(conflict_message=conflict) as session:
            if session.get(SearchRow, study_name) is not None:
                raise UsageError(conflict)
            row = SearchRow(
                study_name=study_name,
                status=status,
                config_json=config_json,
                created_at=now,
                started_at=now if status == "running" else None,
                finished_at=now if status in TERMINAL_STATUSES else None,
                heartbeat_at=now if status == "running" else None,
                error=None,
                cancel_requested=False,
            )
            session.add(row)
            session.flush()
            return _record(row)

    def get_search(self, study_name: str) -> SearchRecord | None:
        if not self._tables():
            return None
        rows = self._read(sa.select(*self._search_columns()).where(_SEARCHES.c.study_name == study_name))
        return _record(rows[0]) if rows else None

    def list_searches(self) -> list[SearchRecord]:
        """All searches, oldest first."""
        if not self._tables():
            return []
        rows = self._read(sa.select(*self._search_columns()).order_by(_SEARCHES.c.created_at, _SEARCHES.c.study_name))
        return [_record(row) for row in rows]

    def set_status(self, study_name: str, status: str, *, error: str | None = None) -> None:
        """Move a search to ``status`` and stamp its times.

        -> running sets started_at; -> completed/failed/cancelled sets finished_at; every call
        sets heartbeat_at and stores ``error`` (None clears it). Leaving a terminal status
        (a resumed search) clears finished_at and the cancel request.
        """
        self._writable()
        _check_status(status)
        now = _now()
        with self.session() as session:
            row = self._row(session, study_name, for_update=True)
            if row.status in TERMINAL_STATUSES and status not in TERMINAL_STATUSES:
                row.finished_at = None
                row.cancel_requested = False
            if status == "running":
                row.started_at = now
            if status in TERMINAL_STATUSES:
                row.finished_at = now
            row.status = status
            row.error = error
            row.heartbeat_at = now

    def heartbeat(self, study_name: str) -> None:
        """Record that the search's driver is alive (orphan reaping compares heartbeat_at)."""
        self._update(study_name, heartbeat_at=_now())

    def request_cancel(self, study_name: str) -> None:
        """Ask the driver to stop; it polls `cancel_requested` and then sets status cancelled."""
        self._update(study_name, cancel_requested=True)

    def cancel_requested(self, study_name: str) -> bool:
        if not self._tables():
            raise self._missing(study_name)
        with self.session() as session:
            return bool(self._row(session, study_name).cancel_requested)

    # -- families -------------------------------------------------------------------------

    def save_family(self, study_name: str, family: dict[str, Any]) -> None:
        """Store the emitted family of a search, replacing any earlier one."""
        self._writable()
        family_json = _to_json(family, what=f"family of search {study_name!r}")
        with self.session() as session:
            self._row(session, study_name)
            row = session.get(FamilyRow, study_name)
            if row is None:
                session.add(
                    FamilyRow(study_name=study_name, family_json=family_json, saved_at=_now())
                )
            else:
                row.family_json = family_json
                row.saved_at = _now()

    def load_family(self, study_name: str) -> dict[str, Any] | None:
        """The saved family, or None when the search has none (or does not exist)."""
        if not self._tables():
            return None
        rows = self._read(sa.select(_FAMILIES.c.family_json).where(_FAMILIES.c.study_name == study_name))
        return json.loads(rows[0].family_json) if rows else None

    # -- results ---------------------------------------------------------------------------

    def save_result(self, study_name: str, result: dict[str, Any], candidates: list[dict[str, Any]]) -> None:
        """Store a search's verdict and its per-candidate aggregates, replacing earlier ones, in one
        transaction (a reader sees the old result or the new one, never half of each)."""
        self._writable()
        result_json = _to_json(result, what=f"result of search {study_name!r}")
        with self.session() as session:
            row = self._row(session, study_name, for_update=True)
            row.result_json = result_json
            session.execute(sa.delete(CandidateRow).where(CandidateRow.study_name == study_name))
            for c in candidates:
                key = f"{c['alpha']:g},{c['beta']:g},{c['gamma']:g}"
                session.add(CandidateRow(study_name=study_name, candidate=key, **{k: c.get(k) for k in CANDIDATE_FIELDS}))

    def load_result(self, study_name: str) -> dict[str, Any] | None:
        """The stored verdict, or None before the search has one."""
        if self._tables() < RESULTS_SINCE:
            return None
        rows = self._read(sa.select(_SEARCHES.c.result_json).where(_SEARCHES.c.study_name == study_name))
        return json.loads(rows[0].result_json) if rows and rows[0].result_json else None

    def load_candidates(self, study_name: str) -> list[dict[str, Any]]:
        """Per-candidate aggregates, best mean first."""
        if self._tables() < RESULTS_SINCE:
            return []
        rows = self._read(sa.select(_CANDIDATES).where(_CANDIDATES.c.study_name == study_name))
        out = [{"candidate": r.candidate, **{k: getattr(r, k) for k in CANDIDATE_FIELDS}} for r in rows]
        return sorted(out, key=lambda c: (c["mean"] is None, -(c["mean"] or 0.0), c["candidate"]))

    # -- helpers --------------------------------------------------------------------------

    def _row(self, session: Session, study_name: str, *, for_update: bool = False) -> SearchRow:
        row = session.get(SearchRow, study_name, with_for_update=for_update or None, options=self._row_options())
        if row is None:
            raise self._missing(study_name)
        return row

    def _missing(self, study_name: str) -> UsageError:
        return UsageError(
            f"search {study_name!r} does not exist in storage {redact_url(self._url)!r}: "
            "check the study name (list searches to see them)"
        )

    def _update(self, study_name: str, **values: Any) -> None:
        self._writable()
        with self.session() as session:
            row = self._row(session, study_name)
            for name, value in values.items():
                setattr(row, name, value)


__all__ = ["STATUSES", "TERMINAL_STATUSES", "ProjectStore", "SearchRecord", "session_scope"]
