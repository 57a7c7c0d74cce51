"""Single-dimension arms matched in measured FLOPs to a compound member, and the search behind them."""

from __future__ import annotations

import math

import pytest

from effscale.errors import UsageError
from effscale.models import Coefficients, Cost, measure_cost
from effscale.search.compare.arms import Arm, ArmBounds, plan_arms
from effscale.search.family.members import emit_family
from effscale.search.family.nearest import nearest_flops

PAPER = Coefficients(1.2, 1.1, 1.15)


def _check_arms(
    arms: list[Arm], baseline: str, *, phi: float, base_resolution: int, num_classes: int, tolerance: float
) -> None:
    """Every arm's figures are measure_cost's own, and each matched arm is within tolerance."""
    compound = emit_family(baseline, PAPER, phis=[phi], base_resolution=base_resolution, num_classes=num_classes)
    member = compound.members[0]
    b0 = measure_cost(baseline, base_resolution, num_classes=num_classes).flops
    by_name = {a.name: a for a in arms}
    assert (by_name["compound"].flops, by_name["compound"].resolution) == (member.flops, member.resolution)
    for arm in arms:
        cost = measure_cost(baseline, arm.resolution, depth=arm.depth, width=arm.width, num_classes=num_classes)
        assert (arm.flops, arm.params, arm.arch_id) == (cost.flops, cost.params, cost.arch_id)
        assert arm.ratio == pytest.approx(cost.flops / member.flops)
        assert arm.flops_ratio == pytest.approx(cost.flops / b0)
        assert arm.within_tolerance == (abs(arm.ratio - 1) <= tolerance)
    for name, moved in (("depth", "depth"), ("width", "width"), ("resolution", "resolution")):
        arm = by_name[name]
        assert arm.matched and arm.within_tolerance, arm
        fixed = {"depth": 1.0, "width": 1.0, "resolution": base_resolution}
        assert all(getattr(arm, k) == v for k, v in fixed.items() if k != moved)
    # The resolution arm is the nearest input size: no neighbour comes closer.
    r = by_name["resolution"].resolution
    for other in (r - 1, r + 1):
        if other >= base_resolution:
            f = measure_cost(baseline, other, num_classes=num_classes).flops
            assert abs(math.log(f / member.flops)) >= abs(math.log(by_name["resolution"].flops / member.flops))


@pytest.fixture(scope="module")
def resnet_phi2() -> list[Arm]:
    return plan_arms("resnet18", PAPER, phi=2, base_resolution=32, num_classes=10, tolerance=0.10)


@pytest.mark.slow
@pytest.mark.parametrize("phi", [1, 2])
def test_resnet18_at_32_px_arms_match(phi: int, resnet_phi2: list[Arm]) -> None:
    # At 32 px ResNet's last stage runs on 1x1 maps, so input size moves FLOPs in big steps (64 px
    # costs 4.0x, 66 px 6.0x): 10% is the tolerance that size can meet at phi=2.
    if phi == 1:
        arms = plan_arms("resnet18", PAPER, phi=1, base_resolution=32, num_classes=10, tolerance=0.10)
    else:
        arms = resnet_phi2
    assert [a.name for a in arms] == ["compound", "depth", "width", "resolution"]  # no paper/published arms
    _check_arms(arms, "resnet18", phi=phi, base_resolution=32, num_classes=10, tolerance=0.10)


@pytest.mark.slow
def test_unmatchable_arm_raises_with_its_name_and_closest_ratio(resnet_phi2: list[Arm]) -> None:
    resolution = next(a for a in resnet_phi2 if a.name == "resolution")
    assert 0.05 < abs(resolution.ratio - 1) <= 0.10
    kwargs = dict(phi=2, base_resolution=32, num_classes=10)
    with pytest.raises(UsageError) as err:
        plan_arms("resnet18", PAPER, **kwargs)  # the default 5%
    message = str(err.value)
    assert message.startswith("resolution-only arm cannot match B2's 5.63x FLOPs within 5%")
    assert f"closest {resolution.flops_ratio:.2f}x at {resolution.resolution} px" in message
    assert "widen --bounds or raise --tolerance" in message
    # strict=False reports it instead of raising
    loose = plan_arms("resnet18", PAPER, **kwargs, strict=False)
    assert [a.within_tolerance for a in loose if a.name == "resolution"] == [False]
    # a bound the arm cannot reach past
    unreachable = r"width-only arm cannot match B2's .* inside width <= 1.2 \(closest .* at width 1.2\)"
    with pytest.raises(UsageError, match=unreachable):
        plan_arms("resnet18", PAPER, **kwargs, tolerance=0.10, bounds=ArmBounds(width=1.2))


@pytest.mark.slow
def test_efficientnet_b0_arms_at_phi_1() -> None:
    arms = plan_arms("efficientnet_b0", PAPER, phi=1)
    assert [a.name for a in arms] == ["compound", "depth", "width", "resolution", "paper", "published"]
    _check_arms(arms, "efficientnet_b0", phi=1, base_resolution=224, num_classes=1000, tolerance=0.05)
    paper, published = arms[4], arms[5]
    assert (paper.depth, paper.width, paper.resolution) == (pytest.approx(1.2), pytest.approx(1.1), 258)
    assert paper.ratio == 1.0 and not paper.matched
    # The released B1 (1.0, 1.1, 240) is far cheaper than (1.2, 1.1, 1.15): reported, never raised.
    assert (published.width, published.depth, published.resolution) == (1.0, 1.1, 240)
    assert not published.within_tolerance and not published.matched


def _step(flops_of) -> tuple[list[float], object]:
    calls: list[float] = []

    def measure(x: float) -> Cost:
        calls.append(x)
        return Cost(0, flops_of(x), 0, "synthetic")

    return calls, measure


def test_nearest_flops_finds_the_nearest_step() -> None:
    # Depth-like steps: four stages of 1..4 blocks, ceil per stage, as `round_repeats` does.
    repeats = (1, 2, 3, 4)

    def flops(d: float) -> int:
        return sum(math.ceil(n * d) * 1000 * (i + 1) for i, n in enumerate(repeats))

    grid = [1 + i / 2000 for i in range(14001)]  # 1..8 in steps finer than any breakpoint gap
    for target in (flops(1) * 0.9, 31_337, 47_000, 80_000, flops(8) * 1.2):
        calls, measure = _step(flops)
        match = nearest_flops(measure, target, lo=1.0, hi=8.0, start=2.0)
        best = min((flops(d) for d in grid), key=lambda f: (abs(math.log(f / target)), f))
        assert match.cost.flops == best and flops(match.value) == best
        assert len(str(match.value)) <= 5  # a readable multiplier, not a float breakpoint
        assert match.measurements == len(set(calls)) < 90


def test_nearest_flops_integer_takes_the_largest_size_of_a_step() -> None:
    def flops(r: int) -> int:  # a stride-2 stem: sizes 2k-1 and 2k cost the same
        return math.ceil(r / 2) ** 2

    calls, measure = _step(flops)
    match = nearest_flops(measure, 112.4**2, lo=32, hi=4096, integer=True, start=100)
    assert match.value == 224 and match.cost.flops == 112**2
    assert len(set(calls)) <= 20  # galloping and bisection, not a scan


def test_bounds_and_tolerance_are_checked() -> None:
    assert ArmBounds.parse("4") == ArmBounds(4, 4, 4)
    assert ArmBounds.parse("depth=3, resolution=2") == ArmBounds(depth=3, width=8, resolution=2)
    for bad, message in (("x", "not numbers"), ("depth=0.5", "must be a finite number >= 1"), ("size=2", "name size")):
        with pytest.raises(UsageError, match=message):
            ArmBounds.parse(bad)
    with pytest.raises(UsageError, match="tolerance=0 must be a fraction"):
        plan_arms("tiny", PAPER, phi=1, tolerance=0)
