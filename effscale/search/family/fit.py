"""`fit_phi`: the φ whose built member comes nearest a target cost (``--target-flops 1.2G``).

A family's cost grows with φ through α^φ, β^φ and γ^φ (all at least 1), stepwise as rounding
moves repeats, widths and pixels. So φ is searched on a fine grid (`PHI_STEP`) with
`nearest_flops`, the same bracketing and bisection on measured cost that calibration and matched
arms use: a handful of builds, not a scan. The answer is the grid point nearest the target, with
its two neighbours on the grid, so the user sees how near the grid came and what a step costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from effscale.errors import UsageError
from effscale.models import Coefficients, Cost, measure_cost, scale_resolution
from effscale.search.family.members import Family, FamilyMember, emit_family
from effscale.search.family.nearest import nearest_flops

PHI_STEP = 0.01  # fine enough that neighbouring φ usually build the same network
PHI_RANGE = (-8.0, 12.0)
MEASURES = {"flops": lambda c: float(c.flops), "params": lambda c: float(c.params),
            "activations": lambda c: float(c.activations)}


@dataclass(frozen=True)
class PhiFit:
    """The φ found for a target, its member, and its neighbours on the grid."""

    measure: str  # flops, params or activations
    target: float
    member: FamilyMember
    reached: float
    neighbours: tuple[tuple[float, float], ...]  # (φ, value) one grid step below and above

    @property
    def error(self) -> float:
        return self.reached / self.target - 1

    def as_dict(self) -> dict[str, Any]:
        return {"measure": self.measure, "target": self.target, "phi": self.member.phi, "reached": self.reached,
                "error": self.error, "step": PHI_STEP, "neighbours": [{"phi": p, "value": v} for p, v in self.neighbours]}


def fit_phi(family: Family, *, measure: str, target: float) -> PhiFit:
    """The member of ``family``'s coefficients (any φ on a `PHI_STEP` grid within `PHI_RANGE`)
    whose measured ``measure`` comes nearest ``target``."""
    if measure not in MEASURES:
        raise UsageError(f"cannot fit phi to {measure!r}; fit to one of {', '.join(MEASURES)}")
    if family.coefficients is None:
        raise UsageError(f"the {family.source} family has no coefficients to fit phi with; pass coefficients")
    coefficients = Coefficients(**family.coefficients, allow_scale_down=True)
    base, value = family.baseline_object, MEASURES[measure]

    def cost_at(k: int) -> Cost:
        factors = coefficients.scale(k * PHI_STEP)
        return measure_cost(base, scale_resolution(family.base_resolution, factors.resolution), depth=factors.depth,
                            width=factors.width, num_classes=family.num_classes)

    lo, hi = _feasible_range(family, coefficients.gamma)
    match = nearest_flops(cost_at, target, lo=lo, hi=hi, integer=True, start=0, value=value)
    k = int(match.value)
    member = emit_family(base, coefficients, phis=[round(k * PHI_STEP, 6)], base_resolution=family.base_resolution,
                         num_classes=family.num_classes).members[0]
    neighbours = tuple((round(j * PHI_STEP, 6), value(cost_at(j))) for j in (k - 1, k + 1) if lo <= j <= hi)
    return PhiFit(measure, float(target), member, value(match.cost), neighbours)


def _feasible_range(family: Family, gamma: float) -> tuple[int, int]:
    """The grid indices whose members can be built: their input stays at or above the total stride."""
    lo, hi = (round(p / PHI_STEP) for p in PHI_RANGE)
    floor = family.baseline_object.min_resolution
    if gamma > 1:
        lowest = math.log((floor - 0.5) / family.base_resolution) / math.log(gamma)
        lo = max(lo, math.ceil(lowest / PHI_STEP))
        while scale_resolution(family.base_resolution, gamma ** (lo * PHI_STEP)) < floor:
            lo += 1
    return lo, hi
