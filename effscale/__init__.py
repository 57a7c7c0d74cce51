"""effscale: EfficientNet-style compound scaling (α, β, γ) for any baseline, with measured FLOPs.

The public API::

    import effscale
    family = effscale.emit_family("efficientnet_b0", effscale.Coefficients(1.2, 1.1, 1.15))
    model = effscale.build_member(family, "B3")
    result = effscale.run_search("tiny", data="digits", epochs=2)

Names resolve on first use (PEP 562): ``import effscale.models`` loads torch and fvcore but not
Optuna, Ray or FastAPI, and ``effscale --help`` loads none of them.
"""

from __future__ import annotations

from effscale._lazy import lazy_exports
from effscale.errors import UsageError

from effscale._version import __version__

_EXPORTS = {
    "FLOPS_CONVENTION": "effscale.models",
    "Baseline": "effscale.models",
    "BaselineSpec": "effscale.models",
    "Coefficients": "effscale.models",
    "Cost": "effscale.models",
    "ScaleFactors": "effscale.models",
    "StageSpec": "effscale.models",
    "build_model": "effscale.models",
    "get_baseline": "effscale.models",
    "list_baselines": "effscale.models",
    "measure_cost": "effscale.models",
    "register_baseline": "effscale.models",
    "ProxyRecipe": "effscale.trainer",
    "load_data": "effscale.trainer",
    "train_proxy": "effscale.trainer",
    "Family": "effscale.search",
    "FamilyMember": "effscale.search",
    "SearchOptions": "effscale.search",
    "SearchResult": "effscale.search",
    "build_member": "effscale.search",
    "emit_family": "effscale.search",
    "published_efficientnet_family": "effscale.search",
    "run_search": "effscale.search",
}

__all__ = sorted([*_EXPORTS, "UsageError", "__version__"])

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
