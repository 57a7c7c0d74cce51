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
            if value is None:
                value = [] if name == "aliases" else None
            else:  # most rows have no aliases: a page of them decodes no JSON for those
                value = [] if value == "[]" else json.loads(value)
        elif name in _TIME_FIELDS:
            value = iso_utc(value)
        row[name] = value
    return row


# ---------------------------------------------------------------------------------------------
# which rows are out of step with Optuna

_tables = optuna_access.rdb_tables()
_trials, _attrs, _steps, _params = _tables.trials, _tables.user_attrs, _tables.steps, _tables.params
_STATE = sa.case(*((_trials.c.state == s, name) for s, name in STATE_NAMES.items()), else_="unknown")


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


# What a row must agree on with its trial: the number, the state and, while unfinished, the size of
# its record (`_SOURCE`; zeros for a finished trial, whose record never changes again).
Key = tuple[int, str, tuple[int, ...]]


def find_stale(connection: sa.Connection, study_id: int, above: int = -1,
               pending: Collection[int] = ()) -> tuple[Stale, dict[int, Key]]:
    """The rows of ``study_id`` out of step with Optuna's tables among its trials with an id above
    ``above`` or in ``pending`` (the caller knows every other trial at or below ``above`` is
    finished and summarized: such a row never changes, `SummaryReader`), and those trials' `Key`s.
    Indexed reads of those trials, of the sizes of the unfinished ones' records, and of their rows;
    compared here."""
    def among(table: Any) -> list[Any]:
        ids = table.c.trial_id > above
        return [table.c.study_id == study_id, sa.or_(ids, table.c.trial_id.in_(sorted(pending))) if pending else ids]

    found = connection.execute(sa.select(_trials.c.trial_id, _trials.c.number, _STATE).where(*among(_trials))).all()
    # The sizes in a read of their own, of the unfinished trials only: in the same statement, the
    # planner prices their subqueries for every trial and PostgreSQL compiles it (JIT) for 100 ms.
    sizes = _sources(connection, [trial_id for trial_id, _, state in found if state in sql.UNFINISHED])
    trials = {trial_id: (number, state, tuple(sizes.get(trial_id, {}).get(k, 0) for k in _SOURCE))
              for trial_id, number, state in found}
    rows = {trial_id: (number, state, tuple(src)) for trial_id, number, state, *src in connection.execute(
        sa.select(T.c.trial_id, T.c.number, T.c.state, *(T.c[name] for name in _SOURCE)).where(*among(T)))}
    stale = Stale()
    for trial_id, (number, state, src) in trials.items():
        row = rows.get(trial_id)
        settled = state not in sql.UNFINISHED
        if row is None or row[:2] != (number, state) or (not settled and row[2] != src):
            stale.trials[trial_id] = {} if settled else dict(zip(_SOURCE, src))
    stale.orphans = set(rows) - set(trials)
    return stale, trials


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
