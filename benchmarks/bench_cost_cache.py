"""Cost measurement over a realistic search grid, with and without the signature cache.

Grid: every (α, β, γ) in 1.0..2.0 step 0.05 whose formula ratio α·β²·γ² lies within 10% of 2,
measured at φ=1 (d=α, w=β, r=γ) on EfficientNet-B0. Prints both times and their ratio, measured
in the same run.

    .venv/bin/python benchmarks/bench_cost_cache.py [--base-resolution 224] [--baseline efficientnet_b0]
"""

from __future__ import annotations

import argparse
import itertools
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
    clear_cost_cache()
    cached = measure_all(points, args.baseline, args.base_resolution, use_cache=True)
    info = cost_cache_info()
    clear_cost_cache()
    cost_module._RESCALE_BY_AREA = False
    signature_only = measure_all(points, args.baseline, args.base_resolution, use_cache=True)
    cost_module._RESCALE_BY_AREA = True
    uncached = measure_all(points, args.baseline, args.base_resolution, use_cache=False)
    print(f"grid: {len(points)} candidates (formula ratio within 10% of 2), {args.baseline} at base {args.base_resolution}")
    print(f"distinct networks: {info['misses']}  (cache hits: {info['hits']})")
    for name, seconds in (("no cache (a trace per candidate)", uncached),
                          ("signature cache (a trace per network)", signature_only),
                          ("signature cache + area rescaling", cached)):
        print(f"{name:40s} {seconds:7.1f} s  {seconds / len(points) * 1000:6.0f} ms/candidate  "
              f"speed-up {uncached / seconds:5.1f}x")


if __name__ == "__main__":
    main()
