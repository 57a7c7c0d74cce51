"""Single-dimension and fast-scaling arms matched to a compound member in measured FLOPs,
activations or latency, and the search behind them."""

from __future__ import annotations

import math

import pytest

from effscale.errors import UsageError
from effscale.models import Coefficients, Cost, measure_cost
from effscale.search.compare.arms import FAST_EXPONENTS, Arm, ArmBounds, fast_settings, plan_arms
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


# ---------------------------------------------------------------------------------------------
# fast scaling, and matching in activations and latency


def test_fast_exponents_are_pycls_fast_compound_scaling() -> None:
    # pycls/models/scaler.py, scaling_factors("d1_w8_g8_r1", s): weights d=1, w=8, r=1 (groups
    # apart) sum to 10; d = s^(1/10), w = s^(8/10/2), r = s^(1/10/2), so d*w^2*r^2 = s.
    weights = {"d": 1.0, "w": 8.0, "r": 1.0}
    total = sum(weights.values())
    assert FAST_EXPONENTS == pytest.approx((weights["d"] / total, weights["w"] / total / 2, weights["r"] / total / 2))
    assert FAST_EXPONENTS == (0.1, 0.4, 0.05)
    for s in (1.0, 2.0, 4.0, 100.0):
        d, w, r = fast_settings(s, 224)
        assert (d, w) == (pytest.approx(s**0.1), pytest.approx(s**0.4)) and r == round(224 * s**0.05)
        assert d * w**2 * (r / 224) ** 2 == pytest.approx(s, rel=0.01)  # 80% of the cost in width


@pytest.mark.parametrize(("baseline", "base_resolution"), [("tiny", 16), ("resnet20_cifar", 20)])
def test_fast_arm_is_the_nearest_fast_network_in_flops(baseline: str, base_resolution: int) -> None:
    names = ["compound", "depth", "width", "resolution", "fast"]
    arms = plan_arms(baseline, PAPER, phi=2, base_resolution=base_resolution, num_classes=10, tolerance=0.3,
                     arms=names, strict=False)
    assert [a.name for a in arms] == names
    by_name = {a.name: a for a in arms}
    fast, compound = by_name["fast"], by_name["compound"]
    assert fast.matched and fast.cost == "flops" and fast.scale is not None
    assert (fast.depth, fast.width, fast.resolution) == fast_settings(fast.scale, base_resolution)
    cost = measure_cost(baseline, fast.resolution, depth=fast.depth, width=fast.width, num_classes=10)
    assert (fast.flops, fast.activations, fast.params) == (cost.flops, cost.activations, cost.params)
    assert fast.cost_ratio == fast.ratio == pytest.approx(cost.flops / compound.flops)
    assert fast.activations_vs_compound == pytest.approx(cost.activations / compound.activations)
    assert fast.params_vs_compound == pytest.approx(cost.params / compound.params)
    # No fast network on a fine grid of s comes nearer the compound member's FLOPs.
    gap = abs(math.log(fast.ratio))
    for s in (1 + i / 100 for i in range(0, 800)):
        d, w, r = fast_settings(s, base_resolution)
        f = measure_cost(baseline, r, depth=d, width=w, num_classes=10).flops
        assert abs(math.log(f / compound.flops)) >= gap - 1e-12, s
    # Matching in FLOPs is what it was: the default call gives the same single-dimension arms.
    assert plan_arms(baseline, PAPER, phi=2, base_resolution=base_resolution, num_classes=10, tolerance=0.3,
                     strict=False) == arms[:4]


@pytest.mark.parametrize(("baseline", "base_resolution"), [("tiny", 16), ("resnet20_cifar", 20)])
def test_arms_matched_in_activations_are_within_tolerance_in_activations(baseline: str, base_resolution: int) -> None:
    names = ("compound", "depth", "width", "resolution", "fast")
    arms = plan_arms(baseline, PAPER, phi=1, base_resolution=base_resolution, num_classes=10, tolerance=0.15,
                     arms=names, cost="activations")  # strict: every matched arm is within 15% or raises
    compound = arms[0]
    member = emit_family(baseline, PAPER, phis=[1], base_resolution=base_resolution, num_classes=10).members[0]
    assert (compound.flops, compound.resolution) == (member.flops, member.resolution)
    b0 = measure_cost(baseline, base_resolution, num_classes=10)
    for arm in arms:
        cost = measure_cost(baseline, arm.resolution, depth=arm.depth, width=arm.width, num_classes=10)
        assert (arm.flops, arm.activations, arm.arch_id) == (cost.flops, cost.activations, cost.arch_id)
        assert arm.cost == "activations" and arm.cost_ratio == pytest.approx(cost.activations / compound.activations)
        assert abs(arm.cost_ratio - 1) <= 0.15 and arm.within_tolerance
        assert arm.ratio == pytest.approx(cost.flops / compound.flops)  # FLOPs still reported beside
        assert arm.activations_ratio == pytest.approx(cost.activations / b0.activations)
        assert arm.latency_ms is None  # nothing timed unless asked
    # Width costs activations ~w but FLOPs ~w^2: matched in activations it is wider than in FLOPs.
    in_flops = {a.name: a for a in plan_arms(baseline, PAPER, phi=1, base_resolution=base_resolution, num_classes=10,
                                            tolerance=0.3, strict=False)}
    assert {a.name: a for a in arms}["width"].width > in_flops["width"].width


def test_arms_matched_in_latency_carry_their_timings() -> None:
    from effscale.models.options import LatencyOptions

    arms = plan_arms("tiny", PAPER, phi=1, base_resolution=16, num_classes=10, tolerance=0.5, strict=False,
                     arms=["depth", "fast"], cost="latency", latency=LatencyOptions(latency_threads=1))
    assert [a.name for a in arms] == ["compound", "depth", "fast"]  # compound always
    for arm in arms:
        assert arm.cost == "latency" and arm.latency_ms > 0 and arm.latency_iqr_ms >= 0
        assert arm.cost_ratio == pytest.approx(arm.latency_vs_compound)


def test_unknown_or_foreign_arms_are_refused() -> None:
    with pytest.raises(UsageError, match="--arms 'compound,fastest' names an unknown arm 'fastest'"):
        plan_arms("tiny", PAPER, phi=1, arms=["compound", "fastest"])
    with pytest.raises(UsageError, match="paper and published are efficientnet_b0's arms, not tiny's"):
        plan_arms("tiny", PAPER, phi=1, arms=["paper"])
    with pytest.raises(UsageError, match="--cost 'bogus' is not one of flops, activations, latency"):
        plan_arms("tiny", PAPER, phi=1, cost="bogus")


def test_nearest_searches_any_value_of_the_cost() -> None:
    # FLOPs grow like x^2, "activations" like x: the nearest step differs, each found exactly.
    def measure(x: float) -> Cost:
        n = math.ceil(x * 4)
        return Cost(0, n * n * 100, 0, f"n{n}", activations=n * 10)

    by_flops = nearest_flops(measure, 3600, lo=1.0, hi=8.0, start=1.5)
    by_activations = nearest_flops(measure, 150, lo=1.0, hi=8.0, start=1.5, value=lambda c: c.activations)
    assert by_flops.cost.flops == 3600 and by_flops.ratio == 1.0
    assert by_activations.cost.activations == 150 and by_activations.reached == 150 and by_activations.ratio == 1.0
    # A float-valued cost (a latency in seconds): the input size of a step nearest the target.
    match = nearest_flops(lambda r: Cost(0, 0, int(r), f"r{r}"), 0.0123, lo=8, hi=512, integer=True, start=16,
                          value=lambda c: c.resolution * 1e-4)
    assert match.value == 123 and match.ratio == pytest.approx(1.0)
