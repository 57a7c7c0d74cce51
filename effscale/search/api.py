"""`run_search`: the whole coefficient search, from configuration to the emitted family.

Order matters for "bad input leaves the database unchanged": everything that can be refused
(grid, constraint, budget, baseline, data, feasibility, Ray, resources, an existing study with
another configuration) is checked before the first write.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effscale.errors import UsageError
from effscale.models import Coefficients, get_baseline
from effscale.search.family import Family, emit_family, family_document
from effscale.search.objective import TrialSettings, ray_trainable
from effscale.search.progress import SearchProgress
from effscale.search.runner import Resources, TrialEvents, ensure_ray, run_trials
from effscale.search.space import Constraint, Grid, enumerate_candidates
from effscale.search.study import (
    best_trial,
    create_search_study,
    distributions,
    enqueue_pending,
    open_search_study,
    reap_orphans,
    trial_counts,
)

SCHEDULERS = ("none", "asha")
# A driver that has not beaten its heart for this long is taken to be dead.
HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 60.0
DRIVER_ATTR = "effscale_driver"


@dataclass(frozen=True)
class SearchResult:
    study: str
    storage: str
    coefficients: Coefficients
    best: dict[str, Any]
    counts: dict[str, int]  # grid, feasible, unique, aliases
    trials: dict[str, int]  # complete, pruned, failed, running, waiting
    family: Family
    family_path: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "best": self.best,
            "candidates": self.counts,
            "trials": {k: self.trials[k] for k in ("complete", "pruned", "failed")},
            "family": family_document(self.family),
            "family_path": str(self.family_path) if self.family_path else None,
        }


def _version() -> str:
    from effscale import __version__

    return __version__


def _driver_alive(study: Any, record: Any) -> bool:
    """Is the driver that last ran this search still alive? A fresh heartbeat says yes, unless
    the driver ran on this host and its process is gone (killed: its trials are orphans)."""
    if record.heartbeat_at is None or time.time() - record.heartbeat_at.timestamp() > STALE_AFTER_SECONDS:
        return False
    driver = study._storage.get_study_system_attrs(study._study_id).get(DRIVER_ATTR) or {}
    if driver.get("host") == socket.gethostname() and driver.get("pid"):
        try:
            os.kill(int(driver["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def default_study_name(identity: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    data = re.sub(r"[^A-Za-z0-9]+", "-", identity["data"].split(":")[0]).strip("-")
    baseline = re.sub(r"[^A-Za-z0-9_]+", "-", identity["baseline"]).strip("-")
    return f"{baseline}-{data}-{digest}"


def search(
    baseline: str,
    *,
    data: str,
    alpha: object = None,
    beta: object = None,
    gamma: object = None,
    target_ratio: float = 2.0,
    tolerance: float = 0.05,
    constraint: str = "measured",
    base_resolution: int | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 128,
    lr: float | None = None,
    optimizer: str = "sgd",
    seed: int = 0,
    scheduler: str = "none",
    grace_period: int = 1,
    max_phi: int = 7,
    storage: str | None = None,
    study: str | None = None,
    ray_address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_concurrent: int | None = None,
    max_retries: int = 2,
    out: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> SearchResult:
    """Grid-search (α, β, γ) for ``baseline`` at φ=1 and emit the B0..B{max_phi} family.

    Example::

        import effscale
        result = effscale.search("tiny", data="digits", alpha="1.0,1.2", beta="1.0,1.1",
                                 gamma="1.0,1.15", epochs=2, storage="sqlite:///effscale.db")
        print(result.coefficients, result.family.member("B1").flops_ratio)

    Re-running with the same ``study`` resumes: finished candidates are never trained again.
    """
    import optuna

    from effscale.storage import DEFAULT_STORAGE_URL, ProjectStore, open_storage, redact_url, validate_url
    from effscale.trainer import Budget, TrainConfig, load_data

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress view speaks for the study

    # 1. Everything that can be refused, before any write.
    if epochs is not None and steps is not None:
        raise UsageError("pass either --epochs N or --steps N, not both")
    budget = Budget(steps=steps) if steps is not None else Budget(epochs=3 if epochs is None else epochs)
    TrainConfig(batch_size=batch_size, lr=lr, optimizer=optimizer)
    if scheduler not in SCHEDULERS:
        raise UsageError(f"--scheduler {scheduler!r}; pass one of {', '.join(SCHEDULERS)}")
    if grace_period < 1:
        raise UsageError(f"--grace-period {grace_period} must be >= 1 epoch")
    if max_phi < 0:
        raise UsageError(f"--max-phi {max_phi} must be >= 0")
    grid = Grid.parse(alpha, beta, gamma)
    rule = Constraint(constraint, float(target_ratio), float(tolerance))
    base = get_baseline(baseline)
    base_resolution = base.base_resolution if base_resolution is None else int(base_resolution)
    if base_resolution < base.min_resolution:
        raise UsageError(
            f"--base-resolution {base_resolution} is too small for {base.name} (total stride {base.min_resolution}); "
            f"pass at least {base.min_resolution}"
        )
    resources = Resources(cpus_per_trial, gpus_per_trial, max_concurrent, max_retries)
    storage_url = storage or DEFAULT_STORAGE_URL
    validate_url(storage_url)  # its scheme and path now, before the slow steps below
    proxy_data = load_data(data, seed=seed)
    candidates = enumerate_candidates(base, grid, rule, base_resolution=base_resolution)

    identity = {
        "baseline": base.name,
        "data": data,
        "budget": {"epochs": budget.epochs} if budget.epochs is not None else {"steps": budget.steps},
        "grid": grid.as_dict(),
        "constraint": rule.kind,
        "target_ratio": rule.target_ratio,
        "tolerance": rule.tolerance,
        "base_resolution": base_resolution,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "grace_period": grace_period,
    }
    study_name = study or default_study_name(identity)
    config = {
        **identity,
        "identity": identity,
        "study": study_name,
        "max_phi": max_phi,
        "num_classes": proxy_data.num_classes,
        "version": _version(),
        "storage": redact_url(storage_url),
    }

    started_ray = ensure_ray(ray_address, resources)
    try:
        optuna_storage = open_storage(storage_url)
        store = ProjectStore(storage_url)
        existing, exists = open_search_study(optuna_storage, study_name, identity)
        record = store.get_search(study_name)
        if exists and record is not None and record.status == "running" and _driver_alive(existing, record):
            raise UsageError(
                f"search {study_name!r} is already running (its driver beat "
                f"{time.time() - record.heartbeat_at.timestamp():.0f}s ago); wait for it, or cancel it first"
            )
    except BaseException:
        if started_ray:
            import ray

            ray.shutdown()
        raise

    # 2. Writes: the study, our search row, the queue of candidates.
    try:
        study_obj = existing if exists else create_search_study(optuna_storage, study_name, config, candidates)
        if record is None:
            store.create_search(study_name, config=config, status="running")
        store.set_status(study_name, "running")
        optuna_storage.set_study_system_attr(study_obj._study_id, DRIVER_ATTR, {"host": socket.gethostname(), "pid": os.getpid()})
        reaped = reap_orphans(study_obj)
        pending = enqueue_pending(study_obj, candidates)

        view = SearchProgress(
            study_name, total=len(candidates.groups), done=len(candidates.groups) - len(pending), reaped=reaped,
            enabled=progress,
        )
        last_beat = [0.0]

        def on_step() -> bool:
            now = time.time()
            if now - last_beat[0] >= HEARTBEAT_SECONDS:
                last_beat[0] = now
                store.heartbeat(study_name)
                view.refresh()
                return store.cancel_requested(study_name)
            return False

        settings = TrialSettings(
            baseline=base.name,
            base_resolution=base_resolution,
            budget=identity["budget"],
            batch_size=batch_size,
            lr=lr,
            optimizer=optimizer,
            seed=seed,
            device="cuda" if gpus_per_trial > 0 else "cpu",
            threads=max(1, int(math.floor(cpus_per_trial))),
        )
        if pending:
            with view:
                run_trials(
                    study_name=study_name,
                    storage=optuna_storage,
                    space=distributions(grid),
                    num_trials=len(pending),
                    trainable=ray_trainable,
                    trainable_kwargs={
                        "settings": settings,
                        "data": proxy_data,
                        "crash_marker": os.environ.get("EFFSCALE_TEST_CRASH_WORKER"),
                    },
                    resources=resources,
                    scheduler=scheduler,
                    max_epochs=budget.epochs or 10_000,
                    grace_period=grace_period,
                    events=TrialEvents(on_trial_started=view.trial_started, on_trial_finished=view.trial_finished),
                    on_step=on_step,
                )
        if store.cancel_requested(study_name):
            store.set_status(study_name, "cancelled")
            raise UsageError(f"search {study_name!r} was cancelled; re-run the same command to resume it")

        # 3. The winner and its family.
        best = best_trial(study_obj.get_trials(deepcopy=False))
        if best is None:
            store.set_status(study_name, "failed", error="no trial completed")
            raise UsageError(
                f"search {study_name!r}: no trial completed (see `effscale trials --study {study_name}`); "
                "re-run the same command to retry the failed candidates"
            )
        coefficients = Coefficients(best.params["alpha"], best.params["beta"], best.params["gamma"])
        family = emit_family(
            base, coefficients, phis=range(max_phi + 1), base_resolution=base_resolution,
            num_classes=proxy_data.num_classes,
        )
        store.save_family(study_name, family.to_dict())
        family_path = family.save(out) if out else None
        store.set_status(study_name, "completed")
    except BaseException as exc:
        if not isinstance(exc, UsageError):
            try:
                store.set_status(study_name, "failed", error=f"{type(exc).__name__}: {exc}")
            except Exception:
                pass
        raise
    finally:
        if started_ray:
            import ray

            ray.shutdown()

    return SearchResult(
        study=study_name,
        storage=redact_url(storage_url),
        coefficients=coefficients,
        best={
            **coefficients.as_dict(),
            "val_top1": best.value,
            "flops_ratio": best.user_attrs.get("flops_ratio"),
            "formula_ratio": best.user_attrs.get("formula_ratio"),
            "trial": best.number,
        },
        counts=candidates.counts(),
        trials=trial_counts(study_obj),
        family=family,
        family_path=family_path,
    )
