"""Calibrated families: each member keeps d = α^φ and w = β^φ and takes the input size whose
measured FLOPs come nearest target^φ times B0's, undoing the drift rounding puts into α^φ."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from effscale.errors import UsageError
from effscale.models import Cost, measure_cost
from effscale.models.registry import Baseline
from effscale.models.scaling import formula_ratio
from effscale.search.family.members import Family, FamilyMember, _regime_fields, family_document
from effscale.search.family.nearest import nearest_flops
from effscale.search.family.options import check_target_ratio

def calibrate_family(family: Family, *, target_ratio: float = 2.0, max_resolution: int | None = None) -> Family:
    """``family`` with each member's input size re-chosen so that its FLOPs come nearest target^φ.

    Depth and width stay α^φ and β^φ (as rounded); only the resolution moves, over integer sizes
    from the baseline's ``min_resolution`` to ``max_resolution`` (default 32x B0's). Rounding made
    the α^φ members drift (the paper's triple builds B1 at ~2.55x B0, not 2x); a calibrated member
    is the nearest any input size gets. B0 (φ = 0) is the baseline itself and is kept as it is.
    Each member's ``formula_ratio`` is d·w²·(r/r0)² for the size it got; ``extra`` records the
    target and the sizes the members had before. Measurements: see `nearest_flops` (4-18 input
    sizes per member, all shape-only after the first trace of each (d, w)).
    """
    target_ratio = check_target_ratio(target_ratio)
    base = family.baseline_object
    ceiling = 32 * family.base_resolution if max_resolution is None else int(max_resolution)
    if ceiling < base.min_resolution:
        raise UsageError(
            f"max_resolution={max_resolution} is below the network's minimum {base.min_resolution}; raise it"
        )
    b0 = measure_cost(base, family.base_resolution, num_classes=family.num_classes).flops
    members = tuple(_calibrated_member(base, family, m, b0, target_ratio, ceiling) for m in family.members)
    extra = {
        **family.extra,
        "target_ratio": target_ratio,
        "calibrated_from": family.source,
        "uncalibrated_resolutions": {m.name: m.resolution for m in family.members},
    }
    return replace(family, members=members, source=f"calibrated to {target_ratio:g}^phi", extra=extra)


def _calibrated_member(
    base: Baseline, family: Family, member: FamilyMember, b0_flops: int, target_ratio: float, ceiling: int
) -> FamilyMember:
    if member.phi == 0:
        return member

    def measure(resolution: int) -> Cost:
        return measure_cost(
            base, int(resolution), depth=member.depth, width=member.width, num_classes=family.num_classes
        )

    match = nearest_flops(
        measure, b0_flops * target_ratio**member.phi,
        lo=base.min_resolution, hi=ceiling, integer=True, start=member.resolution,
    )
    return replace(
        member,
        resolution=int(match.value),
        params=match.cost.params,
        flops=match.cost.flops,
        flops_ratio=match.cost.flops / b0_flops,
        formula_ratio=formula_ratio(member.depth, member.width, match.value, family.base_resolution),
        arch_id=match.cost.arch_id,
        **_regime_fields(base, member.depth, member.width, int(match.value), family.num_classes),
    )


def calibrated_document(family: Family, calibrated: Family) -> dict[str, Any]:
    """`effscale family --calibrate --json`: both families, each calibrated member with its target."""
    target_ratio = calibrated.extra["target_ratio"]
    doc = family_document(calibrated)
    doc["target_ratio"] = target_ratio
    doc["source"] = calibrated.source
    for m in doc["members"]:
        m["target_ratio"] = target_ratio ** m["phi"]
        m["error"] = m["flops_ratio"] / m["target_ratio"] - 1
    return {"family": family_document(family), "calibrated": doc}
