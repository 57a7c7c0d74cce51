"""Read-only views of stored searches, shared by the CLI and the REST API.

`trial_row` is the one flat view of a trial: `effscale trials` (table and ``--json``), the REST
API and the dashboard all show its fields under its names. It is a pure function of Optuna's
`FrozenTrial` and JSON-safe (NaN and infinities become None), so the service can send it as is.

`search_verdict` is the one view of what a search concluded (``best`` with its mean ± se and n,
``best_source``, ``fidelity``, ``warnings``, ``failures``), and `ranking` the one view of its
per-candidate aggregates: `effscale studies` and the REST API show both under the same names.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from effscale.errors import UsageError
from effscale.search.family.members import Family
from effscale.search.records import schema
from effscale.search.records.liveness import stored_driver
from effscale.search.records.optuna_access import study_id
from effscale.search.records.status import side_kind, status_row, study_status
from effscale.search.records.study import best_trial, candidate_key, trial_params
from effscale.search.records.options import SORTS

# The row field each sort key orders by (the CLI's ``--sort`` and the API's ``sort``).
SORT_FIELDS = {"value": "val_top1", "number": "number", "flops": "flops"}

STATE_NAMES: dict[TrialState, str] = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "fail",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}

# Per-trial user attributes a search may set (repeated seeds, confirmation runs, the Ray node,
# why a trial failed, its training settings). `trial_row` passes each through under the same
# name, coerced to this type, and None when absent, so the CLI and API show them unchanged.
RUN_ATTRS: dict[str, type] = {
    schema.REPEAT_ATTR: int,
    schema.SEED_ATTR: int,
    schema.CONFIRMATION_ATTR: bool,
    schema.NODE_ATTR: str,
    schema.FAIL_REASON_ATTR: str,
    schema.BATCH_SIZE_ATTR: int,
    schema.LR_ATTR: float,
}


def as_float(value: Any) -> float | None:
    """``value`` as a finite float, else None (JSON cannot carry NaN or infinities)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def as_int(value: Any) -> int | None:
    number = as_float(value)
    return int(number) if number is not None else None


def iso_utc(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC; Optuna stores naive datetimes, which are UTC on every backend we use."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat()


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None, recursively (lists, tuples, dicts)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def state_name(trial: FrozenTrial) -> str:
    return STATE_NAMES.get(trial.state, trial.state.name.lower())


def trial_val_top1(trial: FrozenTrial) -> float | None:
    """Validation top-1 of a trial: its value when complete, else its last reported epoch."""
    if trial.state == TrialState.COMPLETE and trial.values:
        return as_float(trial.values[0])
    attr = as_float(trial.user_attrs.get(schema.VAL_TOP1_ATTR))
    if attr is not None:
        return attr
    if trial.intermediate_values:
        return as_float(trial.intermediate_values[max(trial.intermediate_values)])
    return None


def _typed(value: Any, kind: type) -> Any:
    if kind is bool:
        return value if isinstance(value, bool) else None
    if kind is str:
        return value if isinstance(value, str) else None
    if kind is int:
        return as_int(value)
    return as_float(value)


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """The flat, JSON-safe view of one trial that `effscale trials`, the REST API and the dashboard show.

    ``val_top1`` is the objective (validation top-1) for a COMPLETE trial and the last epoch's for
    the others; ``train_seconds`` is the time spent training, ``duration_s`` Optuna's start-to-finish
    wall time; ``aliases`` lists the (α, β, γ) grid points that build this same network.
    """
    attrs = trial.user_attrs
    params = trial_params(trial)
    duration = None
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
    aliases = attrs.get(schema.ALIASES_ATTR)
    arch_id = attrs.get(schema.ARCH_ID_ATTR)
    rule = attrs.get(schema.REPRESENTATIVE_RULE_ATTR)
    row: dict[str, Any] = {
        "number": trial.number,
        "state": state_name(trial),
        "alpha": as_float(params.get("alpha")),
        "beta": as_float(params.get("beta")),
        "gamma": as_float(params.get("gamma")),
        "depth": as_float(attrs.get(schema.DEPTH_ATTR)),
        "width": as_float(attrs.get(schema.WIDTH_ATTR)),
        "resolution": as_int(attrs.get(schema.RESOLUTION_ATTR)),
        "flops": as_int(attrs.get(schema.FLOPS_ATTR)),
        "params": as_int(attrs.get(schema.PARAMS_ATTR)),
        "flops_ratio": as_float(attrs.get(schema.FLOPS_RATIO_ATTR)),
        "formula_ratio": as_float(attrs.get(schema.FORMULA_RATIO_ATTR)),
        "activations": as_int(attrs.get(schema.ACTIVATIONS_ATTR)),
        "activations_ratio": as_float(attrs.get(schema.ACTIVATIONS_RATIO_ATTR)),
        "latency_ms": as_float(attrs.get(schema.LATENCY_MS_ATTR)),
        "latency_ratio": as_float(attrs.get(schema.LATENCY_RATIO_ATTR)),
        "val_top1": trial_val_top1(trial),
        "val_loss": as_float(attrs.get(schema.VAL_LOSS_ATTR)),
        "train_seconds": as_float(attrs.get(schema.TRAIN_SECONDS_ATTR)),
        "images_per_s": as_float(attrs.get(schema.IMAGES_PER_S_ATTR)),
        "epochs": as_int(attrs.get(schema.EPOCHS_ATTR)),
        "duration_s": as_float(duration),
        "arch_id": arch_id if isinstance(arch_id, str) else None,
        "aliases": [
            [as_float(v) for v in alias]
            for alias in (aliases if isinstance(aliases, list) else [])
            if isinstance(alias, (list, tuple))
        ],
        "representative_rule": rule if isinstance(rule, str) else None,
        "datetime_start": iso_utc(trial.datetime_start),
        "datetime_complete": iso_utc(trial.datetime_complete),
    }
    for name, kind in RUN_ATTRS.items():
        row[name] = _typed(attrs.get(name), kind)
    return row


# ---------------------------------------------------------------------------------------------
# what a search concluded: its stored verdict, else its best single trial

BEST_SOURCES = ("verdict", "single trial")
# A candidate's standing in a stored verdict (`effscale.search.verdict.schedule.Outcome`); None while the
# search has no verdict yet (aggregates computed from the trials).
STANDINGS = ("winner", "tied", "separated", "failed", "pruned", "untrained")
RANKING_SOURCES = ("verdict", "trials")


def _coefficients(d: dict[str, Any]) -> dict[str, float | None]:
    return {p: as_float(d.get(p)) for p in ("alpha", "beta", "gamma")}


def _mean_se(mean: Any, stderr: Any, n: Any) -> dict[str, Any]:
    """Top-1 as every view shows it: a mean, its standard error (None below 2 repeats) and n."""
    return {"val_top1_mean": as_float(mean), "val_top1_stderr": as_float(stderr), "repeats": as_int(n) or 0}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def verdict_best(best: dict[str, Any]) -> dict[str, Any]:
    """The stored verdict's winner (`Outcome.document`'s ``best``), JSON-safe, every field present."""
    confirmed, tied = best.get("confirmed"), best.get("tied_with")
    return {
        **_coefficients(best),
        **_mean_se(best.get("val_top1_mean"), best.get("val_top1_stderr"), best.get("repeats")),
        "confirmed": _mean_se(confirmed.get("val_top1_mean"), confirmed.get("val_top1_stderr"), confirmed.get("repeats"))
        if isinstance(confirmed, dict) else None,
        "tied_with": [{**_coefficients(t), **_mean_se(t.get("val_top1_mean"), t.get("val_top1_stderr"), t.get("repeats"))}
                      for t in (tied if isinstance(tied, list) else []) if isinstance(t, dict)],
        "chosen_by": _text(best.get("chosen_by")),
        "tie_break": _text(best.get("tie_break")),
        "separation_rule": _text(best.get("separation_rule")),
        "flops": as_int(best.get("flops")),
        "flops_ratio": as_float(best.get("flops_ratio")),
        "formula_ratio": as_float(best.get("formula_ratio")),
        "number": None,
    }


def single_trial_best(trial: FrozenTrial) -> dict[str, Any]:
    """`best_trial` in `verdict_best`'s shape: one repeat, no standard error, no tie, its ``number``."""
    row = trial_row(trial)
    return {
        **{p: row[p] for p in ("alpha", "beta", "gamma")},
        **_mean_se(row["val_top1"], None, 1),
        "confirmed": None, "tied_with": [], "chosen_by": None, "tie_break": None, "separation_rule": None,
        **{p: row[p] for p in ("flops", "flops_ratio", "formula_ratio", "number")},
    }


def search_verdict(result: dict[str, Any] | None, trials: Sequence[FrozenTrial]) -> dict[str, Any]:
    """What a search concluded: its stored verdict (``best_source`` "verdict"), else, for a search
    still running or made by an effscale that stored none, its best single trial ("single trial",
    no fidelity). ``fidelity`` is the stored document (NaN as None); ``failures`` one line per kind."""
    result = result if isinstance(result, dict) else {}
    if isinstance(result.get("best"), dict):
        fidelity = result.get("fidelity")
        return {
            "best": verdict_best(result["best"]),
            "best_source": "verdict",
            "fidelity": json_safe(fidelity) if isinstance(fidelity, dict) else None,
            "warnings": [w for w in result.get("warnings") or [] if isinstance(w, str)],
            "failures": [f for f in result.get("failures") or [] if isinstance(f, str)],
        }
    best = best_trial(trials)
    return {"best": single_trial_best(best) if best is not None else None,
            "best_source": "single trial" if best is not None else None,
            "fidelity": None, "warnings": [], "failures": []}


# ---------------------------------------------------------------------------------------------
# per-candidate aggregates


def stage_values(
    trials: Sequence[FrozenTrial], *, confirmation: bool, by: Callable[[FrozenTrial], Hashable | None],
    budget: dict[str, Any] | None = None,
) -> dict[Hashable, dict[int, float]]:
    """repeat -> top-1 of the COMPLETE trials of one stage (the race, or the confirmation round, at
    ``budget`` when given), per key ``by(trial)``; a repeat's first trial counts, as the search's own
    schedule (`effscale.search.verdict.schedule.SearchSchedule.records`) reads them."""
    out: dict[Hashable, dict[int, float]] = {}
    for trial in trials:
        attrs = trial.user_attrs
        if bool(attrs.get(schema.CONFIRMATION_ATTR, False)) != confirmation:
            continue
        if confirmation and budget is not None and attrs.get(schema.BUDGET_ATTR) != budget:
            continue
        key = by(trial)
        value = as_float(trial.values[0]) if trial.state == TrialState.COMPLETE and trial.values else None
        if key is None or value is None:
            continue
        out.setdefault(key, {}).setdefault(as_int(attrs.get(schema.REPEAT_ATTR)) or 0, value)
    return out


def _summary(values: dict[int, float] | None) -> Any:
    from effscale.search.stats import summarize

    return summarize([values[r] for r in sorted(values or {})])


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best mean first, unranked last (`ProjectStore.load_candidates`'s order)."""
    return sorted(rows, key=lambda c: (c["mean"] is None, -(c["mean"] or 0.0), c["candidate"]))


def live_ranking(trials: Sequence[FrozenTrial], *, confirm_budget: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per-candidate aggregates computed from the trials, with the stored rows' fields and standing
    None: for a search that has no verdict yet (or is older than verdicts)."""
    race = stage_values(trials, confirmation=False, by=candidate_key)
    confirm = stage_values(trials, confirmation=True, by=candidate_key, budget=confirm_budget)
    attrs_of: dict[Hashable, dict[str, Any]] = {}
    for trial in trials:
        attrs_of.setdefault(candidate_key(trial), trial.user_attrs)
    attrs_of.pop(None, None)
    rows = []
    for key, attrs in attrs_of.items():
        s, c = _summary(race.get(key)), _summary(confirm.get(key))
        rows.append({
            "candidate": ",".join(f"{v:g}" for v in key), **dict(zip(("alpha", "beta", "gamma"), key)),
            "arch_id": _text(attrs.get(schema.ARCH_ID_ATTR)), "flops": as_int(attrs.get(schema.FLOPS_ATTR)),
            "standing": None,
            "n": s.n, "mean": as_float(s.mean), "stderr": as_float(s.stderr),
            "confirm_n": c.n, "confirm_mean": as_float(c.mean), "confirm_stderr": as_float(c.stderr),
        })
    return _ranked(rows)


def ranking(stored: list[dict[str, Any]], *, has_verdict: bool, trials: Sequence[FrozenTrial],
            confirm_budget: dict[str, Any] | None = None) -> dict[str, Any]:
    """The candidates' aggregates: the stored ones (``source`` "verdict") once the search has a
    verdict, else computed from the trials ("trials")."""
    if has_verdict:
        rows = [{k: json_safe(v) for k, v in row.items()} for row in stored]
        return {"source": "verdict", "candidates": _ranked(rows)}
    return {"source": "trials", "candidates": live_ranking(trials, confirm_budget=confirm_budget)}


def _storage(url: str | None):
    """Optuna's storage for a read, opened read-only: a SQLite file that is not there is an error,
    and nothing (file, table, row) is ever created or migrated."""
    from effscale.storage import open_storage, require_existing, resolve_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    require_existing(resolve_storage(url))
    return open_storage(resolve_storage(url), read_only=True)


def _store(url: str | None):
    """effscale's own tables for a read, opened read-only (see `_storage`)."""
    from effscale.storage import ProjectStore, resolve_storage

    return ProjectStore(resolve_storage(url), read_only=True)


def load_search_study(url: str | None, study_name: str) -> optuna.Study:
    storage = _storage(url)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        known = ", ".join(names[:10]) or "none"
        raise UsageError(f"no study {study_name!r} in this storage (studies: {known}); see `effscale studies`") from None


def list_studies(url: str | None) -> list[dict[str, Any]]:
    """One row per study (`effscale studies`): a search with its verdict (``best`` as mean ± se
    with n, ``best_source``, ``kendall_tau`` and ``tau_interval``), a comparison, or a search's
    confirmation round (``kind``; its status is its search's)."""
    storage = _storage(url)
    store = _store(url)
    records = {r.study_name: r for r in store.list_searches()}
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    ids = {s.study_name: study_id(s) for s in summaries}
    rows = []
    for summary in summaries:
        record = records.get(summary.study_name)
        trials = storage.get_all_trials(ids[summary.study_name], deepcopy=False)
        row = {"study": summary.study_name, "n_trials": summary.n_trials,
               "created_at": record.created_at.isoformat() if record and record.created_at else None}
        status = _stored_status(storage, ids, records, summary, trials)
        kind = side_kind(summary.user_attrs)
        if kind is not None:
            compare = summary.user_attrs.get(schema.COMPARE_ATTR) or summary.user_attrs.get(schema.FRONTIER_ATTR) or {}
            rows.append({**row, "kind": kind,
                         "baseline": compare.get("baseline"), "data": compare.get("data"),
                         "status": status, "best": None, "best_source": None,
                         "kendall_tau": None, "tau_interval": None, "effscale": True})
            continue
        config = summary.user_attrs.get(schema.CONFIG_ATTR) or {}
        verdict = search_verdict(store.load_result(summary.study_name) if record else None, trials)
        best, fidelity = verdict["best"], verdict["fidelity"] or {}
        rows.append({
            **row, "kind": "search", "baseline": config.get("baseline"), "data": config.get("data"), "status": status,
            "best": None if best is None else {k: best[k] for k in ("alpha", "beta", "gamma", "val_top1_mean",
                                                                    "val_top1_stderr", "repeats")},
            "best_source": verdict["best_source"], "kendall_tau": fidelity.get("kendall_tau"),
            "tau_interval": fidelity.get("tau_interval"), "effscale": bool(config),
        })
    return rows


def _stored_status(storage: Any, ids: dict[str, int], records: dict[str, Any], summary: Any,
                   trials: Sequence[FrozenTrial]) -> str:
    """`study_status` of one study in `list_studies`: its status row (a confirmation round's is its
    search's), and the driver of that row's study only when the row says running."""
    name = status_row(summary.study_name, summary.user_attrs)
    record = records.get(name)
    running = record is not None and record.status == "running"
    driver = stored_driver(storage, ids.get(name)) if running else None
    return study_status(record=record, user_attrs=summary.user_attrs, trials=trials, driver=driver)


def list_trials(url: str | None, study_name: str, *, sort: str = "value", limit: int | None = None) -> list[dict[str, Any]]:
    if sort not in SORTS:
        raise UsageError(f"sort {sort!r}; pass one of {', '.join(SORTS)}")
    study = load_search_study(url, study_name)
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False)]
    field = SORT_FIELDS[sort]
    if sort == "value":
        # Best first, as `best_trial` ranks: ties go to lower measured FLOPs.
        rows.sort(key=lambda r: (r[field] is None, -(r[field] or 0.0), r["flops"] or 0, r["number"]))
    elif sort == "flops":
        rows.sort(key=lambda r: (r[field] is None, r[field] or 0, r["number"]))
    return rows[:limit] if limit else rows


def load_family(url: str | None, study_name: str) -> Family:
    load_search_study(url, study_name)  # a clear error for an unknown study
    data = _store(url).load_family(study_name)
    if data is None:
        raise UsageError(f"search {study_name!r} has not emitted a family yet; it is emitted when the search completes")
    return Family.from_dict(data)
