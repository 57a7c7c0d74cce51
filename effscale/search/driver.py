"""`run_search`: the coefficient search as a short pipeline of named stages.

    plan = plan_search(options)            # everything refusable: grid -> candidates -> constraint -> aliases
    with open_session(plan) as session:    # Ray and the database joined; a live driver refused
        start_study(session)               # the first writes: the study, the search row, the queue
        run_candidates(session)            # Ray Tune trains what is still pending
        winner = select_winner(session)
        family = emit_search_family(session, winner)

The CLI (`effscale search`), the Python API (`effscale.run_search`) and the service's launcher
(which runs the CLI) all come through `run_search`. Order matters for "bad input leaves the
database unchanged": nothing is written before `start_study`.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from effscale.errors import UsageError
from effscale.search.options import SearchOptions, default_study_name


@dataclass(frozen=True)
class SearchPlan:
    """What a search will do, decided before anything is started or written."""

    options: SearchOptions
    baseline: Any  # effscale.models.Baseline
    base_resolution: int
    data: Any  # effscale.trainer.ProxyData
    candidates: Any  # effscale.search.space.CandidateSet
    study_name: str
    identity: dict[str, Any]
    config: dict[str, Any]  # stored on the study (its user attribute "effscale")
    storage_url: str
    resources: Any  # effscale.search.runner.Resources


@dataclass
class SearchSession:
    """A plan joined to a running Ray and an open database."""

    plan: SearchPlan
    storage: Any  # optuna RDBStorage
    store: Any  # effscale.storage.ProjectStore
    study: Any = None  # optuna.Study, once `start_study` has run
    record: Any = None  # the search's row before this run (None: a new search)
    resumed_done: int = 0
    reaped: int = 0


@dataclass(frozen=True)
class SearchResult:
    study: str
    storage: str
    coefficients: Any  # effscale.models.Coefficients
    best: dict[str, Any]
    counts: dict[str, int]  # grid, feasible, unique, aliases
    trials: dict[str, int]  # complete, pruned, failed, running, waiting
    family: Any  # effscale.search.family.Family
    family_path: Path | None

    def to_dict(self) -> dict[str, Any]:
        from effscale.search.family import family_document

        return {
            "study": self.study,
            "best": self.best,
            "candidates": self.counts,
            "trials": {k: self.trials[k] for k in ("complete", "pruned", "failed")},
            "family": family_document(self.family),
            "family_path": str(self.family_path) if self.family_path else None,
        }


def run_search(baseline: str, *, data: str, progress: bool | None = None, **settings: Any) -> SearchResult:
    """Grid-search (α, β, γ) for ``baseline`` at φ=1 and emit the B0..B{max_phi} family.

    ``settings`` are `SearchOptions` and `ProxyRecipe` fields by name (the CLI's flags with ``_``).
    Example::

        import effscale
        result = effscale.run_search("tiny", data="digits", alpha="1.0,1.2", beta="1.0,1.1",
                                     gamma="1.0,1.15", epochs=2, storage="sqlite:///effscale.db")
        print(result.coefficients, result.family.member("B1").flops_ratio)

    Re-running with the same ``study`` resumes: finished candidates are never trained again.
    """
    plan = plan_search(SearchOptions.build(baseline, data=data, **settings))
    with open_session(plan) as session:
        start_study(session)
        run_candidates(session, progress=progress)
        winner = select_winner(session)
        family, family_path = emit_search_family(session, winner)
        return _result(session, winner, family, family_path)


# ---------------------------------------------------------------------------------------------
# stages


def plan_search(options: SearchOptions) -> SearchPlan:
    """Refuse anything refusable, load the data and measure the candidates; write nothing."""
    from effscale import __version__
    from effscale.models import check_resolution, get_baseline
    from effscale.search.runner import Resources
    from effscale.search.space import enumerate_candidates
    from effscale.storage import DEFAULT_STORAGE_URL, redact_url, validate_url
    from effscale.trainer import load_data

    grid, rule = options.grid, options.constraint_rule
    base = get_baseline(options.baseline)
    base_resolution = base.base_resolution if options.base_resolution is None else options.base_resolution
    _check_base_resolution(base, base_resolution, check_resolution)
    resources = Resources(options.cpus_per_trial, options.gpus_per_trial, options.max_concurrent, options.max_retries)
    storage_url = options.storage or DEFAULT_STORAGE_URL
    validate_url(storage_url)  # its scheme and path now, before the slow steps below
    data = load_data(options.data, seed=options.recipe.seed)
    candidates = enumerate_candidates(base, grid, rule, base_resolution=base_resolution)
    identity = options.identity(base_resolution=base_resolution, baseline_name=base.name)
    study_name = options.study or default_study_name(identity)
    config = {
        **identity,
        "identity": identity,
        "study": study_name,
        "max_phi": options.max_phi,
        "num_classes": data.num_classes,
        "version": __version__,
        "storage": redact_url(storage_url),
    }
    return SearchPlan(options, base, base_resolution, data, candidates, study_name, identity, config, storage_url, resources)


def _check_base_resolution(base: Any, resolution: int, check_resolution: Any) -> None:
    try:
        check_resolution(resolution, base.min_resolution)
    except UsageError:
        raise UsageError(
            f"--base-resolution {resolution} is too small for {base.name} (total stride {base.min_resolution}); "
            f"pass at least {base.min_resolution}"
        ) from None


@contextlib.contextmanager
def open_session(plan: SearchPlan) -> Iterator[SearchSession]:
    """Join or start Ray and open the database; refuse a search whose driver is alive elsewhere.

    On leaving with an error, the search row (if this run wrote one) records it; a local Ray this
    call started is shut down either way.
    """
    from effscale.search.runner import ensure_ray, shutdown_ray

    started_ray = ensure_ray(plan.options.ray_address, plan.resources)
    try:
        session = _open_database(plan)
        try:
            yield session
        except BaseException as exc:
            _record_failure(session, exc)
            raise
    finally:
        if started_ray:
            shutdown_ray()


def _open_database(plan: SearchPlan) -> SearchSession:
    import optuna

    from effscale.search.liveness import driver_alive
    from effscale.search.study import open_search_study
    from effscale.storage import ProjectStore, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress view speaks for the study
    storage = open_storage(plan.storage_url)
    store = ProjectStore(plan.storage_url)
    existing = open_search_study(storage, plan.study_name, plan.identity)
    record = store.get_search(plan.study_name)
    if existing is not None and record is not None and record.status == "running" and driver_alive(
        storage, existing._study_id, record.heartbeat_at
    ):
        raise UsageError(
            f"search {plan.study_name!r} is already running (its driver beats in {plan.storage_url.split(':')[0]}); "
            "wait for it, or cancel it first"
        )
    return SearchSession(plan, storage, store, study=existing, record=record)


def _record_failure(session: SearchSession, exc: BaseException) -> None:
    if session.study is None or isinstance(exc, UsageError):
        return  # nothing written yet, or a refusal the user can fix (the row says why already)
    try:
        session.store.set_status(session.plan.study_name, "failed", error=f"{type(exc).__name__}: {exc}")
    except Exception:  # noqa: BLE001 - the original error is the one to report
        pass


def start_study(session: SearchSession) -> None:
    """The first writes: create (or resume) the study and its search row, claim the driver, fail
    the orphans a dead driver left RUNNING, and enqueue the candidates still to train."""
    from effscale.search.liveness import claim_driver
    from effscale.search.study import create_search_study, enqueue_pending, reap_orphans

    plan = session.plan
    if session.study is None:
        session.study = create_search_study(session.storage, plan.study_name, plan.config, plan.candidates)
    if session.record is None:
        session.store.create_search(plan.study_name, config=plan.config, status="running")
    session.store.set_status(plan.study_name, "running")
    claim_driver(session.storage, session.study._study_id)
    session.reaped = reap_orphans(session.study)
    pending = enqueue_pending(session.study, plan.candidates)
    session.resumed_done = len(plan.candidates.groups) - len(pending)


def run_candidates(session: SearchSession, *, progress: bool | None = None) -> None:
    """Train every pending candidate on Ray (each trial's result is told to the study as it ends);
    a cancel request stops the search with a `UsageError` that says how to resume."""
    from effscale.search.liveness import Heartbeat
    from effscale.search.objective import TrialSetup, ray_trainable
    from effscale.search.progress import SearchProgress
    from effscale.search.runner import TrialEvents, run_trials
    from effscale.search.study import distributions

    plan, options = session.plan, session.plan.options
    total = len(plan.candidates.groups)
    view = SearchProgress(plan.study_name, total=total, done=session.resumed_done, reaped=session.reaped, enabled=progress)
    setup = TrialSetup(
        baseline=plan.baseline.name,
        base_resolution=plan.base_resolution,
        recipe=options.recipe,
        device="cuda" if options.gpus_per_trial > 0 else "cpu",
        threads=max(1, int(math.floor(options.cpus_per_trial))),
    )
    if total > session.resumed_done:
        with view:
            run_trials(
                study_name=plan.study_name,
                storage=session.storage,
                space=distributions(options.grid),
                num_trials=total - session.resumed_done,
                trainable=ray_trainable,
                trainable_kwargs={"setup": setup, "data": plan.data},
                resources=plan.resources,
                scheduler=options.scheduler,
                max_epochs=options.recipe.budget.epochs or 10_000,
                grace_period=options.grace_period,
                events=TrialEvents(on_trial_started=view.trial_started, on_trial_finished=view.trial_finished),
                on_step=Heartbeat(session.store, plan.study_name, on_beat=view.refresh),
            )
    if session.store.cancel_requested(plan.study_name):
        session.store.set_status(plan.study_name, "cancelled")
        raise UsageError(f"search {plan.study_name!r} was cancelled; re-run the same command to resume it")


def select_winner(session: SearchSession) -> Any:
    """The best COMPLETE trial by `effscale.search.study.best_trial`; none is a failed search."""
    from effscale.search.study import best_trial

    name = session.plan.study_name
    best = best_trial(session.study.get_trials(deepcopy=False))
    if best is None:
        session.store.set_status(name, "failed", error="no trial completed")
        raise UsageError(
            f"search {name!r}: no trial completed (see `effscale trials --study {name}`); "
            "re-run the same command to retry the failed candidates"
        )
    return best


def emit_search_family(session: SearchSession, winner: Any) -> tuple[Any, Path | None]:
    """B0..B{max_phi} from the winner's (α, β, γ), stored with the search (and written to ``out``);
    the search is complete once this is stored."""
    from effscale.models import Coefficients
    from effscale.search.family import emit_family

    plan = session.plan
    coefficients = Coefficients(winner.params["alpha"], winner.params["beta"], winner.params["gamma"])
    family = emit_family(
        plan.baseline, coefficients, phis=range(plan.options.max_phi + 1), base_resolution=plan.base_resolution,
        num_classes=plan.data.num_classes,
    )
    session.store.save_family(plan.study_name, family.to_dict())
    family_path = family.save(plan.options.out) if plan.options.out else None
    session.store.set_status(plan.study_name, "completed")
    return family, family_path


def _result(session: SearchSession, winner: Any, family: Any, family_path: Path | None) -> SearchResult:
    from effscale.models import Coefficients
    from effscale.search.study import trial_counts
    from effscale.storage import redact_url

    coefficients = Coefficients(winner.params["alpha"], winner.params["beta"], winner.params["gamma"])
    return SearchResult(
        study=session.plan.study_name,
        storage=redact_url(session.plan.storage_url),
        coefficients=coefficients,
        best={
            **coefficients.as_dict(),
            "val_top1": winner.value,
            "flops_ratio": winner.user_attrs.get("flops_ratio"),
            "formula_ratio": winner.user_attrs.get("formula_ratio"),
            "trial": winner.number,
        },
        counts=session.plan.candidates.counts(),
        trials=trial_counts(session.study),
        family=family,
        family_path=family_path,
    )
