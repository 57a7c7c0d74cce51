"""The statistics behind a winner: means with standard errors, the paired rule that separates two
candidates, and how well the proxy ranks like longer training. Pure functions on numbers.

Every candidate is trained on the same seeds, repeat by repeat (repeat r of every candidate uses
seed r: the same data order and augmentation), so two candidates are compared on the repeats they
share, as SMAC compares a challenger with the incumbent on the same (instance, seed) pairs.

`SEPARATION_RULE` is the one rule that tells "clearly worse" from "tied": a one-sided paired t-test
of the leader's top-1 minus the other's over their shared repeats, at level `SEPARATION_LEVEL`.
With two repeats that test has one degree of freedom, so only differences that are large *and*
consistent separate; that is the point: more repeats go to the candidates it cannot yet separate.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

SEPARATION_LEVEL = 0.05
SEPARATION_RULE = (
    f"one-sided paired t-test on shared seeds, level {SEPARATION_LEVEL:g}: a candidate is clearly worse "
    "than the leader when the leader's mean advantage is significant"
)
# Below this Kendall tau the proxy ranks the confirmed candidates too differently from longer
# training to trust its ranking (tau 0.5: 75% of candidate pairs ordered alike).
LOW_TAU = 0.5
BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class Summary:
    """Mean ± standard error of n values (se is None when n < 2)."""

    n: int
    mean: float
    stderr: float | None

    def __str__(self) -> str:
        se = "n/a" if self.stderr is None else f"{self.stderr:.4f}"
        return f"{self.mean:.4f} ± {se} (n={self.n})"


def summarize(values: Sequence[float]) -> Summary:
    n = len(values)
    if n == 0:
        return Summary(0, float("nan"), None)
    mean = sum(values) / n
    if n < 2:
        return Summary(n, mean, None)
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return Summary(n, mean, math.sqrt(var / n))


def clearly_worse(leader: dict[int, float], other: dict[int, float], *, level: float = SEPARATION_LEVEL) -> bool:
    """`SEPARATION_RULE`: is ``other`` (repeat -> top-1) clearly worse than ``leader`` on their
    shared repeats? Fewer than two shared repeats never separate."""
    from scipy import stats

    shared = sorted(set(leader) & set(other))
    if len(shared) < 2:
        return False
    diffs = [leader[r] - other[r] for r in shared]
    s = summarize(diffs)
    if s.mean <= 0:
        return False
    if not s.stderr:  # identical differences on every seed: as consistent as it gets
        return True
    t = s.mean / s.stderr
    return bool(stats.t.sf(t, df=len(diffs) - 1) < level)


def kendall_tau(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Kendall's tau-b between two score lists over the same items (nan for fewer than 2)."""
    from scipy import stats

    if len(xs) < 2:
        return float("nan")
    tau = stats.kendalltau(xs, ys).statistic
    return float(tau) if tau == tau else 0.0  # all-tied input: no evidence of agreement


def bootstrap_tau(
    proxy: Sequence[dict[int, float]],
    confirmed: Sequence[dict[int, float]],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """95% percentile interval of tau, resampling the shared seeds with replacement (paired: one
    draw of seeds serves every candidate, proxy and confirmed alike)."""
    seeds = sorted(set.intersection(*(set(p) & set(c) for p, c in zip(proxy, confirmed)))) if proxy else []
    if len(proxy) < 2 or not seeds:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    taus = []
    for _ in range(resamples):
        draw = [rng.choice(seeds) for _ in seeds]
        xs = [sum(p[s] for s in draw) / len(draw) for p in proxy]
        ys = [sum(c[s] for s in draw) / len(draw) for c in confirmed]
        taus.append(kendall_tau(xs, ys))
    taus.sort()
    return (taus[int(0.025 * (resamples - 1))], taus[int(0.975 * (resamples - 1))])
