"""Engine overhead: trials of known cost through the full stack (Ray Tune, Optuna, SQL storage).

Each trial "trains" by sleeping a fixed time per epoch and reports like a real one, so the only
thing measured is effscale's machinery: enqueueing, Ray scheduling, the searcher's per-epoch
writes to the database, and tell. Prints

    efficiency = sum of trial work / (wall seconds x slots)

Target >= 0.9.    .venv/bin/python benchmarks/bench_engine.py [--trials 8] [--seconds 10] [--slots 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

from effscale.search.execution.cluster import Resources, ensure_ray
from effscale.search.execution.runner import TrialEvents, TrialSpec, run_trials
from effscale.search.records.study import PARAMS
from effscale.storage import open_storage


def sleeping_trainable(config: dict, *, seconds: float, epochs: int) -> None:
    """A trial whose work costs exactly ``seconds``, reported once per epoch like a real one."""
    from ray import tune

    for epoch in range(1, epochs + 1):
        time.sleep(seconds / epochs)
        tune.report({"val_top1": 0.5 + 0.01 * epoch, "val_loss": 1.0, "train_loss": 1.0, "lr": 0.1,
                     "seconds": seconds / epochs, "images_per_s": 1000.0, "epoch": epoch, "final": epoch == epochs})


def _specs(trials: int, epochs: int) -> list[TrialSpec]:
    return [
        TrialSpec(key=(1.0 + 0.01 * i, 1.0, 1.0), repeat=0, seed=i, params=dict(zip(PARAMS, (1.0 + 0.01 * i, 1.0, 1.0))),
                  attrs={}, depth=1.0, width=1.0, resolution=32, budget={"epochs": epochs}, batch_size=32, lr=0.1)
        for i in range(trials)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="work per trial")
    parser.add_argument("--epochs", type=int, default=5, help="reports (database writes) per trial")
    parser.add_argument("--slots", type=int, default=2, help="trials at once (one CPU each)")
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        study = optuna.create_study(study_name="engine", storage=open_storage(url), direction="maximize")
        ensure_ray(None)
        batches = [_specs(args.trials, args.epochs), []]  # one round, then nothing more
        space = {p: optuna.distributions.FloatDistribution(1.0, 2.0) for p in PARAMS}
        start = time.perf_counter()
        run_trials(
            study=study, distributions=space, next_batch=lambda: batches.pop(0),
            trainable=sleeping_trainable, trainable_kwargs={"seconds": args.seconds, "epochs": args.epochs},
            resources=Resources(cpus_per_trial=1, max_concurrent=args.slots), scheduler="none",
            max_epochs=args.epochs, grace_period=1, events=TrialEvents(), should_stop=lambda: False,
        )
        wall = time.perf_counter() - start
        done = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    work = args.trials * args.seconds
    ideal = work / args.slots
    print(f"{done}/{args.trials} trials of {args.seconds:g} s ({args.epochs} reports each) on {args.slots} slots")
    print(f"ideal wall {ideal:.1f} s, measured wall {wall:.1f} s")
    print(f"efficiency = work / (wall x slots) = {work / (wall * args.slots):.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
