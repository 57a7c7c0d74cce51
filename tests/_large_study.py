"""A large stored search for the load test and ``benchmarks/bench_service_load.py``.

``make_large_study(url, n)`` writes, on SQLite or PostgreSQL, what a cluster search of ``n`` trials
leaves: an Optuna study over a 7×5×3 grid (105 candidates, each trained on many paired seeds),
its configuration, candidates and counts, a completed status row with a stored verdict and
per-candidate aggregates, and every trial's summary (``summarize``). The trials are inserted with
one ``executemany`` per table of Optuna's schema (its own SQLAlchemy tables and value encodings):
Optuna's ``add_trials`` takes minutes for thousands of trials on two cores. They are read back
through Optuna to check them, and their summaries are written by the readers' own repair
(`SummaryReader`), as a search's driver would have written them one by one.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

LARGE_STUDY = "svc-large"
ALPHAS, BETAS, GAMMAS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6), (1.0, 1.1, 1.2, 1.3, 1.4), (1.0, 1.1, 1.2)
GRID = list(itertools.product(ALPHAS, BETAS, GAMMAS))
STATE_CYCLE = ["complete"] * 14 + ["pruned"] * 3 + ["fail"] * 2 + ["running"]  # 70/15/10/5 %


def candidate(i: int) -> tuple[float, float, float]:
    return GRID[i % len(GRID)]


def trial_attrs(i: int) -> dict[str, Any]:
    """What an effscale trial stores (`static_attrs`, the run, and the training results)."""
    alpha, beta, gamma = candidate(i)
    c, repeat, epochs = i % len(GRID), i // len(GRID), 1 + i % 5
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_top1": 0.2 + 0.05 * e + (i % 13) / 100,
                "val_loss": 1.1 / e, "lr": 0.05, "seconds": 1.5} for e in range(1, epochs + 1)]
    attrs = {"depth": alpha, "width": beta, "resolution": round(32 * gamma), "params": 50_000 + c,
             "flops_ratio": alpha * beta**2 * gamma**2 * 1.03, "formula_ratio": alpha * beta**2 * gamma**2,
             "arch_id": f"arch-{c}", "aliases": [], "epochs": epochs, "repeat": repeat, "seed": 1000 + repeat,
             "confirmation": False, "budget": {"epochs": 5}, "node": f"10.0.0.{1 + i % 4}", "batch_size": 64,
             "lr": 0.05, "representative_rule": "smallest alpha, then beta, then gamma", "history": history,
             "train_seconds": 1.5 * epochs, "images_per_s": 900.0, "val_top1": history[-1]["val_top1"],
             "val_loss": history[-1]["val_loss"]}
    if c % 17:  # some networks never measured: null flops sort last
        attrs["flops"] = 1_000_000 + (c * 7919) % 900_000
    return attrs


def _study_attrs() -> dict[str, Any]:
    config = {"baseline": "tiny", "data": "synthetic:classes=10,size=32,n=5000", "budget": {"epochs": 5},
              "grid": {"alpha": list(ALPHAS), "beta": list(BETAS), "gamma": list(GAMMAS)},
              "constraint": "formula", "target_ratio": 2.0, "tolerance": 5.0, "base_resolution": 32, "seed": 0,
              "min_repeats": 2, "max_repeats": 100}
    attrs0 = [trial_attrs(c) for c in range(len(GRID))]
    candidates = [{"alpha": a, "beta": b, "gamma": g, "depth": a, "width": b, "resolution": t["resolution"],
                   "flops": t.get("flops"), "params": t["params"], "flops_ratio": t["flops_ratio"],
                   "formula_ratio": t["formula_ratio"], "feasible": True, "arch_id": t["arch_id"], "representative": True}
                  for (a, b, g), t in zip(GRID, attrs0)]
    counts = {"grid": len(GRID), "feasible": len(GRID), "unique": len(GRID), "aliases": 0}
    return {"effscale": config, "candidates": candidates, "counts": counts}


def _rows(n: int, study_id: int, first_id: int) -> dict[str, list[dict[str, Any]]]:
    from optuna.distributions import FloatDistribution, distribution_to_json
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    dist = FloatDistribution(0.5, 3.0)
    start = dt.datetime(2026, 1, 1)
    rows: dict[str, list[dict[str, Any]]] = {"trials": [], "params": [], "values": [], "attrs": [], "steps": []}
    for i in range(n):
        trial_id, state, attrs = first_id + i, TrialState[STATE_CYCLE[i % len(STATE_CYCLE)].upper()], trial_attrs(i)
        done = state != TrialState.RUNNING
        rows["trials"].append({"trial_id": trial_id, "number": i, "study_id": study_id, "state": state,
                               "datetime_start": start, "datetime_complete": start + dt.timedelta(seconds=9) if done else None})
        for name, value in zip(("alpha", "beta", "gamma"), candidate(i)):
            rows["params"].append({"trial_id": trial_id, "param_name": name, "param_value": dist.to_internal_repr(value),
                                   "distribution_json": distribution_to_json(dist)})
        if state == TrialState.COMPLETE:
            value, kind = models.TrialValueModel.value_to_stored_repr(attrs["val_top1"] - (i % 3) / 1000)
            rows["values"].append({"trial_id": trial_id, "objective": 0, "value": value, "value_type": kind})
        rows["attrs"] += [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
        for entry in attrs["history"]:
            value, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(entry["val_top1"])
            rows["steps"].append({"trial_id": trial_id, "step": entry["epoch"], "intermediate_value": value,
                                  "intermediate_value_type": kind})
    return rows


def _verdict(storage: Any, study_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The stored verdict and per-candidate aggregates of the race, from its COMPLETE trials."""
    from effscale.search.records.queries import live_ranking
    from effscale.search.records.rows import trial_row

    rows = live_ranking([trial_row(t) for t in storage.get_all_trials(study_id, deepcopy=False)])
    for i, row in enumerate(rows):
        row["standing"] = "winner" if i == 0 else "separated"
    top = rows[0]
    best = {k: top[k] for k in ("alpha", "beta", "gamma", "flops")}
    best.update(val_top1_mean=top["mean"], val_top1_stderr=top["stderr"], repeats=top["n"], tied_with=[],
                chosen_by="highest mean", flops_ratio=None, formula_ratio=None)
    return {"best": best, "fidelity": None, "warnings": [], "failures": []}, rows


def make_large_study(url: str, n: int, *, study: str = LARGE_STUDY, summarize: bool = True) -> int:
    """Write the search (see the module docstring); return its Optuna study id."""
    import optuna
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    from effscale.search.records.summary_reads import SummaryReader
    from effscale.storage import ProjectStore, open_storage
    from effscale.storage.engine import get_engine

    store = ProjectStore(url)  # effscale's tables first, as a search creates them
    storage = open_storage(url)
    created = optuna.create_study(storage=storage, study_name=study, direction="maximize")
    for key, value in _study_attrs().items():
        created.set_user_attr(key, value)
    study_id = storage.get_study_id_from_name(study)
    tables = {"trials": models.TrialModel, "params": models.TrialParamModel, "values": models.TrialValueModel,
              "attrs": models.TrialUserAttributeModel, "steps": models.TrialIntermediateValueModel}
    with get_engine(url).begin() as connection:
        first = (connection.execute(sa.select(sa.func.max(models.TrialModel.trial_id))).scalar() or 0) + 1
        rows = _rows(n, study_id, first)
        for name, model in tables.items():
            connection.execute(model.__table__.insert(), rows[name])
        if connection.dialect.name == "postgresql":  # new trials' ids come after these
            connection.exec_driver_sql("SELECT setval(pg_get_serial_sequence('trials', 'trial_id'), "
                                       "(SELECT max(trial_id) FROM trials))")
    assert storage.get_n_trials(study_id) == n
    sample = storage.get_trial(first + 40)
    assert sample.number == 40 and sample.user_attrs == trial_attrs(40) and sample.params["gamma"] == candidate(40)[2]
    store.create_search(study, config=_study_attrs()["effscale"], status="running")
    store.save_result(study, *_verdict(storage, study_id))
    store.set_status(study, "completed")
    if summarize:
        SummaryReader(storage, url, write=True).repair(study_id)
    return study_id
