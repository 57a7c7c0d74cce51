"""effscale: EfficientNet-style compound scaling (α, β, γ) for any baseline, with measured FLOPs.

The public API::

    import effscale
    family = effscale.emit_family("efficientnet_b0", effscale.Coefficients(1.2, 1.1, 1.15))
    model = effscale.build_member(family, "B3")
"""

from effscale.errors import UsageError
from effscale.models import (
    FLOPS_CONVENTION,
    Baseline,
    BaselineSpec,
    Coefficients,
    Cost,
    ScaleFactors,
    StageSpec,
    build_model,
    get_baseline,
    list_baselines,
    measure_cost,
    register_baseline,
)
from effscale.search import Family, FamilyMember, build_member, emit_family, published_efficientnet_family

__version__ = "0.1.0"

__all__ = [
    "FLOPS_CONVENTION",
    "Baseline",
    "BaselineSpec",
    "Coefficients",
    "Cost",
    "Family",
    "FamilyMember",
    "ScaleFactors",
    "StageSpec",
    "UsageError",
    "__version__",
    "build_member",
    "build_model",
    "emit_family",
    "get_baseline",
    "list_baselines",
    "measure_cost",
    "published_efficientnet_family",
    "register_baseline",
]
