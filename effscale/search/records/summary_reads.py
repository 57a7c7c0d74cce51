"""A study's trials read through their summaries (`effscale.search.records.summaries`): one page,
the study's counts and its best trial, or its rows, each repaired first.

`SummaryReader` is what the CLI's `effscale trials` and `effscale studies`, the REST API and the
dashboard read trials with. Before it reads a study it repairs the rows out of step with Optuna
(`find_stale`): with ``write=True`` (the server) it writes them, so the read that follows is the
plain indexed query; without (a CLI query: it never writes) it computes them in memory and merges
them into what it reads. A database without the summary table reads every trial from Optuna, in
memory, and creates nothing.

What a process has learnt of a study (`_Known`) makes the next read cheaper without making it less
exact. Every trial at or below its settled id was finished and summarized at an earlier read, and
such a row never changes, so the staleness check reads only the trials above it. Those trials'
`Key`s, with the settled id, are the signature of everything the study's rows hold: while it is
unchanged, the aggregates computed under it (the counts and best trial, a page's totals, the race)
are answered from memory.

    reader = SummaryReader(open_storage(url, read_only=True), url, write=False)
    total, rows = reader.page(study_id, state="complete", sort="-value", limit=25, offset=0)
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from effscale.search.records import optuna_access
from effscale.search.records.summaries import Key, find_stale, row_of, summary_record, table_ready
from effscale.storage import summaries as sql

LOGGER = logging.getLogger("effscale.search")
WRITE_WAIT_MS = 50  # how long a read waits for the write lock to store its repair
# A trial becomes settled (`_Known`) only once a read at least this long ago saw its id: PostgreSQL
# hands out ids before commit, so a transaction may commit a lower id after a higher one is seen;
# one that takes longer than this between the two is not waited for.
SETTLE_S = 2.0
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
    signature: Any = None  # the study's, when its rows are stored in step (`_Known.update`)
    known: _Known | None = None

    def remembered(self, key: Any, compute: Any) -> Any:
        """``compute()``, memoized under the study's signature when there is one."""
        if self.signature is None or self.known is None:
            return compute()
        return self.known.remembered(self.signature, key, compute)


@dataclass
class _Known:
    """What this process has learnt of one study's rows (see the module docstring)."""

    lock: threading.Lock = field(default_factory=threading.Lock)  # guards the fields below
    repairing: threading.Lock = field(default_factory=threading.Lock)  # one thread repairs the study at a time
    settled: int = -1  # every trial of the study with an id at or below this, but ``pending``, is
    pending: frozenset[int] = frozenset()  # finished and summarized; these were unfinished
    guard: tuple[Any, ...] | None = None  # trial ``settled``'s number and start, to see the study is still the one
    seen: deque[tuple[float, int]] = field(default_factory=deque)  # (when, the highest trial id a read saw)
    signature: Any = None  # `_Known.update`'s
    memo: dict[Any, Any] = field(default_factory=dict)  # aggregates computed under ``signature``

    def update(self, read: tuple[int, frozenset[int]], trials: dict[int, Key]) -> Any:
        """Record a read of the trials above ``settled`` and in ``pending`` (``read``: their values
        then) that found their rows in step with ``trials`` (their `Key`s); settle the trials seen
        `SETTLE_S` ago or more; return the study's signature."""
        signature = (read, tuple(sorted(trials.items())))
        with self.lock:
            if read != (self.settled, self.pending):
                return signature  # another thread moved on meanwhile: nothing here to build on
            if signature != self.signature:
                self.signature, self.memo = signature, {}
            now = time.monotonic()
            self.seen.append((now, max(trials, default=self.settled)))
            horizon = self.settled
            while self.seen and now - self.seen[0][0] >= SETTLE_S:
                horizon = max(horizon, self.seen.popleft()[1])
            settled = max((i for i in trials if i <= horizon), default=self.settled)
            settled = max(settled, self.settled)
            pending = frozenset(i for i in trials if i <= settled and trials[i][1] in sql.UNFINISHED)
            if (settled, pending) != (self.settled, self.pending):
                if settled != self.settled:
                    self.settled, self.guard = settled, (trials[settled][0],)  # its start: read by `_settled`
                self.pending = pending
                self.signature, self.memo = None, {}  # the next read's signature is of the new split
            return signature

    def remembered(self, signature: Any, key: Any, compute: Any) -> Any:
        """``compute()``, memoized while the study's signature stays ``signature``."""
        with self.lock:
            if signature == self.signature and key in self.memo:
                return self.memo[key]
        value = compute()
        with self.lock:
            if signature == self.signature:
                self.memo[key] = value
        return value


# Per engine (a database dropped and created again under the same URL is another engine once
# `dispose_engines` has run), per study id.
_KNOWN: weakref.WeakKeyDictionary[Any, dict[int, _Known]] = weakref.WeakKeyDictionary()
_KNOWN_LOCK = threading.Lock()


def _known(engine: Any, study_id: int) -> _Known:
    with _KNOWN_LOCK:
        return _KNOWN.setdefault(engine, {}).setdefault(study_id, _Known())


def _order(sort: str) -> Any:
    """The page order (`effscale.storage.summaries.page`'s) as a sort key of records."""
    column, sign = sql.KEY_COLUMNS[sort.lstrip("-")], -1 if sort.startswith("-") else 1

    def key(record: dict[str, Any]) -> tuple[int, float, int]:
        value = record[column]
        return (1, 0.0, record["number"]) if value is None else (0, sign * value, sign * record["number"])

    return key


def facts_of(records: Iterable[dict[str, Any]]) -> tuple[dict[str, int], int, int, dict[str, Any] | None]:
    """`StudyFacts`' figures from records in memory (`effscale.storage.summaries.state_counts`,
    `network_counts` and `best`, computed the same way): states, networks started, finished, and the
    best record."""
    records = list(records)
    states = Counter(r["state"] for r in records)
    started = {r["network"] for r in records if r["state"] != "waiting" and r["network"] is not None}
    finished = {r["network"] for r in records if r["state"] in sql.FINISHED and r["network"] is not None}
    complete = [r for r in records if r["state"] == "complete" and r["val_top1"] is not None]
    best = min(complete, key=lambda r: (-r["val_top1"], r["flops"] is None, r["flops"] or 0, r["number"]), default=None)
    return dict(states), len(started), len(finished), best


def _stored_facts(connection: Any, study_id: int, by_state: dict[str, dict[str, int]]) -> StudyFacts:
    """`StudyFacts` from the stored rows; ``by_state``: their `state_counts`."""
    (started, finished), best = sql.network_counts(connection, study_id), sql.best(connection, study_id)
    return StudyFacts({state: c["rows"] for state, c in by_state.items()}, started, finished,
                      row_of(best) if best is not None else None)


class SummaryReader:
    """Reads one database's trials through their summaries (see the module docstring)."""

    def __init__(self, storage: Any, url: str, *, write: bool) -> None:
        self.storage = storage  # Optuna's (read-only is enough: trials are read, never written)
        self.url = url
        self.write = write

    def _engine(self) -> Any:
        from effscale.storage.engine import get_engine

        return get_engine(self.url)

    def _reader(self) -> Any:
        from effscale.storage.engine import get_reader

        return get_reader(self.url)

    def repair(self, study_id: int, connection: Any = None) -> _Repair:
        """Bring the study's rows in step with Optuna: written (``write``), else in memory. Reads on
        ``connection`` when given (the caller's, for the read that follows), else on its own."""
        if optuna_access.rdb_storage(self.storage) is None:  # no Optuna tables: no trials
            return _Repair(complete=True)
        if connection is None:
            with self._reader().connect() as connection:
                return self.repair(study_id, connection)
        if not table_ready(self.url, connection):
            trials = self.storage.get_all_trials(study_id, deepcopy=False)
            records = (summary_record(t, study_id=study_id) for t in trials)
            return _Repair({r["trial_id"]: r for r in records}, complete=True)
        known = _known(self._engine(), study_id)
        read = self._settled(connection, study_id, known)
        stale, trials = find_stale(connection, study_id, *read)
        if stale and self.write:
            # One thread of this process repairs a study at a time; the others wait for it, then find
            # nothing left to repair, rather than each reading and writing the same trials.
            with known.repairing:
                connection.rollback()  # end any snapshot: see what the thread before this one wrote
                stale, trials = find_stale(connection, study_id, *read)
                if stale:
                    repair = self._computed(study_id, stale)
                    if not self._store(list(repair.memory.values()), stale.orphans):
                        return repair
                    connection.rollback()
        elif stale:
            return self._computed(study_id, stale)
        return _Repair(signature=known.update(read, trials), known=known)

    @staticmethod
    def _settled(connection: Any, study_id: int, known: _Known) -> tuple[int, frozenset[int]]:
        """``(settled, pending)`` of the study (`_Known`), once trial ``settled`` is seen to be still
        this study's, with the same number and start (else nothing is settled: the study was
        deleted, or the database replaced)."""
        with known.lock:
            read, guard = (known.settled, known.pending), known.guard
        if read[0] < 0:
            return read
        trials = optuna_access.rdb_tables().trials
        found = connection.execute(sa.select(trials.c.study_id, trials.c.number, trials.c.datetime_start)
                                   .where(trials.c.trial_id == read[0])).first()
        if found is not None and found[0] == study_id and guard is not None and tuple(found[1:1 + len(guard)]) == guard:
            if len(guard) == 1:
                with known.lock:
                    if known.settled == read[0]:
                        known.guard = tuple(found[1:])
            return read
        with known.lock:
            known.settled, known.pending, known.guard, known.signature, known.memo = -1, frozenset(), None, None, {}
            known.seen.clear()
        return -1, frozenset()

    def _computed(self, study_id: int, stale: Any) -> _Repair:
        """The stale rows computed from Optuna's records, to merge into what is read."""
        trials = optuna_access.trials_by_id(self.storage, study_id, set(stale.trials))
        records = [summary_record(t, study_id=study_id, source=stale.trials[optuna_access.trial_id(t)]) for t in trials]
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
        with self._reader().connect() as connection:
            repair = self.repair(study_id, connection)
            total, stored = 0, []
            if not repair.complete:
                ahead = None if limit is None else offset + limit
                counts = sql.page_counts(self._states(connection, study_id, repair), state=state, sort=sort)
                total, stored = sql.page(connection, study_id, state=state, sort=sort, exclude=repair.hidden,
                                         limit=limit if not repair.memory else ahead,
                                         offset=offset if not repair.memory else 0, counts=counts)
        if not repair.complete and not repair.memory:
            return total, [row_of(r) for r in stored]
        extra = [r for r in repair.memory.values() if state is None or r["state"] == state]
        merged = sorted([*stored, *extra], key=_order(sort))
        end = None if limit is None else offset + limit
        return total + len(extra), [row_of(r) for r in merged[offset:end]]

    @staticmethod
    def _states(connection: Any, study_id: int, repair: _Repair) -> dict[str, dict[str, int]]:
        """The stored rows' `state_counts` (one grouped read per signature: pages and facts share it)."""
        return repair.remembered("states", lambda: sql.state_counts(connection, study_id, exclude=repair.hidden))

    def facts(self, study_id: int) -> StudyFacts:
        """The study's `StudyFacts`, repaired first."""
        with self._reader().connect() as connection:
            repair = self.repair(study_id, connection)
            if not repair.memory and not repair.complete:
                by_state = self._states(connection, study_id, repair)
                return repair.remembered("facts", lambda: _stored_facts(connection, study_id, by_state))
            stored = [] if repair.complete else sql.rows_of(connection, study_id, _FACT_COLUMNS, exclude=repair.hidden)
            states, started, finished, best = facts_of([*stored, *repair.memory.values()])
            if best is not None and best["trial_id"] not in repair.memory:
                best = sql.rows_of(connection, study_id, None, ids=[best["trial_id"]])[0]
        return StudyFacts(states, started, finished, row_of(best) if best is not None else None)

    def rows(self, study_id: int) -> list[dict[str, Any]]:
        """Every row of the study (`trial_row`s) in trial-number order, repaired first."""
        with self._reader().connect() as connection:
            repair = self.repair(study_id, connection)
            stored = []
            if not repair.complete:
                stored = sql.rows_of(connection, study_id, None, exclude=repair.hidden)
        return [row_of(r) for r in sorted([*stored, *repair.memory.values()], key=lambda r: r["number"])]

    def race(self, study_id: int, *, values: bool) -> tuple[dict[str, list[tuple[int, str]]], list[tuple[Any, ...]]]:
        """A search's race per network, repaired first: ``(arch_id -> [(number, state)] in number
        order, [(arch_id, repeat, number, val_top1)] of its COMPLETE trials when ``values``)``
        (`effscale.storage.summaries.race_networks` and `race_values`)."""
        with self._reader().connect() as connection:
            repair = self.repair(study_id, connection)
            if not repair.memory and not repair.complete:
                return repair.remembered(("race", values), lambda: (
                    sql.race_networks(connection, study_id), sql.race_values(connection, study_id) if values else []))
        networks: dict[str, list[tuple[int, str]]] = {}
        complete = []
        for row in self.rows(study_id):
            if row["confirmation"] or not isinstance(row["arch_id"], str):
                continue
            networks.setdefault(row["arch_id"], []).append((row["number"], row["state"]))
            if values and row["state"] == "complete" and row["val_top1"] is not None:
                complete.append((row["arch_id"], row["repeat"], row["number"], row["val_top1"]))
        return networks, complete
