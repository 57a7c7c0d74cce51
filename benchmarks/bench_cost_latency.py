"""Which measured cost predicts measured CPU latency: FLOPs or activations?

Dollár, Singh and Girshick (2021) found runtime on GPUs follows a network's activations more
closely than its FLOPs. This measures the same question on this machine's CPU, in one run: the six
built-in ImageNet baselines at three input sizes (18 networks), each with its fvcore FLOPs and
activations (`effscale.models.measure_cost`) and its latency (`effscale.models.latency`: median of
20 forward passes after warm-up, batch 1, the stated threads), then for each cost the Spearman
rank correlation and the Pearson correlation of log cost against log latency.

    python benchmarks/bench_cost_latency.py [--threads 1] [--sizes 64,128,224]
"""

from __future__ import annotations

import argparse
import math
import time

from scipy import stats

from effscale.models import measure_cost
from effscale.models.latency import measure_latency

BASELINES = ("efficientnet_b0", "mobilenet_v1", "mobilenet_v2", "resnet18", "resnet34", "resnet50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default="64,128,224")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    start = time.perf_counter()
    for name in BASELINES:
        for size in sizes:
            cost = measure_cost(name, size, num_classes=1000)
            # use_cache=False: this run's machine, this run's load, every figure measured now.
            latency = measure_latency(name, size, threads=args.threads, use_cache=False)
            rows.append((name, size, cost.flops, cost.activations, latency))
            print(f"{name:>16} {size:4d} px  FLOPs {cost.flops / 1e6:9.1f}M  activations {cost.activations / 1e6:7.2f}M  "
                  f"latency {latency.median_s * 1e3:8.2f} ms (IQR {latency.spread:5.1%})"
                  + ("  busy" if latency.warning else ""))
    latencies = [r[4].median_s for r in rows]
    print(f"\n{len(rows)} networks, {args.threads} thread(s), on {rows[0][4].device_description}; "
          f"{time.perf_counter() - start:.0f} s")
    for label, index in (("FLOPs", 2), ("activations", 3)):
        costs = [r[index] for r in rows]
        rank = stats.spearmanr(costs, latencies).statistic
        loglog = stats.pearsonr([math.log(c) for c in costs], [math.log(t) for t in latencies]).statistic
        print(f"{label:>12} -> latency: Spearman rank {rank:.3f}, log-log Pearson {loglog:.3f}")


if __name__ == "__main__":
    main()
