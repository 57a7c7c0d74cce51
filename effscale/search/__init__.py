"""Search space and constraint, Optuna study, Ray Tune runner, family emission.

`run_search` runs a whole search; `SearchOptions` declares its settings. Names resolve on first
use (PEP 562), so reading the options (as ``effscale --help`` does) loads neither torch, Optuna
nor Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
