"""The search space: the (α, β, γ) grid, the FLOPs constraint, and candidates grouped by network.

At φ=1 a grid point builds the network d=α, w=β, r=γ. The constraint keeps a point when its FLOPs
ratio to the baseline lies within ``tolerance`` (relative) of ``target_ratio``, where the ratio is
either measured with fvcore on the network actually built (``measured``, the default) or the
paper's α·β²·γ² (``formula``). Points that round to the same network are aliases: one of them is
trained, and the rule `REPRESENTATIVE_RULE` picks which, since it fixes the family's growth.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

from effscale.errors import UsageError
from effscale.models import Coefficients, get_baseline, measure_cost, scale_resolution
from effscale.models.registry import Baseline

CONSTRAINTS = ("measured", "formula")
DEFAULT_GRID = {"alpha": "1.0:1.4:0.05", "beta": "1.0:1.3:0.05", "gamma": "1.0:1.3:0.05"}
REPRESENTATIVE_RULE = "formula ratio closest to the target, then smallest (alpha, beta, gamma)"
_MAX_GRID_POINTS = 100_000


def parse_grid(text: str | list[float] | tuple[float, ...], name: str) -> tuple[float, ...]:
    """``start:stop:step`` (inclusive) or ``a,b,c`` into sorted unique values, each finite and >= 1."""
    if isinstance(text, (list, tuple)):
        values = [float(v) for v in text]
    else:
        text = str(text).strip()
        try:
            if ":" in text:
                start, stop, step = (float(p) for p in text.split(":"))
                if not all(math.isfinite(v) for v in (start, stop, step)) or step <= 0 or stop < start:
                    raise ValueError
                count = int(math.floor((stop - start) / step + 1e-9)) + 1
                if count > 10_000:
                    raise UsageError(f"--{name} {text} has {count} values; use a coarser step")
                values = [start + i * step for i in range(count)]
            else:
                values = [float(p) for p in text.split(",") if p.strip()]
        except UsageError:
            raise
        except ValueError:
            raise UsageError(
                f"--{name} {text!r} is not a grid; pass start:stop:step (e.g. 1.0:1.4:0.05) or a list (1.0,1.1,1.2)"
            ) from None
    if not values:
        raise UsageError(f"--{name} is empty; pass start:stop:step or a list of values")
    for v in values:
        if not math.isfinite(v) or v < 1.0:
            raise UsageError(f"--{name} contains {v}; every coefficient must be a finite number >= 1")
    return tuple(sorted({round(v, 6) for v in values}))


@dataclass(frozen=True)
class Grid:
    alpha: tuple[float, ...]
    beta: tuple[float, ...]
    gamma: tuple[float, ...]

    @classmethod
    def parse(cls, alpha: object = None, beta: object = None, gamma: object = None) -> "Grid":
        grid = cls(
            parse_grid(alpha if alpha is not None else DEFAULT_GRID["alpha"], "alpha"),
            parse_grid(beta if beta is not None else DEFAULT_GRID["beta"], "beta"),
            parse_grid(gamma if gamma is not None else DEFAULT_GRID["gamma"], "gamma"),
        )
        if grid.size > _MAX_GRID_POINTS:
            raise UsageError(f"the grid has {grid.size} points (max {_MAX_GRID_POINTS}); use coarser steps")
        return grid

    @property
    def size(self) -> int:
        return len(self.alpha) * len(self.beta) * len(self.gamma)

    def points(self) -> list[tuple[float, float, float]]:
        return list(itertools.product(self.alpha, self.beta, self.gamma))

    def as_dict(self) -> dict[str, list[float]]:
        return {"alpha": list(self.alpha), "beta": list(self.beta), "gamma": list(self.gamma)}


@dataclass(frozen=True)
class Constraint:
    """Keep a candidate whose FLOPs ratio is within ``tolerance`` (relative) of ``target_ratio``."""

    kind: str = "measured"
    target_ratio: float = 2.0
    tolerance: float = 0.05

    def __post_init__(self) -> None:
        if self.kind not in CONSTRAINTS:
            raise UsageError(f"--constraint {self.kind!r}; pass one of {', '.join(CONSTRAINTS)}")
        if not (math.isfinite(self.target_ratio) and self.target_ratio > 0):
            raise UsageError(f"--target-ratio {self.target_ratio} must be a positive number, e.g. 2.0")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise UsageError(f"--tolerance {self.tolerance} must be >= 0, e.g. 0.05 for 5%")

    def deviation(self, ratio: float) -> float:
        return abs(ratio / self.target_ratio - 1.0)

    def accepts(self, *, flops_ratio: float, formula_ratio: float) -> bool:
        ratio = flops_ratio if self.kind == "measured" else formula_ratio
        return self.deviation(ratio) <= self.tolerance + 1e-12


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
    baseline: str | Baseline, grid: Grid, constraint: Constraint, *, base_resolution: int | None = None
) -> CandidateSet:
    """Measure every grid point at φ=1 (cached by network) and apply the constraint.

    Raises `UsageError` when nothing is feasible, naming the closest ratios and a tolerance that
    would admit some.
    """
    base = get_baseline(baseline)
    base_resolution = base.base_resolution if base_resolution is None else base_resolution
    base_cost = measure_cost(base, base_resolution)
    measured: list[Candidate] = []
    for a, b, g in grid.points():
        resolution = scale_resolution(base_resolution, g)
        cost = measure_cost(base, resolution, depth=a, width=b)
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
