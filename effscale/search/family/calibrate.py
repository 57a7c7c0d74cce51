"""Calibrated families: each member keeps d = α^φ and w = β^φ and takes the input size whose
measured FLOPs come nearest target^φ times B0's, undoing the drift rounding puts into α^φ."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from effscale.errors import UsageError
from effscale.models import Cost, measure_cost
from effscale.models.scaling import formula_ratio
from effscale.search.family.members import Family, FamilyMember, MemberMeter, family_document
from effscale.search.family.nearest import nearest_flops
from effscale.search.family.options import check_target_ratio


def calibrate_family(family: Family, *, target_ratio: float = 2.0, max_resolution: int | None = None,
                     latency: Any = None) -> Family:
    """``family`` with each member's input size re-chosen so that its measured cost, in the family's
    cost (`Family.cost`: FLOPs, activations or latency), comes nearest target^φ times B0's.

    Depth and width stay α^φ and β^φ (as rounded); only the resolution moves, over integer sizes
    from the baseline's ``min_resolution`` to ``max_resolution`` (default 32x B0's). Rounding made
    the α^φ members drift (the paper's triple builds B1 at ~2.55x B0's FLOPs, not 2x); a calibrated
    member is the nearest any input size gets. B0 (φ = 0) is the baseline itself and is kept as it
    is. Each member is measured again at the size it got (`MemberMeter`: every figure, the formula
    ratio d·w²·(r/r0)² included); ``extra`` records the target and the sizes the members had before.
    ``latency`` (`LatencyOptions`) times a family in latency. Measurements: see `nearest_flops`.
    """
    target_ratio = check_target_ratio(target_ratio)
    base = family.baseline_object
    ceiling = 32 * family.base_resolution if max_resolution is None else int(max_resolution)
    if ceiling < base.min_resolution:
        raise UsageError(
            f"max_resolution={max_resolution} is below the network's minimum {base.min_resolution}; raise it"
        )
    meter = MemberMeter(base, family.base_resolution, family.num_classes, cost=family.cost, latency=latency)
    members = tuple(_calibrated_member(meter, family, m, target_ratio, ceiling) for m in family.members)
    extra = {
        **family.extra,
        "target_ratio": target_ratio,
        "calibrated_from": family.source,
        "uncalibrated_resolutions": {m.name: m.resolution for m in family.members},
    }
    return replace(family, members=members, source=f"calibrated to {target_ratio:g}^phi", extra=extra)


def _calibrated_member(meter: MemberMeter, family: Family, member: FamilyMember, target_ratio: float,
                       ceiling: int) -> FamilyMember:
    if member.phi == 0:
        return member
    base = meter.base

    def measure(resolution: int) -> Cost:
        return measure_cost(base, int(resolution), depth=member.depth, width=member.width,
                            num_classes=family.num_classes)

    def value(cost: Cost) -> float:
        if family.cost == "latency":
            return meter.latency_ms(member.depth, member.width, cost.resolution)  # type: ignore[return-value]
        return float(cost.activations if family.cost == "activations" else cost.flops)

    b0 = value(meter.b0) if family.cost != "latency" else meter.b0_latency_ms
    match = nearest_flops(measure, b0 * target_ratio**member.phi, lo=base.min_resolution, hi=ceiling, integer=True,
                          start=member.resolution, value=value)
    resolution = int(match.value)
    return meter.member(member.name, member.phi, member.depth, member.width, resolution,
                        formula=formula_ratio(member.depth, member.width, resolution, family.base_resolution),
                        dropout=member.dropout)


def calibrated_document(family: Family, calibrated: Family) -> dict[str, Any]:
    """`effscale family --calibrate --json`: both families, each calibrated member with its target."""
    target_ratio = calibrated.extra["target_ratio"]
    doc = family_document(calibrated)
    doc["target_ratio"] = target_ratio
    doc["source"] = calibrated.source
    ratio = {"flops": "flops_ratio", "activations": "activations_ratio", "latency": "latency_ratio"}[calibrated.cost]
    for m in doc["members"]:
        m["target_ratio"] = target_ratio ** m["phi"]
        m["error"] = m[ratio] / m["target_ratio"] - 1
    return {"family": family_document(family), "calibrated": doc}
