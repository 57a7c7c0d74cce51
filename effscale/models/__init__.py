"""Block library, baselines as data, scaling rules, registry and measured cost.

The specs and the scaling rules are imported eagerly: they have no torch, so ``effscale --help``
and the option checks read them cheaply (the stems, the rounding). The registry and the measured
cost resolve on first use (PEP 562) and bring torch then.
"""

from __future__ import annotations

from effscale._lazy import lazy_exports

from effscale.models.scaling import (
    Coefficients,
    ScaleFactors,
    check_resolution,
    default_resolution,
    formula_ratio,
    round_channels,
    round_repeats,
    scale_resolution,
)
from effscale.models.specs import (
    SMALL_STEM_TOTAL_STRIDE,
    STEMS,
    BaselineSpec,
    ProxyDefaults,
    ScaledSpec,
    StageSpec,
    scale_spec,
    small_stem,
)

_LAZY = {
    "FLOPS_CONVENTION": "effscale.models.cost",
    "Cost": "effscale.models.cost",
    "count_params": "effscale.models.cost",
    "measure_cost": "effscale.models.cost",
    "Baseline": "effscale.models.registry",
    "FunctionBaseline": "effscale.models.registry",
    "SpecBaseline": "effscale.models.registry",
    "build_model": "effscale.models.registry",
    "get_baseline": "effscale.models.registry",
    "list_baselines": "effscale.models.registry",
    "register_baseline": "effscale.models.registry",
}

__all__ = [
    "FLOPS_CONVENTION",
    "SMALL_STEM_TOTAL_STRIDE",
    "STEMS",
    "Baseline",
    "BaselineSpec",
    "Coefficients",
    "Cost",
    "FunctionBaseline",
    "ProxyDefaults",
    "ScaleFactors",
    "ScaledSpec",
    "SpecBaseline",
    "StageSpec",
    "build_model",
    "check_resolution",
    "default_resolution",
    "count_params",
    "formula_ratio",
    "get_baseline",
    "list_baselines",
    "measure_cost",
    "register_baseline",
    "round_channels",
    "round_repeats",
    "scale_resolution",
    "scale_spec",
    "small_stem",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
