"""Cost measurement over a realistic search grid, with and without the signature cache.

Grid: every (α, β, γ) in 1.0..2.0 step 0.05 whose formula ratio α·β²·γ² lies within 10% of 2,
measured at φ=1 (d=α, w=β, r=γ) on EfficientNet-B0. Prints each path's time and its speed-up over
a trace per candidate, all measured in the same run, each layer switched on in turn:

* a trace per candidate (no cache);
* a trace per distinct network (the signature cache);
* + per-area terms (two traces per network, every other resolution rescaled);
* + composition from a two-blocks-per-stage probe (one probe per width, a geometry checked once)
  and one-thread tracing: the path a first plan takes (disk cache cold);
* + the disk cache, warm (a new process's second plan: no trace at all).

Last run (shared 2-core machine, load average ~5 from other users: 105 distinct networks):
no cache 843.6 s; signature cache 218.4 s (3.9x); + area rescaling 110.2 s (7.7x); + probes and
one thread 3.2 s (262x; 11 traces); + warm disk cache 0.01 s.

    .venv/bin/python benchmarks/bench_cost_cache.py [--base-resolution 224] [--baseline efficientnet_b0]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

from effscale.models import cost as cost_module
from effscale.models import measure_cost, scale_resolution
from effscale.models.cost import clear_cost_cache, cost_cache_info


def grid(step: float = 0.05) -> list[tuple[float, float, float]]:
    values = [round(1.0 + i * step, 4) for i in range(int(round(1.0 / step)) + 1)]
    return [(a, b, g) for a, b, g in itertools.product(values, repeat=3) if abs(a * b * b * g * g - 2.0) <= 0.2]


def measure_all(points, baseline: str, base_resolution: int, *, use_cache: bool) -> float:
    start = time.perf_counter()
    for a, b, g in points:
        measure_cost(baseline, scale_resolution(base_resolution, g), depth=a, width=b, use_cache=use_cache)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="efficientnet_b0")
    parser.add_argument("--base-resolution", type=int, default=224)
    args = parser.parse_args()

    points = grid()
    os.environ["EFFSCALE_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-cost-")  # a cold disk cache
    rows = []

    def measure(name: str, *, use_cache: bool = True, **switches: bool) -> None:
        clear_cost_cache()
        for switch, value in switches.items():
            setattr(cost_module, switch, value)
        seconds = measure_all(points, args.baseline, args.base_resolution, use_cache=use_cache)
        rows.append((name, seconds, cost_cache_info()))

    old = dict(_COMPOSE_BLOCKS=False, _ONE_THREAD=False, _DISK_CACHE=False)
    measure("no cache (a trace per candidate)", use_cache=False, **old)
    measure("signature cache (a trace per network)", _RESCALE_BY_AREA=False, **old)
    measure("+ area rescaling (2 traces per network)", _RESCALE_BY_AREA=True, **old)
    measure("+ probes, one thread (first plan)", _COMPOSE_BLOCKS=True, _ONE_THREAD=True, _DISK_CACHE=True)
    measure("+ disk cache, warm (second plan)")
    print(f"grid: {len(points)} candidates (formula ratio within 10% of 2), {args.baseline} at base {args.base_resolution}")
    print(f"distinct networks: {rows[1][2]['misses']}  (cache hits: {rows[1][2]['hits']})")
    base = rows[0][1]
    for name, seconds, info in rows:
        print(f"{name:42s} {seconds:7.2f} s  {seconds / len(points) * 1000:7.1f} ms/candidate  "
              f"{info['traces']:4d} traces  speed-up {base / seconds:7.1f}x")


if __name__ == "__main__":
    main()
