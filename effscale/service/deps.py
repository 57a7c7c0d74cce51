"""The service's shared state (storage, store, launcher, token) and the routes' dependencies.

Every read opens the database read-only (`open_storage(read_only=True)`, `ProjectStore(read_only=True)`):
serving a database never creates or migrates a table, nor a SQLite file that is not there yet
(it reads as empty until a search writes it). Two writes are deliberate: cancelling a search writes
its flag (`ServiceState.writer`), and reading a study's trials repairs the trial summaries that are
out of step with Optuna, in the summary table when the database has one (`ServiceState.trials`,
`effscale.search.records.summary_reads`). A study's views read its trials only through those
summaries: counts, the best trial and pages from indexed queries, never every trial. The studies
themselves (names, ids, attributes, directions, trial counts) are read in SQL
(`effscale.search.records.catalog`), one statement each on the reader engine (`get_reader`), not
through Optuna's storage API, whose every call is an ORM session with its own commit."""

from __future__ import annotations

import functools
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import optuna
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from effscale.errors import UsageError
from effscale.search.records import catalog, optuna_access
from effscale.search.records.schema import COMPARE_ATTR, CONFIRMATION_STUDY_ATTR, DRIVER_ATTR, FRONTIER_ATTR
from effscale.search.records.status import (
    confirmation_of,
    is_comparison,
    side_kind,
    status_row,
    study_status,
)
from effscale.search.records.summary_reads import StudyFacts, SummaryReader
from effscale.service.policy import TOKEN_ENV, LaunchPolicy
from effscale.storage import ProjectStore, SearchRecord, open_storage, redact_url
from effscale.storage.engine import get_reader

NO_TOKEN_MESSAGE = (
    "launching and cancelling searches and reading their logs is disabled because the server has no token: "
    f"start it with {TOKEN_ENV} set (e.g. `export {TOKEN_ENV}=$(openssl rand -hex 32)` "
    f"then `effscale serve --storage URL`) and send the header `Authorization: Bearer <token>`"
)


_UNREAD = object()  # `ServiceState._status_of`: the caller has not read the row


class StudyNotFound(LookupError):
    """No study (and no search record or launch) with that name."""


@dataclass
class ServiceState:
    storage_url: str
    token: str | None
    ray_address: str | None
    launcher: Any
    policy: LaunchPolicy = field(default_factory=LaunchPolicy)
    _optuna: optuna.storages.BaseStorage | None = None
    _store: ProjectStore | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def redacted_url(self) -> str:
        return redact_url(self.storage_url)

    def storage(self) -> optuna.storages.BaseStorage:
        """Optuna's storage, opened read-only on first use (`UsageError` when the database is
        unreachable). Until Optuna's tables exist it is an empty one, opened again on each call."""
        with self._lock:
            if self._optuna is not None:
                return self._optuna
            storage = open_storage(self.storage_url, read_only=True)
            if isinstance(storage, optuna.storages.RDBStorage):
                self._optuna = storage
            return storage

    def store(self) -> ProjectStore:
        """effscale's tables, read-only (they are looked for again until found)."""
        with self._lock:
            if self._store is None:
                self._store = ProjectStore(self.storage_url, read_only=True)
            return self._store

    def writer(self) -> ProjectStore:
        """effscale's tables for a write (a cancel request); creates or migrates them if needed."""
        return ProjectStore(self.storage_url)

    def trials(self) -> SummaryReader:
        """The studies' trials through their summaries, repaired in the summary table when the
        database has one (else in memory: nothing is created)."""
        return SummaryReader(self.storage(), self.storage_url, write=True)

    def facts(self, study_id: int | None) -> Callable[[], StudyFacts]:
        """The study's `StudyFacts`, read when called."""
        return lambda: self.trials().facts(study_id) if study_id is not None else StudyFacts({})

    def trial_states(self, study_ids: Iterable[int]) -> dict[int, StudyFacts]:
        """Trials by state of each study, counted in Optuna's table in one read (no summary needed:
        a comparison's or a confirmation round's link shows only these)."""
        with self.connect() as connection:
            counts = catalog.running_and_all(connection, study_ids)
        return {i: StudyFacts({"all": n - running, "running": running}) for i, (running, n) in counts.items()}

    def connect(self) -> Any:
        """A connection for the catalog's reads (`effscale.search.records.catalog`)."""
        return get_reader(self.storage_url).connect()

    def _studies(self) -> list[catalog.CatalogStudy]:
        """Every study in Optuna's tables (none before they exist)."""
        if optuna_access.rdb_storage(self.storage()) is None:
            return []
        with self.connect() as connection:
            return catalog.all_studies(connection)

    # -- reads --------------------------------------------------------------------------

    def study_names(self) -> list[str]:
        """The searches: every study but the comparisons (`comparisons`) and the searches'
        confirmation rounds (`confirmations`), then searches not yet a study."""
        names = [s.name for s in self._studies() if side_kind(s.user_attrs) is None]
        for record in self.store().list_searches():
            # A comparison keeps its status row in the same table (the search's engine runs it).
            if record.study_name not in names and side_kind(record.config or {}) is None:
                names.append(record.study_name)
        for launch in self.launcher.list():
            if launch["study_name"] not in names:
                names.append(launch["study_name"])
        return names

    def _study(self, connection: Any, name: str) -> catalog.CatalogStudy | None:
        """Study ``name`` as a search: None for a frontier too (a multi-objective study, served at
        /api/frontiers, not as a search)."""
        if optuna_access.rdb_storage(self.storage()) is None:
            return None
        found = catalog.study_by_name(connection, name)
        return None if found is None or isinstance(found.user_attrs.get(FRONTIER_ATTR), dict) else found

    def study_id(self, name: str) -> int | None:
        """The id of study ``name``; None for a frontier too (see `_study`)."""
        if optuna_access.rdb_storage(self.storage()) is None:
            return None
        with self.connect() as connection:
            return catalog.study_id(connection, name, unless=FRONTIER_ATTR)

    def find(self, name: str) -> int | None:
        """The Optuna study id of ``name`` (None while a launched search has written nothing);
        `StudyNotFound` when nothing by that name exists. Reads no trials."""
        study_id = self.study_id(name)
        if study_id is None and self.store().get_search(name) is None and self.launcher.get(name) is None:
            raise StudyNotFound(name)
        return study_id

    def _driver(self, connection: Any, study_id: int | None, record: SearchRecord | None) -> dict[str, Any] | None:
        """The driver recorded on the study with id ``study_id``, read only while its status row
        says running (what `study_status` needs to tell a live driver from a dead one)."""
        if record is None or record.status != "running" or study_id is None:
            return None
        driver = catalog.system_attr(connection, study_id, DRIVER_ATTR)
        return driver if isinstance(driver, dict) else None

    def driver(self, name: str, record: SearchRecord | None) -> dict[str, Any] | None:
        """The driver recorded on study ``name`` while its status row ``record`` says running."""
        if record is None or record.status != "running":
            return None
        with self.connect() as connection:
            found = self._study(connection, name)
            return self._driver(connection, found.study_id if found is not None else None, record)

    def status_of(self, name: str, study_id: int | None,
                  user_attrs: dict[str, Any]) -> tuple[SearchRecord | None, dict[str, Any] | None]:
        """`_status_of` on a connection of its own."""
        with self.connect() as connection:
            return self._status_of(connection, name, study_id, user_attrs)

    def _status_of(self, connection: Any, name: str, study_id: int | None, user_attrs: dict[str, Any],
                   own: Any = _UNREAD) -> tuple[SearchRecord | None, dict[str, Any] | None]:
        """The status row of study ``name`` (a confirmation round's is its search's) and the driver
        of that row's study: what `study_status` reads besides the study itself. ``own``: study
        ``name``'s own row (`ProjectStore.get_search`), when the caller has read it already."""
        row = status_row(name, user_attrs)
        record = own if row == name and own is not _UNREAD else self.store().get_search(row)
        if row != name:
            found = self._study(connection, row) if record is not None and record.status == "running" else None
            study_id = found.study_id if found is not None else None
        return record, self._driver(connection, study_id, record)

    def load(self, name: str) -> "StudyData":
        """Everything about one study; `StudyNotFound` when nothing by that name exists."""
        with self.connect() as connection:
            study = self._study(connection, name)
            record = self.store().get_search(name)
            launch = self.launcher.get(name)
            if study is None and record is None and launch is None:
                raise StudyNotFound(name)
            result = self.store().load_result(name) if record is not None else None
            if study is None:
                return StudyData(name, None, record, launch, {}, [], self.facts(None), result, record,
                                 self._driver(connection, None, record))
            return StudyData(
                name,
                study.study_id,
                record,
                launch,
                study.user_attrs,
                catalog.directions(connection, study.study_id),
                self.facts(study.study_id),
                result,
                *self._status_of(connection, name, study.study_id, study.user_attrs, record),
            )

    def _comparison(self, connection: Any, study: catalog.CatalogStudy, facts: StudyFacts) -> "ComparisonData":
        return ComparisonData(study.name, study.study_id, study.user_attrs, facts,
                              *self._status_of(connection, study.name, study.study_id, study.user_attrs))

    def comparisons(self, *, search: str | None = None) -> list["ComparisonData"]:
        """Every comparison study (`effscale compare`), oldest first; only ``search``'s when given."""
        found = [s for s in self._studies() if isinstance(identity := s.user_attrs.get(COMPARE_ATTR), dict)
                 and (search is None or identity.get("search") == search)]
        states = self.trial_states(s.study_id for s in found)
        with self.connect() as connection:
            return [self._comparison(connection, s, states[s.study_id]) for s in found]

    def load_comparison(self, name: str) -> "ComparisonData":
        """One comparison; `StudyNotFound` when no comparison has that name (a search is not one)."""
        with self.connect() as connection:
            study = self._study(connection, name)
            if study is None or not is_comparison(study.user_attrs):
                raise StudyNotFound(name)
            return self._comparison(connection, study, self.trial_states([study.study_id])[study.study_id])

    def confirmations(self, search: str) -> list["ConfirmationData"]:
        """``search``'s confirmation rounds (each a study linked to it by `CONFIRMATION_STUDY_ATTR`,
        one per budget), oldest first. A search stored before keeps them among its own trials."""
        found = [s for s in self._studies() if confirmation_of(s.user_attrs) == search]
        states = self.trial_states(s.study_id for s in found)
        rounds = []
        for study in found:
            link = study.user_attrs[CONFIRMATION_STUDY_ATTR]
            budget = link.get("budget") if isinstance(link.get("budget"), dict) else {}
            rounds.append(ConfirmationData(study.name, study.study_id, budget, states[study.study_id]))
        return rounds


@dataclass
class StudyData:
    name: str
    study_id: int | None
    record: SearchRecord | None
    launch: dict[str, Any] | None
    user_attrs: dict[str, Any]
    directions: list[str]
    read_facts: Callable[[], StudyFacts]  # its trials' counts and best trial (summaries), read on first use
    result: dict[str, Any] | None = None  # the stored verdict (`ProjectStore.load_result`)
    status_record: SearchRecord | None = None  # the row its status is in: its own (a confirmation round's: its search's)
    driver: dict[str, Any] | None = None  # the driver recorded on that row's study, while the row says running

    @functools.cached_property
    def facts(self) -> StudyFacts:
        return self.read_facts()

    @property
    def status(self) -> str:
        """`effscale.search.records.status.study_status`: the one rule (which reads the trials' states
        only for a study without a status row: only then are they counted)."""
        return study_status(record=self.status_record, launch=self.launch, user_attrs=self.user_attrs,
                            states=self.facts.present if self.status_record is None else (), driver=self.driver)


@dataclass
class ComparisonData:
    name: str
    study_id: int
    user_attrs: dict[str, Any]  # the identity (`COMPARE_ATTR`) and, once done, the result
    facts: StudyFacts  # `ServiceState.trial_states`
    record: SearchRecord | None = None  # its status row (None: a comparison stored before it had one)
    driver: dict[str, Any] | None = None  # the driver recorded on its study, while the row says running

    @property
    def status(self) -> str:
        """`effscale.search.records.status.study_status`: the one rule."""
        return study_status(record=self.record, user_attrs=self.user_attrs, states=self.facts.present, driver=self.driver)


@dataclass
class ConfirmationData:
    """A search's confirmation round: its own study, at one budget."""

    name: str
    study_id: int
    budget: dict[str, Any]
    facts: StudyFacts  # `ServiceState.trial_states`


def get_state(request: Request) -> ServiceState:
    return request.app.state.effscale


def not_found(what: str) -> HTTPException:
    return HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=what)


def _no_study(state: ServiceState, name: str) -> HTTPException:
    return not_found(f"study {name!r} not found in storage {state.redacted_url}: GET /api/studies lists them")


def load_study(study_name: str, state: ServiceState = Depends(get_state)) -> StudyData:
    """Everything about the study (its trials' counts read on first use)."""
    try:
        return state.load(study_name)
    except StudyNotFound:
        raise _no_study(state, study_name) from None


def _no_comparison(state: ServiceState, name: str) -> HTTPException:
    return not_found(f"comparison {name!r} not found in storage {state.redacted_url}: GET /api/comparisons lists them")


def load_comparison(comparison_name: str, state: ServiceState = Depends(get_state)) -> ComparisonData:
    try:
        return state.load_comparison(comparison_name)
    except StudyNotFound:
        raise _no_comparison(state, comparison_name) from None


@dataclass
class StudyRef:
    name: str
    study_id: int | None  # None: a launched search that has not created its study yet


def find_study(study_name: str, state: ServiceState = Depends(get_state)) -> StudyRef:
    """The study's name and id only, for routes that read a few trials (a 404 as `load_study`)."""
    try:
        return StudyRef(study_name, state.find(study_name))
    except StudyNotFound:
        raise _no_study(state, study_name) from None


_bearer = HTTPBearer(auto_error=False, description=f"the server's {TOKEN_ENV}")


def require_token(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    state: ServiceState = Depends(get_state),
) -> None:
    """Bearer-token check for the endpoints that spend compute (launch, cancel) or show a search's
    output (its log)."""
    if not state.token:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=NO_TOKEN_MESSAGE)
    if credentials is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=f"missing token: send the header `Authorization: Bearer <token>` with the server's {TOKEN_ENV}",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not secrets.compare_digest(credentials.credentials.encode("utf-8", "replace"), state.token.encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=f"wrong token: send the {TOKEN_ENV} the server was started with",
            headers={"WWW-Authenticate": "Bearer"},
        )


__all__ = [
    "ComparisonData",
    "ConfirmationData",
    "NO_TOKEN_MESSAGE",
    "TOKEN_ENV",
    "ServiceState",
    "StudyData",
    "StudyNotFound",
    "StudyRef",
    "UsageError",
    "find_study",
    "get_state",
    "load_comparison",
    "load_study",
    "not_found",
    "require_token",
]
