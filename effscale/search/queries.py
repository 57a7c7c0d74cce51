"""Read-only views of stored searches, shared by the CLI and the REST API.

`trial_row` is the one flat view of a trial: `effscale trials` (table and ``--json``), the REST
API and the dashboard all show its fields under its names. It is a pure function of Optuna's
`FrozenTrial` and JSON-safe (NaN and infinities become None), so the service can send it as is.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from effscale.errors import UsageError
from effscale.search.family import Family
from effscale.search.study import CONFIG_ATTR, best_trial

SORTS = ("number", "value", "flops")
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
    "repeat": int,
    "seed": int,
    "confirmation": bool,
    "node": str,
    "fail_reason": str,
    "batch_size": int,
    "lr": float,
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
    attr = as_float(trial.user_attrs.get("val_top1"))
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
    # A WAITING (enqueued) trial has no params yet: its point is in the fixed params.
    params = trial.params or (trial.system_attrs.get("fixed_params") or {})
    duration = None
    if trial.datetime_start is not None and trial.datetime_complete is not None:
        duration = (trial.datetime_complete - trial.datetime_start).total_seconds()
    aliases = attrs.get("aliases")
    arch_id = attrs.get("arch_id")
    rule = attrs.get("representative_rule")
    row: dict[str, Any] = {
        "number": trial.number,
        "state": state_name(trial),
        "alpha": as_float(params.get("alpha")),
        "beta": as_float(params.get("beta")),
        "gamma": as_float(params.get("gamma")),
        "depth": as_float(attrs.get("depth")),
        "width": as_float(attrs.get("width")),
        "resolution": as_int(attrs.get("resolution")),
        "flops": as_int(attrs.get("flops")),
        "params": as_int(attrs.get("params")),
        "flops_ratio": as_float(attrs.get("flops_ratio")),
        "formula_ratio": as_float(attrs.get("formula_ratio")),
        "val_top1": trial_val_top1(trial),
        "val_loss": as_float(attrs.get("val_loss")),
        "train_seconds": as_float(attrs.get("train_seconds")),
        "images_per_s": as_float(attrs.get("images_per_s")),
        "epochs": as_int(attrs.get("epochs")),
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


def _storage(url: str | None):
    from effscale.storage import DEFAULT_STORAGE_URL, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return open_storage(url or DEFAULT_STORAGE_URL)


def load_search_study(url: str | None, study_name: str) -> optuna.Study:
    storage = _storage(url)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        known = ", ".join(names[:10]) or "none"
        raise UsageError(f"no study {study_name!r} in this storage (studies: {known}); see `effscale studies`") from None


def list_studies(url: str | None) -> list[dict[str, Any]]:
    from effscale.storage import DEFAULT_STORAGE_URL, ProjectStore

    storage = _storage(url)
    records = {r.study_name: r for r in ProjectStore(url or DEFAULT_STORAGE_URL).list_searches()}
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        config = summary.user_attrs.get(CONFIG_ATTR) or {}
        record = records.get(summary.study_name)
        best = best_trial(storage.get_all_trials(summary._study_id, deepcopy=False))
        rows.append(
            {
                "study": summary.study_name,
                "baseline": config.get("baseline"),
                "data": config.get("data"),
                "status": record.status if record else "unknown",
                "n_trials": summary.n_trials,
                "best_value": best.value if best else None,
                "best_params": best.params if best else None,
                "created_at": record.created_at.isoformat() if record and record.created_at else None,
                "effscale": bool(config),
            }
        )
    return rows


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
    from effscale.storage import DEFAULT_STORAGE_URL, ProjectStore

    load_search_study(url, study_name)  # a clear error for an unknown study
    data = ProjectStore(url or DEFAULT_STORAGE_URL).load_family(study_name)
    if data is None:
        raise UsageError(f"search {study_name!r} has not emitted a family yet; it is emitted when the search completes")
    return Family.from_dict(data)
