"""Search space and constraint, Optuna study, Ray Tune runner, family emission.

`run_search` runs a whole search; `SearchOptions` declares its settings. Names resolve on first
use (PEP 562), so reading the options (as ``effscale --help`` does) loads neither torch, Optuna
nor Ray.
"""

from __future__ import annotations

from effscale._lazy import lazy_exports
_EXPORTS = {
    "CONSTRAINTS": "effscale.search.grid",
    "Constraint": "effscale.search.grid",
    "DEFAULT_GRID": "effscale.search.grid",
    "Grid": "effscale.search.grid",
    "parse_grid": "effscale.search.grid",
    "SearchOptions": "effscale.search.options",
    "SearchPlan": "effscale.search.planning",
    "SearchResult": "effscale.search.driver",
    "plan_search": "effscale.search.planning",
    "run_search": "effscale.search.driver",
    "Candidate": "effscale.search.space",
    "CandidateSet": "effscale.search.space",
    "enumerate_candidates": "effscale.search.space",
    "PUBLISHED_EFFICIENTNET": "effscale.search.family",
    "Family": "effscale.search.family",
    "FamilyMember": "effscale.search.family",
    "build_member": "effscale.search.family",
    "emit_family": "effscale.search.family",
    "published_efficientnet_family": "effscale.search.family",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
