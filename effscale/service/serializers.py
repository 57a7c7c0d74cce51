"""Effscale search records, studies and candidate grids as JSON-ready dicts.

Pure functions, no I/O: the routes fetch, these shape. A trial is shaped by the search layer's
`trial_row` (the same row `effscale trials --json` prints), so the CLI, the API and the dashboard
share one set of field names. Every float goes through `as_float`, so NaN and infinities (which
JSON cannot carry) become null instead of a 500.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

from effscale.search.queries import (
    as_float,
    as_int,
    iso_utc,
    json_safe,
    state_name,
    trial_row,
    trial_val_top1,
)
from effscale.search.study import best_trial
from effscale.storage import SearchRecord, redact_url

if TYPE_CHECKING:
    from effscale.service.deps import StudyData

DONE_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


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
    """Per-epoch points: the trial's ``history`` attribute, else its intermediate values."""
    history = trial.user_attrs.get("history")
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
        for step in sorted(trial.intermediate_values):
            points.append({"epoch": int(step), "val_top1": as_float(trial.intermediate_values[step])})
    return {"study": study, "number": trial.number, "state": state_name(trial), "points": points}


def progress(trials: Sequence[FrozenTrial], counts: dict[str, Any] | None) -> dict[str, Any]:
    """Candidates done / running / left (left = unique − done − running)."""
    by_state = {state: 0 for state in TrialState}
    for trial in trials:
        by_state[trial.state] += 1
    done = sum(by_state[s] for s in DONE_STATES)
    running = by_state[TrialState.RUNNING]
    counts = counts or {}
    unique = as_int(counts.get("unique"))
    left = max(unique - done - running, 0) if unique is not None else None
    total = unique if unique is not None else None
    return {
        "grid": as_int(counts.get("grid")),
        "feasible": as_int(counts.get("feasible")),
        "unique": unique,
        "aliases": as_int(counts.get("aliases")),
        "done": done,
        "running": running,
        "waiting": by_state[TrialState.WAITING],
        "left": left,
        "complete": by_state[TrialState.COMPLETE],
        "pruned": by_state[TrialState.PRUNED],
        "fail": by_state[TrialState.FAIL],
        "fraction": (min(done / total, 1.0) if total else (1.0 if total == 0 else None)),
    }


def study_status(record: SearchRecord | None, launch: dict[str, Any] | None, trials: Sequence[FrozenTrial]) -> str:
    if record is not None:
        return record.status
    if launch is not None:
        return str(launch.get("status", "starting"))
    if any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials):
        return "running"
    return "unknown"


def _config(data: StudyData) -> dict[str, Any]:
    """The search's configuration: the study's ``effscale`` attribute, else the search record's."""
    config = data.user_attrs.get("effscale")
    if not isinstance(config, dict):
        config = data.record.config if data.record is not None else None
    return config if isinstance(config, dict) else {}


def study_summary(data: StudyData, *, has_family: bool, url: str) -> dict[str, Any]:
    config = _config(data)
    best = best_trial(data.trials)
    counts = data.user_attrs.get("counts")
    return {
        "name": data.name,
        "status": study_status(data.record, data.launch, data.trials),
        "baseline": config.get("baseline") if isinstance(config.get("baseline"), str) else None,
        "created_at": iso_utc(data.record.created_at) if data.record is not None else None,
        "n_trials": len(data.trials),
        "progress": progress(data.trials, counts if isinstance(counts, dict) else None),
        "best": trial_row(best) if best is not None else None,
        "has_family": has_family,
        "url": url,
    }


def study_detail(data: StudyData, *, has_family: bool, url: str) -> dict[str, Any]:
    """`study_summary` plus the configuration, counts, search record and launch."""
    summary = study_summary(data, has_family=has_family, url=url)
    record = data.record
    counts = data.user_attrs.get("counts")
    summary.update(
        config=redact_urls(json_safe(_config(data))),
        counts=json_safe(counts) if isinstance(counts, dict) else {},
        started_at=iso_utc(record.started_at) if record else None,
        finished_at=iso_utc(record.finished_at) if record else None,
        heartbeat_at=iso_utc(record.heartbeat_at) if record else None,
        error=one_line(record.error) if record else None,
        cancel_requested=bool(record.cancel_requested) if record else False,
        directions=list(data.directions),
        launch=data.launch,
    )
    return summary


def candidate_map(study: str, user_attrs: dict[str, Any], trials: Sequence[FrozenTrial]) -> dict[str, Any]:
    """The grid of candidates, each with the validation top-1 of the trial that trained its network."""
    config = user_attrs.get("effscale") if isinstance(user_attrs.get("effscale"), dict) else {}
    raw = user_attrs.get("candidates")
    candidates = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
    by_arch: dict[str, FrozenTrial] = {}
    for trial in trials:
        arch = trial.user_attrs.get("arch_id")
        if isinstance(arch, str):
            by_arch[arch] = trial
    rows = []
    for cand in candidates:
        trial = by_arch.get(cand.get("arch_id")) if isinstance(cand.get("arch_id"), str) else None
        row = json_safe(dict(cand))
        row["feasible"] = bool(cand.get("feasible"))
        row["representative"] = bool(cand.get("representative"))
        row["alias"] = row["feasible"] and not row["representative"]
        row["trial_number"] = trial.number if trial is not None else None
        row["state"] = state_name(trial) if trial is not None else None
        row["val_top1"] = trial_val_top1(trial) if trial is not None else None
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
        "counts": json_safe(user_attrs.get("counts") or {}),
        "grid": grid,
        "candidates": rows,
    }


def search_status(
    study: str,
    *,
    record: SearchRecord | None,
    launch: dict[str, Any] | None,
    study_url: str,
) -> dict[str, Any]:
    status = record.status if record is not None else (launch or {}).get("status", "unknown")
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
