"""Ray Tune executes the trials; Optuna (through Ray's `OptunaSearch`) is the search algorithm.

Everything that writes to the database runs in this driver process: the searcher's ask/report/
tell and the trial attributes, so SQLite stays safe and workers need no database access. Workers
get the dataset once through ``tune.with_parameters`` (Ray's object store).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from effscale.errors import UsageError

# Tune's own console output and its per-trial CSV/JSON/TensorBoard loggers are not ours to show.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "100000")


@dataclass
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    max_retries: int = 2

    def __post_init__(self) -> None:
        if not self.cpus_per_trial > 0:
            raise UsageError(f"--cpus-per-trial {self.cpus_per_trial} must be > 0, e.g. 1")
        if self.gpus_per_trial < 0:
            raise UsageError(f"--gpus-per-trial {self.gpus_per_trial} must be >= 0 (fractions such as 0.5 share a GPU)")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise UsageError(f"--max-concurrent {self.max_concurrent} must be >= 1")
        if self.max_retries < 0:
            raise UsageError(f"--max-retries {self.max_retries} must be >= 0")


def _probe_address(address: str) -> None:
    """Fail fast on an unreachable cluster: ``ray.init`` would retry for a minute first."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {address!r} is not host:port (or ray://host:port, or auto)")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); start it with `ray start --head` "
            "or omit --ray-address to run on a local Ray"
        ) from None


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Ray's C++ core logs straight to file descriptor 2 while it starts or retries a cluster;
    the user gets our one line instead (see the UsageError below)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def ensure_ray(address: str | None, resources: Resources) -> bool:
    """Join ``address`` or start a quiet in-process local Ray; True if this call started it."""
    import ray

    if address:
        _probe_address(address)
    if ray.is_initialized():
        started = False
    else:
        try:
            # Joining a cluster: Ray's retries log to fd 2. A local start spawns Ray's own processes,
            # which must not inherit a temporary stderr, and is quiet anyway.
            with _quiet_stderr() if address else contextlib.nullcontext():
                ray.init(
                    address=address or None,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                    configure_logging=True,
                )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(f"cannot start or join Ray ({str(exc).splitlines()[0]}); check --ray-address") from None
        started = True
    total = ray.cluster_resources()
    gpus, cpus = total.get("GPU", 0.0), total.get("CPU", 0.0)
    if resources.gpus_per_trial > gpus:
        if started:
            ray.shutdown()
        raise UsageError(
            f"--gpus-per-trial {resources.gpus_per_trial:g} but the Ray cluster has {gpus:g} GPUs; "
            "pass --gpus-per-trial 0 or join a cluster with GPUs (--ray-address)"
        )
    if resources.cpus_per_trial > cpus:
        if started:
            ray.shutdown()
        raise UsageError(f"--cpus-per-trial {resources.cpus_per_trial:g} but the Ray cluster has {cpus:g} CPUs")
    return started


def shutdown_ray() -> None:
    """Stop the local Ray that `ensure_ray` started."""
    import ray

    ray.shutdown()


@dataclass
class TrialEvents:
    """What the driver-side searcher tells the rest of the driver (progress view, database)."""

    on_trial_started: Callable[[], None] = lambda: None
    on_trial_finished: Callable[[str, dict[str, Any]], None] = lambda state, row: None
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


HISTORY_KEYS = ("epoch", "train_loss", "val_top1", "val_loss", "lr", "seconds", "images_per_s")


class _DriverLocal:
    """Driver-only objects (the database, the console). Tune pickles its configuration for its
    own bookkeeping; these must not travel with it, and are never needed outside the driver."""

    def __init__(self, **objects: Any) -> None:
        self.__dict__.update(objects)

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        pass


def _make_searcher(study_name: str, storage: Any, space: dict, metric: str, local: _DriverLocal):
    from optuna.trial import TrialState
    from ray.tune.search.optuna import OptunaSearch

    class CandidateSearch(OptunaSearch):
        """Ray's OptunaSearch over the study's enqueued candidates, writing effscale's trial attributes.

        Differences from the stock searcher: per-epoch history is kept as user attributes, a trial
        the scheduler stopped early is told as PRUNED (stock: COMPLETE, since Tune marks the stopping
        result done), and intermediate values are keyed by epoch. A trial that happens to finish
        after a cancel is told as FAIL, so a resume trains it again; the trials Tune itself stops on
        a cancel are never reported back, and stay RUNNING until the next run reaps them.
        """

        def __getstate__(self) -> dict:
            state = self.__dict__.copy()
            for key in ("_ot_study", "_storage", "_ot_trials", "_sampler"):
                state.pop(key, None)
            return state

        def save(self, checkpoint_path: str) -> None:
            pass  # the study in the database is the searcher's state

        def restore(self, checkpoint_path: str) -> None:
            pass

        def suggest(self, trial_id: str) -> dict | None:
            config = super().suggest(trial_id)
            if config is not None:
                local.events.on_trial_started()
            return config

        def _record(self, trial_id: str, result: dict | None) -> None:
            """Keep one epoch's metrics: as history, and as Optuna's intermediate value at that epoch.

            Tune hands the last result to ``on_trial_complete`` only (not ``on_trial_result``),
            so both paths come here, once per epoch."""
            if not result or result.get("epoch") is None or trial_id not in self._ot_trials:
                return
            history = local.events.history.setdefault(trial_id, [])
            if history and history[-1]["epoch"] == result["epoch"]:
                return
            history.append({k: result.get(k) for k in HISTORY_KEYS})
            self._ot_trials[trial_id].report(result[self.metric], int(result["epoch"]))

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            self._record(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            self._record(trial_id, result)
            ot_trial = self._ot_trials[trial_id]
            history = local.events.history.get(trial_id, [])
            if history:
                seconds = sum(h["seconds"] or 0.0 for h in history)
                images = sum((h["images_per_s"] or 0.0) * (h["seconds"] or 0.0) for h in history)
                last = history[-1]
                for key, value in (
                    ("val_top1", last["val_top1"]),
                    ("val_loss", last["val_loss"]),
                    ("epochs", last["epoch"]),
                    ("train_seconds", seconds),
                    ("images_per_s", images / seconds if seconds else 0.0),
                    ("history", history),
                ):
                    ot_trial.set_user_attr(key, value)
            value = (result or {}).get(self.metric)
            if error or value is None or local.cancelled():
                state = TrialState.FAIL
            elif not (result or {}).get("final", False):
                state = TrialState.PRUNED  # stopped by the scheduler before its budget ran out
            else:
                state = TrialState.COMPLETE
            self._ot_study.tell(ot_trial, value if state == TrialState.COMPLETE else None, state=state)
            self._completed_trials.add(trial_id)
            local.events.on_trial_finished(state.name.lower(), {"params": ot_trial.params, "value": value})

    return CandidateSearch(space=space, metric=metric, mode="max", study_name=study_name, storage=storage)


def run_trials(
    *,
    study_name: str,
    storage: Any,
    space: dict,
    num_trials: int,
    trainable: Callable,
    trainable_kwargs: dict[str, Any],
    resources: Resources,
    scheduler: str,
    max_epochs: int,
    grace_period: int,
    events: TrialEvents,
    on_step: Callable[[], bool],
) -> None:
    """Run ``num_trials`` enqueued trials on the current Ray. ``on_step`` returning True stops all."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.stopper import Stopper

    flag = {"cancelled": False}
    local = _DriverLocal(events=events, on_step=on_step, cancelled=lambda: flag["cancelled"], flag=flag)

    class _Stop(Stopper):
        """Asks the driver (heartbeat, cancel request) once per Tune loop; stops all on cancel."""

        def __init__(self) -> None:
            self.local = local

        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            if self.local.on_step():
                self.local.flag["cancelled"] = True
            return self.local.flag["cancelled"]

    searcher = _make_searcher(study_name, storage, space, "val_top1", local)
    sched = (
        ASHAScheduler(time_attr="training_iteration", max_t=max(max_epochs, 1), grace_period=grace_period, reduction_factor=2)
        if scheduler == "asha"
        else FIFOScheduler()
    )
    work_dir = tempfile.mkdtemp(prefix="effscale-tune-")
    try:
        trainable = tune.with_resources(
            tune.with_parameters(trainable, **trainable_kwargs),
            {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial},
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=sched,
                metric="val_top1",
                mode="max",
                num_samples=num_trials,
                max_concurrent_trials=resources.max_concurrent,
                reuse_actors=True,  # speed: one worker process per slot, not one per trial (torch import ~3 s)
            ),
            run_config=tune.RunConfig(
                name="effscale",
                storage_path=work_dir,
                verbose=0,
                stop=_Stop(),
                failure_config=tune.FailureConfig(max_failures=resources.max_retries),
                checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
            ),
        )
        tuner.fit()
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
