"""The one engine under a search and a comparison: a session that joins Ray, plans what each trial
asks of it, opens the database, keeps the run's status and heartbeat, runs the trials under
Ctrl-C, SIGTERM and cancel, and records how the run ended.

    with open_session(target) as session:    # Ray joined, trials planned on its nodes (memory, batch,
                                             # GPUs; refusals here), the database opened; a run whose
                                             # driver is alive elsewhere refused
        start(session, create_study=..., config=...)  # the first writes: the study, the status row
                                             # "running", the driver claimed, orphans reaped
        run(session, stages, ...)            # the Ray runner, heartbeat and cancel; a stop recorded
        ...                                  # the caller stores what the run concluded
        finish(session)                      # status "completed"

A search (`effscale.search.driver`) and a comparison (`effscale.search.compare.run`) differ
only in what they train and what they conclude, so both get the same guarantees: a second driver
is refused while the first beats its heart; the RUNNING trials of a driver that died (SIGKILL)
are failed as orphans and trained again by the next run; Ctrl-C and SIGTERM stop the run with
status ``interrupted`` and exit 130 / 143, and the same command resumes it; a cancel request
stops it as ``cancelled``; a database outage is ridden out for ``--db-timeout``; each trial asks
Ray for its measured memory and its GPU share (``--gpus-per-trial``), and a dying worker is
retried ``--max-retries`` times.

Status: every run has one row in effscale's ``effscale_searches`` table under its study's name
(`effscale.storage.ProjectStore`): its status, heartbeat, error and cancel flag. A search's row
holds its configuration; a comparison's holds ``{COMPARE_ATTR: identity}``, which is how readers
tell the two apart. A reader derives the status from the row (`effscale.search.records.status`): a
row left "running" by a driver that died reads "interrupted".
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from effscale.errors import SearchFailed, SearchInterrupted, UsageError


@dataclass(frozen=True)
class RunTarget:
    """What a session runs, before anything is joined or written."""

    kind: str  # "search" or "comparison": the word its messages use
    name: str  # its study's name, and its status row's
    storage_url: str
    settings: Any  # SearchOptions or CompareOptions: ray_address, connect_timeout, db_timeout, cpus_per_trial,
    #                max_concurrent, max_retries (and gpus_per_trial, which `plan_trials` resolves)
    recipe: Any  # effscale.trainer.ProxyRecipe, resolved: what the plan fits each trial's batch and lr from
    plan_trials: Callable[[], Any]  # -> effscale.search.planning.resources.Plan, on the Ray just joined
    open_study: Callable[[Any], Any]  # optuna storage -> the run's study (None: a new run); UsageError for another's


@dataclass
class Session:
    """A run joined to Ray and the database."""

    target: RunTarget
    resources: Any  # effscale.search.execution.cluster.Resources, GPUs resolved on the cluster joined
    storage: Any  # optuna storage (retrying)
    store: Any  # effscale.storage.ProjectStore (retrying)
    trial_plan: Any  # effscale.search.planning.resources.Plan: memory, concurrency and time per network
    fit: Any  # effscale.search.planning.resources.TrialFit: the batch, lr and Ray memory every trial uses
    study: Any = None  # optuna.Study, once `start` has run (or found it)
    record: Any = None  # the status row before this run (None: a new run)
    reaped: int = 0
    log_path: Path | None = None
    linked: list[Any] = field(default_factory=list)  # other studies this run writes to (a confirmation round)

    @property
    def name(self) -> str:
        return self.target.name


@contextlib.contextmanager
def open_session(target: RunTarget) -> Iterator[Session]:
    """Join or start Ray, fit the trials to its nodes (a network that fits no node is refused here,
    before anything is written) and open the database; refuse a run whose driver is alive
    elsewhere. On leaving with an error, the status row (if this run wrote one) records it; a local
    Ray this call started is shut down either way."""
    from effscale.search.execution.cluster import Resources, check_fits, ensure_ray, shutdown_ray

    settings = target.settings
    started_ray = ensure_ray(settings.ray_address, connect_timeout=settings.connect_timeout)
    try:
        trial_plan = target.plan_trials()
        resources = Resources(settings.cpus_per_trial, trial_plan.gpus_per_trial, settings.max_concurrent,
                              settings.max_retries)
        check_fits(resources)
        session = _open_database(target, resources, trial_plan)
        try:
            yield session
        except BaseException as exc:
            _record_failure(session, exc)
            raise
    finally:
        if started_ray:
            shutdown_ray()


def _open_database(target: RunTarget, resources: Any, trial_plan: Any) -> Session:
    import optuna

    from effscale.search.records.liveness import driver_alive
    from effscale.storage import ProjectStore, open_storage
    from effscale.storage.retry import RetryingStorage, retrying

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress view speaks for the study
    timeout = target.settings.db_timeout
    storage = RetryingStorage(optuna.storages.get_storage(open_storage(target.storage_url)), timeout_s=timeout)
    store = retrying(ProjectStore(target.storage_url), timeout_s=timeout)
    existing = target.open_study(storage)
    record = store.get_search(target.name)
    if existing is not None and record is not None and record.status == "running" and driver_alive(
        existing, record.heartbeat_at
    ):
        raise UsageError(
            f"{target.kind} {target.name!r} is already running (its driver beat "
            f"{time.time() - record.heartbeat_at.timestamp():.0f}s ago); wait for it, or cancel it first"
        )
    return Session(target, resources, storage, store, trial_plan, trial_plan.fit(target.recipe),
                   study=existing, record=record)


def _record_failure(session: Session, exc: BaseException) -> None:
    if session.record is None and session.study is None:
        return  # nothing written yet
    from effscale.storage.retry import DatabaseUnavailable

    if isinstance(exc, (UsageError, SearchFailed, DatabaseUnavailable)):
        return  # the stage that raised it recorded the outcome already (or the database is gone)
    # A Ctrl-C outside the trials' signal handling (while the verdict is written) is still a stop.
    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    try:
        session.store.set_status(session.name, status, error=f"{type(exc).__name__}: {exc}")
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


def start(session: Session, *, create_study: Callable[[Any], Any], config: dict[str, Any],
          linked: Sequence[Any] = ()) -> None:
    """The first writes: create (or resume) the study and its status row, claim the driver, and
    fail the orphans a dead driver left RUNNING in the study and in ``linked`` ones (they will be
    trained again)."""
    from effscale.search.execution.logs import search_log_path
    from effscale.search.records.liveness import claim_driver
    from effscale.search.records.study import reap_orphans

    if session.study is None:
        session.study = create_study(session.storage)
    claim_driver(session.study)  # before the row says running: a reader never sees the dead one's pid then
    if session.record is None:
        session.store.create_search(session.name, config=config, status="running")
    session.store.set_status(session.name, "running")
    session.linked = [s for s in linked if s is not None]
    session.reaped = sum(reap_orphans(s) for s in (session.study, *session.linked))
    session.log_path = search_log_path(session.name)


def run(session: Session, stages: Sequence[Any], *, baseline: str, stem: str, recipe: Any, data: Any,
        progress: bool | None = None, scheduler: str = "none", grace_period: int = 1,
        partial: str = "") -> None:
    """Run ``stages`` (`effscale.search.execution.execute.Stage`) on Ray, beating the heart and
    polling the cancel flag. A signal, a cancel request or a database outage stops the run: its
    running trials are FAIL with the reason, the status row says it, and `SearchInterrupted`
    carries the exit code (130 for SIGINT, 143 for SIGTERM). ``partial`` says what the stopped run
    does not emit."""
    from effscale.search.execution.execute import execute
    from effscale.search.records.liveness import Heartbeat

    name, store = session.name, session.store
    outcome = execute(
        name=name, stages=stages, baseline=baseline, stem=stem, recipe=recipe, data=data,
        resources=session.resources, log_path=session.log_path, progress=progress, reaped=session.reaped,
        scheduler=scheduler, grace_period=grace_period, cancel_requested=Heartbeat(store, name),
        on_forced_stop=lambda: store.set_status(name, "interrupted", error="interrupted; Ray stopped with the driver"),
    )
    if outcome.stop_reason is None:
        return
    reason = outcome.stop_reason
    store.set_status(name, reason, error=f"{reason} with {outcome.stopped_trials} trials running")
    raise SearchInterrupted(
        f"{session.target.kind} {name!r} was {reason} ({outcome.stopped_trials} running trials recorded as FAIL "
        f"'{reason}'); {partial}re-run the same command to resume it",
        exit_code=outcome.exit_code,
    )


def finish(session: Session) -> None:
    """The run is complete: its result is stored."""
    session.store.set_status(session.name, "completed")
