"""Search space and constraint, Optuna study, Ray Tune runner, family emission.

``effscale.search(...)`` runs a search (this package is callable, so ``effscale.search.space``
and friends stay importable beside it).
"""

import sys
import types

from effscale.search.api import SearchResult, search
from effscale.search.family import (
    PUBLISHED_EFFICIENTNET,
    Family,
    FamilyMember,
    build_member,
    emit_family,
    published_efficientnet_family,
)
from effscale.search.space import Candidate, CandidateSet, Constraint, Grid, enumerate_candidates, parse_grid

__all__ = [
    "PUBLISHED_EFFICIENTNET",
    "Candidate",
    "CandidateSet",
    "Constraint",
    "Family",
    "FamilyMember",
    "Grid",
    "SearchResult",
    "build_member",
    "emit_family",
    "enumerate_candidates",
    "parse_grid",
    "published_efficientnet_family",
    "search",
]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
