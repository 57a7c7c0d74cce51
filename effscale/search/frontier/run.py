"""`effscale frontier`: the best depth, width and resolution at each cost one could afford.

    document = run_frontier(FrontierOptions(baseline="resnet20_cifar", data="digits", budget=16))
    for row in document["points"]:
        print(row["label"], row["cost_ratio"], row["top1_mean"], row["standing"])

A multi-objective search (maximise mean top-1, minimise the measured cost ratio to the baseline,
up to --max-ratio) over depth, width and resolution factors within --bounds, on the search's
engine (`effscale.search.execution.session`: Ray, memory and GPU requests, the status row and
heartbeat, orphan reaping, Ctrl-C as ``interrupted`` and exit 130, cancel, database outages).
The baseline is trained first, then (with --search) the members of that search's compound family
up to --max-ratio, then the points Optuna's sampler draws (`effscale.search.frontier.points`),
one network at a time, every network on the same --repeats paired seeds. The front and its
evidence are `effscale.search.frontier.summary`'s.

A frontier is one Optuna multi-objective study (directions maximize, minimize; one trial per
network and seed, values [top-1, cost ratio]; parameters depth, width, resolution_factor), so
optuna-dashboard's Pareto-front view reads it as it is. Re-running the same command resumes it:
a trained (network, seed) is never trained again, and the next point is drawn from the same
history.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from typing import Any

from effscale.errors import UsageError
from effscale.search.frontier.options import FrontierOptions
from effscale.search.frontier.points import Point, Space, family_points, propose
from effscale.search.frontier.summary import frontier_document, front_rows
from effscale.search.records.schema import (
    ARCH_ID_ATTR,
    FAIL_KIND_ATTR,
    FINAL_FAIL_KINDS,
    FLOPS_ATTR,
    FRONTIER_ATTR,
    FRONTIER_POINT_ATTR,
    FRONTIER_RESULT_ATTR,
    LABEL_ATTR,
    PARAMS_ATTR,
    REPEAT_ATTR,
)

__all__ = ["FrontierOptions", "FrontierSchedule", "run_frontier"]

POINT_ATTR = FRONTIER_POINT_ATTR  # a trial's point, as `Point.as_dict`
REJECTED_ATTR = "frontier_rejected"  # the study's count of drawn points never trained: infeasible, aliases


@dataclass(frozen=True)
class FrontierContext:
    baseline: Any  # effscale.models.Baseline
    data: Any  # effscale.trainer.ProxyData
    recipe: Any  # effscale.trainer.ProxyRecipe, resolved
    base_resolution: int
    family: Any  # effscale.search.family.members.Family, or None


def resolve_context(options: FrontierOptions, recipe_settings: dict[str, Any]) -> FrontierContext:
    """Baseline, data, recipe and base resolution; with --search, that search's family (same
    baseline, its base resolution unless --base-resolution)."""
    from effscale.models import default_resolution, get_baseline, scale_resolution
    from effscale.search.records.queries import load_family
    from effscale.trainer import ProxyRecipe, load_data

    family, base = None, options.base_resolution
    if options.search is not None:
        family = load_family(options.storage, options.search)
    baseline = get_baseline(options.baseline, stem=family.stem if family is not None else options.stem)
    if family is not None:
        if family.baseline != baseline.name:
            raise UsageError(f"--search {options.search!r} scaled {family.baseline}, not {baseline.name}; pass a search "
                             f"of {baseline.name}, or drop --search")
        base = base or family.base_resolution
    recipe = ProxyRecipe(**recipe_settings)
    largest = scale_resolution(base or baseline.base_resolution, options.arm_bounds.resolution)
    data = load_data(options.data, seed=recipe.seed, max_resolution=largest)
    base = base or default_resolution(data.native_size, min_resolution=baseline.min_resolution,
                                      base_resolution=baseline.base_resolution)
    return FrontierContext(baseline, data, recipe.for_baseline(baseline, num_train=data.num_train), int(base), family)


class FrontierSchedule:
    """Every point on every paired seed, the next point drawn once the last one is trained."""

    def __init__(self, study: Any, space: Space, fixed: list[Point], options: FrontierOptions, context: Any,
                 *, fit: Any = None) -> None:
        self.study, self.space, self.fixed, self.options, self.context, self.fit = study, space, fixed, options, context, fit

    def records(self) -> tuple[dict[int, Point], dict[int, dict[int, float]], dict[int, set[int]]]:
        """The points trained (or started), their top-1 per repeat, and their repeats failed for good."""
        from optuna.trial import TrialState

        points: dict[int, Point] = {}
        values: dict[int, dict[int, float]] = {}
        final: dict[int, set[int]] = {}
        for t in self.study.get_trials(deepcopy=False):
            if POINT_ATTR not in t.user_attrs:
                continue
            p = Point(**t.user_attrs[POINT_ATTR])
            points.setdefault(p.index, p)
            repeat = int(t.user_attrs.get(REPEAT_ATTR, 0))
            if t.state == TrialState.COMPLETE and t.values:
                values.setdefault(p.index, {}).setdefault(repeat, float(t.values[0]))
            elif t.state == TrialState.FAIL and t.user_attrs.get(FAIL_KIND_ATTR) in FINAL_FAIL_KINDS:
                final.setdefault(p.index, set()).add(repeat)
        return points, values, final

    def next_batch(self) -> list[Any]:
        points, values, final = self.records()
        repeats = range(self.options.repeats)
        missing = [self.spec(p, r) for p in points.values() for r in repeats
                   if r not in values.get(p.index, {}) and r not in final.get(p.index, set())]
        if missing:
            return missing
        trained_ids = {p.arch_id for p in points.values()}
        for p in self.fixed:
            if p.index not in points and p.arch_id not in trained_ids:
                return [self.spec(p, r) for r in repeats]
        if len(points) >= max(self.options.budget, len(self.fixed)):
            return []
        return self._draw(points, values)

    def _draw(self, points: dict[int, Point], values: dict[int, dict[int, float]]) -> list[Any]:
        history = [(p, sum(values[i].values()) / len(values[i])) for i, p in sorted(points.items()) if values.get(i)]
        index = max([*points, *(p.index for p in self.fixed)], default=-1) + 1
        point, rejected = propose(self.space, history, index=index, sampler=self.options.sampler,
                                  seed=self.context.recipe.seed, budget=self.options.budget)
        before = self.study.user_attrs.get(REJECTED_ATTR) or {}
        self.study.set_user_attr(REJECTED_ATTR, {k: before.get(k, 0) + v for k, v in rejected.items()})
        return [] if point is None else [self.spec(point, r) for r in range(self.options.repeats)]

    def spec(self, point: Point, repeat: int) -> Any:
        from effscale.search.execution.objective import trial_seed
        from effscale.search.execution.runner import TrialSpec

        recipe, fit = self.context.recipe, self.fit
        attrs = {POINT_ATTR: point.as_dict(), LABEL_ATTR: f"{point.label} #{point.index}", ARCH_ID_ATTR: point.arch_id,
                 FLOPS_ATTR: point.flops, PARAMS_ATTR: point.params, "cost_ratio": point.cost_ratio}
        return TrialSpec(
            key=(point.index,), repeat=repeat, seed=trial_seed(recipe.seed, repeat), params=point.values, attrs=attrs,
            depth=point.depth, width=point.width, resolution=point.resolution, budget=recipe.budget.as_dict(),
            batch_size=fit.batch_size if fit else recipe.batch_size, lr=fit.lr if fit else recipe.peak_lr,
            memory=fit.memory if fit else None, objectives=(point.cost_ratio,),
        )


def run_frontier(options: FrontierOptions, recipe_settings: dict[str, Any] | None = None, *,
                 progress: bool | None = None) -> dict[str, Any]:
    """Train the baseline, the family's members (with --search) and the drawn points on paired
    seeds, then store and return the front (`frontier_document`)."""
    from effscale.search.execution.execute import Stage
    from effscale.search.execution.session import RunTarget, finish, open_session, run, start
    from effscale.search.records.study import load_owned_study
    from effscale.storage import resolve_storage, validate_url

    url = resolve_storage(options.storage)
    validate_url(url)
    context = resolve_context(options, recipe_settings or {})
    space = Space(context.baseline, base_resolution=context.base_resolution, num_classes=context.data.num_classes,
                  cost=options.cost, bounds=options.arm_bounds, max_ratio=options.max_ratio)
    fixed = [space.point(0, "baseline", 1.0, 1.0, 1.0)]
    if context.family is not None:
        fixed += family_points(space, context.family, start=1)
    identity = _identity(options, context)
    name = options.name or "frontier-" + hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    target = RunTarget("frontier", name, url, options, context.recipe,
                       plan_trials=lambda: _plan_trials(options, context, space, fixed, name),
                       open_study=lambda storage: load_owned_study(storage, name, attr=FRONTIER_ATTR,
                                                                   identity=identity, what="frontier"))
    with open_session(target) as session:
        start(session, config={FRONTIER_ATTR: identity}, create_study=lambda storage: _create(storage, name, identity))
        schedule = FrontierSchedule(session.study, space, fixed, options, context, fit=session.fit)
        run(session, [Stage(session.study, _distributions(space, fixed), schedule.next_batch)],
            baseline=context.baseline.name, stem=context.baseline.stem, recipe=context.recipe, data=context.data,
            progress=progress, partial="no front from a partial frontier; ")
        points, values, _ = schedule.records()
        rows = front_rows([points[i] for i in sorted(points)], values)
        rejected = session.study.user_attrs.get(REJECTED_ATTR) or {"infeasible": 0, "aliases": 0}
        document = frontier_document(name, identity, rows, rejected=rejected, family=options.search,
                                      members=fixed[1:])
        session.study.set_user_attr(FRONTIER_RESULT_ATTR, document)
        finish(session)
    return document


def _identity(options: FrontierOptions, context: FrontierContext) -> dict[str, Any]:
    r = context.recipe
    return {"baseline": context.baseline.name, "stem": context.baseline.stem, "data": context.data.spec,
            "base_resolution": context.base_resolution, "cost": options.cost, "max_ratio": options.max_ratio,
            "bounds": options.bounds, "budget": options.budget, "repeats": options.repeats, "sampler": options.sampler,
            "search": options.search, "budget_per_trial": r.budget.as_dict(), "batch_size": r.batch_size,
            "lr": r.peak_lr, "seed": r.seed}


def _distributions(space: Space, fixed: list[Point]) -> dict[str, Any]:
    from optuna.distributions import FloatDistribution

    # The bounds, widened to any family member beyond them (a member is trained as it was emitted).
    return {k: FloatDistribution(1.0, max([high, *(p.values[k] for p in fixed)])) for k, high in space.highs().items()}


def _plan_trials(options: FrontierOptions, context: FrontierContext, space: Space, fixed: list[Point],
                 name: str) -> Any:
    """The resource plan for the fixed points and the largest network the bounds allow."""
    from effscale.search.compare.workload import ArmNetwork, ArmNetworks, ArmsWorkload, PlanningOptions
    from effscale.search.planning.resources import make_plan

    b = options.arm_bounds
    largest = space.point(-1, "largest", b.depth, b.width, b.resolution)
    networks = {p.arch_id: ArmNetwork(p.depth, p.width, p.resolution_factor, p.depth, p.width, p.resolution, p.flops,
                                      p.arch_id) for p in (*fixed, largest)}
    planning = PlanningOptions(options.ray_address, options.connect_timeout, options.cpus_per_trial,
                               options.gpus_per_trial, options.max_concurrent, options.repeats, options.repeats)
    return make_plan(ArmsWorkload(planning, context.baseline, context.base_resolution, context.recipe, context.data,
                                  ArmNetworks(tuple(networks.values())), name))


def _create(storage: Any, name: str, identity: dict[str, Any]) -> Any:
    import optuna

    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"])
    study.set_user_attr(FRONTIER_ATTR, identity)
    with warnings.catch_warnings():  # experimental since Optuna 3.2; optuna-dashboard labels the axes by it
        warnings.simplefilter("ignore")
        study.set_metric_names(["val_top1", "cost_ratio"])
    return study
