"""The candidates: every point of the (α, β, γ) grid built at φ=1, measured, kept or dropped by
the constraint, and grouped by the network it builds.

The grid and the constraint themselves are arithmetic on numbers (`effscale.search.planning.grid`,
whose names this module re-exports); here each point becomes a network: d=α, w=β, r=γ at the base
resolution, with the data's head, measured in params, FLOPs and activations (one fvcore trace) and,
when the search's cost or constraint is latency, timed. The constraint keeps a point when its cost
ratio to the baseline lies within ``tolerance`` (relative) of ``target_ratio``, where the ratio is
measured on the network actually built (``flops``, the default; ``activations``; ``latency``) or
the paper's α·β²·γ² (``formula``). Points that round to the same network are aliases: one of them is trained, and the
rule `REPRESENTATIVE_RULE` picks which, since it fixes the family's growth. When no point is kept,
the error names the closest ratios and a tolerance that would admit them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from effscale.errors import UsageError
from effscale.models import Coefficients, get_baseline, measure_cost, scale_resolution
from effscale.models.measures import DEFAULT_COST, LABELS
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
    "CandidateMeasurer",
    "enumerate_candidates",
    "group_candidates",
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
    activations: int = 0
    activations_ratio: float = 0.0
    latency_ms: float | None = None  # measured only when the search is timed
    latency_ratio: float | None = None
    cost: str = DEFAULT_COST  # the cost the search measures in (`effscale.models.measures.COSTS`)

    @property
    def key(self) -> tuple[float, float, float]:
        return (self.alpha, self.beta, self.gamma)

    @property
    def cost_ratio(self) -> float:
        """The measured ratio to B0 in the search's cost."""
        return self.ratio(self.cost)

    def ratio(self, cost: str) -> float:
        return {"flops": self.flops_ratio, "activations": self.activations_ratio, "latency": self.latency_ratio}[cost]

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
    cost: str = DEFAULT_COST,
    latency: Any = None,
) -> CandidateSet:
    """Measure every grid point at φ=1 (cached by network) and apply the constraint.

    ``num_classes`` is the head of the network that will be trained (the data's class count), so
    the constraint sees the cost of the network a trial trains. ``latency`` (an
    `effscale.models.options.LatencyOptions`) times each distinct network when ``cost`` or the
    constraint is latency. Raises `UsageError` when nothing is feasible, naming the closest ratios
    and a tolerance that would admit some.
    """
    measurer = CandidateMeasurer(baseline, constraint, base_resolution=base_resolution, num_classes=num_classes,
                                 cost=cost, latency=latency)
    measured = [measurer.candidate(a, b, g) for a, b, g in grid.points()]
    if not any(c.feasible for c in measured):
        raise UsageError(_infeasible_message(measured, constraint))
    return group_candidates(measured, constraint, measurer.baseline_flops)


class CandidateMeasurer:
    """Builds and measures one (α, β, γ) at φ=1 against the baseline (cached by network): what the
    grid does for every point, and a sampler (`effscale.search.planning.sampling`) for each point it draws."""

    def __init__(self, baseline: str | Baseline, constraint: Constraint, *, base_resolution: int | None = None,
                 num_classes: int = 1000, cost: str = DEFAULT_COST, latency: Any = None) -> None:
        base = get_baseline(baseline)
        self.base, self.constraint, self.cost, self.num_classes = base, constraint, cost, num_classes
        self.base_resolution = base.base_resolution if base_resolution is None else base_resolution
        self.timer = _Timer(base, num_classes, latency) if "latency" in (cost, constraint.kind) else None
        self.b0 = _Measured(measure_cost(base, self.base_resolution, num_classes=num_classes), self.timer,
                            self.base_resolution, 1.0, 1.0)

    @property
    def baseline_flops(self) -> int:
        return self.b0.cost.flops

    def candidate(self, a: float, b: float, g: float) -> Candidate:
        resolution = scale_resolution(self.base_resolution, g)
        here = _Measured(measure_cost(self.base, resolution, depth=a, width=b, num_classes=self.num_classes),
                         self.timer, resolution, a, b)
        return here.candidate(self.b0, a, b, g, constraint=self.constraint, cost=self.cost)


def group_candidates(measured: list[Candidate], constraint: Constraint, baseline_flops: int) -> CandidateSet:
    """Group the feasible points by the network they build, one representative per network
    (`REPRESENTATIVE_RULE`); the others are its aliases, never trained."""
    by_arch: dict[str, list[Candidate]] = {}
    for c in measured:
        if c.feasible:
            by_arch.setdefault(c.arch_id, []).append(c)
    order = _representative_order(constraint)
    representatives = {min(group, key=order).key for group in by_arch.values()}
    candidates = tuple(
        Candidate(**{**c.as_dict(), "representative": c.key in representatives}) for c in measured
    )
    groups: dict[str, tuple[Candidate, ...]] = {}
    for c in sorted((c for c in candidates if c.feasible), key=lambda c: (not c.representative, c.key)):
        groups.setdefault(c.arch_id, ())
        groups[c.arch_id] += (c,)
    return CandidateSet(candidates, groups, baseline_flops)


class _Timer:
    """Latency per distinct network (its arch id), measured once in this enumeration."""

    def __init__(self, base: Baseline, num_classes: int, latency: Any) -> None:
        if latency is None:
            from effscale.models.options import LatencyOptions

            latency = LatencyOptions()
        self.base, self.num_classes, self.latency, self.seen = base, num_classes, latency, {}

    def ms(self, arch_id: str, resolution: int, depth: float, width: float) -> float:
        if arch_id not in self.seen:
            timed = self.latency.measure(self.base, resolution, depth=depth, width=width, num_classes=self.num_classes)
            self.seen[arch_id] = timed.median_s * 1e3
        return self.seen[arch_id]


@dataclass(frozen=True)
class _Measured:
    """One network's measured costs (the latency only when timed)."""

    cost: Any  # effscale.models.Cost
    timer: _Timer | None
    resolution: int
    depth: float
    width: float

    @property
    def latency_ms(self) -> float | None:
        return None if self.timer is None else self.timer.ms(self.cost.arch_id, self.resolution, self.depth, self.width)

    def candidate(self, b0: "_Measured", a: float, b: float, g: float, *, constraint: Constraint, cost: str) -> Candidate:
        latency, b0_latency = self.latency_ms, b0.latency_ms
        ratios = {"flops": self.cost.flops / b0.cost.flops,
                  "activations": self.cost.activations / b0.cost.activations,
                  "latency": latency / b0_latency if latency is not None and b0_latency else None}
        formula = Coefficients(a, b, g).formula_ratio
        return Candidate(
            alpha=a, beta=b, gamma=g, depth=a, width=b, resolution=self.resolution, params=self.cost.params,
            flops=self.cost.flops, flops_ratio=ratios["flops"], formula_ratio=formula, arch_id=self.cost.arch_id,
            feasible=constraint.accepts(cost_ratio=ratios.get(constraint.kind) or 0.0, formula_ratio=formula),
            activations=self.cost.activations, activations_ratio=ratios["activations"], latency_ms=latency,
            latency_ratio=ratios["latency"], cost=cost,
        )


def _infeasible_message(measured: list[Candidate], constraint: Constraint) -> str:
    def ratio(c: Candidate) -> float:
        return c.ratio(constraint.kind) if constraint.measured else c.formula_ratio

    closest = sorted(measured, key=lambda c: constraint.deviation(ratio(c)))[:3]
    shown = ", ".join(f"{ratio(c):.2f} at ({c.alpha:g}, {c.beta:g}, {c.gamma:g})" for c in closest)
    needed = constraint.deviation(ratio(closest[0]))
    what = f"measured {LABELS[constraint.kind]}" if constraint.measured else "formula"
    return (
        f"no feasible candidate: no grid point's {what} ratio is within "
        f"{constraint.tolerance:.0%} of {constraint.target_ratio:g}; closest: {shown}; "
        f"widen the grid or pass --tolerance {math.ceil(needed * 100 + 0.5) / 100:.2f}"
    )
