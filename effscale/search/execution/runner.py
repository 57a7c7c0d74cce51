"""Ray Tune executes the trials; the study in the database says which.

The driver hands Tune a `StudySearcher`: when Tune asks for a trial, the searcher takes the next
`TrialSpec` from the driver's policy (the race, the confirmation round, a comparison's arms),
creates its Optuna trial, and returns its configuration; when a trial reports or ends, it writes
the result to the study. Everything that writes to the database runs here in the driver, so SQLite
stays safe and workers need no database access. Workers get the dataset once through
``tune.with_parameters`` (Ray's object store).

Outcomes: a trial that used its whole budget is COMPLETE; one the scheduler stopped is PRUNED; one
whose training raised (out of memory, a user baseline's exception, a diverged loss) reports its
one-line reason and ends normally, so Ray does not retry it: it is FAIL with ``fail_reason`` and
``fail_kind`` "error". Ray retries only workers that die (``--max-retries``); a trial still dead
after that is FAIL with ``fail_kind`` "worker". Trials Tune stops when the search is interrupted are
never reported back by Tune: `run_trials` returns their numbers and the driver records them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

# Tune's own console output and its per-trial CSV/JSON/TensorBoard loggers are not ours to show,
# and its SIGINT handler would swallow Ctrl-C (the driver handles signals; see `interrupts`).
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "100000")

from effscale.search.execution.cluster import Resources, ensure_ray, shutdown_ray  # noqa: E402  (after the env)

__all__ = ["Resources", "TrialEvents", "TrialSpec", "ensure_ray", "run_trials", "shutdown_ray"]

METRIC = "val_top1"


@dataclass(frozen=True)
class TrialSpec:
    """One trial to run: a network, a seed, a budget, and how the study records it."""

    key: tuple  # the candidate (α, β, γ), or a comparison arm
    repeat: int
    seed: int
    params: dict[str, float]  # the Optuna trial's parameters
    attrs: dict[str, Any]  # user attributes written when the trial is created
    depth: float
    width: float
    resolution: int
    budget: dict[str, int]  # {"epochs": N} or {"steps": N}
    batch_size: int
    lr: float
    memory: int | None = None  # bytes asked of Ray (measured footprint plus margin)
    gpus: float | None = None  # GPUs asked of Ray (None: the search's --gpus-per-trial)
    # Values after top-1 in a multi-objective study (a frontier's measured cost ratio): the trial is
    # told [top-1, *objectives] and reports no intermediate values (Optuna has none for several).
    objectives: tuple[float, ...] = ()

    def config(self) -> dict[str, Any]:
        """What the worker receives (plain values: Tune copies and logs it)."""
        return {"depth": self.depth, "width": self.width, "resolution": self.resolution, "seed": self.seed,
                "batch_size": self.batch_size, "lr": self.lr, **self.budget,
                "memory": self.memory or 0, "gpus": self.gpus}


@dataclass
class TrialEvents:
    """What the searcher tells the rest of the driver (the progress view)."""

    on_trial_started: Callable[[TrialSpec], None] = lambda spec: None
    on_trial_finished: Callable[[TrialSpec, str, dict[str, Any]], None] = lambda spec, state, result: None


class _DriverLocal:
    """Driver-only objects (the study, callbacks). Tune pickles the searcher for its bookkeeping;
    these must not travel with it, and are never needed outside the driver."""

    def __init__(self, **objects: Any) -> None:
        self.__dict__.update(objects)

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        pass


def _make_searcher(local: _DriverLocal) -> Any:
    from ray.tune.search import Searcher

    from effscale.search.execution.recording import TrialRecorder

    class StudySearcher(Searcher):
        """Tune's search algorithm: the driver's policy decides, the study records."""

        def __init__(self, local: _DriverLocal) -> None:
            super().__init__(metric=METRIC, mode="max")
            self.local = local
            self.pending: list[TrialSpec] = []
            self.live: dict[str, TrialRecorder] = {}

        def __getstate__(self) -> dict:
            return {k: v for k, v in self.__dict__.items() if k not in ("pending", "live")}

        def suggest(self, trial_id: str) -> dict | str | None:
            with self.local.database_guard:
                return self._suggest(trial_id)
            return Searcher.FINISHED  # the database is gone: the run stops (see `_DatabaseGuard`)

        def _suggest(self, trial_id: str) -> dict | str | None:
            if self.local.should_stop():
                return Searcher.FINISHED
            if not self.pending:
                if self.live:
                    return None  # wait: the next batch depends on these results
                batch = self.local.next_batch()
                if not batch:
                    return Searcher.FINISHED
                self.pending.extend(batch)
            spec = self.pending.pop(0)
            self.live[trial_id] = TrialRecorder.create(self.local.study, self.local.distributions, spec)
            self.local.events.on_trial_started(spec)
            return spec.config()

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if trial_id in self.live:
                with self.local.database_guard:
                    self.live[trial_id].epoch(result)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            recorder = self.live.get(trial_id)
            if recorder is None:
                return
            with self.local.database_guard:
                state = recorder.finish(result, error=error, stopping=self.local.should_stop())
                del self.live[trial_id]  # recorded; else it stays RUNNING for the next driver to reap
                self.local.events.on_trial_finished(recorder.spec, state, result or {})

        def unfinished(self) -> list[TrialRecorder]:
            return list(self.live.values())

    return StudySearcher(local)


@dataclass
class RunOutcome:
    """What `run_trials` leaves for the driver: trials Tune stopped without a word."""

    unfinished: list[Any] = field(default_factory=list)  # TrialRecorder of trials cut short


def run_trials(
    *,
    study: Any,
    distributions: dict[str, Any],
    next_batch: Callable[[], list[TrialSpec]],
    trainable: Callable,
    trainable_kwargs: dict[str, Any],
    resources: Resources,
    scheduler: str,
    max_epochs: int,
    grace_period: int,
    events: TrialEvents,
    should_stop: Callable[[], bool],
) -> RunOutcome:
    """Run trials on the current Ray until ``next_batch`` returns nothing (or ``should_stop``)."""
    from ray import tune

    guard = _DatabaseGuard()

    def stopping() -> bool:
        if guard.error is None:
            with guard:
                return should_stop()
        return True

    local = _DriverLocal(study=study, distributions=distributions, next_batch=next_batch, events=events,
                         should_stop=stopping, database_guard=guard)
    searcher = _make_searcher(local)
    work_dir = tempfile.mkdtemp(prefix="effscale-tune-")
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable, **trainable_kwargs), _resource_request(resources)),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=_scheduler(scheduler, max_epochs, grace_period),
                metric=METRIC,
                mode="max",
                num_samples=-1,  # the searcher says when it is done (Searcher.FINISHED)
                max_concurrent_trials=resources.max_concurrent,
                reuse_actors=True,  # speed: one worker process per slot, not one per trial (torch import ~3 s)
            ),
            run_config=tune.RunConfig(
                name="effscale",
                storage_path=work_dir,
                verbose=0,
                stop=_stopper(stopping),
                failure_config=tune.FailureConfig(max_failures=resources.max_retries),
                checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
            ),
        )
        tuner.fit()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    if guard.error is not None:
        raise guard.error
    return RunOutcome(unfinished=searcher.unfinished())


class _DatabaseGuard:
    """Holds a `DatabaseUnavailable` raised in a searcher callback. Tune turns any exception there
    into a TuneError carrying only a traceback's text, so the error is kept here instead, the run
    stops (`stopping`), and `run_trials` re-raises it once Tune has returned: the driver then ends
    the search as interrupted, in one line."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> bool:
        from effscale.storage.retry import DatabaseUnavailable

        if isinstance(exc, DatabaseUnavailable):
            self.error = self.error or exc
            return True
        return False


def _resource_request(resources: Resources) -> Callable[[dict], Any]:
    from ray.tune import PlacementGroupFactory

    def request(config: dict) -> PlacementGroupFactory:
        bundle: dict[str, float] = {"CPU": resources.cpus_per_trial}
        gpus = config.get("gpus") if config.get("gpus") is not None else resources.gpus_per_trial
        if gpus:
            bundle["GPU"] = gpus
        if config.get("memory"):
            bundle["memory"] = float(config["memory"])  # Ray then starts no more trials on a node than fit
        return PlacementGroupFactory([bundle])

    return request


def _scheduler(name: str, max_epochs: int, grace_period: int) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if name == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=max(max_epochs, 1), grace_period=grace_period,
                             reduction_factor=2)
    return FIFOScheduler()


def _stopper(should_stop: Callable[[], bool]) -> Any:
    from ray.tune.stopper import Stopper

    class DriverStop(Stopper):
        """Asks the driver once per Tune loop (heartbeat, cancel, signals); stops all when it says so."""

        local: _DriverLocal  # set below, not closed over: Tune pickles this class by value

        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return bool(self.local.should_stop())

    stopper = DriverStop()
    stopper.local = _DriverLocal(should_stop=should_stop)
    return stopper
