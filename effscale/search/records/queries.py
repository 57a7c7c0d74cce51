"""Read-only views of stored searches, shared by the CLI and the REST API.

`trial_row` is the one flat view of a trial: `effscale trials` (table and ``--json``), the REST
API and the dashboard all show its fields under its names. It is a pure function of Optuna's
`FrozenTrial` and JSON-safe (NaN and infinities become None), so the service can send it as is.

`search_verdict` is the one view of what a search concluded (``best`` with its mean ± se and n,
``best_source``, ``fidelity``, ``warnings``, ``failures``), and `ranking` the one view of its
per-candidate aggregates: `effscale studies` and the REST API show both under the same names.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import optuna

from effscale.errors import UsageError
from effscale.search.family.members import Family
from effscale.search.records import schema
from effscale.search.records.liveness import stored_driver
from effscale.search.records.optuna_access import storage_of, study_id
from effscale.search.records.status import side_kind, status_row, study_status
from effscale.search.records.options import SORTS
from effscale.search.records.rows import (  # noqa: F401 - re-exported: the row's helpers, where readers look
    RUN_ATTRS,
    SORT_FIELDS,
    STATE_NAMES,
    as_float,
    as_int,
    iso_utc,
    json_safe,
    state_name,
    trial_row,
    trial_val_top1,
)

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


def single_trial_best(row: dict[str, Any]) -> dict[str, Any]:
    """The best single trial (its `trial_row`) in `verdict_best`'s shape: one repeat, no standard
    error, no tie, its ``number``."""
    return {
        **{p: row[p] for p in ("alpha", "beta", "gamma")},
        **_mean_se(row["val_top1"], None, 1),
        "confirmed": None, "tied_with": [], "chosen_by": None, "tie_break": None, "separation_rule": None,
        **{p: row[p] for p in ("flops", "flops_ratio", "formula_ratio", "number")},
    }


def search_verdict(result: dict[str, Any] | None, best_row: dict[str, Any] | None) -> dict[str, Any]:
    """What a search concluded: its stored verdict (``best_source`` "verdict"), else, for a search
    still running or made by an effscale that stored none, its best single trial (``best_row``, the
    `trial_row` of `StudyFacts.best`: "single trial", no fidelity). ``fidelity`` is the stored
    document (NaN as None); ``failures`` one line per kind."""
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
    return {"best": single_trial_best(best_row) if best_row is not None else None,
            "best_source": "single trial" if best_row is not None else None,
            "fidelity": None, "warnings": [], "failures": []}


# ---------------------------------------------------------------------------------------------
# per-candidate aggregates, from trial rows (`trial_row`s)


def row_candidate(row: dict[str, Any]) -> tuple[float, float, float] | None:
    """A row's candidate (α, β, γ), as `effscale.search.records.study.candidate_key` keys a trial."""
    point = [row.get(p) for p in ("alpha", "beta", "gamma")]
    return None if None in point else tuple(round(v, 6) for v in point)  # type: ignore[return-value]


def stage_values(
    rows: Sequence[dict[str, Any]], *, confirmation: bool, by: Callable[[dict[str, Any]], Hashable | None],
    budget: dict[str, Any] | None = None,
) -> dict[Hashable, dict[int, float]]:
    """repeat -> top-1 of the COMPLETE trials of one stage (the race, or the confirmation round, at
    ``budget`` when given), per key ``by(row)``; a repeat's first trial counts, as the search's own
    schedule (`effscale.search.verdict.schedule.SearchSchedule.records`) reads them."""
    out: dict[Hashable, dict[int, float]] = {}
    for row in rows:
        if bool(row["confirmation"]) != confirmation:
            continue
        if confirmation and budget is not None and row["budget"] != budget:
            continue
        key = by(row)
        value = row["val_top1"] if row["state"] == "complete" else None
        if key is None or value is None:
            continue
        out.setdefault(key, {}).setdefault(row["repeat"] or 0, value)
    return out


def _summary(values: dict[int, float] | None) -> Any:
    from effscale.search.stats import summarize

    return summarize([values[r] for r in sorted(values or {})])


def _ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best mean first, unranked last (`ProjectStore.load_candidates`'s order)."""
    return sorted(rows, key=lambda c: (c["mean"] is None, -(c["mean"] or 0.0), c["candidate"]))


def live_ranking(rows: Sequence[dict[str, Any]], *, confirm_budget: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per-candidate aggregates computed from trial rows, with the stored rows' fields and standing
    None: for a search that has no verdict yet (or is older than verdicts)."""
    race = stage_values(rows, confirmation=False, by=row_candidate)
    confirm = stage_values(rows, confirmation=True, by=row_candidate, budget=confirm_budget)
    first: dict[Hashable, dict[str, Any]] = {}
    for row in rows:
        first.setdefault(row_candidate(row), row)
    first.pop(None, None)
    out = []
    for key, row in first.items():
        s, c = _summary(race.get(key)), _summary(confirm.get(key))
        out.append({
            "candidate": ",".join(f"{v:g}" for v in key), **dict(zip(("alpha", "beta", "gamma"), key)),
            "arch_id": row["arch_id"], "flops": row["flops"], "standing": None,
            "n": s.n, "mean": as_float(s.mean), "stderr": as_float(s.stderr),
            "confirm_n": c.n, "confirm_mean": as_float(c.mean), "confirm_stderr": as_float(c.stderr),
        })
    return _ranked(out)


def ranking(stored: list[dict[str, Any]], *, has_verdict: bool, rows: Callable[[], Sequence[dict[str, Any]]],
            confirm_budget: dict[str, Any] | None = None) -> dict[str, Any]:
    """The candidates' aggregates: the stored ones (``source`` "verdict") once the search has a
    verdict, else computed from its trial rows (``rows()``, read only then: "trials")."""
    if has_verdict:
        return {"source": "verdict", "candidates": _ranked([{k: json_safe(v) for k, v in row.items()} for row in stored])}
    return {"source": "trials", "candidates": live_ranking(rows(), confirm_budget=confirm_budget)}


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


def _reader(url: str | None, storage: Any):
    """Trial summaries for a query: repaired in memory, never written (`SummaryReader`)."""
    from effscale.search.records.summary_reads import SummaryReader
    from effscale.storage import resolve_storage

    return SummaryReader(storage, resolve_storage(url), write=False)


def list_studies(url: str | None) -> list[dict[str, Any]]:
    """One row per study (`effscale studies`): a search with its verdict (``best`` as mean ± se
    with n, ``best_source``, ``kendall_tau`` and ``tau_interval``), a comparison, or a search's
    confirmation round (``kind``; its status is its search's)."""
    storage = _storage(url)
    store, reader = _store(url), _reader(url, storage)
    records = {r.study_name: r for r in store.list_searches()}
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    ids = {s.study_name: study_id(s) for s in summaries}
    rows = []
    for summary in summaries:
        record = records.get(summary.study_name)
        facts = reader.facts(ids[summary.study_name])
        row = {"study": summary.study_name, "n_trials": summary.n_trials,
               "created_at": record.created_at.isoformat() if record and record.created_at else None}
        status = _stored_status(storage, ids, records, summary, facts.present)
        kind = side_kind(summary.user_attrs)
        if kind is not None:
            compare = summary.user_attrs.get(schema.COMPARE_ATTR) or summary.user_attrs.get(schema.FRONTIER_ATTR) or {}
            rows.append({**row, "kind": kind,
                         "baseline": compare.get("baseline"), "data": compare.get("data"),
                         "status": status, "best": None, "best_source": None,
                         "kendall_tau": None, "tau_interval": None, "effscale": True})
            continue
        config = summary.user_attrs.get(schema.CONFIG_ATTR) or {}
        verdict = search_verdict(store.load_result(summary.study_name) if record else None, facts.best)
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
                   states: set[str]) -> str:
    """`study_status` of one study in `list_studies`: its status row (a confirmation round's is its
    search's), and the driver of that row's study only when the row says running."""
    name = status_row(summary.study_name, summary.user_attrs)
    record = records.get(name)
    running = record is not None and record.status == "running"
    driver = stored_driver(storage, ids.get(name)) if running else None
    return study_status(record=record, user_attrs=summary.user_attrs, states=states, driver=driver)


# The CLI's ``--sort`` -> the trial pages' sort: top-1 best first, FLOPs and numbers ascending.
CLI_SORTS = {"value": "-value", "flops": "flops", "number": "number"}
CLI_HIDDEN = ("budget",)  # a row's training budget: the API's rows carry it, `effscale trials --json` keeps its documented keys


def list_trials(url: str | None, study_name: str, *, sort: str = "value", limit: int | None = None) -> list[dict[str, Any]]:
    """`effscale trials`: the trial page query the REST API serves (`SummaryReader.page`), best
    top-1 first by default (ties by the later trial, as the API's ``-value``)."""
    if sort not in SORTS:
        raise UsageError(f"sort {sort!r}; pass one of {', '.join(SORTS)}")
    study = load_search_study(url, study_name)
    reader = _reader(url, storage_of(study))
    rows = reader.page(study_id(study), state=None, sort=CLI_SORTS[sort], limit=limit or None, offset=0)[1]
    return [{k: v for k, v in row.items() if k not in CLI_HIDDEN} for row in rows]


def load_family(url: str | None, study_name: str) -> Family:
    load_search_study(url, study_name)  # a clear error for an unknown study
    data = _store(url).load_family(study_name)
    if data is None:
        raise UsageError(f"search {study_name!r} has not emitted a family yet; it is emitted when the search completes")
    return Family.from_dict(data)
