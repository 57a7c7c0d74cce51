"""`studies` and `trials`: read a database, never create one."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from effscale.cli.flags import options
from effscale.cli.output import emit_json, mean_se, print_table, triple

# The table's columns: a subset of `trial_row`'s fields, under the same names (`--json` prints
# every field). The per-trial run attributes (seed, node, ...) join them when any row has one.
TRIAL_COLUMNS = ("number", "state", "alpha", "beta", "gamma", "depth", "width", "resolution", "flops",
                 "flops_ratio", "formula_ratio", "activations", "val_top1", "train_seconds")


def studies_settings() -> tuple[type, ...]:
    from effscale.search.records.options import StudiesOptions

    return (StudiesOptions,)


def cmd_studies(args: argparse.Namespace) -> int:
    from effscale.search.records.options import StudiesOptions
    from effscale.search.records.queries import list_studies

    rows = list_studies(options(args, StudiesOptions).storage)
    if args.json:
        emit_json(rows)
        return 0
    print_table(
        "studies",
        ("study", "kind", "baseline", "data", "status", "trials", "winner (alpha, beta, gamma)",
         "top-1 mean ± se (n)", "from", "Kendall tau [95%]"),
        [
            (
                r["study"], r["kind"], r["baseline"] or "-", r["data"] or "-", r["status"], r["n_trials"],
                "-" if r["best"] is None or None in (r["best"]["alpha"], r["best"]["beta"], r["best"]["gamma"])
                else triple(r["best"]),
                "-" if r["best"] is None else mean_se(r["best"]),
                r["best_source"] or "-", _tau(r["kendall_tau"], r["tau_interval"]),
            )
            for r in rows
        ],
    )
    return 0


def _tau(tau: float | None, interval: Sequence[float | None] | None) -> str:
    if tau is None:
        return "-"
    low, high = (list(interval or ()) + [None, None])[:2]
    return f"{tau:.2f}" + ("" if low is None or high is None else f" [{low:.2f}, {high:.2f}]")


def trials_settings() -> tuple[type, ...]:
    from effscale.search.records.options import TrialsOptions

    return (TrialsOptions,)


def cmd_trials(args: argparse.Namespace) -> int:
    from effscale.search.records.options import TrialsOptions
    from effscale.search.records.queries import RUN_ATTRS, list_trials

    o = options(args, TrialsOptions)
    rows = list_trials(o.storage, o.study, sort=o.sort, limit=o.limit)
    if args.json:
        emit_json(rows)
        return 0
    columns = TRIAL_COLUMNS + tuple(k for k in RUN_ATTRS if any(r[k] is not None for r in rows))
    print_table(f"trials of {o.study}", columns, [[_cell(r[k]) for k in columns] for r in rows])
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
