"""Beyond the grid: α and β drawn continuously by an Optuna sampler, γ solved from the constraint.

    candidates, proposals = sample_candidates(measurer, grid, sampler="tpe", n=12, seed=0)

For ``--sampler tpe|gp|qmc`` the φ=1 search does not enumerate the grid: it draws points inside
the grid's bounds. α is drawn within the range that can still reach the target with β and γ in
their bounds, β within what that α leaves (``beta_share`` places it, log-uniformly), and γ is
solved from α·β²·γ² = target, so every drawn point is feasible by the formula before anything is
built. Each point is then built and measured (`CandidateMeasurer`), and the measured-cost
tolerance is Optuna's constraint (``Trial.set_constraint``: deviation minus tolerance, > 0 is
infeasible): an infeasible point is recorded, never trained. Points that build the same network
are aliases (`group_candidates`). Drawing stops at ``n`` distinct feasible networks (or after
`MAX_DRAWS_PER_CANDIDATE` · n draws).

Why the points are drawn up front, in a small in-memory "proposal" study, rather than asked one at
a time while the race runs: the race compares every candidate on the same paired seeds, the plan
prices every network's memory and time and refuses what fits no node before anything is written,
and a resumed search must race the very same candidates; all three need the candidate set fixed
before the first trial. So the sampler's model steers where to look by what is known before
training: which points are feasible in measured cost (the constraint) and how near the target the
measured cost lands (the value told, ``-deviation``: rounding drift, the paper's footnote). Which
candidate is most accurate is then the race's to say, on paired seeds, with its tie rule and the
confirmation round, exactly as for the grid. The sampler is seeded with the recipe's seed, and
measuring is deterministic, so the same command draws the same points: into a fresh study, or on
resume. The proposals are kept (`proposal_rows`) and stored as their own study beside the search
(`effscale.search.records.study.store_proposals`), so optuna-dashboard shows each drawn point with
its feasibility.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from effscale.errors import UsageError

SAMPLERS = ("grid", "tpe", "gp", "qmc")
MAX_DRAWS_PER_CANDIDATE = 8
_DECIMALS = 6  # a candidate's key is rounded to this (`effscale.search.records.study.candidate_key`)
_CONSTRAINT = "cost_tolerance"  # deviation from the target cost minus the tolerance: > 0 is infeasible


def make_sampler(name: str, seed: int) -> Any:
    """The Optuna sampler for ``name``, seeded. TPE and GP learn the measured-cost constraint from
    each trial's ``Trial.set_constraint`` (Optuna 5's replacement for ``constraints_func``)."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "qmc":  # a scrambled Sobol sequence: space-filling; QMC has no constraint model
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, module=__name__)
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed,
                                          independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                                          warn_independent_sampling=False, warn_asynchronous_seeding=False)
    raise UsageError(f"--sampler {name!r} is not one of {', '.join(SAMPLERS)}; pass one of them")


def alpha_range(grid: Any, target: float) -> tuple[float, float]:
    """The α in the grid's bounds for which some β and γ in theirs meet α·β²·γ² = target."""
    low = max(min(grid.alpha), target / (max(grid.beta) ** 2 * max(grid.gamma) ** 2))
    high = min(max(grid.alpha), target / (min(grid.beta) ** 2 * min(grid.gamma) ** 2))
    if low > high:
        raise UsageError(
            f"no (alpha, beta, gamma) within the bounds alpha {min(grid.alpha):g}..{max(grid.alpha):g}, beta "
            f"{min(grid.beta):g}..{max(grid.beta):g}, gamma {min(grid.gamma):g}..{max(grid.gamma):g} reaches "
            f"--target-ratio {target:g} by the formula; widen --alpha/--beta/--gamma or change --target-ratio"
        )
    return low, high


def point(alpha: float, share: float, grid: Any, target: float) -> tuple[float, float, float]:
    """(α, β, γ) from α and β's share of the β-range that α leaves feasible; γ from the formula."""
    rest = target / alpha  # β²·γ²
    b_low = max(min(grid.beta), math.sqrt(rest) / max(grid.gamma))
    b_high = min(max(grid.beta), math.sqrt(rest) / min(grid.gamma))
    beta = math.exp(math.log(b_low) + share * (math.log(max(b_high, b_low)) - math.log(b_low)))
    gamma = math.sqrt(rest) / beta
    gamma = min(max(gamma, min(grid.gamma)), max(grid.gamma))  # only float noise is clipped here
    return round(alpha, _DECIMALS), round(beta, _DECIMALS), round(gamma, _DECIMALS)


def sample_candidates(measurer: Any, grid: Any, *, sampler: str, n: int, seed: int) -> tuple[Any, list[dict]]:
    """Draw until ``n`` distinct feasible networks (`CandidateSet`), with every proposal as a row."""
    import optuna

    from effscale.search.planning.candidates import group_candidates

    constraint = measurer.constraint
    target, (a_low, a_high) = constraint.target_ratio, alpha_range(grid, constraint.target_ratio)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the in-memory study's creation is no news
    study = optuna.create_study(direction="maximize", sampler=make_sampler(sampler, seed))
    measured: dict[tuple, Any] = {}
    rows: list[dict] = []
    for _ in range(MAX_DRAWS_PER_CANDIDATE * n):
        trial = study.ask()
        key = point(trial.suggest_float("alpha", a_low, a_high), trial.suggest_float("beta_share", 0.0, 1.0),
                    grid, target)
        c = measured.get(key) or measurer.candidate(*key)
        measured[key] = c
        deviation = constraint.deviation(c.ratio(constraint.kind) if constraint.measured else c.formula_ratio)
        trial.set_constraint(_CONSTRAINT, deviation - constraint.tolerance)
        study.tell(trial, -deviation)
        rows.append({"alpha": key[0], "beta": key[1], "gamma": key[2], "deviation": deviation,
                     "violation": deviation - constraint.tolerance, "feasible": c.feasible, "arch_id": c.arch_id})
        if len({m.arch_id for m in measured.values() if m.feasible}) >= n:
            break
    if not any(c.feasible for c in measured.values()):
        closest = min(rows, key=lambda r: r["deviation"])
        raise UsageError(
            f"--sampler {sampler}: none of {len(rows)} drawn points is within {constraint.tolerance:.0%} of "
            f"{target:g} in measured cost (closest {closest['deviation']:.0%} off); pass a larger --tolerance "
            f"(e.g. {math.ceil(closest['deviation'] * 100 + 0.5) / 100:.2f})"
        )
    return group_candidates(list(measured.values()), constraint, measurer.baseline_flops), rows
