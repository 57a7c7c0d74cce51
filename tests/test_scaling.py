"""The rounding rules and the coefficient maths, one module, one test file."""

from __future__ import annotations

import math

import pytest

from effscale.errors import UsageError
from effscale.models import Coefficients, ScaleFactors, round_channels, round_repeats, scale_resolution
from effscale.models.scaling import (
    bottleneck_output_channels,
    bottleneck_width,
    formula_ratio,
    inverted_residual_hidden_channels,
    mbconv_hidden_channels,
    squeeze_channels,
)


@pytest.mark.parametrize(
    ("channels", "width", "expected"),
    [
        (32, 1.0, 32),
        (32, 1.1, 32),  # 35.2 -> 32 is 91% of 35.2: allowed
        (16, 1.1, 16),  # 17.6 -> 16 is 90.9%: allowed
        (40, 1.4, 56),
        (1280, 1.1, 1408),
        (320, 2.0, 640),
        (24, 1.2, 32),  # 28.8 -> round half up to 32
        (8, 0.5, 8),  # never below the divisor
        (100, 1.0, 104),  # nearest multiple of 8, half up
    ],
)
def test_round_channels(channels: int, width: float, expected: int) -> None:
    assert round_channels(channels, width) == expected


@pytest.mark.parametrize("channels", [16, 24, 40, 80, 112, 192, 320, 1280, 33, 57, 75])
@pytest.mark.parametrize("width", [1.0, 1.05, 1.1, 1.13, 1.2, 1.37, 1.6, 2.0, 3.1])
def test_round_channels_is_multiple_of_8_and_never_below_90_percent(channels: int, width: float) -> None:
    rounded = round_channels(channels, width)
    assert rounded % 8 == 0
    assert rounded >= 0.9 * channels * width
    assert abs(rounded - channels * width) <= 8


def test_round_channels_bumps_when_below_90_percent() -> None:
    # 11.9 rounds to 8, which is 67% of 11.9, so the rule adds a divisor.
    assert round_channels(11.9) == 16


@pytest.mark.parametrize(("repeats", "depth", "expected"), [(1, 1.0, 1), (1, 1.01, 2), (2, 1.2, 3), (3, 1.25, 4), (4, 3.1, 13)])
def test_round_repeats_is_ceil_per_stage(repeats: int, depth: float, expected: int) -> None:
    assert round_repeats(repeats, depth) == expected


def test_scale_resolution_is_nearest_half_up() -> None:
    assert scale_resolution(224, 1.15) == 258  # 257.6
    assert scale_resolution(32, 1.15) == 37  # 36.8
    assert scale_resolution(32, 1.0) == 32
    assert scale_resolution(10, 1.05) == 11  # 10.5 rounds up


def test_coefficients_formula_and_scale() -> None:
    c = Coefficients(1.2, 1.1, 1.15)
    assert c.formula_ratio == pytest.approx(1.2 * 1.1**2 * 1.15**2)
    assert c.formula_ratio == pytest.approx(1.92, abs=0.01)
    f = c.scale(2)
    assert (f.depth, f.width, f.resolution) == pytest.approx((1.44, 1.21, 1.3225))
    assert f.formula_ratio == pytest.approx(c.formula_ratio**2)
    assert c.scale(0) == ScaleFactors(1.0, 1.0, 1.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 0.0, 0.9, "x"])
def test_coefficients_reject_bad_values(bad: object) -> None:
    with pytest.raises(UsageError, match="alpha"):
        Coefficients(bad, 1.1, 1.1)  # type: ignore[arg-type]


def test_coefficients_allow_scale_down_only_when_asked() -> None:
    with pytest.raises(UsageError, match="beta=0.9 is below 1"):
        Coefficients(1.2, 0.9, 1.1)
    assert Coefficients(1.2, 0.9, 1.1, allow_scale_down=True).beta == 0.9
    with pytest.raises(UsageError):
        Coefficients(1.2, math.nan, 1.1, allow_scale_down=True)


def test_scale_takes_any_finite_phi_and_shrinks_below_zero() -> None:
    down = Coefficients(1.2, 1.1, 1.15).scale(-1)
    assert (down.depth, down.width, down.resolution) == pytest.approx((1 / 1.2, 1 / 1.1, 1 / 1.15))
    assert Coefficients(1.2, 1.1, 1.15).scale(0.5).depth == pytest.approx(1.2**0.5)
    for bad in (math.nan, math.inf, "2"):
        with pytest.raises(UsageError, match="phi"):
            Coefficients(1.2, 1.1, 1.15).scale(bad)


@pytest.mark.parametrize(
    ("in_channels", "expansion", "mbconv", "mobilenet_v2"),
    [
        (16, 6, 96, 96),  # B0's products are already multiples of 8: both rules agree
        (32, 1, 32, 32),
        (17, 6, 104, 102),  # 102: EfficientNet rounds to a multiple of 8, MobileNetV2 does not
        (36, 6, 216, 216),
        (5, 2.5, 16, 12),  # 12.5: the nearest multiple of 8 is 16; Python's round goes to even, as torchvision's
    ],
)
def test_expanded_width_rules(in_channels: int, expansion: float, mbconv: int, mobilenet_v2: int) -> None:
    assert mbconv_hidden_channels(in_channels, expansion) == mbconv
    assert inverted_residual_hidden_channels(in_channels, expansion) == mobilenet_v2


@pytest.mark.parametrize(("in_channels", "expected"), [(32, 8), (16, 4), (40, 10), (30, 7), (2, 1)])
def test_squeeze_width_is_a_quarter_of_the_block_input_at_least_1(in_channels: int, expected: int) -> None:
    # torchvision: max(1, input_channels // 4), whatever the block's expansion.
    assert squeeze_channels(in_channels, 0.25) == expected


@pytest.mark.parametrize("width", [1.0, 1.1, 1.37, 2.0])
def test_bottleneck_output_is_4x_its_rounded_width_and_back(width: float) -> None:
    inner = round_channels(64, width)
    assert bottleneck_output_channels(inner, 4.0) == 4 * inner
    assert bottleneck_width(bottleneck_output_channels(inner, 4.0), 4.0) == inner
    assert (bottleneck_output_channels(64, 4.0), bottleneck_width(2048, 4.0)) == (256, 512)


def test_formula_ratio_from_pixels_or_from_a_factor() -> None:
    # The paper's phi=1 triple at B0's 224 px: 258 px is 1.1518x, so a hair above 1.2*1.1^2*1.15^2.
    assert formula_ratio(1.2, 1.1, 258, 224) == pytest.approx(1.2 * 1.21 * (258 / 224) ** 2)
    # The same number the dataclasses give (one formula, not three).
    assert formula_ratio(1.2, 1.1, 258, 224) == ScaleFactors(1.2, 1.1, 258 / 224).formula_ratio
    assert formula_ratio(1.2, 1.1, 1.15) == Coefficients(1.2, 1.1, 1.15).formula_ratio
    assert formula_ratio(1.1, 1.0, 240, 224) == pytest.approx(1.1 * (240 / 224) ** 2)  # published B1


@pytest.mark.parametrize("bad", [0, -224])
def test_formula_ratio_rejects_a_non_positive_base_resolution(bad: int) -> None:
    with pytest.raises(UsageError, match=f"base_resolution={bad} must be positive"):
        formula_ratio(1.0, 1.0, 224, bad)
