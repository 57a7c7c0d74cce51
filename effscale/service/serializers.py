"""Effscale search records, studies and candidate grids as JSON-ready dicts.

Pure functions, no I/O: the routes fetch, these shape. A trial is shaped by the search layer's
`trial_row` (the same row `effscale trials --json` prints), so the CLI, the API and the dashboard
share one set of field names. Every float goes through `as_float`, so NaN and infinities (which
JSON cannot carry) become null instead of a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial

from effscale.search.records.queries import (
    as_float,
    as_int,
    iso_utc,
    json_safe,
    ranking,
    search_verdict,
    state_name,
    trial_row,  # noqa: F401 - the routes shape a trial as ser.trial_row
)
from effscale.search.records.schema import (
    CANDIDATES_ATTR,
    COMPARE_ATTR,
    CONFIG_ATTR,
    COUNTS_ATTR,
    HISTORY_ATTR,
    RESULT_ATTR,
)
from effscale.search.records.status import study_status
from effscale.storage import SearchRecord, redact_url

if TYPE_CHECKING:
    from effscale.search.records.summary_reads import StudyFacts
    from effscale.service.deps import ComparisonData, ConfirmationData, StudyData


def redact_urls(value: Any) -> Any:
    """``value`` (a config) with every URL-looking string's password replaced by ``***``."""
    if isinstance(value, str):
        return redact_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {k: redact_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_urls(v) for v in value]
    return value


def one_line(error: str | None, *, limit: int = 500) -> str | None:
    """A stored error as one line (its first), URL passwords redacted: what a public status shows."""
    if not error:
        return None
    line = next((l.strip() for l in str(error).splitlines() if l.strip()), "")
    line = redact_urls(line)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def serialize_curve(study: str, trial: FrozenTrial) -> dict[str, Any]:
    """Per-epoch points of one trial: its ``history`` attribute, else its intermediate values."""
    return curve(study, trial.number, state_name(trial), trial.user_attrs.get(HISTORY_ATTR), trial.intermediate_values)


def curve(study: str, number: int, state: str, history: Any, steps: dict[int, float | None]) -> dict[str, Any]:
    """A trial's curve from its ``history`` attribute (one dict per epoch), else its intermediate
    values (``steps``: epoch -> top-1)."""
    points: list[dict[str, Any]] = []
    if isinstance(history, list) and history:
        for i, entry in enumerate(history):
            if not isinstance(entry, dict):
                continue
            point = {k: json_safe(v) for k, v in entry.items() if isinstance(k, str)}
            point["epoch"] = as_int(entry.get("epoch")) or i + 1
            point["val_top1"] = as_float(entry.get("val_top1"))
            points.append(point)
    else:
        points = [{"epoch": int(step), "val_top1": as_float(steps[step])} for step in sorted(steps)]
    return {"study": study, "number": number, "state": state, "points": points}


def progress(facts: StudyFacts, counts: dict[str, Any] | None) -> dict[str, Any]:
    """Trials done / running, and networks: a candidate trains several repeats (and maybe a
    confirmation round), so ``left`` counts the unique networks no trial has started yet and
    ``fraction`` those with a finished trial, out of ``unique``."""
    states = facts.states
    done = sum(states.get(s, 0) for s in ("complete", "pruned", "fail"))
    counts = counts or {}
    unique = as_int(counts.get("unique"))
    return {
        "grid": as_int(counts.get("grid")),
        "feasible": as_int(counts.get("feasible")),
        "unique": unique,
        "aliases": as_int(counts.get("aliases")),
        "done": done,
        "running": states.get("running", 0),
        "waiting": states.get("waiting", 0),
        "left": max(unique - facts.networks_started, 0) if unique is not None else None,
        "networks_done": facts.networks_finished,
        "complete": states.get("complete", 0),
        "pruned": states.get("pruned", 0),
        "fail": states.get("fail", 0),
        "fraction": (min(facts.networks_finished / unique, 1.0) if unique else (1.0 if unique == 0 else None)),
    }


def _config(data: StudyData) -> dict[str, Any]:
    """The search's configuration: the study's ``effscale`` attribute, else the search record's."""
    config = data.user_attrs.get(CONFIG_ATTR)
    if not isinstance(config, dict):
        config = data.record.config if data.record is not None else None
    return config if isinstance(config, dict) else {}


def study_summary(data: StudyData, *, has_family: bool, url: str) -> dict[str, Any]:
    """Status, progress and the verdict (`search_verdict`: ``best``, ``best_source``,
    ``fidelity``, ``warnings``, ``failures``)."""
    config = _config(data)
    counts = data.user_attrs.get(COUNTS_ATTR)
    return {
        "name": data.name,
        "status": data.status,
        "baseline": config.get("baseline") if isinstance(config.get("baseline"), str) else None,
        "created_at": iso_utc(data.record.created_at) if data.record is not None else None,
        "n_trials": data.facts.n_trials,
        "progress": progress(data.facts, counts if isinstance(counts, dict) else None),
        **search_verdict(data.result, data.facts.best),
        "has_family": has_family,
        "url": url,
    }


def study_detail(
    data: StudyData, *, has_family: bool, url: str, comparisons: Sequence[dict[str, Any]] = (),
    confirmations: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """`study_summary` plus the configuration, counts, search record, launch, the comparisons
    (`comparison_link`) of its winner and its confirmation studies (`confirmation_link`)."""
    summary = study_summary(data, has_family=has_family, url=url)
    record = data.record
    counts = data.user_attrs.get(COUNTS_ATTR)
    regime = study_regime(data)
    if summary["best_source"] != "verdict" and isinstance(regime, dict) and isinstance(regime.get("warning"), str):
        summary["warnings"] = [regime["warning"], *summary["warnings"]]  # said before anything trains, too
    summary.update(
        regime=regime,
        config=redact_urls(json_safe(_config(data))),
        counts=json_safe(counts) if isinstance(counts, dict) else {},
        started_at=iso_utc(record.started_at) if record else None,
        finished_at=iso_utc(record.finished_at) if record else None,
        heartbeat_at=iso_utc(record.heartbeat_at) if record else None,
        error=one_line(record.error) if record else None,
        cancel_requested=bool(record.cancel_requested) if record else False,
        directions=list(data.directions),
        launch=data.launch,
        comparisons=list(comparisons),
        confirmations=list(confirmations),
    )
    return summary


def study_regime(data: StudyData) -> dict[str, Any] | None:
    """B0's regime (`effscale.search.planning.ways_out.regime_document`): the stored verdict's, with its
    planned ways out, else the one the search stored with its configuration before it trained."""
    result = data.result if isinstance(data.result, dict) else {}
    regime = result.get("regime")
    if not isinstance(regime, dict):
        regime = _config(data).get("regime")
    return json_safe(regime) if isinstance(regime, dict) else None


def network_stats(networks: dict[str, list[tuple[int, str]]], values: Sequence[tuple[Any, ...]],
                   stored: Sequence[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Per network (arch_id): the numbers of its race trials (aliases share their network's) and
    the race's top-1 mean ± se over its COMPLETE repeats, n: the verdict's stored aggregates
    (``stored``) when the search has one, else from its trials' ``values`` (a repeat's first trial
    counts, as the search's schedule reads them)."""
    from effscale.search.stats import summarize

    by_repeat: dict[str, dict[int, float]] = {}
    for arch, repeat, _, value in values:
        by_repeat.setdefault(arch, {}).setdefault(repeat or 0, value)
    saved = {c["arch_id"]: c for c in stored or () if isinstance(c.get("arch_id"), str)}
    stats: dict[str, dict[str, Any]] = {}
    for arch, trials in networks.items():
        if stored is not None:
            c = saved.get(arch, {})
            mean, stderr, n = as_float(c.get("mean")), as_float(c.get("stderr")), as_int(c.get("n")) or 0
        else:
            s = summarize([v for _, v in sorted(by_repeat.get(arch, {}).items())])
            mean, stderr, n = as_float(s.mean), as_float(s.stderr), s.n
        stats[arch] = {"trial_numbers": [number for number, _ in trials], "val_top1": mean, "val_top1_stderr": stderr,
                       "repeats": n, "state": _network_state([state for _, state in trials])}
    return stats


def _network_state(states: list[str]) -> str:
    """A network's state over its repeats: running while one runs, complete once one completed."""
    for state in ("running", "waiting", "complete"):
        if state in states:
            return state
    return states[-1]


def candidate_map(study: str, user_attrs: dict[str, Any], race: Callable[[], dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The grid of candidates, each with its network's race top-1: the mean over its COMPLETE
    repeats (``val_top1``), ``val_top1_stderr`` and ``repeats``, and its race trials' numbers
    (``race()``: `network_stats`, read only when there are candidates)."""
    config = user_attrs.get(CONFIG_ATTR) if isinstance(user_attrs.get(CONFIG_ATTR), dict) else {}
    raw = user_attrs.get(CANDIDATES_ATTR)
    candidates = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
    networks = race() if candidates else {}
    rows = []
    for cand in candidates:
        net = networks.get(cand.get("arch_id")) if isinstance(cand.get("arch_id"), str) else None
        row = json_safe(dict(cand))
        row["feasible"] = bool(cand.get("feasible"))
        row["representative"] = bool(cand.get("representative"))
        row["alias"] = row["feasible"] and not row["representative"]
        row["trial_numbers"] = net["trial_numbers"] if net else []
        row["trial_number"] = min(net["trial_numbers"]) if net else None
        row["state"] = net["state"] if net else None
        row["val_top1"] = net["val_top1"] if net else None
        row["val_top1_stderr"] = net["val_top1_stderr"] if net else None
        row["repeats"] = net["repeats"] if net else 0
        rows.append(row)
    grid_cfg = config.get("grid") if isinstance(config.get("grid"), dict) else {}
    grid: dict[str, list[float]] = {}
    for axis in ("alpha", "beta", "gamma"):
        values = grid_cfg.get(axis)
        if isinstance(values, list) and all(as_float(v) is not None for v in values):
            grid[axis] = [float(v) for v in values]
        else:
            grid[axis] = sorted({float(r[axis]) for r in rows if as_float(r.get(axis)) is not None})
    return {
        "study": study,
        "constraint": config.get("constraint") if isinstance(config.get("constraint"), str) else None,
        "target_ratio": as_float(config.get("target_ratio")),
        "tolerance": as_float(config.get("tolerance")),
        "counts": json_safe(user_attrs.get(COUNTS_ATTR) or {}),
        "grid": grid,
        "candidates": rows,
    }


def candidate_ranking(data: StudyData, stored: list[dict[str, Any]],
                      rows: Callable[[], Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """`queries.ranking`: the aggregates stored with the verdict, else computed from the trial
    rows (``rows()``: the search's and its confirmation studies'; confirmation runs at the
    search's configured budget only, as the search counts them)."""
    budget = _config(data).get("confirm_budget")
    return {"study": data.name, **ranking(stored, has_verdict=data.result is not None, rows=rows,
                                          confirm_budget=budget if isinstance(budget, dict) else None)}


def confirmation_link(data: ConfirmationData, *, url: str) -> dict[str, Any]:
    """A search's confirmation round in its study's detail."""
    return {"name": data.name, "url": url, "budget": json_safe(data.budget), "n_trials": data.facts.n_trials}


# ---------------------------------------------------------------------------------------------
# comparisons


def comparison_link(data: ComparisonData, *, url: str) -> dict[str, Any]:
    """A comparison in a list: what it compares, its status and, once done, each φ's verdict."""
    identity = data.user_attrs.get(COMPARE_ATTR) or {}
    result = data.user_attrs.get(RESULT_ATTR) if isinstance(data.user_attrs.get(RESULT_ATTR), dict) else {}
    phis = identity.get("phis") if isinstance(identity.get("phis"), list) else []
    return {
        "name": data.name,
        "url": url,
        "status": data.status,
        "search": identity.get("search") if isinstance(identity.get("search"), str) else None,
        "baseline": identity.get("baseline") if isinstance(identity.get("baseline"), str) else None,
        "data": identity.get("data") if isinstance(identity.get("data"), str) else None,
        "phi_values": [p for p in (as_int(v) for v in phis) if p is not None],
        "repeats": as_int(identity.get("repeats")),
        "n_trials": data.facts.n_trials,
        "verdicts": [{"phi": as_int(e.get("phi")), "verdict": str(e.get("verdict", ""))}
                     for e in result.get("phis") or [] if isinstance(e, dict) and as_int(e.get("phi")) is not None],
    }


def comparison_detail(data: ComparisonData, *, url: str) -> dict[str, Any]:
    """`comparison_link` and the stored result document (``phis`` empty until it completes)."""
    identity = data.user_attrs.get(COMPARE_ATTR) or {}
    result = data.user_attrs.get(RESULT_ATTR) if isinstance(data.user_attrs.get(RESULT_ATTR), dict) else {}
    coefficients = identity.get("coefficients")
    if isinstance(coefficients, list) and len(coefficients) == 3:
        coefficients = dict(zip(("alpha", "beta", "gamma"), coefficients))
    document = {"comparison": data.name, "coefficients": coefficients if isinstance(coefficients, dict) else None,
                "budget": identity.get("budget") if isinstance(identity.get("budget"), dict) else {},
                "base_resolution": identity.get("base_resolution"), **json_safe(result)}
    return {**document, **comparison_link(data, url=url), "identity": json_safe(identity),
            "phis": [e for e in document.get("phis") or [] if isinstance(e, dict)]}


def search_status(
    study: str,
    *,
    record: SearchRecord | None,
    launch: dict[str, Any] | None,
    study_url: str,
    driver: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A search's run as ``GET /api/searches/{name}`` shows it; ``driver`` is the one recorded on
    its study (`ServiceState.driver`), so that a dead driver's "running" reads interrupted."""
    status = study_status(record=record, launch=launch, driver=driver)
    # Public: the stored one-line error, never the process's output (GET .../log, with the token).
    error = record.error if record is not None and record.error else (launch or {}).get("error")
    return {
        "study_name": study,
        "status": status,
        "launched_here": launch is not None,
        "pid": (launch or {}).get("pid"),
        "returncode": (launch or {}).get("returncode"),
        "cancel_requested": bool(record.cancel_requested) if record is not None else bool((launch or {}).get("cancel_requested")),
        "error": one_line(error),
        "started_at": iso_utc(record.started_at) if record is not None else (launch or {}).get("started_at"),
        "finished_at": iso_utc(record.finished_at) if record is not None else (launch or {}).get("finished_at"),
        "study_url": study_url,
    }
