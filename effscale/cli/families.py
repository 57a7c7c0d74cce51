"""A family's tables: its members with both cost figures, side by side with the calibrated family
(or after it, when the α^φ family misses target^φ), and the published table with its dropout."""

from __future__ import annotations

from typing import Any

from effscale.cli.output import human, print_table
from effscale.models.measures import LABELS

FAMILY_HEADERS = ("member", "phi", "depth d", "width w", "res", "last map", "params", "FLOPs", "measured /B0",
                  "formula /B0", "activations", "acts /B0")
CALIBRATED_HEADERS = (
    "member", "phi", "depth d", "width w", "target /B0",
    "res", "measured /B0", "error", "calibrated res", "calibrated /B0", "calibrated error",
)
TARGET_HEADERS = ("member", "phi", "depth d", "width w", "res", "last map", "params", "FLOPs", "target /B0",
                  "measured /B0", "error")
LATENCY_HEADERS = ("latency", "latency /B0")


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _latency(family: Any, member: Any) -> tuple[str, ...]:
    """The latency columns, for a family measured in latency."""
    if family.cost != "latency":
        return ()
    return ("-" if member.latency_ms is None else f"{member.latency_ms:.2f} ms", _ratio(member.latency_ratio))


def _last_map(member: Any) -> str:
    return "-" if member.last_map is None else f"{member.last_map}x{member.last_map}"


def _has_dropout(family: Any) -> bool:
    """The published table carries each member's dropout; an α^φ family has none."""
    return any(m.dropout is not None for m in family.members)


def family_rows(family: Any) -> list[list[Any]]:
    dropout = _has_dropout(family)
    return [
        [m.name, f"{m.phi:g}", f"{m.depth:.3f}", f"{m.width:.3f}", m.resolution, _last_map(m), f"{m.params:,}",
         human(m.flops), f"{m.flops_ratio:.2f}x", f"{m.formula_ratio:.2f}x",
         "-" if m.activations is None else human(m.activations), _ratio(m.activations_ratio), *_latency(family, m),
         *((f"{m.dropout:g}" if m.dropout is not None else "-",) if dropout else ())]
        for m in family.members
    ]


def calibrated_rows(family: Any, calibrated: Any) -> list[list[Any]]:
    """The α^φ member and its calibrated twin side by side, each ratio's error against target^φ."""
    target, cost = calibrated.extra["target_ratio"], calibrated.cost
    rows = []
    for m, c in zip(family.members, calibrated.members):
        goal = target**m.phi
        rows.append([
            m.name, f"{m.phi:g}", f"{m.depth:.3f}", f"{m.width:.3f}", f"{goal:.2f}x",
            m.resolution, f"{m.ratio(cost):.2f}x", f"{m.ratio(cost) / goal - 1:+.1%}",
            c.resolution, f"{c.ratio(cost):.2f}x", f"{c.ratio(cost) / goal - 1:+.1%}",
        ])
    return rows


def target_rows(family: Any, target: float) -> list[list[Any]]:
    """One family's members against target^φ."""
    return [
        [m.name, f"{m.phi:g}", f"{m.depth:.3f}", f"{m.width:.3f}", m.resolution, _last_map(m), f"{m.params:,}",
         human(m.flops), f"{target**m.phi:.2f}x", f"{m.ratio(family.cost):.2f}x",
         f"{m.ratio(family.cost) / target**m.phi - 1:+.1%}"]
        for m in family.members
    ]


def family_title(family: Any) -> str:
    coeffs = family.coefficients
    title = f"{family.baseline}{' (small stem)' if family.stem != 'standard' else ''} family"
    if coeffs:
        title += f" (alpha={coeffs['alpha']:g}, beta={coeffs['beta']:g}, gamma={coeffs['gamma']:g})"
    return title


def print_family(family: Any, calibrated: Any = None, *, calibrated_first: bool = False) -> None:
    """The family's table. With ``calibrated``: side by side with it, or, when the α^φ family
    misses target^φ (``calibrated_first``), the calibrated family first and the α^φ one after."""
    title = family_title(family)
    if calibrated is None:
        headers = (FAMILY_HEADERS + (LATENCY_HEADERS if family.cost == "latency" else ())
                   + (("dropout",) if _has_dropout(family) else ()))
        print_table(title, headers, family_rows(family))
    elif calibrated_first:
        target = calibrated.extra["target_ratio"]
        print_table(f"{title} calibrated to {target:g}^phi (use this one: the alpha^phi family misses "
                    f"{target:g}^phi)", TARGET_HEADERS, target_rows(calibrated, target))
        print_table(f"{title}: alpha^phi members, as the coefficients build them", TARGET_HEADERS,
                    target_rows(family, target))
    else:
        title += f" and the same d, w calibrated to {calibrated.extra['target_ratio']:g}^phi"
        print_table(title, CALIBRATED_HEADERS, calibrated_rows(family, calibrated))
    print(f"FLOPs: {family.flops_convention}; activations: fvcore's count, same trace; cost: {LABELS[family.cost]}")
    if calibrated is not None:
        print(
            f"calibrated: each member keeps d and w and takes the input size whose measured {LABELS[family.cost]} "
            "come nearest target^phi x B0 (error: measured / target - 1)."
        )
    phi1 = next((m for m in family.members if m.phi == 1), None)
    if phi1 is not None:
        print(
            f"phi=1 measures {phi1.flops_ratio:.2f}x {family.members[0].name} once built and rounded; "
            f"the formula alpha*beta^2*gamma^2 says {phi1.formula_ratio:.2f}x."
        )
