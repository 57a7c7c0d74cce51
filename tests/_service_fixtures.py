"""Databases for the service tests: a fake search written to the data contract, and a real one.

``make_fake_search(url)`` writes exactly what a search writes (Optuna study with the ``effscale``,
``candidates`` and ``counts`` user attributes, one trial per unique feasible network in every
state, a `ProjectStore` record and a family) without training anything: deterministic states for
filter and pagination tests. ``shared_search_db(base, kind="real")`` runs a real small search once
per test session (``effscale search tiny ...`` with repeats and a confirmation round, launched
through ``POST /api/searches``), then a real ``effscale compare`` of its winner, and returns a copy
of its storage URL. Large studies (the load test, the benchmark) are `_large_study`'s.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

FAKE_STUDY = "svc-fake"
REAL_STUDY = "svc-test"
REAL_COMPARISON = "svc-compare"
# The real search: 6 grid points, 4 feasible (formula ratio 1.25 ± 15%), one alias (α 1.1 and 1.2
# build the same tiny network), so 3 candidates race on 2 paired seeds each; the top one and one
# other are confirmed at 2 epochs on the same seeds: 10 trials, a verdict with fidelity.
REAL_SEARCH_CONFIG: dict[str, Any] = {
    "baseline": "tiny",
    "data": "synthetic:classes=3,size=16,n=120",
    "alpha": "1.0,1.1,1.2",
    "beta": "1.0,1.1",
    "gamma": "1.0",
    "constraint": "formula",
    "target_ratio": 1.25,
    "tolerance": 0.15,
    "epochs": 1,
    "min_repeats": 2,
    "max_repeats": 2,
    "confirm_top": 1,
    "confirm_epochs": 2,
}
REAL_SEARCH_ARGS = [REAL_SEARCH_CONFIG["baseline"]] + [
    arg for key, value in REAL_SEARCH_CONFIG.items() if key != "baseline"
    for arg in ("--" + key.replace("_", "-"), str(value))
]
# Its winner against depth-, width- and resolution-only and fast scaling at φ=1: 5 arms × 2 seeds.
REAL_COMPARE_ARGS = ["--study", REAL_STUDY, "--phi", "1", "--repeats", "2", "--tolerance", "0.3",
                     "--arms", "compound,depth,width,resolution,fast", "--name", REAL_COMPARISON]
REPO = Path(__file__).resolve().parents[1]
# A search decided by rounding: tiny at 16 px has a 2x2 last map, and gamma 1.1 (18 px) makes it
# 3x3, measuring 1.65x where the formula says 1.21x; that one feasible candidate wins by stride
# rounding, and its family (resolution only) cannot grow as 1.6^phi. One trial, no confirmation.
ROUNDED_STUDY = "rounded"
ROUNDED_SEARCH_ARGS = ["search", "tiny", "--data", "synthetic:classes=3,size=16,n=120", "--alpha", "1.0",
                       "--beta", "1.0", "--gamma", "1.0,1.1", "--target-ratio", "1.6", "--tolerance", "0.1",
                       "--epochs", "1", "--min-repeats", "1", "--max-repeats", "1", "--max-phi", "3",
                       "--study", ROUNDED_STUDY]


class FakeLauncher:
    """Records launches instead of starting processes."""

    def __init__(self) -> None:
        self.launched: list[tuple[str, list[str]]] = []
        self.cancelled: list[str] = []
        self._running: dict[str, dict[str, Any]] = {}

    def launch(self, study: str, argv: list[str]) -> dict[str, Any]:
        self.launched.append((study, argv))
        info = {"study_name": study, "status": "starting", "pid": 4242, "returncode": None,
                "started_at": None, "finished_at": None, "cancel_requested": False, "error": None}
        self._running[study] = info
        return dict(info)

    def get(self, study: str) -> dict[str, Any] | None:
        info = self._running.get(study)
        return dict(info) if info else None

    def list(self) -> list[dict[str, Any]]:
        return [dict(v) for v in self._running.values()]

    def cancel(self, study: str) -> bool:
        self.cancelled.append(study)
        if study in self._running:
            self._running[study].update(status="cancelling", cancel_requested=True)
            return True
        return False

    def log(self, study: str) -> str | None:
        return f"output of {study}\n" if study in self._running else None


def _round_res(base: int, gamma: float) -> int:
    return int(round(base * gamma / 4) * 4)


def make_fake_search(url: str, study: str = FAKE_STUDY, *, status: str = "completed") -> dict[str, Any]:
    """Write a fake 2×2×2 search to ``url``; return what a test needs to check the API against.

    Grid α, β ∈ {1.0, 1.1}, γ ∈ {1.0, 1.15}, target 2 with tolerance 1 on the formula ratio
    (feasible: 1 ≤ α·β²·γ² ≤ 3, i.e. all 8). Two points alias (same network): 7 unique networks,
    6 trials so far (3 COMPLETE, 1 PRUNED, 1 FAIL, 1 RUNNING), 1 left.
    """
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    from effscale.storage import ProjectStore, open_storage

    base_res, base_flops, base_params = 16, 1_000_000, 50_000
    grid = {"alpha": [1.0, 1.1], "beta": [1.0, 1.1], "gamma": [1.0, 1.15]}
    config = {
        "baseline": "tiny",
        "data": "synthetic:classes=3,size=16,n=120",
        "budget": {"epochs": 3},
        "grid": grid,
        "constraint": "formula",
        "target_ratio": 2.0,
        "tolerance": 1.0,
        "base_resolution": base_res,
        "seed": 0,
        "version": "0.1.0",
        "scheduler": "none",
    }
    candidates: list[dict[str, Any]] = []
    for alpha, beta, gamma in itertools.product(grid["alpha"], grid["beta"], grid["gamma"]):
        formula = alpha * beta**2 * gamma**2
        resolution = _round_res(base_res, gamma)
        flops = int(base_flops * alpha * beta**2 * (resolution / base_res) ** 2 * 1.03)
        # α=1.1 at β=1.0 rounds to the same depth as α=1.0 (an alias), for γ=1.0 only.
        depth_key = 1.0 if (alpha == 1.1 and beta == 1.0 and gamma == 1.0) else alpha
        arch = f"arch-d{depth_key}-w{beta}-r{resolution}"
        candidates.append(
            {
                "alpha": alpha, "beta": beta, "gamma": gamma,
                "depth": depth_key, "width": beta, "resolution": resolution,
                "flops": flops, "params": int(base_params * beta**2 * depth_key),
                "flops_ratio": flops / base_flops, "formula_ratio": formula,
                "feasible": 1.0 <= formula <= 3.0, "arch_id": arch, "representative": True,
            }
        )
    seen: dict[str, dict[str, Any]] = {}
    for cand in candidates:
        if cand["arch_id"] in seen:
            cand["representative"] = False
        else:
            seen[cand["arch_id"]] = cand
    feasible = [c for c in candidates if c["feasible"]]
    unique = [c for c in feasible if c["representative"]]
    counts = {"grid": len(candidates), "feasible": len(feasible), "unique": len(unique),
              "aliases": len(feasible) - len(unique)}

    storage = open_storage(url)
    optuna_study = optuna.create_study(storage=storage, study_name=study, direction="maximize")
    optuna_study.set_user_attr("effscale", config)
    optuna_study.set_user_attr("candidates", candidates)
    optuna_study.set_user_attr("counts", counts)
    states = [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE,
              TrialState.FAIL, TrialState.RUNNING]
    dist = FloatDistribution(0.5, 2.0)
    top1s = []
    for i, (cand, state) in enumerate(zip(unique, states)):
        epochs = {TrialState.COMPLETE: 3, TrialState.PRUNED: 1, TrialState.FAIL: 0, TrialState.RUNNING: 2}[state]
        history = [
            {"epoch": e, "train_loss": 1.0 / e, "val_top1": 0.3 + 0.1 * e + 0.02 * i,
             "val_loss": 1.2 / e, "lr": 0.1, "seconds": 1.5}
            for e in range(1, epochs + 1)
        ]
        aliases = [[c["alpha"], c["beta"], c["gamma"]] for c in feasible
                   if c["arch_id"] == cand["arch_id"] and c is not cand]
        attrs = {
            "depth": cand["depth"], "width": cand["width"], "resolution": cand["resolution"],
            "flops": cand["flops"], "params": cand["params"], "flops_ratio": cand["flops_ratio"],
            "formula_ratio": cand["formula_ratio"], "arch_id": cand["arch_id"], "aliases": aliases,
            "representative_rule": "smallest alpha, then beta, then gamma", "epochs": epochs,
            "history": history, "train_seconds": 1.5 * epochs, "images_per_s": 800.0,
        }
        if history:
            attrs["val_top1"] = history[-1]["val_top1"]
            attrs["val_loss"] = history[-1]["val_loss"]
        value = history[-1]["val_top1"] if state == TrialState.COMPLETE else None
        if value is not None:
            top1s.append(value)
        trial = optuna.trial.create_trial(
            state=state if state != TrialState.RUNNING else TrialState.COMPLETE,
            value=value if state == TrialState.COMPLETE else (0.0 if state == TrialState.RUNNING else None),
            params={"alpha": cand["alpha"], "beta": cand["beta"], "gamma": cand["gamma"]},
            distributions={"alpha": dist, "beta": dist, "gamma": dist},
            user_attrs=attrs,
            intermediate_values={h["epoch"]: h["val_top1"] for h in history},
        )
        if state == TrialState.RUNNING:
            # create_trial cannot make a RUNNING trial; add one through the storage API.
            study_id = storage.get_study_id_from_name(study)
            trial_id = storage.create_new_trial(study_id)
            for name in ("alpha", "beta", "gamma"):
                storage.set_trial_param(trial_id, name, cand[name], dist)
            for key, value in attrs.items():
                storage.set_trial_user_attr(trial_id, key, value)
            for h in history:
                storage.set_trial_intermediate_value(trial_id, h["epoch"], h["val_top1"])
        else:
            optuna_study.add_trial(trial)

    store = ProjectStore(url)
    store.create_search(study, config=config, status="running")
    if status != "running":
        store.set_status(study, status)
    family = {
        "format": "effscale.family/1", "baseline": "tiny",
        "coefficients": {"alpha": 1.1, "beta": 1.0, "gamma": 1.15},
        "base_resolution": base_res, "num_classes": 3, "flops_convention": "fvcore: one fused multiply-add = 1 FLOP",
        "source": "compound scaling", "extra": {},
        "members": [
            {"name": f"B{phi}", "phi": float(phi), "depth": 1.1**phi, "width": 1.0,
             "resolution": _round_res(base_res, 1.15**phi), "params": base_params,
             "flops": int(base_flops * 1.1**phi * 1.15 ** (2 * phi)),
             "flops_ratio": 1.1**phi * 1.15 ** (2 * phi), "formula_ratio": (1.1 * 1.15**2) ** phi,
             "arch_id": f"fam-{phi}", "dropout": None}
            for phi in range(8)
        ],
    }
    store.save_family(study, family)
    return {
        "study": study, "counts": counts, "n_trials": len(states),
        "states": {"complete": 3, "pruned": 1, "fail": 1, "running": 1},
        "best_top1": max(top1s), "n_candidates": len(candidates),
    }


def run_real_search(url: str, study: str = REAL_STUDY, *, timeout_s: float = 240.0) -> dict[str, Any]:
    """Launch the real small search through ``POST /api/searches`` and wait until it completes.

    The service's own launcher runs ``effscale search tiny ... --study STUDY`` (storage URL in
    the environment); returns the last status seen. Raises with the search's log when it fails.
    """
    from fastapi.testclient import TestClient

    from effscale.service import create_app
    from effscale.service.launcher import SearchLauncher

    token = "fixture-token"
    state_dir = Path(str(url).split("///", 1)[-1]).parent / f"state-{study}"
    launcher = SearchLauncher(url, state_dir=state_dir)
    client = TestClient(create_app(url, token=token, launcher=launcher))
    res = client.post(
        "/api/searches", json=dict(REAL_SEARCH_CONFIG, study=study), headers={"Authorization": f"Bearer {token}"}
    )
    if res.status_code != 202:
        raise RuntimeError(f"POST /api/searches answered {res.status_code}: {res.text}")
    status_url = res.json()["status_url"]
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get(status_url).json()
        finished = status["returncode"] is not None
        if status["status"] == "completed" and finished:
            return status
        if status["status"] in ("failed", "cancelled") or (finished and status["returncode"] != 0):
            logs = launcher.log(study) or ""
            raise RuntimeError(f"real search ended {status}:\n{logs[-4000:]}")
        if time.monotonic() > deadline:
            launcher.shutdown()
            raise RuntimeError(f"real search did not finish in {timeout_s:.0f} s: {status}")
        time.sleep(0.5)


def run_real_comparison(url: str, *, timeout_s: float = 240.0) -> dict[str, Any]:
    """``effscale compare`` of the real search's winner (`REAL_COMPARE_ARGS`), as a user runs it:
    its own process and its own local Ray; returns its ``--json`` document."""
    import subprocess
    import sys

    where = Path(url.split("///", 1)[-1]).parent
    env = {**os.environ, "EFFSCALE_STORAGE": url, "EFFSCALE_STATE_DIR": str(where / "state-compare")}
    proc = subprocess.run([sys.executable, "-m", "effscale.cli", "compare", *REAL_COMPARE_ARGS, "--json"],
                          capture_output=True, text=True, env=env, timeout=timeout_s, cwd=where)
    if proc.returncode != 0:
        raise RuntimeError(f"effscale compare exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def shared_search_db(base: Path, *, kind: str) -> tuple[str, str]:
    """A storage URL holding one search, built once per session under ``base`` and copied per use.

    ``kind`` is "real" (a real small search, launched through the API) or "fake".
    """
    master = base / f"shared-{kind}.db"
    lock = base / f"shared-{kind}.lock"
    study = REAL_STUDY if kind == "real" else FAKE_STUDY
    if not master.exists():
        deadline = time.monotonic() + 300
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                break
            except FileExistsError:
                if master.exists() or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        if not master.exists():
            tmp = base / f"building-{kind}.db"
            tmp.unlink(missing_ok=True)
            url = f"sqlite:///{tmp}"
            if kind == "real":
                run_real_search(url, study)
                run_real_comparison(url)
            else:
                make_fake_search(url, study)
            from effscale.storage import dispose_engines

            dispose_engines()
            built = base / f"built-{kind}.db"
            sqlite_copy(tmp, built)
            built.replace(master)  # whole, at once: another process may be waiting for it
    copy = base / f"copy-{kind}-{time.monotonic_ns()}.db"
    sqlite_copy(master, copy)
    return f"sqlite:///{copy}", study


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database, what its write-ahead log holds included (a plain file
    copy would miss it: effscale's writers use WAL mode)."""
    import sqlite3

    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def summarize(url: str, study: str) -> dict[str, Any]:
    """What the API should report for ``study``, read directly from Optuna and the store."""
    import optuna

    from effscale.storage import ProjectStore, open_storage

    s = optuna.load_study(study_name=study, storage=open_storage(url))
    trials = s.get_trials(deepcopy=False)
    by_state: dict[str, int] = {}
    for t in trials:
        by_state[t.state.name.lower()] = by_state.get(t.state.name.lower(), 0) + 1
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    return {
        "n_trials": len(trials),
        "states": by_state,
        "counts": s.user_attrs.get("counts"),
        "n_candidates": len(s.user_attrs.get("candidates") or []),
        "best_top1": max((t.value for t in complete), default=None),
        "n_with_curve": sum(1 for t in trials if t.intermediate_values or t.user_attrs.get("history")),
        "family": ProjectStore(url).load_family(study),
        "record": json.loads(json.dumps(ProjectStore(url).get_search(study).__dict__, default=str)),
    }
