"""`run_search`: the coefficient search as a short pipeline of named stages.

    plan = plan_search(options)            # everything refusable: grid -> candidates -> constraint -> aliases
    with open_session(plan) as session:    # Ray and the database joined, trials planned; a live driver refused
        start_study(session)               # the first writes: the study, the search row, the orphans
        run_candidates(session)            # the race on paired seeds, then the confirmation round
        verdict = select_winner(session)   # mean ± se, the tied set, proxy fidelity
        family = emit_search_family(session, verdict)

The CLI (`effscale search`), the Python API (`effscale.run_search`) and the service's launcher
(which runs the CLI) all come through `run_search`. Order matters for "bad input leaves the
database unchanged": nothing is written before `start_study`.

The session (Ray, the database, the status row and heartbeat, the runner under signals) is the
engine a comparison runs on too (`effscale.search.execution.session`); this module says only what
a search trains (the race, then the confirmation round in its own study) and what it concludes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from effscale.errors import SearchFailed, UsageError
from effscale.search.planning.options import SearchOptions
from effscale.search.planning.plan import SearchPlan, plan_search

__all__ = ["SearchPlan", "SearchResult", "SearchSession", "plan_search", "run_search"]


@dataclass
class SearchSession:
    """A plan joined to a running Ray and an open database (`effscale.search.execution.session`)."""

    plan: SearchPlan
    run: Any  # effscale.search.execution.session.Session: Ray, the database, the status row, the trial plan
    confirmation: Any = None  # the confirmation round's optuna.Study, once it exists
    document: dict[str, Any] | None = None  # the verdict as stored, once `select_winner` has run

    @property
    def study(self) -> Any:
        return self.run.study

    @property
    def store(self) -> Any:
        return self.run.store

    @property
    def trial_plan(self) -> Any:
        """effscale.search.planning.resources.Plan: memory, concurrency and time per network."""
        return self.run.trial_plan

    @property
    def log_path(self) -> Path | None:
        return self.run.log_path


@dataclass(frozen=True)
class SearchResult:
    study: str
    storage: str
    coefficients: Any  # effscale.models.Coefficients
    best: dict[str, Any]
    counts: dict[str, int]  # grid, feasible, unique, aliases
    trials: dict[str, int]  # complete, pruned, failed, running, waiting
    family: Any  # effscale.search.family.members.Family
    family_path: Path | None
    fidelity: dict[str, Any] | None = None
    calibrated: Any = None  # the same d, w per member at the size nearest target^phi (not stored)
    warnings: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    candidates: tuple[dict[str, Any], ...] = field(default=())
    log_path: str | None = None
    regime: dict[str, Any] | None = None  # B0's regime, its warning and the ways out (`search.ways_out`)
    cost: str = "flops"  # the cost candidates and the family are measured, constrained and calibrated in
    constraint: dict[str, Any] | None = None  # kind (a cost or "formula"), target_ratio, tolerance
    recommended_family: str = "compound"  # "calibrated" when the alpha^phi family misses target^phi
    sampler: str = "grid"  # grid, or the Optuna sampler that drew the candidates (counts["grid"]: points drawn)

    def to_dict(self) -> dict[str, Any]:
        from effscale.search.family.members import family_document

        return {
            "study": self.study,
            "cost": self.cost,
            "sampler": self.sampler,
            "constraint": self.constraint,
            "regime": self.regime,
            "best": self.best,
            "fidelity": self.fidelity,
            "warnings": list(self.warnings),
            "failures": list(self.failures),
            "candidates": self.counts,
            "ranking": list(self.candidates),
            "trials": {k: self.trials[k] for k in ("complete", "pruned", "failed")},
            "family": family_document(self.family),
            "calibrated_family": family_document(self.calibrated) if self.calibrated is not None else None,
            "recommended_family": self.recommended_family,
            "family_path": str(self.family_path) if self.family_path else None,
            "log_path": self.log_path,
        }


def run_search(
    baseline: str, *, data: str, progress: bool | None = None, on_plan: Callable[[Any], None] | None = None,
    **settings: Any,
) -> SearchResult:
    """Grid-search (α, β, γ) for ``baseline`` at φ=1 and emit the B0..B{max_phi} family.

    ``settings`` are `SearchOptions` and `ProxyRecipe` fields by name (the CLI's flags with ``_``).
    Example::

        import effscale
        result = effscale.run_search("tiny", data="digits", alpha="1.0,1.2", beta="1.0,1.1",
                                     gamma="1.0,1.15", epochs=2, storage="sqlite:///effscale.db")
        print(result.coefficients, result.best["val_top1_mean"], result.best["tied_with"])

    Re-running with the same ``study`` resumes: finished trials are never trained again.
    ``on_plan`` receives the trial plan (`effscale.search.planning.resources.Plan`: memory, concurrency and time
    per network) before anything is written or trained; the CLI prints it.
    """
    plan = plan_search(SearchOptions.build(baseline, data=data, **settings))
    with open_session(plan) as session:
        if on_plan is not None:
            on_plan(session.trial_plan)
        start_study(session)
        run_candidates(session, progress=progress)
        verdict = select_winner(session)
        family, family_path = emit_search_family(session, verdict)
        return _result(session, verdict, family, family_path)


def run_confirmation(
    study: str, *, storage: str | None = None, top: int | None = None, epochs: int | None = None,
    progress: bool | None = None, **where: Any,
) -> SearchResult:
    """`effscale confirm`: retrain the top ``top`` candidates of a finished search (and ``top``
    spread across the rest) for ``epochs``, measure the proxy's fidelity, and re-emit the family
    from the confirmed winner. The search's own settings are read back from its study; an
    unfinished race is finished first (it is the same pipeline)."""
    settings = stored_settings(study, storage)
    if top is not None:
        settings["confirm_top"] = top
    if epochs is not None:
        settings["confirm_epochs"] = epochs
    if settings.get("confirm_top") == 0:
        raise UsageError(f"search {study!r} ran with --confirm-top 0; pass --confirm-top K to confirm its top K (e.g. --confirm-top 3)")
    return run_search(**settings, storage=storage, study=study, progress=progress, **where)


def stored_settings(study: str, storage: str | None) -> dict[str, Any]:
    """A search's settings as its study stored them; `UsageError` for an unknown study or one
    without a single COMPLETE trial."""
    from optuna.trial import TrialState

    from effscale.search.records.queries import load_search_study
    from effscale.search.records.schema import CONFIG_ATTR

    found = load_search_study(storage, study)
    config = found.user_attrs.get(CONFIG_ATTR) or {}
    if "settings" not in config:
        raise UsageError(f"study {study!r} was not made by this effscale's search (no stored settings); "
                         "re-run the search with `effscale search`")
    if not found.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise UsageError(f"study {study!r} has no complete trial to confirm; run or resume its search first")
    return dict(config["settings"])


# ---------------------------------------------------------------------------------------------
# stages


@contextlib.contextmanager
def open_session(plan: SearchPlan) -> Iterator[SearchSession]:
    """The search's engine session (`effscale.search.execution.session.open_session`): Ray joined,
    the trials fitted to its nodes with the regime's ways out priced (`plan_with_regime`: memory,
    batch, GPUs; a candidate that fits no node is refused here, before anything is written), the
    database open, a search whose driver is alive elsewhere refused."""
    from effscale.search.execution.session import RunTarget
    from effscale.search.execution.session import open_session as open_run
    from effscale.search.planning.ways_out import plan_with_regime
    from effscale.search.records.study import open_search_study

    target = RunTarget(
        "search", plan.study_name, plan.storage_url, plan.options, plan.recipe,
        plan_trials=lambda: plan_with_regime(plan),
        open_study=lambda storage: open_search_study(storage, plan.study_name, plan.identity),
    )
    with open_run(target) as run:
        yield SearchSession(plan, run)


def start_study(session: SearchSession) -> None:
    """The first writes: create (or resume) the study and its search row, claim the driver, and
    fail the orphans a dead driver left RUNNING, in the study and its confirmation study (they will
    be trained again)."""
    from effscale.search.execution.session import start
    from effscale.search.records.study import create_search_study, open_confirmation_study, store_proposals

    plan = session.plan
    # The regime as the plan priced it, ways out included: what the API shows before a verdict exists.
    config = {**plan.config, "regime": session.trial_plan.regime_document()} if session.trial_plan else plan.config
    if session.study is not None:
        session.confirmation = open_confirmation_study(session.run.storage, plan.study_name,
                                                       plan.options.confirm_budget)
    start(session.run, config=config, linked=[session.confirmation],
          create_study=lambda storage: create_search_study(storage, plan.study_name, config, plan.candidates))
    if plan.proposals:
        store_proposals(session.run.storage, plan.study_name, plan.options.sampler, plan.proposals, plan.options.grid)


def run_candidates(session: SearchSession, *, progress: bool | None = None) -> None:
    """Race the candidates on paired seeds in the search's study, then confirm in the confirmation
    study; each trial's result is told to its study as it ends. A signal, a cancel request or a
    database outage stops the search as interrupted."""
    from effscale.search.execution.execute import Stage
    from effscale.search.execution.session import run
    from effscale.search.records.study import distributions, open_confirmation_study
    from effscale.search.verdict.schedule import SearchSchedule

    plan, options = session.plan, session.plan.options
    schedule = SearchSchedule(session.study, plan, session.run.fit, confirmation=session.confirmation)

    def confirmation_study() -> Any:  # created when the round first has something to train
        session.confirmation = schedule.confirmation = open_confirmation_study(
            session.run.storage, plan.study_name, options.confirm_budget, create=True)
        return session.confirmation

    space = distributions(options.grid)
    stages = [Stage(session.study, space, schedule.race_batch)]
    if plan.confirm_top > 0:
        stages.append(Stage(confirmation_study, space, schedule.confirmation_batch))
    run(session.run, stages, baseline=plan.baseline.name, stem=plan.baseline.stem, recipe=plan.recipe,
        data=plan.data, progress=progress, scheduler=options.scheduler, grace_period=options.grace_period,
        partial="nothing emitted from a partial grid; ")


def select_winner(session: SearchSession) -> Any:
    """The race's verdict and the proxy's fidelity (`effscale.search.verdict.schedule.Outcome`), stored with
    the search together with the regime and the rounding warnings; no result at all is a failed
    search."""
    from effscale.search.execution.logs import failure_summary
    from effscale.search.verdict.rounding import winner_rounding_warning
    from effscale.search.verdict.schedule import SearchSchedule

    plan, name = session.plan, session.plan.study_name
    outcome = SearchSchedule(session.study, plan, confirmation=session.confirmation).outcome()
    failures = failure_summary(session.study, session.log_path, also=[session.confirmation])
    if outcome.verdict is None:
        session.store.set_status(name, "failed", error="no candidate completed a trial")
        detail = f": {failures[0]}" if failures else ""
        raise SearchFailed(
            f"search {name!r}: no candidate completed{detail} (see `effscale trials --study {name}`)"
        )
    document = outcome.document(failures=failures)
    rounding = winner_rounding_warning(plan.baseline, outcome.candidates[outcome.family_key],
                                       base_resolution=plan.base_resolution, num_classes=plan.data.num_classes)
    document["warnings"] = [*session.trial_plan.warnings, *([rounding] if rounding else []), *document["warnings"]]
    document["regime"] = session.trial_plan.regime_document()
    session.document = document
    session.store.save_result(name, document, outcome.candidate_rows())
    return outcome


def emit_search_family(session: SearchSession, outcome: Any) -> tuple[Any, Path | None]:
    """B0..B{max_phi} (or ``--phi``'s members) from the (confirmed) winner's (α, β, γ), stored with the search (and written
    to ``out``); a family that misses target^φ adds its warning to the stored result. The search is
    complete once this is stored."""
    from effscale.models import Coefficients
    from effscale.search.execution.session import finish
    from effscale.search.family.members import emit_family
    from effscale.search.verdict.rounding import family_miss_warning

    plan = session.plan
    family = emit_family(
        plan.baseline, Coefficients(*outcome.family_key), phis=plan.options.phis,
        base_resolution=plan.base_resolution, num_classes=plan.data.num_classes, cost=plan.options.cost_kind,
        latency=plan.options.latency,
    )
    missed = family_miss_warning(family, plan.options.target_ratio)
    if missed and session.document is not None:
        session.document = {**session.document, "warnings": [*session.document["warnings"], missed],
                            "recommended_family": "calibrated"}
        session.store.save_result(plan.study_name, session.document, outcome.candidate_rows())
    session.store.save_family(plan.study_name, family.to_dict())
    family_path = family.save(plan.options.out) if plan.options.out else None
    finish(session.run)
    return family, family_path


def _result(session: SearchSession, outcome: Any, family: Any, family_path: Path | None) -> SearchResult:
    from effscale.models import Coefficients
    from effscale.search.family.calibrate import calibrate_family
    from effscale.search.records.study import trial_counts
    from effscale.storage import redact_url

    document = session.document
    options = session.plan.options
    rule = options.constraint_rule
    warnings = tuple(document["warnings"])
    # Shown beside the α^φ family, so the user picks knowingly: rounding drifts from target^φ.
    try:
        calibrated = calibrate_family(family, target_ratio=options.target_ratio, latency=options.latency)
    except UsageError as exc:  # the search is complete and stored; only this extra view is missing
        calibrated, warnings = None, (*warnings, f"no calibrated family: {exc}")
    return SearchResult(
        study=session.plan.study_name,
        storage=redact_url(session.plan.storage_url),
        coefficients=Coefficients(*outcome.family_key),
        best=document["best"],
        counts=session.plan.candidates.counts(),
        trials=trial_counts(session.study, session.confirmation),
        family=family,
        family_path=family_path,
        calibrated=calibrated,
        fidelity=document["fidelity"],
        warnings=warnings,
        failures=tuple(document["failures"]),
        candidates=tuple(outcome.candidate_rows()),
        regime=document.get("regime"),
        recommended_family=document.get("recommended_family", "compound"),
        log_path=str(session.log_path) if session.log_path else None,
        cost=options.cost_kind,
        sampler=options.sampler,
        constraint={"kind": rule.kind, "target_ratio": rule.target_ratio, "tolerance": rule.tolerance},
    )
