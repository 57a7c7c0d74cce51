"""Single-dimension arms matched in measured FLOPs to a compound member (the paper's Table 3 set-up).

The paper compares compound scaling with scaling depth, width or resolution alone "at similar
FLOPs". Rounding makes exact matches impossible (ceil on repeats, channels to multiples of 8,
whole pixels), so each arm is found by searching on measured cost (`nearest_flops`, the same
routine `calibrate_family` uses): the one multiplier whose network's FLOPs come nearest to the
compound member's, the other two dimensions left at the baseline's.

    arms = plan_arms("resnet18", Coefficients(1.2, 1.1, 1.15), phi=2, base_resolution=32, num_classes=10)
    for arm in arms:
        print(arm.name, arm.depth, arm.width, arm.resolution, f"{arm.ratio:.3f}")

Arms, in order: ``compound`` (d=α^φ, w=β^φ, r=γ^φ, as `emit_family` builds it), ``depth``,
``width``, ``resolution`` (matched), and for an efficientnet_b0 baseline ``paper`` (the paper's
(1.2, 1.1, 1.15)^φ) and ``published`` (the released row for integer φ <= 7; at a base resolution
other than 224 its size is scaled by base/224). Only the matched arms must meet the tolerance.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from effscale.errors import UsageError
from effscale.models import Coefficients, Cost, get_baseline, measure_cost, scale_resolution
from effscale.models.registry import Baseline
from effscale.search.family.members import PUBLISHED_EFFICIENTNET, FamilyMember, emit_family
from effscale.search.family.nearest import nearest_flops

MATCHED_DIMENSIONS = ("depth", "width", "resolution")
PAPER_COEFFICIENTS = Coefficients(1.2, 1.1, 1.15)
_PUBLISHED_BASE_RESOLUTION = 224


@dataclass(frozen=True)
class ArmBounds:
    """How far a matched arm may scale its one dimension: multipliers of the baseline's depth,
    width and input size (resolution 8 at base 224: up to 1792 px)."""

    depth: float = 8.0
    width: float = 8.0
    resolution: float = 8.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 1:
                raise UsageError(f"bound {f.name}={value!r} must be a finite number >= 1; pass e.g. {f.name}=8")
            object.__setattr__(self, f.name, float(value))

    @classmethod
    def parse(cls, text: str) -> "ArmBounds":
        """``"8"`` (all three) or ``"depth=4,width=3,resolution=6"`` (unnamed ones keep 8)."""
        usage = "pass e.g. 8 (all three) or depth=4,width=3,resolution=6"
        pairs = [part.split("=", 1) if "=" in part else ["", part] for part in text.strip().split(",")]
        if len(pairs) > 1 and any(not k.strip() for k, _ in pairs):
            raise UsageError(f"bounds {text!r} mix an unnamed value with named ones; {usage}")
        unknown = sorted({k.strip() for k, _ in pairs} - {f.name for f in fields(cls)} - {""})
        if unknown:
            raise UsageError(f"bounds {text!r} name {', '.join(unknown)}; use depth=, width= or resolution=")
        try:
            values = {k.strip(): float(v) for k, v in pairs}
        except ValueError:
            raise UsageError(f"bounds {text!r} are not numbers; {usage}") from None
        return cls(*(values[""],) * 3) if "" in values else cls(**values)


@dataclass(frozen=True)
class Arm:
    """One network of a comparison at one φ, with its measured cost."""

    name: str  # compound | depth | width | resolution | paper | published
    depth: float
    width: float
    resolution: int
    flops: int
    params: int
    ratio: float  # flops / the compound member's flops
    flops_ratio: float  # flops / B0's (the family table's "measured /B0")
    within_tolerance: bool  # |ratio - 1| <= tolerance
    arch_id: str
    matched: bool  # searched on measured cost (depth/width/resolution), not a fixed setting

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Target:
    """What every arm at one φ is measured against."""

    base: Baseline
    base_resolution: int
    num_classes: int
    compound: FamilyMember
    b0_flops: int
    tolerance: float

    def arm(self, name: str, depth: float, width: float, resolution: int, cost: Cost, *, matched: bool) -> Arm:
        ratio = cost.flops / self.compound.flops
        return Arm(
            name, depth, width, int(resolution), cost.flops, cost.params, ratio, cost.flops / self.b0_flops,
            abs(ratio - 1) <= self.tolerance, cost.arch_id, matched,
        )

    def member_arm(self, name: str, member: FamilyMember) -> Arm:
        cost = Cost(member.params, member.flops, member.resolution, member.arch_id, num_classes=self.num_classes)
        return self.arm(name, member.depth, member.width, member.resolution, cost, matched=False)


def plan_arms(
    baseline: str | Baseline,
    coefficients: Coefficients,
    *,
    phi: float,
    base_resolution: int | None = None,
    num_classes: int = 1000,
    tolerance: float = 0.05,
    bounds: ArmBounds = ArmBounds(),
    strict: bool = True,
) -> list[Arm]:
    """The compound member at ``phi`` and its single-dimension arms, matched in measured FLOPs.

    ``tolerance`` is relative: a matched arm is within it when |flops / compound flops - 1| <=
    tolerance. With ``strict`` (the default) a matched arm that is not raises `UsageError` naming
    the arm, the closest ratio it reached and where; ``strict=False`` returns it anyway with
    ``within_tolerance=False``, for a caller that prints the mismatch.
    """
    base = get_baseline(baseline)
    base_resolution = base.base_resolution if base_resolution is None else base_resolution
    tolerance = _check_tolerance(tolerance)
    family = emit_family(base, coefficients, phis=[phi], base_resolution=base_resolution, num_classes=num_classes)
    b0 = measure_cost(base, base_resolution, num_classes=num_classes)
    target = _Target(base, base_resolution, num_classes, family.members[0], b0.flops, tolerance)
    arms = [target.member_arm("compound", target.compound)]
    for dim in MATCHED_DIMENSIONS:
        arms.append(_matched_arm(target, dim, bounds))
        if strict and not arms[-1].within_tolerance:  # before the next search: each costs traces
            raise UsageError(_mismatch_message(target, arms[-1], bounds))
    if base.name == "efficientnet_b0":
        arms += _efficientnet_arms(target, phi)
    return arms


def _check_tolerance(tolerance: float) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise UsageError(f"tolerance={tolerance!r} must be a fraction in (0, 1); pass e.g. 0.05 for 5%")
    return float(tolerance)


def _matched_arm(target: _Target, dim: str, bounds: ArmBounds) -> Arm:
    """The setting of ``dim`` alone whose measured FLOPs come nearest the compound member's."""
    goal = target.compound.flops
    guess = max(1.0, goal / target.b0_flops)  # FLOPs grow ~d, ~w², ~r²: start the search there
    r0 = target.base_resolution

    def measure(x: float) -> Cost:
        if dim == "resolution":
            return measure_cost(target.base, int(x), num_classes=target.num_classes)
        return measure_cost(target.base, r0, num_classes=target.num_classes, **{dim: x})

    if dim == "resolution":
        match = nearest_flops(
            measure, goal, lo=r0, hi=max(r0, math.floor(bounds.resolution * r0)), integer=True,
            start=r0 * math.sqrt(guess),
        )
        return target.arm(dim, 1.0, 1.0, int(match.value), match.cost, matched=True)
    match = nearest_flops(
        measure, goal, lo=1.0, hi=getattr(bounds, dim), start=guess if dim == "depth" else math.sqrt(guess)
    )
    depth, width = (match.value, 1.0) if dim == "depth" else (1.0, match.value)
    return target.arm(dim, depth, width, target.base_resolution, match.cost, matched=True)


def _efficientnet_arms(target: _Target, phi: float) -> list[Arm]:
    """The paper's (1.2, 1.1, 1.15)^φ and, for integer φ <= 7, the published row."""
    paper = emit_family(
        target.base, PAPER_COEFFICIENTS, phis=[phi], base_resolution=target.base_resolution,
        num_classes=target.num_classes,
    ).members[0]
    arms = [target.member_arm("paper", paper)]
    if float(phi).is_integer() and 0 <= phi < len(PUBLISHED_EFFICIENTNET):
        _, width, depth, resolution, _ = PUBLISHED_EFFICIENTNET[int(phi)]
        if target.base_resolution != _PUBLISHED_BASE_RESOLUTION:
            resolution = scale_resolution(target.base_resolution, resolution / _PUBLISHED_BASE_RESOLUTION)
        cost = measure_cost(target.base, resolution, depth=depth, width=width, num_classes=target.num_classes)
        arms.append(target.arm("published", depth, width, resolution, cost, matched=False))
    return arms


def _mismatch_message(target: _Target, arm: Arm, bounds: ArmBounds) -> str:
    member = target.compound
    if arm.name == "resolution":
        limit = math.floor(bounds.resolution * target.base_resolution)
        inside = f"resolution <= {limit} px ({bounds.resolution:g}x {target.base_resolution})"
        at = f"{arm.resolution} px"
    else:
        inside, at = f"{arm.name} <= {getattr(bounds, arm.name):g}", f"{arm.name} {getattr(arm, arm.name):g}"
    return (
        f"{arm.name}-only arm cannot match {member.name}'s {member.flops_ratio:.2f}x FLOPs within "
        f"{target.tolerance * 100:g}% inside {inside} (closest {arm.flops_ratio:.2f}x at {at}); "
        "widen --bounds or raise --tolerance"
    )
