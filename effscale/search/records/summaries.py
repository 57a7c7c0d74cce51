"""effscale's per-trial summaries: `trial_row` stored as a typed, indexed row beside Optuna's trial.

Optuna's tables stay the truth. A summary is an index of one trial: the flat row every reader
shows (`effscale.search.records.rows.trial_row`), in ``effscale_trial_summaries``
(`effscale.storage.tables`), so that a trial page is one indexed query returning whole rows and a
study's counts are aggregates over its index, whatever the study's size.

* **Written** by the driver right after a trial's result (`record_trial`, from the recorder).
* **Repaired on read** (`SummaryReader`): before a study's rows are read, the rows out of step with
  Optuna are found (`find_stale`) and summarized again from Optuna's record: a trial without a row
  (written before the table existed, by plain Optuna or another tool, or by a driver killed
  between its result and its summary), and a row summarized while its trial was unfinished whose
  record has changed since (its state, or the count or size of its user attributes, intermediate
  values or parameters: the ``src_*`` columns). A finished Optuna trial never changes again, so a
  row summarized after it finished stays right. Rows whose trial is gone (a deleted study) are
  dropped.
* **Who writes the repair**: the REST API's server (``write=True``), so that each repair is done
  once. A query that must not write (`effscale trials`, `effscale studies`) repairs in memory: the
  stale rows are computed and merged with the stored ones. A database whose effscale tables are
  older than the summaries (or absent) is not migrated by a reader: every row is then computed in
  memory from Optuna's trials, as before the table existed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from optuna.trial import FrozenTrial

from effscale.search.records import optuna_access
from effscale.search.records.rows import STATE_NAMES, iso_utc, network_key, trial_row
from effscale.storage import summaries as sql
from effscale.storage.tables import SUMMARY_FIELDS, TRIAL_SUMMARIES_TABLE
from effscale.storage.tables import trial_summaries as T

LOGGER = logging.getLogger("effscale.search")
_JSON_FIELDS = ("aliases", "budget")
_TIME_FIELDS = ("datetime_start", "datetime_complete")
_INT64 = 2**63

# ---------------------------------------------------------------------------------------------
# a trial <-> its stored row


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else (value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value)


def summary_record(trial: FrozenTrial, *, study_id: int, source: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The stored row of ``trial``: `trial_row`'s fields as columns, with ``source`` (for an
    unfinished trial, the size of the Optuna record it was read from; see `find_stale`)."""
    row = trial_row(trial)
    record: dict[str, Any] = {"trial_id": optuna_access.trial_id(trial), "study_id": study_id,
                              "network": network_key(row), **{k: 0 for k in sql.SOURCE}, **(source or {})}
    for name, _ in SUMMARY_FIELDS:
        value = row[name]
        if name in _JSON_FIELDS:
            value = None if value is None else json.dumps(value)
        elif name in _TIME_FIELDS:
            value = _utc(getattr(trial, name))
        elif isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
            value = None  # beyond a BIGINT: stored as unknown rather than refused
        record[name] = value
    return record


def row_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row back as `trial_row` shows it."""
    row = {}
    for name, _ in SUMMARY_FIELDS:
        value = record[name]
        if name in _JSON_FIELDS:
            value = json.loads(value) if value is not None else ([] if name == "aliases" else None)
        elif name in _TIME_FIELDS:
            value = iso_utc(value)
        row[name] = value
    return row


# ---------------------------------------------------------------------------------------------
# which rows are out of step with Optuna

_tables = optuna_access.rdb_tables()
_trials, _attrs, _steps, _params = _tables.trials, _tables.user_attrs, _tables.steps, _tables.params
_STATE = sa.case(*((_trials.c.state == s, name) for s, name in STATE_NAMES.items()), else_="unknown")
_JOINED = sa.and_(_trials.c.trial_id == T.c.trial_id, _trials.c.study_id == T.c.study_id)


def _size(table: Any, column: Any = None) -> Any:
    what = sa.func.coalesce(sa.func.sum(sa.func.length(column)), 0) if column is not None else sa.func.count()
    return sa.select(what).where(table.c.trial_id == _trials.c.trial_id).scalar_subquery()


# The size of an unfinished trial's Optuna record: what grows as a worker reports or a tool writes.
_SOURCE = {"src_attrs": _size(_attrs), "src_chars": _size(_attrs, _attrs.c.value_json),
           "src_steps": _size(_steps), "src_params": _size(_params)}


@dataclass
class Stale:
    """Trials whose row must be written again (id -> the size of its record when unfinished),
    and rows whose trial is gone."""

    trials: dict[int, dict[str, int]] = field(default_factory=dict)
    orphans: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.trials or self.orphans)


def find_stale(connection: sa.Connection, study_id: int) -> Stale:
    """The rows of ``study_id`` out of step with Optuna's tables. When the study's trials and rows
    are as many, only the rows of unfinished trials are compared with their trials (an indexed
    read of a few rows); otherwise the new trials are the ones above the highest summarized id, or,
    when that does not account for them all, every trial is compared."""
    n_trials = connection.execute(sa.select(sa.func.count()).where(_trials.c.study_id == study_id)).scalar()
    n_rows, top = connection.execute(
        sa.select(sa.func.count(), sa.func.max(T.c.trial_id)).where(T.c.study_id == study_id)).one()
    changed = sa.or_(T.c.number != _trials.c.number, T.c.state != _STATE,
                     *(T.c[name] != size for name, size in _SOURCE.items()))
    stale, orphans = set(), set()
    query = (sa.select(T.c.trial_id, _trials.c.trial_id.is_(None)).select_from(T.outerjoin(_trials, _JOINED))
             .where(T.c.study_id == study_id, T.c.state.in_(sql.UNFINISHED),
                    sa.or_(_trials.c.trial_id.is_(None), changed)))
    for trial_id, gone in connection.execute(query):
        (orphans if gone else stale).add(trial_id)
    if n_trials != n_rows or orphans:
        fresh = {r[0] for r in connection.execute(
            sa.select(_trials.c.trial_id).where(_trials.c.study_id == study_id, _trials.c.trial_id > (top or -1)))}
        if n_rows + len(fresh) == n_trials and not orphans:
            stale |= fresh
        else:
            stale |= _compare_all(connection, study_id)
            orphans |= {r[0] for r in connection.execute(
                sa.select(T.c.trial_id).select_from(T.outerjoin(_trials, _JOINED))
                .where(T.c.study_id == study_id, _trials.c.trial_id.is_(None)))}
    return Stale(_sources(connection, stale), orphans)


def _compare_all(connection: sa.Connection, study_id: int) -> set[int]:
    """Every trial of the study whose row is missing, another trial's, or of another state."""
    mismatch = sa.or_(T.c.trial_id.is_(None), T.c.number != _trials.c.number, T.c.state != _STATE)
    query = (sa.select(_trials.c.trial_id).select_from(_trials.outerjoin(T, _JOINED))
             .where(_trials.c.study_id == study_id, mismatch))
    return {r[0] for r in connection.execute(query)}


def _sources(connection: sa.Connection, ids: Collection[int]) -> dict[int, dict[str, int]]:
    """id -> the size of the trial's record now when it is unfinished ({} when finished)."""
    out: dict[int, dict[str, int]] = {i: {} for i in ids}
    ids = sorted(ids)
    for start in range(0, len(ids), 500):
        query = (sa.select(_trials.c.trial_id, *(size.label(k) for k, size in _SOURCE.items()))
                 .where(_trials.c.trial_id.in_(ids[start:start + 500]), _STATE.in_(sql.UNFINISHED)))
        for row in connection.execute(query):
            out[row.trial_id] = {k: int(row._mapping[k]) for k in _SOURCE}
    return out


def has_table(connection: sa.Connection) -> bool:
    return sa.inspect(connection).has_table(TRIAL_SUMMARIES_TABLE)


# ---------------------------------------------------------------------------------------------
# the driver's write

_FOUND: set[str] = set()  # URLs whose summary table this process has seen (it is never dropped)


def table_ready(url: str, connection: sa.Connection) -> bool:
    """Whether the summary table exists in the database of ``url`` (looked for until found)."""
    if url not in _FOUND and sa.inspect(connection).has_table(TRIAL_SUMMARIES_TABLE):
        _FOUND.add(url)
    return url in _FOUND


def record_trial(study: Any, trial: Any) -> bool:
    """Write the summary of ``trial`` (a `FrozenTrial` or live `Trial` of ``study``) as Optuna
    stores it now: the driver calls this right after the trial's result. Never raises: a summary
    not written (no table yet, the database gone meanwhile) is repaired by the next reader, so a
    search never stops for one. Returns whether it was written."""
    from effscale.storage.engine import get_engine

    rdb = optuna_access.rdb_storage(optuna_access.storage_of(study))
    if rdb is None:
        return False
    tid = optuna_access.trial_id(trial)
    try:
        with get_engine(rdb.url).begin() as connection:
            if not table_ready(rdb.url, connection):
                return False
            source = _sources(connection, [tid])[tid]  # read before the trial: never newer than the row
            record = summary_record(rdb.get_trial(tid), study_id=optuna_access.study_id(study), source=source)
            sql.upsert(connection, [record])
        return True
    except Exception as exc:  # noqa: BLE001 - an index entry; the next read repairs it
        LOGGER.warning("trial summary %d not written (%s); the next read repairs it", tid, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return False
