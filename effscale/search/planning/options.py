"""`SearchOptions`: every setting of a coefficient search, declared once.

The proxy recipe (`effscale.trainer.ProxyRecipe`) says how each trial trains; this says what is
searched, under which constraint, where it runs and where it is stored. `effscale search`'s flags
and the body of ``POST /api/searches`` are both derived from these two dataclasses, so a value the
CLI refuses, the API refuses with the same message (see `effscale._settings`).

No torch here: the CLI reads this module to build ``--help``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from effscale._settings import check_settings, number, path, setting, split_by_owner, text, whole
from effscale.errors import UsageError
from effscale.search.planning.grid import (
    CONSTRAINTS,
    DEFAULT_GRID,
    DEFAULT_TARGET_RATIO,
    DEFAULT_TOLERANCE,
    Constraint,
    Grid,
    check_target_ratio,
    check_tolerance,
    parse_grid,
)
from effscale.models.measures import COSTS, DEFAULT_COST
from effscale.search.planning.sampling import SAMPLERS
from effscale.search.family.options import parse_phis, phis_check
from effscale.models.options import BASELINE_HELP, LatencyOptions
from effscale.models.specs import STEMS
from effscale.storage.url import storage_setting
from effscale.trainer.options import DATA_HELP, check_data
from effscale.trainer.recipe import ProxyRecipe

SCHEDULERS = ("none", "asha")
DEFAULT_N_CANDIDATES = 12
DEFAULT_CONFIRM_TOP = 3
_GRID, _TRAIN, _RUN = "grid and constraint", "proxy training", "execution and storage"
_TRUST = "repeats, racing and confirmation"


def _grid_check(axis: str):  # noqa: ANN202 - a `Check`
    def check(value: Any, name: str) -> Any:
        parse_grid(value, axis)  # refuses with the same words wherever the grid comes from
        return value

    return check


def _gpus_check(value: Any, name: str) -> str | float:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        raise UsageError(f"{name} {value!r} is neither auto nor a number; pass auto, 0, 0.5 or 1") from None
    return _gpus_number(number, name)


_gpus_number = number(0.0, example=0.5)


def _grid_field(axis: str, what: str) -> Any:
    return setting(
        None, check=_grid_check(axis), group=_GRID, metavar="GRID", api_kind=str | list[float],
        help=f"{what} grid: start:stop:step or a,b,c (default {DEFAULT_GRID[axis]})",
    )


@dataclass(frozen=True)
class SearchOptions:
    """A search: what to scale, on which data, over which grid, under which constraint, where.

    Build one from flat keywords with `SearchOptions.build` (the recipe's fields go to ``recipe``).
    """

    baseline: str = setting(None, positional=True, required=True, check=text(what="a baseline name"), help=BASELINE_HELP)
    data: str = setting(None, required=True, check=check_data, help=DATA_HELP, metavar="SPEC")
    alpha: Any = _grid_field("alpha", "depth")
    beta: Any = _grid_field("beta", "width")
    gamma: Any = _grid_field("gamma", "resolution")
    target_ratio: float = setting(
        DEFAULT_TARGET_RATIO, kind=float, check=check_target_ratio, group=_GRID,
        help=f"FLOPs ratio to the baseline wanted at phi=1 (default {DEFAULT_TARGET_RATIO:g})",
    )
    tolerance: float = setting(
        DEFAULT_TOLERANCE, kind=float, check=check_tolerance, group=_GRID,
        help=f"relative tolerance of each candidate's FLOPs ratio (measured, or the formula's): within "
             "--target-ratio x (1 ± this) "
             f"(default {DEFAULT_TOLERANCE:g} = {DEFAULT_TOLERANCE:.0%})",
    )
    cost: str | None = setting(
        None, choices=COSTS, group=_GRID,
        help="the cost candidates and family members are ranked, reported and calibrated in: flops (fvcore), "
             "activations (fvcore's activation count) or latency (--latency-device, --latency-batch, "
             "--latency-threads); default: the --constraint's when it is measured, else flops",
    )
    constraint: str | None = setting(
        None, choices=CONSTRAINTS, group=_GRID,
        help="flops, activations or latency: that measured cost of the built network; formula: alpha*beta^2*gamma^2 "
             "(default: --cost; measured is an alias of flops)",
    )
    sampler: str = setting(
        "grid", choices=SAMPLERS, group=_GRID,
        help="grid: every point of --alpha/--beta/--gamma (default); tpe, gp or qmc: draw alpha and beta "
             "continuously within the grid's bounds with that Optuna sampler (seeded by --seed), gamma solved from "
             "alpha*beta^2*gamma^2 = --target-ratio, the measured-cost tolerance as Optuna's constraint",
    )
    n_candidates: int | None = setting(
        None, kind=int, check=whole(1, example=12), group=_GRID, metavar="N",
        help=f"with --sampler tpe|gp|qmc: distinct feasible networks to draw and race (default {DEFAULT_N_CANDIDATES})",
    )
    base_resolution: int | None = setting(
        None, kind=int, check=whole(1, example=224), group=_GRID, metavar="R",
        help="B0's input size (default: the data's, within the network's total stride and the baseline's own size)",
    )
    stem: str = setting(
        "standard", choices=STEMS, group=_GRID,
        help="standard: the baseline's own stem (default); small: a stride-1 stem (total stride 8), the usual "
             "adaptation to small images",
    )
    scheduler: str = setting("none", choices=SCHEDULERS, group=_TRAIN, help="asha: stop weak trials early (stored as PRUNED)")
    grace_period: int = setting(1, kind=int, check=whole(1, example=1), group=_TRAIN, help="epochs before ASHA may stop a trial")
    min_repeats: int = setting(
        2, kind=int, check=whole(1, example=2), group=_TRUST,
        help="seeds every candidate trains first (default 2); one seed's top-1 is noise",
    )
    max_repeats: int = setting(
        5, kind=int, check=whole(1, example=5), group=_TRUST,
        help="seeds at most, for the leader and the candidates not yet clearly worse than it (default 5)",
    )
    confirm_top: int | None = setting(
        None, kind=int, check=whole(0, example=3), group=_TRUST, metavar="K",
        help="retrain the top K candidates and K others with a longer budget to check the proxy's ranking "
             "(default 3, or fewer when the grid has fewer candidates; 0 turns it off)",
    )
    confirm_epochs: int | None = setting(
        None, kind=int, check=whole(1, example=9), group=_TRUST, metavar="N",
        help="epochs of a confirmation run (default 3x the proxy's)",
    )
    ray_address: str | None = setting(
        None, api=False, check=text(what="a Ray address"), group=_RUN, metavar="ADDR",
        help="join this Ray cluster (default: a local in-process Ray)",
    )
    cpus_per_trial: float = setting(1.0, kind=float, check=number(0.0, above=True, example=1), group=_RUN, help="CPUs per trial (default 1)")
    gpus_per_trial: Any = setting(
        "auto", check=_gpus_check, group=_RUN, metavar="auto|X", api_kind=str | float,
        help="GPUs per trial: auto (default) packs trials onto GPUs by their measured GPU memory when the "
             "cluster has GPUs, and uses none otherwise; a number fixes it (fractions share a GPU, e.g. 0.25)",
    )
    max_concurrent: int | None = setting(
        None, kind=int, check=whole(1, example=2), group=_RUN, metavar="N", help="trials at once (default: as many as Ray fits)",
    )
    max_retries: int = setting(2, kind=int, check=whole(0, example=2), group=_RUN, help="retries of a worker that dies (default 2)")
    connect_timeout: float = setting(
        15.0, kind=float, check=number(0.0, above=True, example=15), group=_RUN, api=False, metavar="SECONDS",
        help="give up joining --ray-address after this long (default 15)",
    )
    db_timeout: float = setting(
        300.0, kind=float, check=number(0.0, above=True, example=300), group=_RUN, metavar="SECONDS",
        help="how long to ride out an unreachable database before stopping as interrupted (default 300)",
    )
    storage: str | None = storage_setting(group=_RUN)
    study: str | None = setting(
        None, check=text(max_length=512, what="a study name"), group=_RUN, metavar="NAME",
        help="study name; re-run with the same name to resume (default: derived from the settings)",
    )
    max_phi: int = setting(7, kind=int, check=whole(0, example=7), group=_RUN, help="emit B0..B<max-phi> (default 7)")
    phi: str | None = setting(
        None, check=phis_check, group=_RUN, metavar="LIST",
        help="emit these members instead of B0..B<max-phi>: numbers and ranges, negative and fractional too, "
             "e.g. -2,-1,0.5,1..7 (members off the integers 0..7 are named phi<value>)",
    )
    out: str | None = setting(
        None, api=False, check=path(), group=_RUN, metavar="FILE",
        help="family JSON file (default family-STUDY.json)",
    )
    recipe: ProxyRecipe = field(default_factory=ProxyRecipe)
    latency: LatencyOptions = field(default_factory=LatencyOptions)

    def __post_init__(self) -> None:
        check_settings(self)
        if not isinstance(self.recipe, ProxyRecipe):
            raise UsageError(f"recipe {self.recipe!r} is not a ProxyRecipe")
        if not isinstance(self.latency, LatencyOptions):
            raise UsageError(f"latency {self.latency!r} is not a LatencyOptions")
        self._check_repeats()
        if self.sampler == "grid" and self.n_candidates is not None:
            raise UsageError(f"--n-candidates {self.n_candidates} needs a sampler that draws points; pass "
                             "--sampler tpe, gp or qmc, or drop --n-candidates (the grid races all its points)")

    @property
    def candidates_wanted(self) -> int:
        """How many distinct networks a drawing sampler stops at."""
        return self.n_candidates if self.n_candidates is not None else DEFAULT_N_CANDIDATES

    def _check_repeats(self) -> None:
        if self.max_repeats < self.min_repeats:
            raise UsageError(
                f"--max-repeats {self.max_repeats} is below --min-repeats {self.min_repeats}; "
                f"pass --max-repeats {self.min_repeats} or more"
            )
        proxy = self.recipe.budget
        if self.confirm_epochs is not None and proxy.epochs is not None and self.confirm_epochs <= proxy.epochs:
            raise UsageError(
                f"--confirm-epochs {self.confirm_epochs} is not above the proxy's {proxy.epochs} epochs; "
                f"pass more (default {3 * proxy.epochs}), or --confirm-top 0 to skip confirmation"
            )
        if self.scheduler == "asha" and (self.max_repeats > 1 or self.confirm_top):
            raise UsageError(
                "--scheduler asha stops trials early, which repeats, racing and confirmation cannot use (Ray's "
                "Repeater warns the same); pass --min-repeats 1 --max-repeats 1 --confirm-top 0 with asha, "
                "or --scheduler none"
            )

    def confirm_top_for(self, candidates: int) -> int:
        """How many candidates (the top K, plus K spread) the confirmation round retrains: the given
        --confirm-top (refused when the grid has fewer candidates), else up to 3; none for a single
        candidate (one has no ranking to check) or under asha."""
        if self.confirm_top is not None:
            if self.confirm_top > candidates:
                raise UsageError(
                    f"--confirm-top {self.confirm_top} but the grid has {candidates} distinct feasible candidates; "
                    f"pass --confirm-top {candidates} or less (0 turns confirmation off)"
                )
            return self.confirm_top
        if self.scheduler == "asha" or candidates < 2:
            return 0
        return min(DEFAULT_CONFIRM_TOP, candidates)

    @property
    def confirm_budget(self) -> dict[str, int]:
        """A confirmation run's budget: --confirm-epochs, else 3x the proxy's epochs (or steps)."""
        proxy = self.recipe.budget
        if self.confirm_epochs is not None:
            return {"epochs": self.confirm_epochs}
        return {"epochs": 3 * proxy.epochs} if proxy.epochs is not None else {"steps": 3 * proxy.steps}

    @classmethod
    def build(cls, baseline: str, *, data: str, recipe: ProxyRecipe | None = None, **settings: Any) -> "SearchOptions":
        """From flat keywords, as the CLI, the API and ``effscale.run_search`` pass them."""
        own, recipe_fields, latency_fields = split_by_owner(settings, cls, ProxyRecipe, LatencyOptions)
        own.pop("recipe", None)
        own.pop("latency", None)
        if recipe is None:
            recipe = ProxyRecipe(**recipe_fields)
        elif recipe_fields:
            recipe = recipe.replace(**recipe_fields)
        return cls(baseline=baseline, data=data, recipe=recipe, latency=LatencyOptions(**latency_fields), **own)

    def flat(self) -> dict[str, Any]:
        """Every setting by name, the recipe's included (the inverse of `build`)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("recipe", "latency")}
        return {**values, **self.recipe.as_dict(), **dataclasses.asdict(self.latency)}

    @property
    def grid(self) -> Grid:
        return Grid.parse(self.alpha, self.beta, self.gamma)

    @property
    def constraint_rule(self) -> Constraint:
        return Constraint(self.constraint or self.cost or DEFAULT_COST, self.target_ratio, self.tolerance)

    @property
    def cost_kind(self) -> str:
        """The search's cost: --cost, else its measured constraint's, else FLOPs."""
        rule = self.constraint_rule
        return self.cost or (rule.kind if rule.measured else DEFAULT_COST)

    @property
    def phis(self) -> tuple[float, ...]:
        """The φ of the family the search emits: ``--phi``, else 0..``max_phi``."""
        return parse_phis(self.phi) if self.phi is not None else tuple(float(p) for p in range(self.max_phi + 1))

    @property
    def timed(self) -> bool:
        """Whether this search measures latency (its cost, or its constraint, is latency)."""
        return "latency" in (self.cost_kind, self.constraint_rule.kind)

    def identity(self, *, base_resolution: int, baseline_name: str) -> dict[str, Any]:
        """What fixes a search's results: a study holding another identity is another search."""
        return {
            "baseline": baseline_name,
            # Left out when standard, so that searches stored before --stem existed still resume.
            **({"stem": self.stem} if self.stem != "standard" else {}),
            "data": self.data,
            "grid": self.grid.as_dict(),
            "constraint": self.constraint_rule.kind,
            # The cost left out when FLOPs, as before costs existed; latency's settings only when timed.
            **({"cost": self.cost_kind} if self.cost_kind != DEFAULT_COST else {}),
            **(dataclasses.asdict(self.latency) if self.timed else {}),
            # Left out for the grid, so that searches stored before --sampler existed still resume.
            **({"sampler": self.sampler, "n_candidates": self.candidates_wanted} if self.sampler != "grid" else {}),
            "target_ratio": self.target_ratio,
            "tolerance": self.tolerance,
            "base_resolution": base_resolution,
            "scheduler": self.scheduler,
            "grace_period": self.grace_period,
            "min_repeats": self.min_repeats,
            "max_repeats": self.max_repeats,
            "budget": self.recipe.budget.as_dict(),
            **{k: v for k, v in self.recipe.as_dict().items() if k not in ("epochs", "steps", "compile")},
        }


def default_study_name(identity: dict[str, Any]) -> str:
    """``<baseline>-<data kind>-<hash of the identity>``: the same settings resume the same study."""
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    data = re.sub(r"[^A-Za-z0-9]+", "-", identity["data"].split(":")[0]).strip("-")
    baseline = re.sub(r"[^A-Za-z0-9_]+", "-", identity["baseline"]).strip("-")
    return f"{baseline}-{data}-{digest}"
