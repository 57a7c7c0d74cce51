"""What a comparison's trials ask of Ray, planned as a search's are
(`effscale.search.planning.resources.make_plan`): each distinct arm network's measured memory (the
batch halved where it does not fit), the GPU share ``--gpus-per-trial auto`` gives it, the trials
each node runs at once, and a refusal in one line for a network no node can hold.

The planner reads a search plan; `ArmsWorkload` is a comparison in that shape: the distinct
networks of every arm at every φ as its "candidates", each trained ``--repeats`` times, no
confirmation round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ArmNetwork:
    """One distinct network of a comparison, as the planner reads a search's candidate. Its
    (alpha, beta, gamma) are the arm's depth, width and input size over the base size: a refusal
    names the network by them."""

    alpha: float
    beta: float
    gamma: float
    depth: float
    width: float
    resolution: int
    flops: int
    arch_id: str


@dataclass(frozen=True)
class ArmNetworks:
    """The planner's `CandidateSet` view of a comparison: each network once, no aliases."""

    representatives: tuple[ArmNetwork, ...]

    def aliases_of(self, arch_id: str) -> list[tuple[float, float, float]]:
        return []

    def counts(self) -> dict[str, int]:
        n = len(self.representatives)
        return {"grid": n, "feasible": n, "unique": n, "aliases": 0}


@dataclass(frozen=True)
class PlanningOptions:
    """The comparison's execution settings, with its repeats as the race's (no confirmation)."""

    ray_address: str | None
    connect_timeout: float
    cpus_per_trial: float
    gpus_per_trial: Any
    max_concurrent: int | None
    min_repeats: int
    max_repeats: int
    confirm_top: int = 0
    confirm_budget: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ArmsWorkload:
    """A comparison as `make_plan` reads a `SearchPlan`."""

    options: PlanningOptions
    baseline: Any  # effscale.models.Baseline
    base_resolution: int
    recipe: Any  # effscale.trainer.ProxyRecipe, resolved
    data: Any  # effscale.trainer.ProxyData
    candidates: ArmNetworks
    study_name: str
    confirm_top: int = 0


def arms_workload(options: Any, context: Any, arms: dict[int, list[Any]], *, name: str) -> ArmsWorkload:
    """``arms`` (per φ, `effscale.search.compare.arms.Arm`) of the comparison ``name`` as a workload."""
    networks: dict[str, ArmNetwork] = {}
    base = context.base_resolution
    for phi_arms in arms.values():
        for arm in phi_arms:
            networks.setdefault(arm.arch_id, ArmNetwork(arm.depth, arm.width, arm.resolution / base, arm.depth,
                                                        arm.width, arm.resolution, arm.flops, arm.arch_id))
    planning = PlanningOptions(options.ray_address, options.connect_timeout, options.cpus_per_trial,
                               options.gpus_per_trial, options.max_concurrent, options.repeats, options.repeats)
    return ArmsWorkload(planning, context.baseline, base, context.recipe, context.data,
                        ArmNetworks(tuple(networks.values())), name)


def plan_trials(options: Any, context: Any, arms: dict[int, list[Any]], *, name: str) -> Any:
    """The resource plan (`effscale.search.planning.resources.Plan`) of a comparison, on the
    nodes of the Ray just joined (or the ``--ray-address`` cluster)."""
    from effscale.search.planning.resources import make_plan

    return make_plan(arms_workload(options, context, arms, name=name))
