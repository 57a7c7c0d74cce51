"""A large stored search for the load test and ``benchmarks/bench_service_load.py``.

``make_large_study(url, n)`` writes, on SQLite or PostgreSQL, what a cluster search of ``n`` trials
leaves while it runs its last 16: an Optuna study over a 7×5×3 grid (105 candidates, each trained on
many paired seeds),
its configuration, candidates and counts, a completed status row with a stored verdict and
per-candidate aggregates, and every trial's summary (``summarize``). The trials are inserted with
one ``executemany`` per table of Optuna's schema (its own SQLAlchemy tables and value encodings):
Optuna's ``add_trials`` takes minutes for thousands of trials on two cores, and reading 10,000
back with ``get_all_trials`` about 16 s here. So each trial's summary is computed from the same
`FrozenTrial` that was inserted (`summary_record`, as the driver writes it), and one trial read
back through Optuna checks both: Optuna returns the trial inserted, and its summary is the one
written.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

LARGE_STUDY = "svc-large"
ALPHAS, BETAS, GAMMAS = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6), (1.0, 1.1, 1.2, 1.3, 1.4), (1.0, 1.1, 1.2)
GRID = list(itertools.product(ALPHAS, BETAS, GAMMAS))
STATE_CYCLE = ["complete"] * 15 + ["pruned"] * 3 + ["fail"] * 2  # 75/15/10 %
RUNNING = 16  # the last trials run, as a cluster search runs 16 at once


def trial_state(i: int, n: int) -> str:
    return "running" if i >= n - RUNNING else STATE_CYCLE[i % len(STATE_CYCLE)]


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


def frozen_trial(i: int, n: int, trial_id: int) -> Any:
    """Trial ``i`` of ``n`` as Optuna returns it."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import FrozenTrial, TrialState

    state, attrs = TrialState[trial_state(i, n).upper()], trial_attrs(i)
    start = dt.datetime(2026, 1, 1)
    return FrozenTrial(
        number=i, state=state, value=attrs["val_top1"] - (i % 3) / 1000 if state == TrialState.COMPLETE else None,
        datetime_start=start, datetime_complete=start + dt.timedelta(seconds=9) if state != TrialState.RUNNING else None,
        params=dict(zip(("alpha", "beta", "gamma"), candidate(i))),
        distributions={p: FloatDistribution(0.5, 3.0) for p in ("alpha", "beta", "gamma")},
        user_attrs=attrs, system_attrs={}, intermediate_values={h["epoch"]: h["val_top1"] for h in attrs["history"]},
        trial_id=trial_id,
    )


def _rows(trials: list[Any], study_id: int) -> dict[str, list[dict[str, Any]]]:
    """Optuna's table rows of ``trials``, in its own encodings."""
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models

    rows: dict[str, list[dict[str, Any]]] = {"trials": [], "params": [], "values": [], "attrs": [], "steps": []}
    for t in trials:
        tid = t._trial_id
        rows["trials"].append({"trial_id": tid, "number": t.number, "study_id": study_id, "state": t.state,
                               "datetime_start": t.datetime_start, "datetime_complete": t.datetime_complete})
        for name, value in t.params.items():
            dist = t.distributions[name]
            rows["params"].append({"trial_id": tid, "param_name": name, "param_value": dist.to_internal_repr(value),
                                   "distribution_json": distribution_to_json(dist)})
        if t.value is not None:
            value, kind = models.TrialValueModel.value_to_stored_repr(t.value)
            rows["values"].append({"trial_id": tid, "objective": 0, "value": value, "value_type": kind})
        rows["attrs"] += [{"trial_id": tid, "key": k, "value_json": json.dumps(v)} for k, v in t.user_attrs.items()]
        for step, v in t.intermediate_values.items():
            value, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(v)
            rows["steps"].append({"trial_id": tid, "step": step, "intermediate_value": value,
                                  "intermediate_value_type": kind})
    return rows


def _verdict(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The stored verdict and per-candidate aggregates of the race, from its trial rows."""
    from effscale.search.records.queries import live_ranking

    ranking = live_ranking(rows)
    for i, row in enumerate(ranking):
        row["standing"] = "winner" if i == 0 else "separated"
    top = ranking[0]
    best = {k: top[k] for k in ("alpha", "beta", "gamma", "flops")}
    best.update(val_top1_mean=top["mean"], val_top1_stderr=top["stderr"], repeats=top["n"], tied_with=[],
                chosen_by="race", flops_ratio=None, formula_ratio=None)
    return {"best": best, "fidelity": None, "warnings": [], "failures": []}, ranking


def make_large_study(url: str, n: int, *, study: str = LARGE_STUDY, summarize: bool = True) -> int:
    """Write the search (see the module docstring); return its Optuna study id."""
    import optuna
    import sqlalchemy as sa
    from optuna.storages._rdb import models

    from effscale.search.records.rows import trial_row
    from effscale.search.records.summaries import summary_record
    from effscale.storage import ProjectStore, open_storage
    from effscale.storage.engine import get_engine
    from effscale.storage.summaries import upsert

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
        trials = [frozen_trial(i, n, first + i) for i in range(n)]
        rows = _rows(trials, study_id)
        for name, model in tables.items():
            connection.execute(model.__table__.insert(), rows[name])
        if connection.dialect.name == "postgresql":  # new trials' ids come after these
            connection.exec_driver_sql("SELECT setval(pg_get_serial_sequence('trials', 'trial_id'), "
                                       "(SELECT max(trial_id) FROM trials))")
        records = [summary_record(t, study_id=study_id) for t in trials]
        if summarize:
            upsert(connection, records)
    assert storage.get_n_trials(study_id) == n
    sample = storage.get_trial(first + 40)
    assert sample.user_attrs == trial_attrs(40) and summary_record(sample, study_id=study_id) == records[40]
    store.create_search(study, config=_study_attrs()["effscale"], status="running")
    store.save_result(study, *_verdict([trial_row(t) for t in trials]))
    store.set_status(study, "completed")
    return study_id


def add_trials_until(url: str, study: str, first: int, stop: Any, added: list[int], errors: list[str],
                     pause_s: float) -> None:
    """Add finished trials (`trial_attrs` from ``first`` on) to ``study`` through Optuna's API, as
    plain Optuna writes them (no trial summary), one every ``pause_s``, until ``stop`` is set;
    their numbers go to ``added``, a failure to ``errors``."""
    import time

    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from effscale.storage import open_storage

    try:
        loaded = optuna.load_study(study_name=study, storage=open_storage(url))
        dist, i = {"alpha": FloatDistribution(0.5, 3.0)}, first
        while not stop.is_set():
            attrs = trial_attrs(i)
            loaded.add_trial(create_trial(state=TrialState.COMPLETE, value=attrs["val_top1"], params={"alpha": 1.0},
                                          distributions=dist, user_attrs=attrs))
            added.append(i)
            i += 1
            time.sleep(pause_s)
    except Exception as exc:  # noqa: BLE001 - reported by the caller
        errors.append(f"writer: {type(exc).__name__}: {exc}")
