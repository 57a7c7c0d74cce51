"""Search space and constraint, Optuna study, Ray Tune runner, family emission."""

from effscale.search.family import (
    PUBLISHED_EFFICIENTNET,
    Family,
    FamilyMember,
    build_member,
    emit_family,
    published_efficientnet_family,
)

__all__ = [
    "PUBLISHED_EFFICIENTNET",
    "Family",
    "FamilyMember",
    "build_member",
    "emit_family",
    "published_efficientnet_family",
]
