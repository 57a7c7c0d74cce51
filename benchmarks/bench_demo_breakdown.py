"""Where a demo search's time goes: cost measurement, training, and everything else.

Runs the `make demo` search (ResNet-18, digits, base 32, 4x4x4 grid, measured constraint, 1 epoch,
the race and the confirmation round) into a fresh SQLite file and splits its wall time into:
  * cost: measuring every grid point with fvcore (timed on its own with a cold cache first);
  * training: the trials' own training seconds, divided by the slots that ran them at once;
  * overhead: the rest (Ray start-up, scheduling, worker start, database, family emission).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import optuna

import effscale
from effscale.models.cost import clear_cost_cache
from effscale.search.planning.candidates import Constraint, Grid, enumerate_candidates

# Keep in step with the Makefile's `demo` target.
BASELINE = "resnet20_cifar"
DEMO = dict(data="digits", base_resolution=20, alpha="1.0,1.4,1.6", beta="1.0,1.4", gamma="1.0,1.1,1.4",
            constraint="measured", target_ratio=2.0, tolerance=0.1, epochs=2, batch_size=32, confirm_epochs=4)


def main() -> None:
    clear_cost_cache()
    start = time.perf_counter()
    enumerate_candidates(BASELINE, Grid.parse(DEMO["alpha"], DEMO["beta"], DEMO["gamma"]),
                         Constraint("measured", 2.0, 0.1), base_resolution=DEMO["base_resolution"], num_classes=10)
    cost = time.perf_counter() - start

    clear_cost_cache()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        start = time.perf_counter()
        result = effscale.run_search(BASELINE, **DEMO, storage=url, study="demo", progress=False)
        wall = time.perf_counter() - start
        trials = optuna.load_study(study_name="demo", storage=effscale.storage.open_storage(url)).trials
    train_sum = sum(t.user_attrs.get("train_seconds", 0.0) for t in trials)
    slots = min(2, len(trials))
    training = train_sum / slots
    overhead = wall - cost - training
    print(f"demo search: {result.counts['unique']} networks, {len(trials)} trials, wall {wall:.1f} s")
    for name, seconds in (("cost measurement", cost), ("training (per slot)", training), ("overhead", overhead)):
        print(f"  {name:22s} {seconds:7.1f} s  {seconds / wall:6.1%}")


if __name__ == "__main__":
    main()
