"""The arms of a comparison, matched in a measured cost to a compound member (the paper's Table 3
set-up, and Dollár et al.'s fast scaling beside it).

The paper compares compound scaling with scaling depth, width or resolution alone "at similar
FLOPs". Rounding makes exact matches impossible (ceil on repeats, channels to multiples of 8,
whole pixels), so each arm is found by searching on measured cost (`nearest_flops`, the same
routine `calibrate_family` uses): the one multiplier whose network's cost comes nearest to the
compound member's, the other two dimensions left at the baseline's. The cost is FLOPs by default,
or activations (Dollár, Singh & Girshick 2021: what runtime on accelerators follows), or a
latency measured per network (`LatencyOptions`); ``tolerance`` means the same in each.

    arms = plan_arms("resnet18", Coefficients(1.2, 1.1, 1.15), phi=2, base_resolution=32, num_classes=10)
    for arm in arms:
        print(arm.name, arm.depth, arm.width, arm.resolution, f"{arm.cost_ratio:.3f}")

Arms, in order (`ARM_NAMES`; ``arms=`` picks some): ``compound`` (d=α^φ, w=β^φ, r=γ^φ, as
`emit_family` builds it), ``depth``, ``width``, ``resolution`` (matched), ``fast`` (fast scaling,
matched: `FAST_EXPONENTS`), and for an efficientnet_b0 baseline ``paper`` (the paper's
(1.2, 1.1, 1.15)^φ) and ``published`` (the released row for integer φ <= 7; at a base resolution
other than 224 its size is scaled by base/224). Only the matched arms must meet the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from effscale.errors import UsageError
from effscale.models import Coefficients, Cost, get_baseline, measure_cost, scale_resolution
from effscale.models.measures import LABELS, check_cost
from effscale.models.options import LatencyOptions
from effscale.models.registry import Baseline
from effscale.search.compare.options import EFFICIENTNET_ARMS, arms_for
from effscale.search.family.members import PUBLISHED_EFFICIENTNET, FamilyMember, emit_family
from effscale.search.family.nearest import nearest_flops

MATCHED_DIMENSIONS = ("depth", "width", "resolution")
PAPER_COEFFICIENTS = Coefficients(1.2, 1.1, 1.15)
_PUBLISHED_BASE_RESOLUTION = 224
# Fast compound scaling (Dollár, Singh & Girshick, "Fast and Accurate Model Scaling", CVPR 2021,
# their recommended α = 0.8): for a cost factor s, d = s^0.1, w = s^0.4, r = s^0.05, so that
# d·w²·r² = s with 80% of it in width. Checked against pycls's own scaler
# (facebookresearch/pycls, pycls/models/scaler.py: `scaling_factors("d1_w8_g8_r1", s)`, the type
# its docstring names fast compound scaling): weights d=1, w=8, r=1 sum to 10, and it returns
# d = s^(1/10), w = s^(8/10/2), r = s^(1/10/2). Its groups scale like width (g = s^0.4); our
# blocks have no grouped convolutions but depthwise ones, whose groups follow the channels.
FAST_EXPONENTS = (0.1, 0.4, 0.05)
# How each cost grows with a multiplier of one dimension: the start of each arm's search (a guess;
# the search gallops from it). FLOPs ~ d·w²·r², activations (output elements) ~ d·w·r²; a
# latency is guessed to grow like FLOPs.
_GROWTH = {"flops": (1.0, 2.0, 2.0), "activations": (1.0, 1.0, 2.0), "latency": (1.0, 2.0, 2.0)}


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

    name: str  # `ARM_NAMES`: compound | depth | width | resolution | fast | paper | published
    depth: float
    width: float
    resolution: int
    flops: int
    params: int
    ratio: float  # flops / the compound member's flops
    flops_ratio: float  # flops / B0's (the family table's "measured /B0")
    within_tolerance: bool  # |cost_ratio - 1| <= tolerance
    arch_id: str
    matched: bool  # searched on measured cost (depth/width/resolution/fast), not a fixed setting
    activations: int  # fvcore's activation count (`ACTIVATIONS_CONVENTION`)
    activations_ratio: float  # activations / B0's
    params_vs_compound: float  # params / the compound member's
    activations_vs_compound: float  # activations / the compound member's
    cost: str  # the cost the arms are matched in (`effscale.models.measures.COSTS`)
    cost_ratio: float  # that cost / the compound member's: what the tolerance bounds
    latency_ms: float | None = None  # median latency, when measured (`LatencyOptions`)
    latency_iqr_ms: float | None = None
    latency_vs_compound: float | None = None
    latency_warning: str | None = None  # the spread was over 10% of the median
    scale: float | None = None  # the fast arm's cost factor s (d = s^0.1, w = s^0.4, r = s^0.05)

    def as_dict(self) -> dict:
        return asdict(self)


class _Meter:
    """Measures this comparison's networks: fvcore's cost (cached by `measure_cost`) and, with
    ``latency``, the latency of each distinct network once; ``value`` reads the chosen cost."""

    def __init__(self, base: Baseline, num_classes: int, cost: str, latency: LatencyOptions | None) -> None:
        self.base, self.num_classes, self.cost, self.latency = base, num_classes, cost, latency
        self.latencies: dict[str, Any] = {}  # arch_id -> effscale.models.latency.Latency

    def measure(self, resolution: int, depth: float = 1.0, width: float = 1.0) -> Cost:
        cost = measure_cost(self.base, int(resolution), depth=depth, width=width, num_classes=self.num_classes)
        if self.cost == "latency":  # the search reads it: time each network it measures
            self.latency_of(cost, depth, width)
        return cost

    def latency_of(self, cost: Cost, depth: float, width: float) -> Any:
        """The latency of the network ``cost`` describes; None without ``latency``."""
        if self.latency is None:
            return None
        if cost.arch_id not in self.latencies:
            self.latencies[cost.arch_id] = self.latency.measure(
                self.base, cost.resolution, depth=depth, width=width, num_classes=self.num_classes)
        return self.latencies[cost.arch_id]

    def value(self, cost: Cost) -> float:
        """``cost`` in the chosen cost: its FLOPs, its activations, or its latency in seconds."""
        if self.cost == "latency":
            return self.latencies[cost.arch_id].median_s
        return float(getattr(cost, self.cost))


@dataclass(frozen=True)
class _Target:
    """What every arm at one φ is measured against."""

    base: Baseline
    base_resolution: int
    num_classes: int
    compound: FamilyMember
    b0: Cost
    tolerance: float
    meter: _Meter
    compound_cost: Cost

    @property
    def goal(self) -> float:
        """The compound member in the chosen cost: what every matched arm aims at."""
        return self.meter.value(self.compound_cost)

    def arm(self, name: str, depth: float, width: float, resolution: int, cost: Cost, *, matched: bool,
            scale: float | None = None) -> Arm:
        c, ratio, cost_ratio = self.compound_cost, cost.flops / self.compound_cost.flops, self.meter.value(cost) / self.goal
        latency, compound_latency = self.meter.latency_of(cost, depth, width), self.compound_latency()
        return Arm(
            name, depth, width, int(resolution), cost.flops, cost.params, ratio, cost.flops / self.b0.flops,
            abs(cost_ratio - 1) <= self.tolerance, cost.arch_id, matched, cost.activations,
            cost.activations / self.b0.activations, cost.params / c.params, cost.activations / c.activations,
            self.meter.cost, cost_ratio,
            latency_ms=latency.median_s * 1e3 if latency else None,
            latency_iqr_ms=(latency.q3_s - latency.q1_s) * 1e3 if latency else None,
            latency_vs_compound=latency.median_s / compound_latency.median_s if latency else None,
            latency_warning=latency.warning if latency else None, scale=scale,
        )

    def compound_latency(self) -> Any:
        m = self.compound
        return self.meter.latency_of(self.compound_cost, m.depth, m.width)

    def member_arm(self, name: str, member: FamilyMember) -> Arm:
        cost = self.meter.measure(member.resolution, member.depth, member.width)
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
    arms: Sequence[str] | None = None,
    cost: str = "flops",
    latency: LatencyOptions | None = None,
) -> list[Arm]:
    """The compound member at ``phi`` and its arms (``arms``, `ARM_NAMES` order; default: the
    single-dimension ones, with paper and published for efficientnet_b0), matched in ``cost``.

    ``tolerance`` is relative: a matched arm is within it when |its cost / compound's - 1| <=
    tolerance. With ``strict`` (the default) a matched arm that is not raises `UsageError` naming
    the arm, the closest ratio it reached and where; ``strict=False`` returns it anyway with
    ``within_tolerance=False``, for a caller that prints the mismatch. ``latency`` (where and how
    to time; default `LatencyOptions()` when ``cost`` is latency) also gives every arm its latency.
    """
    base = get_baseline(baseline)
    base_resolution = base.base_resolution if base_resolution is None else base_resolution
    tolerance = _check_tolerance(tolerance)
    names = arms_for(base.name, None if arms is None else ",".join(arms))
    cost = check_cost(cost)
    meter = _Meter(base, num_classes, cost, latency if latency is not None or cost != "latency" else LatencyOptions())
    family = emit_family(base, coefficients, phis=[phi], base_resolution=base_resolution, num_classes=num_classes)
    member = family.members[0]
    b0 = meter.measure(base_resolution)
    compound = meter.measure(member.resolution, member.depth, member.width)
    target = _Target(base, base_resolution, num_classes, member, b0, tolerance, meter, compound)
    planned = [target.member_arm("compound", member)]
    for name in names:
        if name in MATCHED_DIMENSIONS or name == "fast":
            planned.append(_fast_arm(target, bounds) if name == "fast" else _matched_arm(target, name, bounds))
            if strict and not planned[-1].within_tolerance:  # before the next search: each costs traces
                raise UsageError(_mismatch_message(target, planned[-1], bounds))
    if set(names) & set(EFFICIENTNET_ARMS):
        planned += [a for a in _efficientnet_arms(target, phi) if a.name in names]
    return planned


def _check_tolerance(tolerance: float) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise UsageError(f"tolerance={tolerance!r} must be a fraction in (0, 1); pass e.g. 0.05 for 5%")
    return float(tolerance)


def _start(target: _Target, exponent: float) -> float:
    """The first guess of a multiplier whose cost grows as multiplier^exponent."""
    return max(1.0, target.goal / target.meter.value(target.b0)) ** (1 / exponent)


def _matched_arm(target: _Target, dim: str, bounds: ArmBounds) -> Arm:
    """The setting of ``dim`` alone whose measured cost comes nearest the compound member's."""
    meter, r0 = target.meter, target.base_resolution
    growth = dict(zip(MATCHED_DIMENSIONS, _GROWTH[meter.cost]))[dim]

    def measure(x: float) -> Cost:
        if dim == "resolution":
            return meter.measure(int(x))
        return meter.measure(r0, **{dim: x})

    if dim == "resolution":
        match = nearest_flops(
            measure, target.goal, lo=r0, hi=max(r0, math.floor(bounds.resolution * r0)), integer=True,
            start=r0 * _start(target, growth), value=meter.value,
        )
        return target.arm(dim, 1.0, 1.0, int(match.value), match.cost, matched=True)
    match = nearest_flops(
        measure, target.goal, lo=1.0, hi=getattr(bounds, dim), start=_start(target, growth), value=meter.value
    )
    depth, width = (match.value, 1.0) if dim == "depth" else (1.0, match.value)
    return target.arm(dim, depth, width, target.base_resolution, match.cost, matched=True)


def latency_setting(latency: LatencyOptions) -> dict[str, Any]:
    """Where and how a comparison's latencies are timed: the device as described, the batch and
    threads, and the convention (`effscale.models.latency`)."""
    import torch

    from effscale.models.latency import LATENCY_CONVENTION, device_description

    threads = torch.get_num_threads() if latency.latency_threads is None else latency.latency_threads
    return {"device": latency.latency_device, "device_description": device_description(latency.latency_device),
            "batch": latency.latency_batch, "threads": threads,
            "convention": LATENCY_CONVENTION.format(batch=latency.latency_batch)}


def fast_settings(scale: float, base_resolution: int) -> tuple[float, float, int]:
    """Fast scaling's (depth, width, input size) for the cost factor ``scale`` (`FAST_EXPONENTS`)."""
    d, w, r = FAST_EXPONENTS
    return scale**d, scale**w, scale_resolution(base_resolution, scale**r)


def _fast_scale_bound(bounds: ArmBounds) -> float:
    """The largest s whose d, w and r all stay within ``bounds``."""
    return min(getattr(bounds, dim) ** (1 / e) for dim, e in zip(MATCHED_DIMENSIONS, FAST_EXPONENTS))


def _fast_arm(target: _Target, bounds: ArmBounds) -> Arm:
    """Fast scaling at the s whose network's measured cost comes nearest the compound member's:
    d, w, r move together by `FAST_EXPONENTS`, so cost is non-decreasing in s, searched as one
    multiplier starting from s = the compound member's cost factor (in FLOPs, cost ~ s)."""
    meter, r0 = target.meter, target.base_resolution

    def measure(s: float) -> Cost:
        d, w, r = fast_settings(s, r0)
        return meter.measure(r, d, w)

    growth = sum(e * g for e, g in zip(FAST_EXPONENTS, _GROWTH[meter.cost]))  # flops: 1; activations: 0.6
    match = nearest_flops(measure, target.goal, lo=1.0, hi=_fast_scale_bound(bounds),
                          start=_start(target, growth), value=meter.value)
    d, w, r = fast_settings(match.value, r0)
    return target.arm("fast", d, w, r, match.cost, matched=True, scale=match.value)


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
        cost = target.meter.measure(resolution, depth, width)
        arms.append(target.arm("published", depth, width, resolution, cost, matched=False))
    return arms


def _mismatch_message(target: _Target, arm: Arm, bounds: ArmBounds) -> str:
    member = target.compound
    if arm.name == "resolution":
        limit = math.floor(bounds.resolution * target.base_resolution)
        inside = f"resolution <= {limit} px ({bounds.resolution:g}x {target.base_resolution})"
        at = f"{arm.resolution} px"
    elif arm.name == "fast":
        inside, at = f"s <= {_fast_scale_bound(bounds):.4g} (within --bounds)", f"s {arm.scale:g}"
    else:
        inside, at = f"{arm.name} <= {getattr(bounds, arm.name):g}", f"{arm.name} {getattr(arm, arm.name):g}"
    compound_factor = target.goal / target.meter.value(target.b0)
    return (
        f"{arm.name}{'' if arm.name == 'fast' else '-only'} arm cannot match {member.name}'s {compound_factor:.2f}x "
        f"{LABELS[target.meter.cost]} within {target.tolerance * 100:g}% inside {inside} (closest "
        f"{arm.cost_ratio * compound_factor:.2f}x at {at}); widen --bounds or raise --tolerance"
    )
