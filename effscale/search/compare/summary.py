"""A comparison's statistics and verdict: each arm's paired difference to compound over the shared
seeds (a mean with its 95% t-interval), the sentence per φ those intervals give, and the document
`effscale compare --json`, the REST API and the comparison study's result attribute show.

An arm whose interval lies above zero beats compound; compound wins when every interval lies below
zero; anything else is a tie. The contenders are the matched arms (`MATCHED_ARMS`: depth, width,
resolution and fast scaling); the paper's and the published rows are shown, never contenders.
Pure functions of the stored values: no Ray, no database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from effscale.search.compare.options import MATCHED_ARMS


@dataclass(frozen=True)
class Delta:
    """Paired difference arm - compound over shared seeds: mean ± half-width of the 95% interval."""

    mean: float
    half_width: float | None
    n: int

    @property
    def low(self) -> float:
        return self.mean - (self.half_width if self.half_width is not None else math.inf)

    @property
    def high(self) -> float:
        return self.mean + (self.half_width if self.half_width is not None else math.inf)


def paired_delta(arm: dict[int, float], compound: dict[int, float]) -> Delta | None:
    from scipy import stats

    from effscale.search.stats import summarize

    shared = sorted(set(arm) & set(compound))
    if not shared:
        return None
    s = summarize([arm[r] - compound[r] for r in shared])
    if s.stderr is None:
        return Delta(s.mean, None, s.n)
    return Delta(s.mean, float(stats.t.ppf(0.975, s.n - 1)) * s.stderr, s.n)


def verdict(deltas: dict[str, Delta | None]) -> str:
    """The sentence for one φ: which arm (if any) is better than compound, with its interval."""
    better = {a: d for a, d in deltas.items() if d is not None and d.low > 0}
    if better:
        arm, d = max(better.items(), key=lambda kv: kv[1].mean)
        return f"{'fast scaling' if arm == 'fast' else f'{arm}-only'} better by {d.mean:.3f} ± {d.half_width:.3f}"
    known = [d for d in deltas.values() if d is not None]
    if known and all(d.high < 0 for d in known):
        return "compound best"
    tied = sorted(a for a, d in deltas.items() if d is None or d.high >= 0)
    return f"tied (compound not separable from {', '.join(tied)} on these seeds)"


def summarize_comparison(name: str, context: Any, arms: dict[int, list[Any]],
                         values: dict[tuple[str, int], dict[int, float]], repeats: int) -> dict[str, Any]:
    """The comparison as `compare --json`, the REST API and the study's user attribute show it.

    ``context`` is `effscale.search.compare.run.CompareContext`; ``values`` maps (arm, φ) to
    repeat -> top-1 (negative repeats: failed for good, left out)."""
    from effscale.models.cost import ACTIVATIONS_CONVENTION, flops_convention
    from effscale.models.measures import LABELS
    from effscale.search.compare.arms import latency_setting
    from effscale.search.stats import summarize

    phis = []
    for phi, phi_arms in arms.items():
        compound = {r: v for r, v in values.get(("compound", phi), {}).items() if r >= 0}
        rows, deltas = [], {}
        for arm in phi_arms:
            mine = {r: v for r, v in values.get((arm.name, phi), {}).items() if r >= 0}
            s = summarize([mine[r] for r in sorted(mine)])
            delta = None if arm.name == "compound" else paired_delta(mine, compound)
            if arm.name in MATCHED_ARMS:
                deltas[arm.name] = delta
            rows.append({**arm.as_dict(), "arm": arm.name, "repeats": s.n, "val_top1_mean": s.mean if s.n else None,
                         "val_top1_stderr": s.stderr, "delta_mean": delta.mean if delta else None,
                         "delta_half_width": delta.half_width if delta else None})
        phis.append({"phi": phi, "arms": rows, "verdict": verdict(deltas)})
    c = context.coefficients
    return {
        "comparison": name, "search": context.search, "baseline": context.baseline.name,
        "stem": context.baseline.stem, "data": context.data.spec, "num_classes": context.data.num_classes,
        "base_resolution": context.base_resolution,
        "coefficients": {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma}, "repeats": repeats,
        "budget": context.recipe.budget.as_dict(), "flops_convention": flops_convention(context.data.num_classes),
        "interval": "95% paired t-interval of (arm - compound) over the shared seeds", "phis": phis,
        "cost": context.cost, "cost_label": LABELS[context.cost], "arms": [a.name for a in next(iter(arms.values()), [])],
        "activations_convention": ACTIVATIONS_CONVENTION,
        "latency": None if getattr(context, "latency", None) is None else latency_setting(context.latency),
    }
