"""The flat row of one trial: `trial_row`, the one view `effscale trials`, the REST API and the dashboard show.

`trial_row` is a pure function of Optuna's `FrozenTrial` and JSON-safe (NaN and infinities become
None). `effscale.search.records.summaries` stores it per trial, typed and indexed; the helpers
here (`as_float`, `iso_utc`, ...) coerce stored values the same way everywhere.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from effscale.search.records import schema
from effscale.search.records.study import trial_params

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
    wall time; ``aliases`` lists the (α, β, γ) grid points that build this same network;
    ``budget`` is what it trained for ({"epochs": N} or {"steps": N}).
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
    budget = attrs.get(schema.BUDGET_ATTR)
    row["budget"] = json_safe(budget) if isinstance(budget, dict) else None
    return row


def network_key(row: dict[str, Any]) -> str | None:
    """The network a trial trained, as a study's progress counts networks: its ``arch_id``, else
    its (α, β, γ) (None without either)."""
    if isinstance(row.get("arch_id"), str):
        return row["arch_id"]
    point = [row.get(p) for p in ("alpha", "beta", "gamma")]
    return None if None in point else repr(tuple(round(v, 6) for v in point))
