"""Read-only views of stored searches, shared by the CLI and the REST API."""

from __future__ import annotations

from typing import Any

import optuna

from effscale.errors import UsageError
from effscale.search.family import Family
from effscale.search.study import CONFIG_ATTR, best_trial, trial_row

SORTS = ("number", "value", "flops")


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
    if sort == "value":
        rows.sort(key=lambda r: (r["val_top1"] is None, -(r["val_top1"] or 0.0), r["flops"] or 0, r["number"]))
    elif sort == "flops":
        rows.sort(key=lambda r: (r["flops"] is None, r["flops"] or 0, r["number"]))
    return rows[:limit] if limit else rows


def load_family(url: str | None, study_name: str) -> Family:
    from effscale.storage import DEFAULT_STORAGE_URL, ProjectStore

    load_search_study(url, study_name)  # a clear error for an unknown study
    data = ProjectStore(url or DEFAULT_STORAGE_URL).load_family(study_name)
    if data is None:
        raise UsageError(f"search {study_name!r} has not emitted a family yet; it is emitted when the search completes")
    return Family.from_dict(data)
