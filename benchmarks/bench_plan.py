"""How long `effscale plan` takes on the default grid, today's cost path against the new one.

The default grid (alpha 1.0:1.4:0.05, beta and gamma 1.0:1.3:0.05: 441 points) for efficientnet_b0
at base resolution 224 on digits, each run in a fresh process, all in the same run:

* **today**: the cost filtering as it was (`effscale.models.cost` with block composition, the
  disk cache and one-thread tracing switched off: a probe-free fvcore fit per distinct network on
  the default two threads), and no memory or time estimate at all;
* **first plan**: a cold disk cache -- cost, activation counts and the CPU time probe all measured;
* **second plan**: the same command again in a new process, everything read from the disk cache.

Each line splits the wall time: interpreter start and imports, loading the data, measuring the
candidates, and the footprints (memory and the time probe).

    .venv/bin/python benchmarks/bench_plan.py [--data digits] [--accuracy] [--time-accuracy]

Last run (2-core machine, torch 2.13 CPU, quiet; 58 feasible, 29 distinct networks):

    --data digits                  wall    start+imports  data  candidates  footprints (time probe)
    today (cost filtering only)    55.4 s      3.2        0.4     51.8         -
    first plan (cold cache)         8.4 s      2.7        0.4      3.5        1.8 (0.7)    6.6x
    second plan (warm cache)        2.1 s      1.8        0.3      0.0        0.0         25.8x

A warm plan is imports and data: torch alone is ~1.1 s of it (2.0-2.2 s over five runs, after
Optuna's import moved out of the storage URL check).

``--accuracy`` reruns the CPU memory model's calibration (child-process probes; ~8 minutes): each
run's predicted and measured peak RSS and the error, the 11 runs its constants were fitted on and
the 6 held out (`effscale.trainer.memory`). ``--time-accuracy`` compares the plan's scaled step
times with each representative's own probe.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

GRID_ARGS = ["efficientnet_b0", "--base-resolution", "224"]

_CHILD = r"""
import json, sys, time
start = time.perf_counter()
mode, data = sys.argv[1], sys.argv[2]
import torch  # noqa: F401 - counted with the imports
from effscale.models import cost
from effscale.search import driver
from effscale.search.planning import candidates as space
from effscale.search.planning.options import SearchOptions
from effscale.trainer import footprint
imported = time.perf_counter()
if mode == "today":
    cost._COMPOSE_BLOCKS = cost._DISK_CACHE = cost._ONE_THREAD = False
phases = {"candidates": 0.0, "time probe": 0.0}


def timed(module, name, phase):
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            phases[phase] += time.perf_counter() - t

    setattr(module, name, wrapper)


timed(space, "enumerate_candidates", "candidates")
timed(footprint, "probe_step_time", "time probe")
t = time.perf_counter()
search_plan = driver.plan_search(SearchOptions.build("efficientnet_b0", data=data, base_resolution=224))
planned = time.perf_counter()
networks = 0
if mode != "today":
    from effscale.search.planning.resources import Node, make_plan

    # A fixed node, so that what this shared machine has free right now cannot refuse the plan.
    networks = len(make_plan(search_plan, nodes=[Node("bench", 2.0, 64 * 1024**3)]).networks)
done = time.perf_counter()
print(json.dumps({
    "imports": imported - start, "data": planned - t - phases["candidates"], "candidates": phases["candidates"],
    "footprints": done - planned, "time probe": phases["time probe"], "in-process": done - start,
    "traces": cost.cost_cache_info()["traces"], "networks": networks,
    "counts": search_plan.candidates.counts(),
}))
"""


def run(mode: str, data: str, cache_dir: str) -> dict:
    env = {**os.environ, "EFFSCALE_CACHE_DIR": cache_dir}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CHILD, mode, data], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall}


def report(name: str, r: dict, today: float) -> None:
    startup = r["wall"] - r["in-process"] + r["imports"]
    print(
        f"{name:30s} {r['wall']:6.1f} s  (start+imports {startup:4.1f}, data {r['data']:4.1f}, "
        f"candidates {r['candidates']:5.1f} [{r['traces']:2d} traces], footprints {r['footprints']:4.1f} "
        f"[time probe {r['time probe']:3.1f}])  today/this {today / r['wall']:5.1f}x"
    )


def timing(data: str) -> None:
    with tempfile.TemporaryDirectory() as cold, tempfile.TemporaryDirectory() as cache:
        today = run("today", data, cold)
        first = run("new", data, cache)
        second = run("new", data, cache)
    counts = first["counts"]
    print(f"efficientnet_b0 at 224 px on {data}: {counts['grid']} grid points, {counts['feasible']} feasible, "
          f"{counts['unique']} distinct networks; each line a fresh process")
    report("today (cost filtering only)", today, today["wall"])
    report("first plan (cold cache)", first, today["wall"])
    report("second plan (warm cache)", second, today["wall"])
    print(f"candidates alone: today {today['candidates']:.1f} s, first {first['candidates']:.1f} s "
          f"({today['candidates'] / first['candidates']:.1f}x), second {second['candidates']:.2f} s "
          f"({today['candidates'] / max(second['candidates'], 1e-3):.0f}x)")


def memory_accuracy() -> None:
    from effscale.trainer import ProxyRecipe, load_data
    from effscale.trainer.activations import count_activations
    from effscale.trainer.memory import FIRST_STEP_BYTES, MiB, cpu_trial_memory, probe_cpu_peak

    runs = [("tiny", 1, 1, 32, 32), ("tiny", 1, 1, 32, 256), ("tiny", 1, 1, 64, 128), ("resnet18", 1, 1, 32, 32),
            ("resnet18", 1, 1, 32, 256), ("resnet18", 1, 1, 64, 128), ("mobilenet_v2", 1, 1, 64, 32),
            ("mobilenet_v2", 1, 1, 96, 128), ("efficientnet_b0", 1, 1, 64, 32), ("efficientnet_b0", 1, 1, 96, 128),
            ("efficientnet_b0", 1, 1, 224, 16), ("tiny", 1, 1, 128, 64), ("resnet18", 1, 1, 96, 64),
            ("mobilenet_v2", 1, 1, 128, 32), ("efficientnet_b0", 1.4, 1.3, 120, 64),
            ("efficientnet_b0", 1, 1, 128, 64), ("resnet18", 1.2, 1.1, 48, 512)]
    fitted = 11  # the first 11 runs fitted the model's constants; the rest are held out
    data = load_data("digits", seed=0)
    print(f"{'network':16s} {'d':4s} {'w':4s} {'res':>4s} {'batch':>5s} {'predicted':>9s} {'measured':>8s}  error (MiB)")
    for i, (name, d, w, r, bs) in enumerate(runs):
        recipe = ProxyRecipe(batch_size=bs)
        measured = probe_cpu_peak(name, depth=d, width=w, resolution=r, data="digits", recipe=recipe)
        count = count_activations(name, depth=d, width=w, resolution=r, num_classes=data.num_classes)
        parts = cpu_trial_memory(count, data=data, resolution=r, batch_size=bs, recipe=recipe, ray_worker=False)
        # The child's own base (imports, scikit-learn for digits, the data) as it measured it.
        predicted = measured["data"] + parts.resized + parts.model + parts.step + FIRST_STEP_BYTES
        error = (predicted - measured["peak"]) / measured["peak"]
        print(f"{name:16s} {d:<4g} {w:<4g} {r:4d} {bs:5d} {predicted / MiB:9.0f} {measured['peak'] / MiB:8.0f} "
              f"{100 * error:+6.1f}%  {'fit' if i < fitted else 'held out'}", flush=True)


def time_accuracy(data: str) -> None:
    from effscale.search.driver import plan_search
    from effscale.search.planning.options import SearchOptions
    from effscale.search.planning.resources import make_plan
    from effscale.trainer.steps import probe_step_time

    search_plan = plan_search(SearchOptions.build("efficientnet_b0", data=data, base_resolution=224))
    plan = make_plan(search_plan)
    for n in plan.networks[:: max(1, len(plan.networks) // 6)]:
        c = n.candidate
        own = probe_step_time(search_plan.baseline, depth=c.depth, width=c.width, resolution=c.resolution,
                              num_classes=search_plan.data.num_classes, recipe=search_plan.recipe)
        planned = n.footprint.step_seconds
        measured = own.seconds(n.footprint.batch_size)
        print(f"({c.alpha:g}, {c.beta:g}, {c.gamma:g}) {c.resolution} px: planned {planned:6.2f} s/step, "
              f"own probe {measured:6.2f} s/step, error {100 * (planned - measured) / measured:+5.1f}%", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--accuracy", action="store_true", help="rerun the CPU memory model's calibration table")
    parser.add_argument("--time-accuracy", action="store_true", help="planned step times against per-network probes")
    args = parser.parse_args()
    if args.accuracy:
        memory_accuracy()
    elif args.time_accuracy:
        time_accuracy(args.data)
    else:
        timing(args.data)


if __name__ == "__main__":
    main()
