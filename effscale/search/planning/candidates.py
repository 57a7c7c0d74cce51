"""The candidates: every point of the (α, β, γ) grid built at φ=1, measured, kept or dropped by
the FLOPs constraint, and grouped by the network it builds.

The grid and the constraint themselves are arithmetic on numbers (`effscale.search.planning.grid`,
whose names this module re-exports); here each point becomes a network: d=α, w=β, r=γ at the base
resolution, with the data's head. The constraint keeps a point when its FLOPs ratio to the baseline
lies within ``tolerance`` (relative) of ``target_ratio``, where the ratio is either measured with
fvcore on the network actually built (``measured``, the default) or the paper's α·β²·γ²
(``formula``). Points that round to the same network are aliases: one of them is trained, and the
rule `REPRESENTATIVE_RULE` picks which, since it fixes the family's growth. When no point is kept,
the error names the closest ratios and a tolerance that would admit them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from effscale.errors import UsageError
from effscale.models import Coefficients, get_baseline, measure_cost, scale_resolution
from effscale.models.registry import Baseline
from effscale.search.planning.grid import CONSTRAINTS, DEFAULT_GRID, Constraint, Grid, parse_grid

__all__ = [
    "CONSTRAINTS",
    "DEFAULT_GRID",
    "REPRESENTATIVE_RULE",
    "Candidate",
    "CandidateSet",
    "Constraint",
    "Grid",
    "enumerate_candidates",
    "parse_grid",
]

REPRESENTATIVE_RULE = "formula ratio closest to the target, then smallest (alpha, beta, gamma)"


@dataclass(frozen=True)
class Candidate:
    alpha: float
    beta: float
    gamma: float
    depth: float
    width: float
    resolution: int
    params: int
    flops: int
    flops_ratio: float
    formula_ratio: float
    arch_id: str
    feasible: bool
    representative: bool = False

    @property
    def key(self) -> tuple[float, float, float]:
        return (self.alpha, self.beta, self.gamma)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CandidateSet:
    """Every grid point, measured; the feasible ones grouped by the network they build."""

    candidates: tuple[Candidate, ...]
    groups: dict[str, tuple[Candidate, ...]]  # arch_id -> feasible aliases, representative first
    baseline_flops: int

    @property
    def feasible(self) -> list[Candidate]:
        return [c for c in self.candidates if c.feasible]

    @property
    def representatives(self) -> list[Candidate]:
        return [group[0] for group in self.groups.values()]

    def aliases_of(self, arch_id: str) -> list[list[float]]:
        return [list(c.key) for c in self.groups[arch_id]]

    def counts(self) -> dict[str, int]:
        feasible = len(self.feasible)
        return {"grid": len(self.candidates), "feasible": feasible, "unique": len(self.groups), "aliases": feasible - len(self.groups)}


def _representative_order(constraint: Constraint):
    return lambda c: (constraint.deviation(c.formula_ratio), c.alpha, c.beta, c.gamma)


def enumerate_candidates(
    baseline: str | Baseline,
    grid: Grid,
    constraint: Constraint,
    *,
    base_resolution: int | None = None,
    num_classes: int = 1000,
) -> CandidateSet:
    """Measure every grid point at φ=1 (cached by network) and apply the constraint.

    ``num_classes`` is the head of the network that will be trained (the data's class count), so
    the constraint sees the cost of the network a trial trains. Raises `UsageError` when nothing is
    feasible, naming the closest ratios and a tolerance that would admit some.
    """
    base = get_baseline(baseline)
    base_resolution = base.base_resolution if base_resolution is None else base_resolution
    base_cost = measure_cost(base, base_resolution, num_classes=num_classes)
    measured: list[Candidate] = []
    for a, b, g in grid.points():
        resolution = scale_resolution(base_resolution, g)
        cost = measure_cost(base, resolution, depth=a, width=b, num_classes=num_classes)
        flops_ratio = cost.flops / base_cost.flops
        formula_ratio = Coefficients(a, b, g).formula_ratio
        measured.append(
            Candidate(
                alpha=a, beta=b, gamma=g, depth=a, width=b, resolution=resolution,
                params=cost.params, flops=cost.flops, flops_ratio=flops_ratio, formula_ratio=formula_ratio,
                arch_id=cost.arch_id, feasible=constraint.accepts(flops_ratio=flops_ratio, formula_ratio=formula_ratio),
            )
        )
    by_arch: dict[str, list[Candidate]] = {}
    for c in measured:
        if c.feasible:
            by_arch.setdefault(c.arch_id, []).append(c)
    if not by_arch:
        raise UsageError(_infeasible_message(measured, constraint))
    order = _representative_order(constraint)
    representatives = {min(group, key=order).key for group in by_arch.values()}
    candidates = tuple(
        Candidate(**{**c.as_dict(), "representative": c.key in representatives}) for c in measured
    )
    groups: dict[str, tuple[Candidate, ...]] = {}
    for c in sorted((c for c in candidates if c.feasible), key=lambda c: (not c.representative, c.key)):
        groups.setdefault(c.arch_id, ())
        groups[c.arch_id] += (c,)
    return CandidateSet(candidates, groups, base_cost.flops)


def _infeasible_message(measured: list[Candidate], constraint: Constraint) -> str:
    field = "flops_ratio" if constraint.kind == "measured" else "formula_ratio"
    closest = sorted(measured, key=lambda c: constraint.deviation(getattr(c, field)))[:3]
    shown = ", ".join(f"{getattr(c, field):.2f} at ({c.alpha:g}, {c.beta:g}, {c.gamma:g})" for c in closest)
    needed = constraint.deviation(getattr(closest[0], field))
    return (
        f"no feasible candidate: no grid point's {constraint.kind} FLOPs ratio is within "
        f"{constraint.tolerance:.0%} of {constraint.target_ratio:g}; closest: {shown}; "
        f"widen the grid or pass --tolerance {math.ceil(needed * 100 + 0.5) / 100:.2f}"
    )
