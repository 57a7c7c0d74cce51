"""One search is one Optuna study: its configuration, its candidates, and its race's trials, one for
each (candidate, seed) the race asks for (another after an interruption); its confirmation round is
a second study (below).

No Optuna sampler chooses a point: the driver's Ray Tune searcher takes each next trial from the
race's schedule (`effscale.search.verdict.schedule`) and creates it in the study as RUNNING, with
α, β and γ as its parameters over the grid's range (`distributions`) and the network's static
attributes (`static_attrs`), so optuna-dashboard reads a search as any study. A driver that died
leaves RUNNING trials that nothing will finish: `reap_orphans` fails them as "interrupted", and the
schedule trains their (candidate, seed) pairs again.

The confirmation round trains at a longer budget, so its trials go to a study of their own
(`confirmation_study_name`, linked back by `CONFIRMATION_STUDY_ATTR`): the search's study keeps one
objective at one budget, and Optuna's ``best_trial`` names a race trial.
"""

from __future__ import annotations

from typing import Any, Iterable

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from effscale.errors import UsageError
from effscale.search.records.schema import (
    ACTIVATIONS_ATTR,
    ACTIVATIONS_RATIO_ATTR,
    ALIASES_ATTR,
    ARCH_ID_ATTR,
    CANDIDATES_ATTR,
    CONFIG_ATTR,
    CONFIRMATION_STUDY_ATTR,
    COUNTS_ATTR,
    DEPTH_ATTR,
    FAIL_INTERRUPTED,
    FIXED_PARAMS_ATTR,
    FLOPS_ATTR,
    FLOPS_RATIO_ATTR,
    FORMULA_RATIO_ATTR,
    LATENCY_MS_ATTR,
    LATENCY_RATIO_ATTR,
    PARAMS_ATTR,
    PROPOSALS_STUDY_ATTR,
    REPRESENTATIVE_RULE_ATTR,
    RESOLUTION_ATTR,
    WIDTH_ATTR,
)
from effscale.search.records.trials import fail_unfinished
from effscale.search.planning.candidates import REPRESENTATIVE_RULE, Candidate, CandidateSet, Grid

PARAMS = ("alpha", "beta", "gamma")


def distributions(grid: Grid) -> dict[str, FloatDistribution]:
    """α, β, γ as the trials' own parameters, over the grid's range (what optuna-dashboard shows)."""
    return {name: FloatDistribution(min(values), max(values)) for name, values in zip(PARAMS, (grid.alpha, grid.beta, grid.gamma))}


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's parameters; a WAITING (enqueued) trial has none yet: its point is in Optuna's
    fixed params."""
    return trial.params or (trial.system_attrs.get(FIXED_PARAMS_ATTR) or {})


def candidate_key(trial: FrozenTrial) -> tuple[float, float, float] | None:
    params = trial_params(trial)
    if not all(p in params for p in PARAMS):
        return None
    return tuple(round(float(params[p]), 6) for p in PARAMS)  # type: ignore[return-value]


def open_search_study(
    storage: optuna.storages.BaseStorage, study_name: str, identity: dict[str, Any]
) -> optuna.Study | None:
    """Load ``study_name`` if it holds the same search; None when it does not exist.

    Raises `UsageError` when the name holds another search, so nothing is written under it.
    """
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return None
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        raise UsageError(f"study {study_name!r} exists but was not made by effscale; choose another --study")
    stored_identity = stored.get("identity", {})
    if stored_identity.get("constraint") == "measured":  # stored before activations and latency: FLOPs
        stored_identity = {**stored_identity, "constraint": "flops"}
    if stored_identity != identity:
        differences = sorted(k for k in set(stored_identity) | set(identity) if stored_identity.get(k) != identity.get(k))
        raise UsageError(
            f"study {study_name!r} already holds a search with another configuration "
            f"(differs in: {', '.join(differences)}); re-run it with the same options, or pass a new --study"
        )
    return study


def create_search_study(
    storage: optuna.storages.BaseStorage, study_name: str, config: dict[str, Any], candidates: CandidateSet
) -> optuna.Study:
    study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize")
    study.set_user_attr(CONFIG_ATTR, config)
    study.set_user_attr(CANDIDATES_ATTR, [c.as_dict() for c in candidates.candidates])
    study.set_user_attr(COUNTS_ATTR, candidates.counts())
    return study


def store_proposals(storage: optuna.storages.BaseStorage, search: str, sampler: str, proposals: Iterable[dict],
                    grid: Grid) -> None:
    """A drawing sampler's proposals as the study ``NAME-proposals`` (once; the same command draws the
    same points): α, β, γ as parameters, ``-deviation`` from the target cost as the value, and the
    tolerance as Optuna's constraint (``constraints``, > 0 infeasible), so optuna-dashboard shows which
    points were trained and which were infeasible and never built."""
    name = f"{search}-proposals"
    try:
        optuna.load_study(study_name=name, storage=storage)
        return
    except KeyError:
        pass
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.set_user_attr(PROPOSALS_STUDY_ATTR, {"search": search, "sampler": sampler})
    space = distributions(grid)
    study.add_trials([
        optuna.trial.create_trial(
            params={p: row[p] for p in PARAMS}, distributions=space, value=-row["deviation"],
            user_attrs={"feasible": row["feasible"], ARCH_ID_ATTR: row["arch_id"]},
            system_attrs={"constraints": [row["violation"]]},
        )
        for row in proposals
    ])


def confirmation_study_name(search: str, budget: dict[str, int]) -> str:
    """The study of ``search``'s confirmation round at ``budget``: ``NAME-confirm-4-epochs``. One
    study per budget (a later `effscale confirm --epochs` is another round), each one objective."""
    import hashlib

    from effscale.storage.tables import STUDY_NAME_MAX

    suffix = "".join(f"-confirm-{n}-{unit}" for unit, n in sorted(budget.items()))
    if len(search) + len(suffix) <= STUDY_NAME_MAX:
        return search + suffix
    digest = hashlib.sha1(search.encode()).hexdigest()[:8]  # still unique within Optuna's 512 characters
    return f"{search[: STUDY_NAME_MAX - len(suffix) - 9]}-{digest}{suffix}"


def open_confirmation_study(
    storage: optuna.storages.BaseStorage, search: str, budget: dict[str, int], *, create: bool = False
) -> optuna.Study | None:
    """``search``'s confirmation study at ``budget``; None when it does not exist (created when
    ``create``). `UsageError` when that name holds a study that is not this search's round."""
    name = confirmation_study_name(search, budget)
    link = {"search": search, "budget": dict(budget)}
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        if not create:
            return None
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        study.set_user_attr(CONFIRMATION_STUDY_ATTR, link)
        return study
    found = study.user_attrs.get(CONFIRMATION_STUDY_ATTR)
    if found is None and create and not study.get_trials(deepcopy=False):
        study.set_user_attr(CONFIRMATION_STUDY_ATTR, link)  # created by a driver that died before linking it
    elif not isinstance(found, dict) or found.get("search") != search:
        raise UsageError(f"study {name!r} exists but is not the confirmation round of search {search!r}; "
                         "rename that study, or pass another --study")
    return study


def load_owned_study(storage: Any, name: str, *, attr: str, identity: dict[str, Any], what: str) -> optuna.Study | None:
    """Study ``name`` when its user attribute ``attr`` is ``identity`` (the same comparison or
    frontier, to resume); None when there is none. `UsageError` when the name holds anything else."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    if study.user_attrs.get(attr) != identity:
        raise UsageError(f"study {name!r} already holds another {what} (or is not one); pass another --name")
    return study


def reap_orphans(study: optuna.Study) -> int:
    """Fail the trials a driver that is gone left RUNNING (or, from older versions, WAITING); their
    (candidate, repeat) pairs are trained again, since ``fail_kind`` "interrupted" is not final."""
    return fail_unfinished(study, reason="orphaned: the driver that ran it stopped", kind=FAIL_INTERRUPTED,
                           states=(TrialState.RUNNING, TrialState.WAITING), orphan=True)


def static_attrs(candidate: Candidate, candidates: CandidateSet) -> dict[str, Any]:
    return {
        DEPTH_ATTR: candidate.depth,
        WIDTH_ATTR: candidate.width,
        RESOLUTION_ATTR: candidate.resolution,
        FLOPS_ATTR: candidate.flops,
        PARAMS_ATTR: candidate.params,
        FLOPS_RATIO_ATTR: candidate.flops_ratio,
        FORMULA_RATIO_ATTR: candidate.formula_ratio,
        ACTIVATIONS_ATTR: candidate.activations,
        ACTIVATIONS_RATIO_ATTR: candidate.activations_ratio,
        **({LATENCY_MS_ATTR: candidate.latency_ms, LATENCY_RATIO_ATTR: candidate.latency_ratio}
           if candidate.latency_ms is not None else {}),
        ARCH_ID_ATTR: candidate.arch_id,
        ALIASES_ATTR: candidates.aliases_of(candidate.arch_id),
        REPRESENTATIVE_RULE_ATTR: REPRESENTATIVE_RULE,
    }


def best_trial(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    """The best single COMPLETE trial: highest validation top-1, ties broken by lower measured FLOPs
    (then the earlier trial). A search's winner is not this but its stored verdict (mean over
    seeds, `effscale.search.verdict.race`); this serves studies without one (still running, or made by an
    older effscale)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    return min(complete, key=lambda t: (-t.value, t.user_attrs.get(FLOPS_ATTR, float("inf")), t.number))


def trial_counts(*studies: optuna.Study | None) -> dict[str, int]:
    """Trials by state over ``studies`` (a search's and its confirmation round's)."""
    counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
             TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
    for study in studies:
        for trial in study.get_trials(deepcopy=False) if study is not None else ():
            counts[names[trial.state]] += 1
    return counts
