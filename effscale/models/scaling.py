"""All of effscale's scaling arithmetic, in one place.

Compound scaling (EfficientNet §3.3): depth d = α^φ, width w = β^φ, resolution r = γ^φ, with
α·β²·γ² ≈ 2 so that FLOPs (∝ d·w²·r²) double per step of φ. The rounding rules are the official
code's (``round_filters`` / ``round_repeats``), which torchvision reproduces as ``_make_divisible``
and ``adjust_depth``; the resolution rule is ours because the paper has none (B1..B7 were
hand-picked). The widths inside a block (expanded, squeeze-excitation, bottleneck) follow each
source network's own rule, and live here too, so that blocks and specs do no arithmetic of their own.
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


def mbconv_hidden_channels(in_channels: int, expansion: float) -> int:
    """EfficientNet's expanded (depthwise) width: ``in_channels * expansion`` via `round_channels`.

    The official code and torchvision (``adjust_channels``) send the expanded width through
    ``round_filters`` like every other width, so it too is a multiple of 8 and never below 90%.
    """
    return round_channels(in_channels, expansion)


def inverted_residual_hidden_channels(in_channels: int, expansion: float) -> int:
    """MobileNetV2's expanded width: ``in_channels * expansion`` to the nearest integer.

    MobileNetV2 rounds only its stage widths to multiples of 8; torchvision's ``InvertedResidual``
    takes ``round(inp * expand_ratio)`` for the hidden layer, and its published parameter count
    depends on that.
    """
    return int(round(in_channels * expansion))


def squeeze_channels(in_channels: int, se_ratio: float) -> int:
    """Squeeze-excitation width: ``se_ratio`` of the *block input*, truncated, at least 1.

    EfficientNet squeezes relative to the block's input, not its expanded width (torchvision:
    ``max(1, input_channels // 4)``), so SE stays cheap in blocks that expand 6x.
    """
    return max(1, int(in_channels * se_ratio))


def bottleneck_output_channels(inner_channels: int, expansion: float) -> int:
    """A ResNet bottleneck block's output: ``expansion`` (4) times its bottleneck width.

    Width scaling rounds the bottleneck (the 3x3 conv's width, the "channels" of the paper's
    table); the 1x1 expansion then follows it exactly, as in ResNet's 64-64-256 rows.
    """
    return int(inner_channels * expansion)


def bottleneck_width(output_channels: int, expansion: float) -> int:
    """The inverse of `bottleneck_output_channels`: the 1x1/3x3 width of a bottleneck block."""
    return int(output_channels // expansion)


def formula_ratio(depth: float, width: float, resolution: float, base_resolution: float = 1.0) -> float:
    """The paper's FLOPs guide d·w²·r², with r = ``resolution / base_resolution``.

    Pass pixel sizes (``formula_ratio(d, w, 258, 224)``) or a resolution factor alone
    (``formula_ratio(d, w, 1.15)``). It ignores rounding and the stem and head, which is why
    effscale prints it next to measured FLOPs and never instead of them.
    """
    if not base_resolution > 0:
        raise UsageError(
            f"base_resolution={base_resolution!r} must be positive; pass the baseline's input size, e.g. 224"
        )
    return depth * width**2 * (resolution / base_resolution) ** 2


def scale_resolution(base_resolution: int, resolution_factor: float) -> int:
    """Scale the input resolution: nearest integer, halves rounded up.

    The paper hand-picked B1..B7's resolutions; we keep the finest rule that is still exact so
    that at proxy sizes (base 32) neighbouring γ values stay distinct networks.
    """
    return max(1, int(math.floor(base_resolution * resolution_factor + 0.5)))


def default_resolution(native_size: int, *, min_resolution: int, base_resolution: int) -> int:
    """The one default input size, for `effscale search` and `effscale train` alike: the data's own
    size, clamped to [the network's total stride, its base resolution]. Digits' 8 px -> 32 for a
    stride-32 net; CIFAR's 32 stays 32; 500 px photos -> 224. Above the data's size training only
    upsamples; below the total stride the last stage would have nothing to see."""
    return max(min_resolution, min(native_size, base_resolution))


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
        return formula_ratio(self.depth, self.width, self.resolution)


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
        return formula_ratio(self.alpha, self.beta, self.gamma)

    def scale(self, phi: float) -> ScaleFactors:
        """The factors for compound coefficient φ: (α^φ, β^φ, γ^φ). Any finite φ: below 0 the
        factors shrink the baseline (the rounding rules keep every stage's last block and the
        narrowest width), between the integers they fall between the members."""
        if isinstance(phi, bool) or not isinstance(phi, (int, float)) or not math.isfinite(phi):
            raise UsageError(f"phi={phi!r} must be a finite number, e.g. -1, 0.5 or 3")
        return ScaleFactors(self.alpha**phi, self.beta**phi, self.gamma**phi)

    def as_dict(self) -> dict[str, float]:
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma}
