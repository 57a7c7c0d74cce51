"""`effscale compare`: does compound scaling win on the user's data? (the paper's Table 3, Figure 8)

At each φ, the compound member (d=α^φ, w=β^φ, r=γ^φ) trains against the single-dimension arms
matched to it in measured FLOPs (`effscale.search.compare.arms`: depth only, width only, resolution only;
for EfficientNet-B0 also the paper's triple and the published row), every arm on the same paired
seeds and recipe as a search, on the search's own engine (`effscale.search.execution.session`:
Ray, the measured memory and GPU share each trial asks for, the status row and heartbeat, orphan
reaping, Ctrl-C and SIGTERM, cancel, database outages). Each arm's difference to compound is a
paired mean with a 95% t-interval over the shared seeds, and the verdict per φ follows from those
intervals (`effscale.search.compare.summary`).

A comparison is one Optuna study (parameters phi, depth, width, resolution; user attributes arm,
repeat, seed, the measured cost), linked to its search by name, so plain Optuna reads it; re-running
the same command resumes it and trains nothing twice. Its status (running, interrupted, completed,
...) is its row in effscale's status table, as a search's is.

The modules: `options` (the settings), `arms` (matching each arm's cost), `summary` (statistics
and verdict), and this one (running it). Their public names are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from effscale.errors import UsageError
from effscale.search.compare.options import CompareOptions, parse_phis
from effscale.search.compare.summary import Delta, paired_delta, summarize_comparison, verdict
from effscale.search.records.schema import (
    ARCH_ID_ATTR,
    ARM_ATTR,
    COMPARE_ATTR,
    CONFIRMATION_ATTR,
    FAIL_KIND_ATTR,
    FINAL_FAIL_KINDS,
    FLOPS_ATTR,
    FLOPS_RATIO_ATTR,
    LABEL_ATTR,
    PARAMS_ATTR,
    PHI_ATTR,
    RATIO_ATTR,
    REPEAT_ATTR,
    RESULT_ATTR,
)

__all__ = ["CompareContext", "CompareOptions", "CompareSchedule", "Delta", "comparison_name", "paired_delta",
           "parse_phis", "plan_comparison", "resolve_context", "run_compare", "summarize_comparison", "verdict"]


def comparison_name(identity: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return f"compare-{identity.get('search') or identity['baseline']}-{digest}"


@dataclass(frozen=True)
class CompareContext:
    """What a comparison trains: resolved from its search, or from the options given."""

    baseline: Any  # effscale.models.Baseline
    data: Any  # effscale.trainer.ProxyData
    coefficients: Any  # effscale.models.Coefficients
    base_resolution: int
    recipe: Any  # effscale.trainer.ProxyRecipe, resolved for the baseline
    search: str | None
    cost: str = "flops"  # what the arms are matched in (`effscale.models.measures.COSTS`)
    arms: tuple[str, ...] = ()  # the arms trained (`options.arms_for`); () before they are resolved
    latency: Any = None  # effscale.models.options.LatencyOptions: latency measured (and matched in, for cost latency)


def resolve_context(options: CompareOptions, recipe_settings: dict[str, Any], *, latency: Any = None) -> CompareContext:
    """Baseline, data, coefficients, recipe and cost, from the search (its stored settings and
    winner) or from the options; the recipe flags and --cost given here win over the search's.
    ``latency`` (`LatencyOptions`): where latency is measured; with --cost latency, the default
    `LatencyOptions()` when None."""
    from effscale.models import Coefficients, get_baseline
    from effscale.models import default_resolution
    from effscale.search.driver import stored_settings
    from effscale.trainer import ProxyRecipe, load_data

    settings: dict[str, Any] = {}
    if options.study is not None:
        settings = stored_settings(options.study, options.storage)
        coefficients = Coefficients(*_search_winner(options.study, options.storage))
        baseline_name, data_spec = settings["baseline"], settings["data"]
        recipe_fields = {f: settings[f] for f in ProxyRecipe.__dataclass_fields__ if f in settings}
        base_resolution = options.base_resolution or settings.get("base_resolution")
        stem = settings.get("stem", "standard")
        if options.stem not in (None, stem):
            raise UsageError(f"search {options.study!r} ran with --stem {stem}; drop --stem {options.stem} "
                             "(a comparison uses its search's baseline)")
    else:
        coefficients = Coefficients(options.alpha, options.beta, options.gamma)
        baseline_name, data_spec, recipe_fields = options.baseline, options.data, {}
        base_resolution, stem = options.base_resolution, options.stem or "standard"
    recipe = ProxyRecipe(**{**recipe_fields, **recipe_settings})
    baseline = get_baseline(baseline_name, stem=stem)
    cost, arms, latency = _measured(options, settings, baseline.name, latency)
    data = load_data(data_spec, seed=recipe.seed,
                     max_resolution=_largest_input(options, coefficients, base_resolution or baseline.base_resolution,
                                                   cost))
    recipe = recipe.for_baseline(baseline, num_train=data.num_train)
    base_resolution = base_resolution or default_resolution(
        data.native_size, min_resolution=baseline.min_resolution, base_resolution=baseline.base_resolution)
    return CompareContext(baseline, data, coefficients, int(base_resolution), recipe, options.study, cost, arms,
                          latency)


def _measured(options: CompareOptions, settings: dict[str, Any], baseline: str, latency: Any) -> tuple[str, Any, Any]:
    """The cost (--cost, else the search's, else flops), the arms, and where latency is measured
    (--latency-*, else where the search timed it), refused in one line before any data is loaded
    (a --latency-device this machine lacks too)."""
    import dataclasses

    from effscale.models.measures import COSTS, DEFAULT_COST, check_cost
    from effscale.models.options import LatencyOptions
    from effscale.search.compare.options import arms_for

    # A search's cost: its --cost, else its constraint when that is a measured cost (`measured`,
    # stored by searches before costs existed, and `formula` both mean FLOPs).
    constraint = settings.get("constraint")
    cost = check_cost(options.cost or settings.get("cost") or (constraint if constraint in COSTS else DEFAULT_COST))
    arms = arms_for(baseline, options.arms)
    if cost == "latency" and latency is None:
        names = {f.name for f in dataclasses.fields(LatencyOptions)}
        latency = LatencyOptions(**{k: v for k, v in settings.items() if k in names and v is not None})
    if latency is not None:
        from effscale.models.latency import check_device

        check_device(latency.latency_device)
    return cost, arms, latency


def _largest_input(options: CompareOptions, coefficients: Any, base: int, cost: str = "flops") -> int:
    """An upper bound on any arm's input size, so `folder:` data is decoded (never upsampled) up
    to it: the resolution-only arm matches the largest compound member's FLOPs with r ~ base *
    sqrt(ratio); twice the formula's ratio covers rounding, and --bounds caps it. Activations grow
    as d·w·r², no faster than FLOPs in width, so the same bound holds; a latency has no formula,
    so in latency only --bounds bounds it."""
    from effscale.search.compare.arms import ArmBounds

    cap = ArmBounds.parse(options.bounds).resolution
    ratio = coefficients.formula_ratio ** max(options.phis)
    return int((cap if cost == "latency" else min(cap, math.sqrt(2 * ratio))) * base) + 1


def _search_winner(study: str, storage: str | None) -> tuple[float, float, float]:
    """The (confirmed) winner a search emitted its family from; `UsageError` when it has none."""
    from effscale.search.records.queries import load_family

    try:
        family = load_family(storage, study)
    except UsageError as exc:
        raise UsageError(f"search {study!r} has no winner yet ({exc}); finish it with `effscale search` first") from None
    c = family.coefficients or {}
    return (c["alpha"], c["beta"], c["gamma"])


def plan_comparison(options: CompareOptions, context: CompareContext) -> dict[int, list[Any]]:
    """Every arm at every φ, matched in the comparison's cost before anything trains (an arm that
    cannot be matched within the bounds and tolerance is refused here, in one line)."""
    from effscale.search.compare.arms import ArmBounds, plan_arms

    bounds = ArmBounds.parse(options.bounds)
    return {
        phi: plan_arms(context.baseline, context.coefficients, phi=phi, base_resolution=context.base_resolution,
                       num_classes=context.data.num_classes, tolerance=options.tolerance, bounds=bounds,
                       arms=context.arms or None, cost=context.cost, latency=context.latency)
        for phi in options.phis
    }


def _distributions() -> dict[str, Any]:
    from optuna.distributions import FloatDistribution, IntDistribution

    # Wide fixed ranges: an arm's multiplier is whatever matched the compound member's FLOPs.
    return {"phi": IntDistribution(0, 20), "depth": FloatDistribution(0.01, 1000.0),
            "width": FloatDistribution(0.01, 1000.0), "resolution": IntDistribution(1, 100_000)}


class CompareSchedule:
    """Every (arm, φ, repeat) once: one round, read back from the study (so a rerun resumes).

    ``fit`` (`effscale.search.planning.resources.TrialFit`) is the batch, lr and Ray memory the
    session planned for every trial, as a search's; None: the recipe's, no memory request."""

    def __init__(self, study: Any, arms: dict[int, list[Any]], context: CompareContext, repeats: int,
                 *, fit: Any = None) -> None:
        self.study, self.arms, self.context, self.repeats, self.fit = study, arms, context, repeats, fit

    def records(self) -> dict[tuple[str, int], dict[int, float]]:
        from optuna.trial import TrialState

        values: dict[tuple[str, int], dict[int, float]] = {}
        for t in self.study.get_trials(deepcopy=False):
            key = (t.user_attrs.get(ARM_ATTR), t.user_attrs.get(PHI_ATTR))
            if t.state == TrialState.COMPLETE and t.value is not None:
                values.setdefault(key, {}).setdefault(int(t.user_attrs.get(REPEAT_ATTR, 0)), float(t.value))
            elif t.state == TrialState.FAIL and t.user_attrs.get(FAIL_KIND_ATTR) in FINAL_FAIL_KINDS:
                values.setdefault(key, {})
                values[key].setdefault(-1 - int(t.user_attrs.get(REPEAT_ATTR, 0)), float("nan"))  # final: not again
        return values

    def next_batch(self) -> list[Any]:
        done = self.records()
        return [self.spec(arm, phi, r) for phi, arms in self.arms.items() for arm in arms for r in range(self.repeats)
                if r not in done.get((arm.name, phi), {}) and -1 - r not in done.get((arm.name, phi), {})]

    def spec(self, arm: Any, phi: int, repeat: int) -> Any:
        from effscale.search.execution.objective import trial_seed
        from effscale.search.execution.runner import TrialSpec

        recipe, fit = self.context.recipe, self.fit
        attrs = {ARM_ATTR: arm.name, PHI_ATTR: phi, FLOPS_ATTR: arm.flops, PARAMS_ATTR: arm.params,
                 RATIO_ATTR: arm.ratio, FLOPS_RATIO_ATTR: arm.flops_ratio, ARCH_ID_ATTR: arm.arch_id,
                 CONFIRMATION_ATTR: False, LABEL_ATTR: f"{arm.name} at phi={phi}"}
        return TrialSpec(
            key=(arm.name, phi), repeat=repeat, seed=trial_seed(recipe.seed, repeat),
            params={"phi": phi, "depth": arm.depth, "width": arm.width, "resolution": arm.resolution}, attrs=attrs,
            depth=arm.depth, width=arm.width, resolution=arm.resolution, budget=recipe.budget.as_dict(),
            batch_size=fit.batch_size if fit else recipe.batch_size, lr=fit.lr if fit else recipe.peak_lr,
            memory=fit.memory if fit else None,
        )


def run_compare(options: CompareOptions, recipe_settings: dict[str, Any] | None = None, *,
                progress: bool | None = None, latency: Any = None) -> dict[str, Any]:
    """Plan the arms (refusing what cannot be matched), then train every arm on paired seeds, on
    the search's engine: the same session, status row, heartbeat and signal handling.

    ``latency`` (`effscale.models.options.LatencyOptions`): also time every arm there, and match
    in it with ``cost="latency"`` (which times on the CPU by default)."""
    from effscale.search.compare.workload import plan_trials
    from effscale.search.execution.execute import Stage
    from effscale.search.execution.session import RunTarget, finish, open_session, run, start
    from effscale.storage import resolve_storage, validate_url

    url = resolve_storage(options.storage)
    validate_url(url)
    context = resolve_context(options, recipe_settings or {}, latency=latency)
    arms = plan_comparison(options, context)
    identity = _identity(options, context)
    name = options.name or comparison_name(identity)
    target = RunTarget("comparison", name, url, options, context.recipe,
                       plan_trials=lambda: plan_trials(options, context, arms, name=name),
                       open_study=lambda storage: _open_comparison(storage, name, identity, arms))
    with open_session(target) as session:
        # The status row holds the identity too: how a reader tells a comparison's row from a search's.
        start(session, config={COMPARE_ATTR: identity},
              create_study=lambda storage: _create_comparison(storage, name, identity))
        schedule = CompareSchedule(session.study, arms, context, options.repeats, fit=session.fit)
        run(session, [Stage(session.study, _distributions(), schedule.next_batch)], baseline=context.baseline.name,
            stem=context.baseline.stem, recipe=context.recipe, data=context.data, progress=progress,
            partial="no verdict from a partial comparison; ")
        document = summarize_comparison(name, context, arms, schedule.records(), options.repeats)
        session.study.set_user_attr(RESULT_ATTR, document)
        finish(session)
    if options.out:
        _write_json(options.out, document)
    return document


def _identity(options: CompareOptions, context: CompareContext) -> dict[str, Any]:
    from effscale.search.compare.options import arms_for

    c, r = context.coefficients, context.recipe
    # The stem left out when standard, so that comparisons stored before --stem existed resume.
    stem = {"stem": context.baseline.stem} if context.baseline.stem != "standard" else {}
    # Likewise the arms, the cost and where latency was timed: each is stored only when it is not
    # what every comparison was before --arms and --cost existed (the single-dimension arms,
    # matched in FLOPs). So the same command resumes an old comparison, and any other arm set or
    # cost is another comparison (another name), never new arms added to a finished one. This is
    # why `fast` is opt-in (--arms ...,fast) rather than in the default set.
    arms = {"arms": list(context.arms)} if context.arms and context.arms != arms_for(context.baseline.name, None) else {}
    cost = {"cost": context.cost} if context.cost != "flops" else {}
    if context.cost == "latency":  # the arms matched depend on where the latency was timed
        from effscale.search.compare.arms import latency_setting

        cost["latency"] = {k: v for k, v in latency_setting(context.latency).items() if k != "convention"}
    return {"search": context.search, "baseline": context.baseline.name, **stem, "data": context.data.spec,
            "coefficients": [c.alpha, c.beta, c.gamma], "base_resolution": context.base_resolution,
            "phis": list(options.phis), "repeats": options.repeats, "tolerance": options.tolerance,
            "bounds": options.bounds, "budget": r.budget.as_dict(), "batch_size": r.batch_size, "lr": r.peak_lr,
            "seed": r.seed, **arms, **cost}


def _open_comparison(storage: Any, name: str, identity: dict[str, Any], arms: dict[int, list[Any]]) -> Any:
    """The comparison study ``name`` when it holds this comparison; None when there is none."""
    from effscale.search.records.study import load_owned_study

    study = load_owned_study(storage, name, attr=COMPARE_ATTR, identity=identity, what="comparison")
    if study is not None and identity.get("cost") == "latency":
        _check_same_networks(study, arms)
    return study


def _check_same_networks(study: Any, arms: dict[int, list[Any]]) -> None:
    """Arms matched in latency rest on timings: re-timed (another torch, a cleared cache), an arm
    may match another network than the one its stored trials trained. Refused, never mixed."""
    planned = {(arm.name, phi): arm.arch_id for phi, phi_arms in arms.items() for arm in phi_arms}
    for t in study.get_trials(deepcopy=False):
        key = (t.user_attrs.get(ARM_ATTR), t.user_attrs.get(PHI_ATTR))
        if key in planned and t.user_attrs.get(ARCH_ID_ATTR) not in (None, planned[key]):
            raise UsageError(f"comparison {study.study_name!r}: the {key[0]} arm at phi={key[1]} now matches another "
                             "network in latency than its trials trained (the latencies were timed again); pass "
                             "another --name")


def _create_comparison(storage: Any, name: str, identity: dict[str, Any]) -> Any:
    import optuna

    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.set_user_attr(COMPARE_ATTR, identity)
    return study


def _write_json(path: str, document: dict[str, Any]) -> None:
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(target)
