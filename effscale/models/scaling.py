"""All of effscale's scaling arithmetic, in one place.

Compound scaling (EfficientNet §3.3): depth d = α^φ, width w = β^φ, resolution r = γ^φ, with
α·β²·γ² ≈ 2 so that FLOPs (∝ d·w²·r²) double per step of φ. The rounding rules are the official
code's (``round_filters`` / ``round_repeats``), which torchvision reproduces as ``_make_divisible``
and ``adjust_depth``; the resolution rule is ours because the paper has none (B1..B7 were
hand-picked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from effscale.errors import UsageError

CHANNEL_DIVISOR = 8


def round_channels(channels: float, width: float = 1.0, *, divisor: int = CHANNEL_DIVISOR) -> int:
    """Scale ``channels`` by ``width`` and round to a multiple of ``divisor``.

    Round to nearest, but never below 90% of the unrounded value (official ``round_filters``):
    dropping 10% of a layer's channels would cost more accuracy than the rounding saves.
    """
    target = channels * width
    rounded = max(divisor, int(target + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * target:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a stage's block count by ``depth``, rounding up per stage (official ``round_repeats``)."""
    return int(math.ceil(repeats * depth))


def scale_resolution(base_resolution: int, resolution_factor: float) -> int:
    """Scale the input resolution: nearest integer, halves rounded up.

    The paper hand-picked B1..B7's resolutions; we keep the finest rule that is still exact so
    that at proxy sizes (base 32) neighbouring γ values stay distinct networks.
    """
    return max(1, int(math.floor(base_resolution * resolution_factor + 0.5)))


def check_resolution(resolution: int, min_resolution: int = 1) -> int:
    """Validate an input side against the network's total stride (the one check cost, trainer and
    search all use)."""
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        if isinstance(resolution, float) and resolution.is_integer():
            resolution = int(resolution)
        else:
            raise UsageError(f"resolution={resolution!r} is not a whole number of pixels; pass e.g. 32")
    if resolution < max(1, min_resolution):
        raise UsageError(
            f"resolution={resolution} is too small for the network's strides (minimum "
            f"{min_resolution}); pass a resolution of at least {min_resolution}"
        )
    return resolution


def _check_factor(name: str, value: float, *, allow_scale_down: bool) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name}={value!r} is not a number; pass a finite number >= 1") from None
    if not math.isfinite(value):
        raise UsageError(f"{name}={value} is not finite; pass a finite number >= 1")
    if value <= 0:
        raise UsageError(f"{name}={value} must be positive; pass a finite number >= 1")
    if value < 1 and not allow_scale_down:
        raise UsageError(
            f"{name}={value} is below 1, which scales the baseline down; pass a value >= 1 "
            "(or allow_scale_down=True / --allow-scale-down if that is intended)"
        )
    return value


@dataclass(frozen=True)
class ScaleFactors:
    """Multipliers for one network: depth d, width w and resolution r (relative to the baseline)."""

    depth: float
    width: float
    resolution: float

    def __post_init__(self) -> None:
        for name in ("depth", "width", "resolution"):
            _check_factor(name, getattr(self, name), allow_scale_down=True)

    @property
    def formula_ratio(self) -> float:
        """The paper's cost guide d·w²·r² (measured FLOPs differ: rounding, and the head/stem)."""
        return self.depth * self.width**2 * self.resolution**2


@dataclass(frozen=True)
class Coefficients:
    """The compound-scaling coefficients α (depth), β (width), γ (resolution)."""

    alpha: float
    beta: float
    gamma: float
    allow_scale_down: bool = False

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = _check_factor(name, getattr(self, name), allow_scale_down=self.allow_scale_down)
            object.__setattr__(self, name, value)

    @property
    def formula_ratio(self) -> float:
        """α·β²·γ²: the FLOPs multiplier per step of φ that the paper's constraint targets (≈ 2)."""
        return self.alpha * self.beta**2 * self.gamma**2

    def scale(self, phi: float) -> ScaleFactors:
        """The factors for compound coefficient φ: (α^φ, β^φ, γ^φ)."""
        if not math.isfinite(phi) or phi < 0:
            raise UsageError(f"phi={phi} must be a finite number >= 0")
        return ScaleFactors(self.alpha**phi, self.beta**phi, self.gamma**phi)

    def as_dict(self) -> dict[str, float]:
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma}
