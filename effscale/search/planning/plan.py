"""`plan_search`: what a search will do, decided before anything is started or written.

The options are checked, the data loaded, the baseline resolved (with its stem), the grid's
candidates measured under the constraint, and the base network's regime read
(`effscale.models.regime`). Nothing here joins Ray or opens the database, so a plan can be made,
printed and refused at no cost; `effscale plan`, `effscale search` and the ways out of a
degenerate regime (`effscale.search.planning.ways_out`) all start here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from effscale.errors import UsageError
from effscale.search.planning.options import SearchOptions, default_study_name

# Where a search runs and writes is not part of it: `effscale confirm` takes them afresh.
_NOT_STORED = ("storage", "out", "ray_address", "connect_timeout", "study")


@dataclass(frozen=True)
class SearchPlan:
    """What a search will do, decided before anything is started or written."""

    options: SearchOptions
    baseline: Any  # effscale.models.Baseline, with its stem
    base_resolution: int
    recipe: Any  # effscale.trainer.ProxyRecipe, resolved for the baseline
    data: Any  # effscale.trainer.ProxyData
    candidates: Any  # effscale.search.planning.candidates.CandidateSet
    study_name: str
    identity: dict[str, Any]
    config: dict[str, Any]  # stored on the study (its user attribute "effscale")
    storage_url: str
    confirm_top: int  # the confirmation round's K (0: none), `SearchOptions.confirm_top_for`
    regime: Any = None  # effscale.models.regime.Regime of B0 at the base resolution
    proposals: tuple[dict[str, Any], ...] = ()  # every point a drawing sampler proposed (none for the grid)


def plan_search(options: SearchOptions, *, data: Any = None) -> SearchPlan:
    """Refuse anything refusable, load the data (unless given) and measure the candidates and the
    base network's regime; write nothing."""
    from effscale.models import get_baseline, scale_resolution
    from effscale.storage import resolve_storage, validate_url
    from effscale.trainer import load_data

    base = get_baseline(options.baseline, stem=options.stem)
    storage_url = resolve_storage(options.storage)
    validate_url(storage_url)  # its scheme and path now, before the slow steps below
    if data is None:
        # Decoded (folder:) no larger than the largest input any candidate could take: no upsampling later.
        largest = scale_resolution(options.base_resolution or base.base_resolution, max(options.grid.gamma))
        data = load_data(options.data, seed=options.recipe.seed, max_resolution=largest)
    return _plan(options, base, data, storage_url)


def _check_family_phis(options: SearchOptions, base: Any, base_resolution: int) -> None:
    """Refuse, before anything trains, a ``--phi`` below 0 that shrinks some candidate's member
    below the network's total stride: the winner is unknown, so the grid's largest γ, which shrinks
    the input most, decides."""
    from effscale.models import scale_resolution

    lowest = min(options.phis)
    if lowest >= 0:
        return
    gamma = max(options.grid.gamma)
    resolution = scale_resolution(base_resolution, gamma**lowest)
    if resolution < base.min_resolution:
        raise UsageError(
            f"--phi {options.phi}: phi={lowest:g} with gamma={gamma:g} scales the {base_resolution} px input to "
            f"{resolution} px, below {base.name}'s total stride {base.min_resolution}; pass phi values whose members "
            f"can be built (or a larger --base-resolution)"
        )


def _plan(options: SearchOptions, base: Any, data: Any, storage_url: str) -> SearchPlan:
    from effscale._version import __version__
    from effscale.models.regime import measure_regime
    from effscale.search.planning.report import regime_document
    from effscale.storage import redact_url

    recipe = options.recipe.for_baseline(base, num_train=data.num_train)
    base_resolution = _base_resolution(options, base, data)
    _check_family_phis(options, base, base_resolution)
    candidates, proposals = _candidates(options, base, base_resolution, data.num_classes, recipe.seed)
    regime = measure_regime(base, base_resolution, num_classes=data.num_classes)
    confirm_top = options.confirm_top_for(len(candidates.groups))
    identity = {**options.identity(base_resolution=base_resolution, baseline_name=base.name), **_recipe_identity(recipe)}
    study_name = options.study or default_study_name(identity)
    config = {
        **identity, "identity": identity, "study": study_name, "max_phi": options.max_phi,
        "num_classes": data.num_classes, "version": __version__, "storage": redact_url(storage_url),
        "confirm_top": confirm_top, "confirm_budget": options.confirm_budget, "regime": regime_document(regime),
        "settings": {k: v for k, v in options.flat().items() if k not in _NOT_STORED},
    }
    return SearchPlan(options, base, base_resolution, recipe, data, candidates, study_name, identity, config,
                      storage_url, confirm_top, regime, tuple(proposals))


def _candidates(options: SearchOptions, base: Any, base_resolution: int, num_classes: int, seed: int) -> tuple:
    """The grid's points, or the points the sampler draws (`effscale.search.planning.sampling`)."""
    from effscale.search.planning.candidates import CandidateMeasurer, enumerate_candidates
    from effscale.search.planning.sampling import sample_candidates

    latency = options.latency if options.timed else None
    if options.sampler == "grid":
        return enumerate_candidates(base, options.grid, options.constraint_rule, base_resolution=base_resolution,
                                    num_classes=num_classes, cost=options.cost_kind, latency=latency), ()
    measurer = CandidateMeasurer(base, options.constraint_rule, base_resolution=base_resolution,
                                 num_classes=num_classes, cost=options.cost_kind, latency=latency)
    return sample_candidates(measurer, options.grid, sampler=options.sampler, n=options.candidates_wanted, seed=seed)


def _recipe_identity(recipe: Any) -> dict[str, Any]:
    """The recipe's resolved values: a changed default is another search, not a silent resume."""
    return {"lr": recipe.peak_lr, "weight_decay": recipe.effective_weight_decay,
            "label_smoothing": recipe.effective_label_smoothing}


def _base_resolution(options: SearchOptions, base: Any, data: Any) -> int:
    from effscale.models import check_resolution, default_resolution

    if options.base_resolution is None:
        return default_resolution(data.native_size, min_resolution=base.min_resolution,
                                  base_resolution=base.base_resolution)
    try:
        return check_resolution(options.base_resolution, base.min_resolution)
    except UsageError:
        raise UsageError(
            f"--base-resolution {options.base_resolution} is too small for {base.name} "
            f"(total stride {base.min_resolution}); pass at least {base.min_resolution}"
        ) from None
