"""The (α, β, γ) grid and the cost constraint: pure arithmetic on numbers, no networks.

Kept apart from `effscale.search.planning.candidates` (which builds and measures networks) so that parsing a
grid, as the CLI's and the REST API's option checks do, loads neither torch nor fvcore.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from effscale._settings import number
from effscale.errors import UsageError
from effscale.models.measures import COSTS, DEFAULT_COST

# A measured cost (`effscale.models.measures.COSTS`), or the paper's formula. "measured" is what
# the measured FLOPs constraint was called before activations and latency: an alias of "flops".
CONSTRAINTS = (*COSTS, "formula", "measured")
CONSTRAINT_ALIASES = {"measured": "flops"}
DEFAULT_GRID = {"alpha": "1.0:1.4:0.05", "beta": "1.0:1.3:0.05", "gamma": "1.0:1.3:0.05"}
_MAX_GRID_POINTS = 100_000


def parse_grid(text: str | list[float] | tuple[float, ...], name: str) -> tuple[float, ...]:
    """``start:stop:step`` (inclusive) or ``a,b,c`` into sorted unique values, each finite and >= 1."""
    if isinstance(text, (list, tuple)):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in text):
            raise UsageError(f"--{name} {list(text)!r} holds something that is not a number; pass numbers >= 1")
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


# The constraint's defaults and checks, shared with `SearchOptions` (the flags and the API).
DEFAULT_TARGET_RATIO = 2.0
# 10%, not 5%: at proxy resolutions rounding moves measured FLOPs in big steps (B0 at 32 px has one
# distinct network within 5% of 2x on the default grid, four within 10%).
DEFAULT_TOLERANCE = 0.1
check_target_ratio = number(0.0, above=True, example=DEFAULT_TARGET_RATIO)
check_tolerance = number(0.0, example=DEFAULT_TOLERANCE)


@dataclass(frozen=True)
class Constraint:
    """Keep a candidate whose cost ratio to the baseline is within ``tolerance`` (relative) of
    ``target_ratio``: measured in ``kind`` (flops, activations, latency), or the formula's."""

    kind: str = DEFAULT_COST
    target_ratio: float = DEFAULT_TARGET_RATIO
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if self.kind not in CONSTRAINTS:
            raise UsageError(f"--constraint {self.kind!r} is not one of {', '.join(CONSTRAINTS)}; pass one of them")
        object.__setattr__(self, "kind", CONSTRAINT_ALIASES.get(self.kind, self.kind))
        check_target_ratio(self.target_ratio, "--target-ratio")
        check_tolerance(self.tolerance, "--tolerance")

    @property
    def measured(self) -> bool:
        return self.kind in COSTS

    def deviation(self, ratio: float) -> float:
        return abs(ratio / self.target_ratio - 1.0)

    def accepts(self, *, cost_ratio: float, formula_ratio: float) -> bool:
        """``cost_ratio`` is the candidate's measured ratio in this constraint's cost."""
        ratio = cost_ratio if self.measured else formula_ratio
        return self.deviation(ratio) <= self.tolerance + 1e-12
