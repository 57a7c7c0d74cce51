"""The frontier's points: depth, width and resolution factors, each network built and measured
before it is trained, and the next point drawn by Optuna's multi-objective sampler.

A point is (d, w, r) with 1 <= each <= its bound; its input is ``scale_resolution(base, r)``. Its
cost ratio is measured on the built network (`CandidateMeasurer`: FLOPs, activations, or a timed
latency), so whether a point is affordable (``cost ratio <= --max-ratio``) is known before any
training: a drawn point above it is told to the sampler as infeasible (Optuna's constraint) and
never trained, and a drawn point that builds a network already trained is an alias: told the
same result, never trained again.

The sampler sees every trained point's mean top-1 over its paired seeds and its cost ratio: it is
re-created for each draw over that history (`propose`), seeded by the seed and the history's
length, so a resumed frontier draws as the uninterrupted one would have.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

PARAMS = ("depth", "width", "resolution_factor")
_MAX_DRAWS = 64  # rejected draws (infeasible, aliases) before the space is called exhausted


@dataclass(frozen=True)
class Point:
    index: int  # order of first training: the baseline 0, then the family's members, then drawn points
    label: str  # "baseline", a family member's name ("B1"), or "drawn"
    depth: float
    width: float
    resolution_factor: float
    resolution: int
    cost_ratio: float  # measured, in the frontier's cost
    flops: int
    params: int
    activations: int
    arch_id: str

    @property
    def values(self) -> dict[str, float]:
        return {"depth": self.depth, "width": self.width, "resolution_factor": self.resolution_factor}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Space:
    """The bounded (d, w, r) space of one baseline at one base resolution, measured in one cost."""

    def __init__(self, baseline: Any, *, base_resolution: int, num_classes: int, cost: str, bounds: Any,
                 max_ratio: float, latency: Any = None) -> None:
        from effscale.search.planning.candidates import CandidateMeasurer, Constraint

        self.bounds, self.max_ratio, self.base_resolution = bounds, max_ratio, base_resolution
        # The constraint's own test is not used here (`feasible` is); it picks the cost that is timed.
        rule = Constraint(cost, max_ratio, 1e9)
        self.measurer = CandidateMeasurer(baseline, rule, base_resolution=base_resolution, num_classes=num_classes,
                                          cost=cost, latency=latency)

    def highs(self) -> dict[str, float]:
        return {"depth": self.bounds.depth, "width": self.bounds.width, "resolution_factor": self.bounds.resolution}

    def within(self, values: dict[str, float]) -> bool:
        return all(1.0 <= values[k] <= high + 1e-9 for k, high in self.highs().items())

    def point(self, index: int, label: str, depth: float, width: float, factor: float) -> Point:
        depth, width, factor = round(depth, 6), round(width, 6), round(factor, 6)
        c = self.measurer.candidate(depth, width, factor)
        return Point(index, label, depth, width, factor, c.resolution, c.cost_ratio, c.flops, c.params,
                     c.activations, c.arch_id)

    def feasible(self, point: Point) -> bool:
        return point.cost_ratio <= self.max_ratio + 1e-12


def make_sampler(name: str, seed: int, budget: int) -> Any:
    """Optuna's multi-objective sampler, seeded; both learn the --max-ratio constraint from each
    trial's ``set_constraint``."""
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(4, budget // 3), seed=seed)
    return optuna.samplers.TPESampler(n_startup_trials=max(3, budget // 3), multivariate=True, seed=seed)


def propose(space: Space, history: list[tuple[Point, float]], *, index: int, sampler: str, seed: int,
            budget: int) -> tuple[Point | None, dict[str, int]]:
    """The next point to train after ``history`` (each trained point with its mean top-1), and the
    draws rejected on the way (infeasible, aliases). None when ``_MAX_DRAWS`` draws found nothing new."""
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=make_sampler(sampler, seed + len(history), budget))
    space_dists = {k: FloatDistribution(1.0, high) for k, high in space.highs().items()}
    trained = {p.arch_id: mean for p, mean in history}
    for p, mean in history:
        if space.within(p.values):
            study.add_trial(optuna.trial.create_trial(
                params=p.values, distributions=space_dists, values=[mean, p.cost_ratio],
                system_attrs={"constraints:max_ratio": p.cost_ratio - space.max_ratio}))
    rejected = {"infeasible": 0, "aliases": 0}
    for _ in range(_MAX_DRAWS):
        trial = study.ask()
        values = [trial.suggest_float(k, 1.0, high) for k, high in space.highs().items()]
        point = space.point(index, "drawn", *values)
        trial.set_constraint("max_ratio", point.cost_ratio - space.max_ratio)
        if not space.feasible(point):
            rejected["infeasible"] += 1
            study.tell(trial, [0.0, point.cost_ratio])
        elif point.arch_id in trained:
            rejected["aliases"] += 1
            study.tell(trial, [trained[point.arch_id], point.cost_ratio])
        else:
            return point, rejected
    return None, rejected


def family_points(space: Space, family: Any, *, start: int) -> list[Point]:
    """The members of ``family`` (`effscale.search.family.members.Family`) as points, measured
    here at this frontier's base resolution, those above --max-ratio left out."""
    points = []
    for member in family.members:
        if member.phi == 0:
            continue  # B0 is the baseline
        factor = member.resolution / space.base_resolution
        p = space.point(start + len(points), member.name, member.depth, member.width, factor)
        if space.feasible(p) and not math.isclose(p.cost_ratio, 1.0):
            points.append(p)
    return points
