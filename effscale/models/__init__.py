"""Block library, baselines as data, scaling rules, registry and measured cost."""

from effscale.models.cost import FLOPS_CONVENTION, Cost, count_params, measure_cost
from effscale.models.registry import (
    Baseline,
    FunctionBaseline,
    SpecBaseline,
    build_model,
    get_baseline,
    list_baselines,
    register_baseline,
)
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
