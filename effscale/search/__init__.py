"""Search space and constraint, Optuna study, Ray Tune runner, family emission.

`run_search` runs a whole search; `SearchOptions` declares its settings. Names resolve on first
use (PEP 562), so reading the options (as ``effscale --help`` does) loads neither torch, Optuna
nor Ray.
"""

from __future__ import annotations

from effscale._lazy import lazy_exports
_EXPORTS = {
    "CONSTRAINTS": "effscale.search.planning.grid",
    "Constraint": "effscale.search.planning.grid",
    "DEFAULT_GRID": "effscale.search.planning.grid",
    "Grid": "effscale.search.planning.grid",
    "parse_grid": "effscale.search.planning.grid",
    "SearchOptions": "effscale.search.planning.options",
    "SearchPlan": "effscale.search.planning.plan",
    "SearchResult": "effscale.search.driver",
    "plan_search": "effscale.search.planning.plan",
    "run_search": "effscale.search.driver",
    "Candidate": "effscale.search.planning.candidates",
    "CandidateSet": "effscale.search.planning.candidates",
    "enumerate_candidates": "effscale.search.planning.candidates",
    "PUBLISHED_EFFICIENTNET": "effscale.search.family.members",
    "Family": "effscale.search.family.members",
    "FamilyMember": "effscale.search.family.members",
    "build_member": "effscale.search.family.members",
    "emit_family": "effscale.search.family.members",
    "published_efficientnet_family": "effscale.search.family.members",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
