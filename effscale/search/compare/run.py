"""`effscale compare`: does compound scaling win on the user's data? (the paper's Table 3, Figure 8)

At each φ, the compound member (d=α^φ, w=β^φ, r=γ^φ) trains against the single-dimension arms
matched to it in measured FLOPs (`effscale.search.compare.arms`: depth only, width only, resolution only;
for EfficientNet-B0 also the paper's triple and the published row), every arm on the same paired
seeds, recipe and Ray runner as a search. Each arm's difference to compound is a paired mean with
a 95% t-interval over the shared seeds, and the verdict per φ follows from those intervals
(`verdict`): an arm whose interval lies above zero beats compound, compound wins when every
interval lies below zero, anything else is a tie.

A comparison is one Optuna study (parameters phi, depth, width, resolution; user attributes arm,
repeat, seed, the measured cost), linked to its search by name, so plain Optuna reads it; re-running
the same command resumes it and trains nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from effscale._settings import check_settings, number, path, setting, text, whole
from effscale.errors import UsageError
from effscale.models.specs import STEMS
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
from effscale.storage.url import storage_setting

_WHAT, _RUN = "what to compare", "execution and storage"


def _phis_check(value: Any, name: str) -> str:
    parse_phis(value)
    return str(value)


def parse_phis(text_value: Any) -> tuple[int, ...]:
    """``"1,2,3"`` into sorted unique integers, each 1..7 (the family's B1..B7)."""
    items = [p.strip() for p in str(text_value).split(",") if p.strip()]
    try:
        phis = sorted({int(p) for p in items})
    except ValueError:
        raise UsageError(f"--phi {text_value!r} is not a list of whole numbers; pass e.g. 1,2,3") from None
    if not phis or any(not 1 <= p <= 7 for p in phis):
        raise UsageError(f"--phi {text_value!r} must list values from 1 to 7 (B1..B7); pass e.g. 1,2")
    return tuple(phis)


@dataclass(frozen=True)
class CompareOptions:
    """A comparison: of a finished search's winner (``study``), or of given coefficients; ``name``
    is the comparison's own study."""

    baseline: str | None = setting(None, positional=True, check=text(what="a baseline name"), group=_WHAT,
                                   help="with --data and --alpha/--beta/--gamma: compare without a search")
    study: str | None = setting(None, check=text(max_length=512, what="a study name"), group=_WHAT, metavar="NAME",
                                help="a finished search: its baseline, data, recipe and winner")
    data: str | None = setting(None, check=text(what="a data source"), group=_WHAT, metavar="SPEC",
                               help="without --study: the data to train on")
    alpha: float | None = setting(None, kind=float, check=number(1.0, example=1.2), group=_WHAT, help="without --study")
    beta: float | None = setting(None, kind=float, check=number(1.0, example=1.1), group=_WHAT, help="without --study")
    gamma: float | None = setting(None, kind=float, check=number(1.0, example=1.15), group=_WHAT, help="without --study")
    base_resolution: int | None = setting(None, kind=int, check=whole(1, example=32), group=_WHAT, metavar="R",
                                          help="B0's input size (default: the search's; without --study, the data's, within "
                                               "the network's total stride and the baseline's own size)")
    stem: str | None = setting(None, choices=STEMS, group=_WHAT,
                               help="without --study: the baseline's stem, standard (default) or small; with --study: "
                                    "the search's")
    phi: str = setting("1", check=_phis_check, group=_WHAT, metavar="LIST", help="phi values to compare at (default 1)")
    repeats: int = setting(3, kind=int, check=whole(1, example=3), group=_WHAT,
                           help="paired seeds per arm (default 3)")
    tolerance: float = setting(0.1, kind=float, check=number(0.0, above=True, below=1.0, example=0.1), group=_WHAT,
                               help="relative tolerance: each single-dimension arm's measured FLOPs within compound's "
                                    "x (1 ± this) (default 0.1 = 10%)")
    bounds: str = setting("8", check=text(what="bounds"), group=_WHAT,
                          help="how far an arm may scale its dimension: 8, or depth=4,width=3,resolution=6")
    name: str | None = setting(None, check=text(max_length=512, what="a study name"), group=_RUN, metavar="NAME",
                               help="the comparison's own study name (default: derived; re-run to resume)")
    storage: str | None = storage_setting(group=_RUN)
    ray_address: str | None = setting(None, api=False, check=text(what="a Ray address"), group=_RUN, metavar="ADDR",
                                      help="join this Ray cluster (default: a local in-process Ray)")
    cpus_per_trial: float = setting(1.0, kind=float, check=number(0.0, above=True, example=1), group=_RUN,
                                    help="CPUs per trial (default 1)")
    max_concurrent: int | None = setting(None, kind=int, check=whole(1, example=2), group=_RUN, metavar="N",
                                         help="trials at once (default: as many as Ray fits)")
    out: str | None = setting(None, api=False, check=path(), group=_RUN, metavar="FILE",
                              help="also write the comparison as JSON to this file")

    def __post_init__(self) -> None:
        check_settings(self)
        if self.study is None and None in (self.baseline, self.data, self.alpha, self.beta, self.gamma):
            raise UsageError("compare needs --study NAME (a finished search), or BASELINE --data SPEC --alpha A "
                             "--beta B --gamma G")
        if self.study is not None and self.baseline is not None:
            raise UsageError(f"pass either --study {self.study} or a baseline ({self.baseline}), not both")

    @property
    def phis(self) -> tuple[int, ...]:
        return parse_phis(self.phi)


# ---------------------------------------------------------------------------------------------
# statistics and verdict


@dataclass(frozen=True)
class Delta:
    """Paired difference arm - compound over shared seeds: mean ± half-width of the 95% interval."""

    mean: float
    half_width: float | None
    n: int

    @property
    def low(self) -> float:
        return self.mean - (self.half_width if self.half_width is not None else math.inf)

    @property
    def high(self) -> float:
        return self.mean + (self.half_width if self.half_width is not None else math.inf)


def paired_delta(arm: dict[int, float], compound: dict[int, float]) -> Delta | None:
    from scipy import stats

    from effscale.search.stats import summarize

    shared = sorted(set(arm) & set(compound))
    if not shared:
        return None
    s = summarize([arm[r] - compound[r] for r in shared])
    if s.stderr is None:
        return Delta(s.mean, None, s.n)
    return Delta(s.mean, float(stats.t.ppf(0.975, s.n - 1)) * s.stderr, s.n)


def verdict(deltas: dict[str, Delta | None]) -> str:
    """The sentence for one φ: which arm (if any) is better than compound, with its interval."""
    better = {a: d for a, d in deltas.items() if d is not None and d.low > 0}
    if better:
        arm, d = max(better.items(), key=lambda kv: kv[1].mean)
        return f"{arm}-only better by {d.mean:.3f} ± {d.half_width:.3f}"
    known = [d for d in deltas.values() if d is not None]
    if known and all(d.high < 0 for d in known):
        return "compound best"
    tied = sorted(a for a, d in deltas.items() if d is None or d.high >= 0)
    return f"tied (compound not separable from {', '.join(tied)} on these seeds)"


def comparison_name(identity: dict[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return f"compare-{identity.get('search') or identity['baseline']}-{digest}"


# ---------------------------------------------------------------------------------------------
# running a comparison


@dataclass(frozen=True)
class CompareContext:
    """What a comparison trains: resolved from its search, or from the options given."""

    baseline: Any  # effscale.models.Baseline
    data: Any  # effscale.trainer.ProxyData
    coefficients: Any  # effscale.models.Coefficients
    base_resolution: int
    recipe: Any  # effscale.trainer.ProxyRecipe, resolved for the baseline
    search: str | None


def resolve_context(options: CompareOptions, recipe_settings: dict[str, Any]) -> CompareContext:
    """Baseline, data, coefficients and recipe, from the search (its stored settings and winner)
    or from the options; the recipe flags given here win over the search's."""
    from effscale.models import Coefficients, get_baseline
    from effscale.models import default_resolution
    from effscale.search.driver import stored_settings
    from effscale.trainer import ProxyRecipe, load_data

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
    data = load_data(data_spec, seed=recipe.seed,
                     max_resolution=_largest_input(options, coefficients, base_resolution or baseline.base_resolution))
    recipe = recipe.for_baseline(baseline, num_train=data.num_train)
    base_resolution = base_resolution or default_resolution(
        data.native_size, min_resolution=baseline.min_resolution, base_resolution=baseline.base_resolution)
    return CompareContext(baseline, data, coefficients, int(base_resolution), recipe, options.study)


def _largest_input(options: CompareOptions, coefficients: Any, base: int) -> int:
    """An upper bound on any arm's input size, so `folder:` data is decoded (never upsampled) up
    to it: the resolution-only arm matches the largest compound member's FLOPs with r ~ base *
    sqrt(ratio); twice the formula's ratio covers rounding, and --bounds caps it."""
    from effscale.search.compare.arms import ArmBounds

    ratio = coefficients.formula_ratio ** max(options.phis)
    return int(min(ArmBounds.parse(options.bounds).resolution, math.sqrt(2 * ratio)) * base) + 1


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
    """Every arm at every φ, matched in measured FLOPs before anything trains (an arm that cannot
    be matched within the bounds and tolerance is refused here, in one line)."""
    from effscale.search.compare.arms import ArmBounds, plan_arms

    bounds = ArmBounds.parse(options.bounds)
    return {
        phi: plan_arms(context.baseline, context.coefficients, phi=phi, base_resolution=context.base_resolution,
                       num_classes=context.data.num_classes, tolerance=options.tolerance, bounds=bounds)
        for phi in options.phis
    }


def _distributions() -> dict[str, Any]:
    from optuna.distributions import FloatDistribution, IntDistribution

    # Wide fixed ranges: an arm's multiplier is whatever matched the compound member's FLOPs.
    return {"phi": IntDistribution(0, 20), "depth": FloatDistribution(0.01, 1000.0),
            "width": FloatDistribution(0.01, 1000.0), "resolution": IntDistribution(1, 100_000)}


class CompareSchedule:
    """Every (arm, φ, repeat) once: one round, read back from the study (so a rerun resumes)."""

    def __init__(self, study: Any, arms: dict[int, list[Any]], context: CompareContext, repeats: int) -> None:
        self.study, self.arms, self.context, self.repeats = study, arms, context, repeats

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

        recipe = self.context.recipe
        attrs = {ARM_ATTR: arm.name, PHI_ATTR: phi, FLOPS_ATTR: arm.flops, PARAMS_ATTR: arm.params,
                 RATIO_ATTR: arm.ratio, FLOPS_RATIO_ATTR: arm.flops_ratio, ARCH_ID_ATTR: arm.arch_id,
                 CONFIRMATION_ATTR: False, LABEL_ATTR: f"{arm.name} at phi={phi}"}
        return TrialSpec(
            key=(arm.name, phi), repeat=repeat, seed=trial_seed(recipe.seed, repeat),
            params={"phi": phi, "depth": arm.depth, "width": arm.width, "resolution": arm.resolution}, attrs=attrs,
            depth=arm.depth, width=arm.width, resolution=arm.resolution, budget=recipe.budget.as_dict(),
            batch_size=recipe.batch_size, lr=recipe.peak_lr,
        )


def summarize_comparison(name: str, context: CompareContext, arms: dict[int, list[Any]],
                         values: dict[tuple[str, int], dict[int, float]], repeats: int) -> dict[str, Any]:
    """The comparison as `compare --json`, the REST API and the study's user attribute show it."""
    from effscale.models.cost import flops_convention
    from effscale.search.stats import summarize

    phis = []
    for phi, phi_arms in arms.items():
        compound = {r: v for r, v in values.get(("compound", phi), {}).items() if r >= 0}
        rows, deltas = [], {}
        for arm in phi_arms:
            mine = {r: v for r, v in values.get((arm.name, phi), {}).items() if r >= 0}
            s = summarize([mine[r] for r in sorted(mine)])
            delta = None if arm.name == "compound" else paired_delta(mine, compound)
            if arm.name in ("depth", "width", "resolution"):
                deltas[arm.name] = delta
            rows.append({**arm.as_dict(), "arm": arm.name, "repeats": s.n, "val_top1_mean": s.mean if s.n else None,
                         "val_top1_stderr": s.stderr, "delta_mean": delta.mean if delta else None,
                         "delta_half_width": delta.half_width if delta else None})
        phis.append({"phi": phi, "arms": rows, "verdict": verdict(deltas)})
    c = context.coefficients
    return {
        "comparison": name, "search": context.search, "baseline": context.baseline.name,
        "stem": context.baseline.stem, "data": context.data.spec, "num_classes": context.data.num_classes, "base_resolution": context.base_resolution,
        "coefficients": {"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma}, "repeats": repeats,
        "budget": context.recipe.budget.as_dict(), "flops_convention": flops_convention(context.data.num_classes),
        "interval": "95% paired t-interval of (arm - compound) over the shared seeds", "phis": phis,
    }


def run_compare(options: CompareOptions, recipe_settings: dict[str, Any] | None = None, *,
                progress: bool | None = None) -> dict[str, Any]:
    """Plan the arms (refusing what cannot be matched), then train every arm on paired seeds."""
    import optuna

    from effscale.errors import SearchInterrupted
    from effscale.search.execution.cluster import Resources, check_fits, ensure_ray, node_resources, shutdown_ray
    from effscale.search.execution.execute import execute
    from effscale.search.execution.logs import search_log_path
    from effscale.storage import open_storage, resolve_storage, validate_url
    from effscale.storage.retry import RetryingStorage

    url = resolve_storage(options.storage)
    validate_url(url)
    context = resolve_context(options, recipe_settings or {})
    arms = plan_comparison(options, context)
    identity = _identity(options, context)
    name = options.name or comparison_name(identity)
    started = ensure_ray(options.ray_address)
    try:
        gpus = 1.0 if any(n.get("GPU", 0.0) > 0 for n in node_resources()) else 0.0  # a GPU each where there are GPUs
        resources = Resources(options.cpus_per_trial, gpus, options.max_concurrent, 2)
        check_fits(resources)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = _open_comparison(RetryingStorage(optuna.storages.get_storage(open_storage(url))), name, identity)
        schedule = CompareSchedule(study, arms, context, options.repeats)
        run = execute(name=name, study=study, distributions=_distributions(), next_batch=schedule.next_batch,
                      baseline=context.baseline.name, stem=context.baseline.stem, recipe=context.recipe,
                      data=context.data, resources=resources,
                      log_path=search_log_path(name), progress=progress)
        if run.stop_reason is not None:
            raise SearchInterrupted(f"comparison {name!r} was {run.stop_reason}; re-run the same command to resume it",
                                    exit_code=run.exit_code)
        document = summarize_comparison(name, context, arms, schedule.records(), options.repeats)
        study.set_user_attr(RESULT_ATTR, document)
    finally:
        if started:
            shutdown_ray()
    if options.out:
        _write_json(options.out, document)
    return document


def _identity(options: CompareOptions, context: CompareContext) -> dict[str, Any]:
    c, r = context.coefficients, context.recipe
    # The stem left out when standard, so that comparisons stored before --stem existed resume.
    stem = {"stem": context.baseline.stem} if context.baseline.stem != "standard" else {}
    return {"search": context.search, "baseline": context.baseline.name, **stem, "data": context.data.spec,
            "coefficients": [c.alpha, c.beta, c.gamma], "base_resolution": context.base_resolution,
            "phis": list(options.phis), "repeats": options.repeats, "tolerance": options.tolerance,
            "bounds": options.bounds, "budget": r.budget.as_dict(), "batch_size": r.batch_size, "lr": r.peak_lr,
            "seed": r.seed}


def _open_comparison(storage: Any, name: str, identity: dict[str, Any]) -> Any:
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        study.set_user_attr(COMPARE_ATTR, identity)
        return study
    if study.user_attrs.get(COMPARE_ATTR) != identity:
        raise UsageError(f"study {name!r} already holds another comparison (or is not one); pass another --name")
    return study


def _write_json(path: str, document: dict[str, Any]) -> None:
    from pathlib import Path

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(target)
