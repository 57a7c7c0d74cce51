"""A study's trials read through their summaries (`effscale.search.records.summaries`): one page,
the study's counts and its best trial, or its rows, each repaired first.

`SummaryReader` is what the CLI's `effscale trials` and `effscale studies`, the REST API and the
dashboard read trials with. Before it reads a study it repairs the rows out of step with Optuna
(`find_stale`): with ``write=True`` (the server) it writes them, so the read that follows is the
plain indexed query; without (a CLI query: it never writes) it computes them in memory and merges
them into what it reads. A database without the summary table reads every trial from Optuna, in
memory, and creates nothing.

    reader = SummaryReader(open_storage(url, read_only=True), url, write=False)
    total, rows = reader.page(study_id, state="complete", sort="-value", limit=25, offset=0)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exc as sa_exc

from effscale.search.records import optuna_access
from effscale.search.records.summaries import find_stale, row_of, summary_record, table_ready
from effscale.storage import summaries as sql

LOGGER = logging.getLogger("effscale.search")
WRITE_WAIT_MS = 50  # how long a read waits for the write lock to store its repair
_FACT_COLUMNS = ("trial_id", "number", "state", "network", "val_top1", "flops")


@dataclass(frozen=True)
class StudyFacts:
    """What a study's views need from its trials: counts by state, the networks its trials
    started and finished (`effscale.search.records.rows.network_key`), and its best single trial
    (`trial_row`: the highest top-1 of a COMPLETE trial, then the lower FLOPs, then the lower number)."""

    states: dict[str, int]
    networks_started: int = 0
    networks_finished: int = 0
    best: dict[str, Any] | None = None

    @property
    def n_trials(self) -> int:
        return sum(self.states.values())

    @property
    def present(self) -> set[str]:
        """The states some trial is in."""
        return {state for state, n in self.states.items() if n}


@dataclass
class _Repair:
    memory: dict[int, dict[str, Any]] = field(default_factory=dict)  # records not written: merged on read
    hidden: set[int] = field(default_factory=set)  # stored rows not to read (stale, or their trial gone)
    complete: bool = False  # no table: every record is in memory


def _order(sort: str) -> Any:
    """The page order (`effscale.storage.summaries.page`'s) as a sort key of records."""
    column, sign = sql.KEY_COLUMNS[sort.lstrip("-")], -1 if sort.startswith("-") else 1

    def key(record: dict[str, Any]) -> tuple[int, float, int]:
        value = record[column]
        return (1, 0.0, record["number"]) if value is None else (0, sign * value, sign * record["number"])

    return key


def facts_of(records: Iterable[dict[str, Any]]) -> tuple[dict[str, int], int, int, dict[str, Any] | None]:
    """`StudyFacts`' figures from records in memory (`effscale.storage.summaries.counts` and
    `best`, computed the same way): states, networks started, finished, and the best record."""
    records = list(records)
    states = Counter(r["state"] for r in records)
    started = {r["network"] for r in records if r["state"] != "waiting" and r["network"] is not None}
    finished = {r["network"] for r in records if r["state"] in sql.FINISHED and r["network"] is not None}
    complete = [r for r in records if r["state"] == "complete" and r["val_top1"] is not None]
    best = min(complete, key=lambda r: (-r["val_top1"], r["flops"] is None, r["flops"] or 0, r["number"]), default=None)
    return dict(states), len(started), len(finished), best


class SummaryReader:
    """Reads one database's trials through their summaries (see the module docstring)."""

    def __init__(self, storage: Any, url: str, *, write: bool) -> None:
        self.storage = storage  # Optuna's (read-only is enough: trials are read, never written)
        self.url = url
        self.write = write

    def _engine(self) -> Any:
        from effscale.storage.engine import get_engine

        return get_engine(self.url)

    def repair(self, study_id: int) -> _Repair:
        """Bring the study's rows in step with Optuna: written (``write``), else in memory."""
        if optuna_access.rdb_storage(self.storage) is None:  # no Optuna tables: no trials
            return _Repair(complete=True)
        with self._engine().connect() as connection:
            if not table_ready(self.url, connection):
                trials = self.storage.get_all_trials(study_id, deepcopy=False)
                records = (summary_record(t, study_id=study_id) for t in trials)
                return _Repair({r["trial_id"]: r for r in records}, complete=True)
            stale = find_stale(connection, study_id)
        if not stale:
            return _Repair()
        trials = optuna_access.trials_by_id(self.storage, study_id, set(stale.trials))
        records = [summary_record(t, study_id=study_id, source=stale.trials[optuna_access.trial_id(t)]) for t in trials]
        if self.write and self._store(records, stale.orphans):
            return _Repair()
        return _Repair({r["trial_id"]: r for r in records}, set(stale.trials) | stale.orphans)

    def _store(self, records: list[dict[str, Any]], orphans: set[int]) -> bool:
        """Write the repaired rows if the database lets this do so at once: a reader never waits
        behind a writer (a search, another worker repairing the same trials) for more than
        `WRITE_WAIT_MS`; when it would, this read merges them in memory and a later one writes them."""
        try:
            with self._engine().connect() as connection, sql.short_lock_wait(connection, WRITE_WAIT_MS):
                sql.upsert(connection, records)
                sql.delete(connection, orphans)
            return True
        except sa_exc.SQLAlchemyError as exc:  # busy, or a database this server may not write
            LOGGER.info("trial summaries not repaired in storage (%s); computed for this read",
                        " ".join(str(getattr(exc, "orig", None) or exc).split())[:200])
            return False

    def page(self, study_id: int, *, state: str | None, sort: str, limit: int | None,
             offset: int) -> tuple[int, list[dict[str, Any]]]:
        """``(trials matching, the page's rows)``: `effscale.storage.summaries.page`, repaired first."""
        repair = self.repair(study_id)
        total, stored = 0, []
        if not repair.complete:
            ahead = None if limit is None else offset + limit
            with self._engine().connect() as connection:
                total, stored = sql.page(connection, study_id, state=state, sort=sort, exclude=repair.hidden,
                                         limit=limit if not repair.memory else ahead,
                                         offset=offset if not repair.memory else 0)
            if not repair.memory:
                return total, [row_of(r) for r in stored]
        extra = [r for r in repair.memory.values() if state is None or r["state"] == state]
        merged = sorted([*stored, *extra], key=_order(sort))
        end = None if limit is None else offset + limit
        return total + len(extra), [row_of(r) for r in merged[offset:end]]

    def facts(self, study_id: int) -> StudyFacts:
        """The study's `StudyFacts`, repaired first."""
        repair = self.repair(study_id)
        with self._engine().connect() as connection:
            if not repair.memory and not repair.complete:
                counts, best = sql.counts(connection, study_id), sql.best(connection, study_id)
                return StudyFacts(counts["states"], counts["networks_started"], counts["networks_finished"],
                                  row_of(best) if best is not None else None)
            stored = [] if repair.complete else sql.rows_of(connection, study_id, _FACT_COLUMNS, exclude=repair.hidden)
            states, started, finished, best = facts_of([*stored, *repair.memory.values()])
            if best is not None and best["trial_id"] not in repair.memory:
                best = sql.rows_of(connection, study_id, None, ids=[best["trial_id"]])[0]
        return StudyFacts(states, started, finished, row_of(best) if best is not None else None)

    def rows(self, study_id: int) -> list[dict[str, Any]]:
        """Every row of the study (`trial_row`s) in trial-number order, repaired first."""
        repair = self.repair(study_id)
        stored = []
        if not repair.complete:
            with self._engine().connect() as connection:
                stored = sql.rows_of(connection, study_id, None, exclude=repair.hidden)
        return [row_of(r) for r in sorted([*stored, *repair.memory.values()], key=lambda r: r["number"])]

    def race(self, study_id: int, *, values: bool) -> tuple[dict[str, list[tuple[int, str]]], list[tuple[Any, ...]]]:
        """A search's race per network, repaired first: ``(arch_id -> [(number, state)] in number
        order, [(arch_id, repeat, number, val_top1)] of its COMPLETE trials when ``values``)``
        (`effscale.storage.summaries.race_networks` and `race_values`)."""
        repair = self.repair(study_id)
        if not repair.memory and not repair.complete:
            with self._engine().connect() as connection:
                return (sql.race_networks(connection, study_id),
                        sql.race_values(connection, study_id) if values else [])
        networks: dict[str, list[tuple[int, str]]] = {}
        complete = []
        for row in self.rows(study_id):
            if row["confirmation"] or not isinstance(row["arch_id"], str):
                continue
            networks.setdefault(row["arch_id"], []).append((row["number"], row["state"]))
            if values and row["state"] == "complete" and row["val_top1"] is not None:
                complete.append((row["arch_id"], row["repeat"], row["number"], row["val_top1"]))
        return networks, complete
