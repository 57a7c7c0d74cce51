"""When rounding, not scaling, decided the answer: the winner's and the family's warnings.

The paper's FLOPs guide α·β²·γ² ignores rounding: repeats go up by whole blocks, channels by
multiples of 8, and an input size by whole pixels through every stride. Small differences are the
paper's own footnote; large ones mean that what a search measured is where the rounding fell:

* the winner's measured FLOPs ratio and its formula ratio differ by more than `ROUNDING_GAP`: the
  constraint admitted it for its rounding, and the warning names which of depth, width or
  resolution rounding moved it (each measured alone against its own formula factor);
* an α^φ member of the family misses its target ratio^φ by more than `FAMILY_MISS`: the family
  then does not double its cost per step, and the calibrated family (the same d and w, each at the
  input size whose measured FLOPs come nearest the target) is the one to use.
"""

from __future__ import annotations

import math
from typing import Any

# The constraint's own tolerance is 10% by default; a winner 25% away from its formula ratio is
# two and a half tolerances off, far beyond what the head and stem (which the formula ignores)
# move at proxy sizes: rounding picked it.
ROUNDING_GAP = 0.25
# A family member 25% off its target costs what the next or previous member should (each step of
# φ doubles the cost), so it no longer belongs at its place in the family.
FAMILY_MISS = 0.25


def dimension_ratios(baseline: Any, candidate: Any, *, base_resolution: int, num_classes: int) -> dict[str, tuple[float, float]]:
    """Per dimension, scaled alone: (measured FLOPs ratio to B0, the formula's factor): depth d
    against d, width w against w², resolution r px against γ²."""
    from effscale.models import measure_cost

    b0 = measure_cost(baseline, base_resolution, num_classes=num_classes).flops

    def ratio(resolution: int, depth: float = 1.0, width: float = 1.0) -> float:
        return measure_cost(baseline, resolution, depth=depth, width=width, num_classes=num_classes).flops / b0

    return {
        "depth": (ratio(base_resolution, depth=candidate.depth), candidate.depth),
        "width": (ratio(base_resolution, width=candidate.width), candidate.width**2),
        "resolution": (ratio(candidate.resolution), candidate.gamma**2),
    }


def winner_rounding_warning(baseline: Any, candidate: Any, *, base_resolution: int, num_classes: int) -> str | None:
    """Why rounding decided ``candidate`` (a `Candidate` at φ=1), or None when its measured and
    formula ratios agree within `ROUNDING_GAP`."""
    gap = candidate.flops_ratio / candidate.formula_ratio - 1
    if abs(gap) <= ROUNDING_GAP:
        return None
    alone = dimension_ratios(baseline, candidate, base_resolution=base_resolution, num_classes=num_classes)
    moved = max(alone, key=lambda k: abs(math.log(alone[k][0] / alone[k][1])))
    measured, formula = alone[moved]
    what = {"depth": f"depth {candidate.depth:g} alone", "width": f"width {candidate.width:g} alone",
            "resolution": f"{candidate.resolution} px alone"}
    factor = {"depth": "d", "width": "w^2", "resolution": "gamma^2"}
    others = ", ".join(f"{k} alone {alone[k][0]:.2f}x against {alone[k][1]:.2f}x" for k in alone if k != moved)
    return (
        f"rounding decided the winner ({candidate.alpha:g}, {candidate.beta:g}, {candidate.gamma:g}): it measures "
        f"{candidate.flops_ratio:.2f}x B0 where alpha*beta^2*gamma^2 says {candidate.formula_ratio:.2f}x "
        f"({gap:+.0%}, more than {ROUNDING_GAP:.0%}); {moved} rounding moved it: {what[moved]} measures "
        f"{measured:.2f}x B0 against {factor[moved]} = {formula:.2f}x ({others})"
    )


def family_misses(family: Any, target_ratio: float) -> list[tuple[Any, float]]:
    """The members (φ ≠ 0) whose measured ratio, in the family's cost, misses target_ratio^φ by more
    than `FAMILY_MISS`, each with its error (measured / target - 1)."""
    misses = []
    for m in family.members:
        ratio = m.ratio(family.cost)
        if m.phi == 0 or ratio is None:
            continue
        error = ratio / target_ratio**m.phi - 1
        if abs(error) > FAMILY_MISS:
            misses.append((m, error))
    return misses


def family_miss_warning(family: Any, target_ratio: float, *, calibrated: str = "the calibrated family") -> str | None:
    """The warning for an α^φ family whose members miss target^φ, pointing to ``calibrated``."""
    from effscale.models.measures import LABELS

    misses = family_misses(family, target_ratio)
    if not misses:
        return None
    shown = ", ".join(f"{m.name} {m.ratio(family.cost):.2f}x against {target_ratio**m.phi:.3g}x ({e:+.0%})"
                      for m, e in misses)
    return (
        f"the alpha^phi family misses {target_ratio:g}^phi in measured {LABELS[family.cost]} by more than "
        f"{FAMILY_MISS:.0%} at {shown}: rounding, not the coefficients, sets their cost; use {calibrated} (each "
        f"member keeps d and w and takes the input size whose measured {LABELS[family.cost]} come nearest "
        f"{target_ratio:g}^phi x B0)"
    )
