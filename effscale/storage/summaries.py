"""The per-trial summary table in SQL: writing rows, one page of them, and a study's counts.

Rows are plain dicts of `effscale.storage.tables.trial_summaries`' columns; what they mean (the
fields of `effscale.search.records.queries.trial_row`) and when they are written or repaired is
`effscale.search.records.summaries`'. Every statement here is one indexed query: a page walks the
index of its sort (`SUMMARY_INDEXES`) from the offset, whatever the study's size.

A page's order is the REST API's: the sort column ascending (descending with a leading ``-``),
ties by trial number in the same direction, rows without a value last in trial-number order. A
column with nulls cannot be walked that way in one index range on every backend, so a sorted page
reads the rows with a value, then, when the page runs past them, the rows without.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from effscale.storage.tables import SUMMARY_SOURCE as SOURCE
from effscale.storage.tables import trial_summaries as T

FINISHED = ("complete", "pruned", "fail")  # an Optuna trial in one of these never changes again
UNFINISHED = ("running", "waiting")
KEY_COLUMNS = {"number": "number", "value": "val_top1", "flops": "flops"}  # the API's sort -> its column


def upsert(connection: Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert or replace rows by trial id; return how many were given. A row summarized while its
    trial was unfinished never replaces one summarized after it finished (a reader's repair racing
    the driver's write), unless the stored row belongs to another trial (a study deleted since)."""
    rows = [dict(r) for r in rows]
    if not rows:
        return 0
    insert = _dialect_insert(connection)(T)
    new = insert.excluded
    # (no IN lists: this statement runs as one executemany)
    keep = sa.and_(sa.or_(*(T.c.state == s for s in FINISHED)), sa.or_(*(new.state == s for s in UNFINISHED)),
                   T.c.study_id == new.study_id, T.c.number == new.number)
    statement = insert.on_conflict_do_update(
        index_elements=[T.c.trial_id],
        set_={c.name: new[c.name] for c in T.columns if c.name != "trial_id"},
        where=sa.not_(keep),
    )
    for start in range(0, len(rows), 500):
        connection.execute(statement, rows[start:start + 500])
    return len(rows)


def _dialect_insert(connection: Connection) -> Any:
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def delete(connection: Connection, trial_ids: Collection[int]) -> None:
    """Remove the rows of these trial ids (rows whose trial is gone: its study was deleted)."""
    ids = list(trial_ids)
    for start in range(0, len(ids), 500):
        connection.execute(sa.delete(T).where(T.c.trial_id.in_(ids[start:start + 500])))


def _where(study_id: int, state: str | None, exclude: Collection[int]) -> list[Any]:
    where = [T.c.study_id == study_id]
    if state is not None:
        where.append(T.c.state == state)
    if exclude:
        where.append(T.c.trial_id.not_in(list(exclude)))
    return where


def state_counts(connection: Connection, study_id: int, *, exclude: Collection[int] = ()) -> dict[str, dict[str, int]]:
    """state -> rows in it and, per sort column, those with a value in it: every `page`'s counts,
    for any filter and sort, from one grouped read."""
    columns = [c for c in dict.fromkeys(KEY_COLUMNS.values()) if c != "number"]
    query = (sa.select(T.c.state, sa.func.count(), *(sa.func.count(T.c[c]) for c in columns))
             .where(*_where(study_id, None, exclude)).group_by(T.c.state))
    return {state: {"rows": int(n), "number": int(n), **{c: int(v) for c, v in zip(columns, values)}}
            for state, n, *values in connection.execute(query)}


def page_counts(by_state: Mapping[str, Mapping[str, int]], *, state: str | None, sort: str) -> tuple[int, int]:
    """``(rows matching, those with a value in the sort's column)`` from `state_counts`."""
    column = KEY_COLUMNS[sort.lstrip("-")]
    chosen = [c for s, c in by_state.items() if state is None or s == state]
    return sum(c["rows"] for c in chosen), sum(c[column] for c in chosen)


def page(connection: Connection, study_id: int, *, state: str | None, sort: str, limit: int | None, offset: int,
         counts: tuple[int, int], exclude: Collection[int] = ()) -> tuple[int, list[dict[str, Any]]]:
    """``(rows matching, the page's rows)`` of ``study_id``, filtered by ``state``, in ``sort``
    order (number, value or flops; a leading ``-`` descends), rows of ``exclude`` left out.
    ``counts``: `page_counts`' for the same filter, sort and exclusions."""
    where = _where(study_id, state, exclude)
    column, descending = T.c[KEY_COLUMNS[sort.lstrip("-")]], sort.startswith("-")
    total, present = counts
    number = T.c.number.desc() if descending else T.c.number.asc()
    if column is T.c.number:
        return total, _rows(connection, sa.select(T).where(*where).order_by(number).limit(limit).offset(offset))
    rows: list[dict[str, Any]] = []
    if offset < present:
        key = column.desc() if descending else column.asc()
        rows = _rows(connection, sa.select(T).where(*where, column.is_not(None)).order_by(key, number)
                     .limit(limit).offset(offset))
    if (limit is None or len(rows) < limit) and offset + len(rows) < total:
        nulls = sa.select(T).where(*where, column.is_(None)).order_by(T.c.number.asc())
        rows += _rows(connection, nulls.limit(None if limit is None else limit - len(rows))
                      .offset(max(0, offset - present)))
    return total, rows


def _rows(connection: Connection, query: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in connection.execute(query)]


def rows_of(connection: Connection, study_id: int, columns: Iterable[str] | None, *, exclude: Collection[int] = (),
            ids: Collection[int] | None = None) -> list[dict[str, Any]]:
    """``columns`` (None: all) of the rows of ``study_id`` in trial-number order, but those of
    ``exclude``; only those of ``ids`` when given."""
    what = [T] if columns is None else [T.c[c] for c in columns]
    where = _where(study_id, None, exclude)
    if ids is not None:
        where.append(T.c.trial_id.in_(list(ids)))
    return _rows(connection, sa.select(*what).where(*where).order_by(T.c.number))


def network_counts(connection: Connection, study_id: int) -> tuple[int, int]:
    """How many distinct networks a study's started (not WAITING) and finished trials trained."""
    started = sa.case((T.c.state != "waiting", T.c.network), else_=None)
    finished = sa.case((T.c.state.in_(FINISHED), T.c.network), else_=None)
    n_started, n_finished = connection.execute(
        sa.select(sa.func.count(sa.distinct(started)), sa.func.count(sa.distinct(finished)))
        .where(T.c.study_id == study_id)).one()
    return int(n_started), int(n_finished)


def best(connection: Connection, study_id: int) -> dict[str, Any] | None:
    """The best COMPLETE row: the highest ``val_top1``, then the lower FLOPs (none last), then the
    lower number; None when no COMPLETE row has a value."""
    complete = [T.c.study_id == study_id, T.c.state == "complete"]
    top = connection.execute(sa.select(sa.func.max(T.c.val_top1)).where(*complete)).scalar()
    if top is None:
        return None
    query = (sa.select(T).where(*complete, T.c.val_top1 == top)
             .order_by(T.c.flops.is_(None), T.c.flops, T.c.number).limit(1))
    return _rows(connection, query)[0]


def _race(study_id: int) -> list[Any]:
    """A search's race trials of some network (not its confirmation runs)."""
    return [T.c.study_id == study_id, T.c.arch_id.is_not(None),
            sa.or_(T.c.confirmation.is_(None), T.c.confirmation == sa.false())]


def race_networks(connection: Connection, study_id: int) -> dict[str, list[tuple[int, str]]]:
    """arch_id -> the (number, state) of each of its race trials, in number order: one grouped read."""
    pair = sa.cast(T.c.number, sa.Text) + ":" + T.c.state
    query = sa.select(T.c.arch_id, sa.func.aggregate_strings(pair, ",")).where(*_race(study_id)).group_by(T.c.arch_id)
    return {arch: sorted((int(n), state) for n, state in (p.split(":", 1) for p in text.split(",")))
            for arch, text in connection.execute(query)}


def race_values(connection: Connection, study_id: int) -> list[tuple[str, int | None, int, float]]:
    """``(arch_id, repeat, number, val_top1)`` of the race's COMPLETE trials with a value."""
    query = (sa.select(T.c.arch_id, T.c.repeat, T.c.number, T.c.val_top1)
             .where(*_race(study_id), T.c.state == "complete", T.c.val_top1.is_not(None)).order_by(T.c.number))
    return [tuple(r) for r in connection.execute(query)]  # type: ignore[misc]


@contextlib.contextmanager
def short_lock_wait(connection: Connection, wait_ms: int) -> Iterator[Connection]:
    """One transaction on ``connection`` (committed on leaving, rolled back on an error) that waits
    at most ``wait_ms`` for a lock, then fails (SQLite: the busy timeout, restored after;
    PostgreSQL: ``lock_timeout``), for a writer that would rather skip than queue."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        before = int(connection.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0)
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait_ms)}")
        connection.commit()
    try:
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(wait_ms)}ms'")
            yield connection
    finally:
        if sqlite:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {before}")
            connection.commit()
